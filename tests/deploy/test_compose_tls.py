"""The Compose TLS override run for real: learner and actor started as processes exactly as Compose resolves
compose.yaml + compose.tls.yaml (with the parity test's rewrites: ports, bind address, the learner's host,
the checkpoint folder; and here each /run/secrets/NAME as the file Compose would mount there). With
throwaway certificates and a token, the learner must pass its healthcheck on the plaintext health port, the
actor must connect over TLS with the token and train; and an actor without the token must be refused."""

from __future__ import annotations

import json

from actor_service.config import ActorConfig
from learner_service.config import LearnerConfig
from tests.conftest import wait_until
from tests.pki import CA

from .conftest import DEPLOY, default, run, tool
from .services import Service, scrape, try_scrape
from .test_compose_parity import health_check, healthy, localize, service_argv

FILES = [DEPLOY / "compose" / "compose.yaml", DEPLOY / "compose" / "compose.tls.yaml"]
TOKEN = "test-token-0123456789abcdef"


def resolve(env_file) -> dict:
    # --env-file replaces the project's .env (the images' names): name both.
    args = [tool("docker-compose"), "--env-file", str(DEPLOY / "compose" / ".env"), "--env-file", str(env_file)]
    for f in FILES:
        args += ["-f", str(f)]
    result = run([*args, "config", "--format", "json"])
    assert result.returncode == 0, result.stderr
    assert "warn" not in result.stderr.lower(), result.stderr
    return json.loads(result.stdout)


def with_secret_files(service: dict, env: dict[str, str], model: dict) -> None:
    """Compose mounts each of the service's secrets at its target (/run/secrets/NAME): point the variables
    naming those paths at the files themselves."""
    mounted = {s.get("target") or f"/run/secrets/{s['source']}": model["secrets"][s["source"]]["file"]
               for s in service.get("secrets", [])}
    for name, value in env.items():
        if value in mounted:
            env[name] = mounted[value]


def test_compose_tls_override_trains_over_tls_with_the_token(tmp_path, services):
    certs = tmp_path / "certs"
    ca = CA(certs)
    # "learner" is the address actors dial in Compose; 127.0.0.1 where the address is rewritten below.
    pair = ca.issue("learner", server=True, hosts=("learner", "127.0.0.1"))
    (certs / "ca.crt").write_bytes(ca.pem.read_bytes())
    env_file = tmp_path / "tls.env"
    env_file.write_text(f"RELAYRL_TLS_DIR={certs}\nRELAYRL_AUTH_TOKEN={TOKEN}\n")
    assert pair.cert.name == "learner.crt" and pair.key.name == "learner.key"
    model = resolve(env_file)
    learner_svc, actor_svc = model["services"]["learner"], model["services"]["actor"]
    learner_argv, learner_env = service_argv(learner_svc)
    actor_argv, actor_env = service_argv(actor_svc)
    with_secret_files(learner_svc, learner_env, model)
    with_secret_files(actor_svc, actor_env, model)
    assert not {s["source"] for s in actor_svc["secrets"]} & {"learner.key"}, "actors never get the learner's key"

    grpc = int(learner_env.get("RELAYRL_PORT", default(LearnerConfig, "port")))
    health = int(learner_env["RELAYRL_HEALTH_PORT"])
    metrics = int(learner_env.get("RELAYRL_METRICS_PORT", default(LearnerConfig, "metrics_port")))
    actor_health = int(actor_env.get("RELAYRL_HEALTH_PORT", default(ActorConfig, "health_port")))
    assert health not in {int(p["target"]) for p in learner_svc["ports"]}, "the plaintext health port stays unpublished"
    # Every port 0, and `moved` maps it to the one the service bound (as test_compose_parity does).
    learner_env.update(RELAYRL_HOST="127.0.0.1", RELAYRL_PORT="0", RELAYRL_HEALTH_PORT="0",
                       RELAYRL_METRICS_PORT="0", RELAYRL_CHECKPOINT_DIR=str(tmp_path / "ckpt"))
    actor_env.update(RELAYRL_HEALTH_PORT="0", RELAYRL_METRICS_HOST="127.0.0.1", RELAYRL_METRICS_PORT="0")
    home = tmp_path / "home"
    home.mkdir()
    learner_argv, learner_env = localize(learner_argv, learner_env, home)
    actor_argv, actor_env = localize(actor_argv, actor_env, home)

    learner = Service("learner", learner_argv, learner_env, tmp_path, cwd=home)
    services.append(learner)
    moved = {grpc: learner.port("grpc"), health: learner.port("health"), metrics: learner.port("metrics")}
    actor_env["RELAYRL_LEARNER"] = f"127.0.0.1:{moved[grpc]}"

    # The healthcheck the override sets: plaintext, on the health port. The TLS port would not answer it.
    probe = health_check(learner_svc, moved)
    wait_until(lambda: learner.alive() and healthy(probe), 90, "the learner's healthcheck on its health port", 0.5)
    assert not healthy(health_check({"healthcheck": {"test": ["CMD-SHELL", f"grpc-health-check 127.0.0.1:{grpc}"]}},
                                    moved)), "the gRPC port must speak TLS only"

    # An actor without the token is refused (counted as unauthenticated); then the real one trains.
    tokenless = Service("tokenless", actor_argv, {k: v for k, v in actor_env.items() if k != "RELAYRL_AUTH_TOKEN"}
                        | {"RELAYRL_HEALTH_PORT": "-1", "RELAYRL_METRICS_PORT": "-1"}, tmp_path, cwd=home)
    services.append(tokenless)
    wait_until(lambda: learner.alive() and (try_scrape(moved[metrics]) or {}).get(
        'relayrl_rejected_total{reason="unauthenticated"}', 0) > 0, 60, "the token-less actor to be refused", 0.2)
    tokenless.stop()

    actor = Service("actor", actor_argv, actor_env, tmp_path, cwd=home)
    services.append(actor)
    moved[actor_health] = actor.port("health")
    wait_until(lambda: actor.alive() and healthy(health_check(actor_svc, moved)), 60, "the actor's healthcheck", 0.5)
    wait_until(lambda: learner.alive() and scrape(moved[metrics])["relayrl_env_steps_total"] > 0, 60,
               "env steps over TLS", 0.2)
    assert scrape(moved[metrics])["relayrl_actors_connected"] == 1
    assert actor.terminate(15) == 0, actor.tail()
    assert learner.terminate(30) == 0, learner.tail()
