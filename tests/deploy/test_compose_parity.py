"""Compose parity: what Compose would run is run here, as local processes, and must train.

The real Compose binary resolves deploy/compose/compose.yaml; the learner's and the actors' entrypoint +
command and environment are taken from that model (and from the Dockerfile it builds, for what the image
supplies: ENTRYPOINT, CMD, ENV) and started with .venv/bin as the image's /opt/venv/bin. Only what cannot be
the same on one machine is rewritten, each rewrite explained where it is made. The learner must pass its
Compose healthcheck, the actor must connect and pass its own, the learner's env-step counter (its real
/metrics over HTTP) must rise, and SIGTERM (what `docker compose down` sends, actors first) must end both
with exit code 0 and a checkpoint written. So the Compose file cannot drift from the code unnoticed.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

from actor_service.config import ActorConfig
from learner_service.config import LearnerConfig
from tests.conftest import wait_until

from .conftest import DEPLOY, REPO, VENV_BIN, default, run, tool
from .services import Service, scrape, try_scrape

COMPOSE_FILE = DEPLOY / "compose" / "compose.yaml"
HEALTH_CHECK_SCRIPT = DEPLOY / "docker" / "grpc-health-check.py"
IMAGE_VENV_BIN = "/opt/venv/bin"  # where the Dockerfile's venv lives in the image
COMPOSE_STOP_GRACE = 10.0  # Compose's default stop_grace_period, for a service that sets none


# --- what Compose and the image would run ----------------------------------------------------------------
def resolved_model() -> dict:
    result = run([tool("docker-compose"), "-f", str(COMPOSE_FILE), "config", "--format", "json"])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def final_stage(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile's last stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (REPO / dockerfile).read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def image_defaults(dockerfile: str) -> tuple[list[str], list[str], dict[str, str]]:
    """The image's ENTRYPOINT, CMD (exec form) and ENV, read from the Dockerfile's runtime stage."""
    entrypoint: list[str] = []
    cmd: list[str] = []
    env: dict[str, str] = {}
    for keyword, rest in final_stage(dockerfile):
        if keyword == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif keyword == "CMD":
            cmd = json.loads(rest)
        elif keyword == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                env[name] = value
    return entrypoint, cmd, env


def service_argv(service: dict) -> tuple[list[str], dict[str, str]]:
    """Compose's rule: the service's entrypoint/command replace the image's; the environment is the image's
    ENV overlaid with the service's `environment`. Returns (argv, environment) as the container gets them."""
    entrypoint, cmd, image_env = image_defaults(service["build"]["dockerfile"])
    if service.get("entrypoint") is not None:
        entrypoint, cmd = service["entrypoint"], []
    if service.get("command") is not None:
        cmd = service["command"]
    env = {**image_env, **{k: v for k, v in (service.get("environment") or {}).items() if v is not None}}
    return [*entrypoint, *cmd], env


def localize(argv: list[str], env: dict[str, str], home) -> tuple[list[str], dict[str, str]]:
    """The image's venv is .venv here: /opt/venv/bin in PATH becomes .venv/bin, ahead of the system's
    directories where the base image's $PATH was; the entrypoint is found on that PATH as in the image.
    HOME is the image user's home (/home/relayrl, set by the engine from the user), here a tmp folder."""
    env = dict(env)
    env["PATH"] = env.get("PATH", "$PATH").replace(IMAGE_VENV_BIN, str(VENV_BIN)).replace("$PATH", "/usr/bin:/bin")
    env["HOME"] = str(home)
    executable = argv[0] if "/" in argv[0] else str(VENV_BIN / argv[0])
    return [executable, *argv[1:]], env


def with_port(address: str, port: int) -> str:
    host, _, _ = address.rpartition(":")
    return f"{host}:{port}"


def health_check(service: dict, ports: dict[int, int]) -> list[str]:
    """The service's CMD-SHELL healthcheck as argv: `grpc-health-check` is deploy/docker/grpc-health-check.py
    (the Dockerfile copies it there), and the probed port is the one the service was moved to."""
    kind, command = service["healthcheck"]["test"]
    assert kind == "CMD-SHELL", service["healthcheck"]
    program, address, *rest = shlex.split(command)
    assert program == "grpc-health-check", command
    port = int(address.rpartition(":")[2])
    return [sys.executable, str(HEALTH_CHECK_SCRIPT), with_port(address, ports[port]), *rest]


def healthy(argv: list[str]) -> bool:
    return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0


def grace(service: dict) -> float:
    """stop_grace_period as resolved ("30s", "1m30s"), else Compose's default."""
    text = service.get("stop_grace_period")
    if not text:
        return COMPOSE_STOP_GRACE
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    assert "".join(n + u for n, u in parts) == text, f"unexpected duration {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


# --- the test --------------------------------------------------------------------------------------------
def test_compose_services_run_as_resolved_and_train(tmp_path, services):
    model = resolved_model()
    learner_svc, actor_svc = model["services"]["learner"], model["services"]["actor"]
    learner_argv, learner_env = service_argv(learner_svc)
    actor_argv, actor_env = service_argv(actor_svc)
    assert learner_argv[0] == actor_argv[0] == "relayrl", "the image's entrypoint is the relayrl command"

    # Ports as the services would use them in their containers: their own config, from that environment.
    learner_grpc = int(learner_env.get("RELAYRL_PORT", default(LearnerConfig, "port")))
    learner_metrics = int(learner_env.get("RELAYRL_METRICS_PORT", default(LearnerConfig, "metrics_port")))
    actor_metrics = int(actor_env.get("RELAYRL_METRICS_PORT", default(ActorConfig, "metrics_port")))
    actor_health = int(actor_env.get("RELAYRL_HEALTH_PORT", default(ActorConfig, "health_port")))
    published = {int(p["target"]): p for p in learner_svc.get("ports", [])}
    assert set(published) == {learner_grpc, learner_metrics}, "the learner publishes its gRPC and metrics ports"
    assert {p.get("host_ip") for p in published.values()} == {"127.0.0.1"}, "published on loopback only"

    # Rewrite 1, ports: every container has its own network namespace, but here all processes share the
    # machine's, where fixed ports would clash with anything else running (another test, a real learner on
    # 50051). Each port is set to 0 through its own variable, and `moved` maps it to the port the service
    # bound (its log says); nothing else about it changes.
    # Rewrite 2, bind address: the learner binds 0.0.0.0 inside its container, and Compose publishes it on
    # 127.0.0.1 only; the actor publishes nothing. On the host, loopback is that reach.
    learner_env.update(RELAYRL_HOST="127.0.0.1", RELAYRL_PORT="0", RELAYRL_METRICS_PORT="0")
    actor_env.update(RELAYRL_METRICS_HOST="127.0.0.1", RELAYRL_METRICS_PORT="0", RELAYRL_HEALTH_PORT="0")
    # Rewrite 3, the learner's address: `learner` is a Compose service name, resolved by Compose's DNS to
    # that container; here the learner is a local process, so 127.0.0.1, at the port it bound (set below).
    host, _, port = actor_env["RELAYRL_LEARNER"].rpartition(":")
    assert host in model["services"] and int(port) == learner_grpc, actor_env["RELAYRL_LEARNER"]
    # Rewrite 4, the checkpoint folder: /data/checkpoints is the named volume's mount point in the
    # container; here a folder under tmp stands for the volume (created, as the image creates the mount point).
    mounts = {m["target"]: m for m in learner_svc["volumes"]}
    assert mounts[learner_env["RELAYRL_CHECKPOINT_DIR"]]["type"] == "volume"
    checkpoints = tmp_path / "volumes" / "checkpoints"
    checkpoints.mkdir(parents=True)
    learner_env["RELAYRL_CHECKPOINT_DIR"] = str(checkpoints)

    home = tmp_path / "home"
    home.mkdir()
    learner_argv, learner_env = localize(learner_argv, learner_env, home)
    actor_argv, actor_env = localize(actor_argv, actor_env, home)
    learner = Service("learner", learner_argv, learner_env, tmp_path, cwd=home)
    services.append(learner)
    moved = {learner_grpc: learner.port("grpc"), learner_metrics: learner.port("metrics")}
    actor_env["RELAYRL_LEARNER"] = f"127.0.0.1:{moved[learner_grpc]}"

    # depends_on: learner: condition: service_healthy -- the actor starts once the learner's healthcheck passes.
    learner_probe = health_check(learner_svc, moved)
    wait_until(lambda: learner.alive() and healthy(learner_probe), 90, "the learner's Compose healthcheck", 1.0)
    actor = Service("actor", actor_argv, actor_env, tmp_path, cwd=home)
    services.append(actor)
    moved |= {actor_metrics: actor.port("metrics"), actor_health: actor.port("health")}
    actor_probe = health_check(actor_svc, moved)
    wait_until(lambda: actor.alive() and healthy(actor_probe), 60, "the actor's Compose healthcheck (welcomed)", 1.0)

    # Training: the learner's own /metrics, over HTTP, shows the actor and a rising env-step counter.
    metrics_port = moved[learner_metrics]
    wait_until(lambda: learner.alive() and (try_scrape(metrics_port) or {}).get("relayrl_env_steps_total", 0) > 0,
               60, "env steps on the learner's /metrics", 0.2)
    first = scrape(metrics_port)
    assert first["relayrl_actors_connected"] == 1
    wait_until(lambda: learner.alive() and scrape(metrics_port)["relayrl_env_steps_total"]
               > first["relayrl_env_steps_total"], 30, "the env-step counter to rise", 0.2)
    assert scrape(moved[actor_metrics])["relayrl_env_steps_total"] > 0

    # `docker compose down`: SIGTERM to dependents first, each given its stop_grace_period.
    assert actor.terminate(grace(actor_svc)) == 0, actor.tail()
    assert learner.terminate(grace(learner_svc)) == 0, learner.tail()
    written = sorted(checkpoints.glob("*/ckpt-*.pt"))  # one folder per run (RELAYRL_RUN_NAME=auto)
    assert written, f"no checkpoint in {checkpoints}\n{learner.tail()}"
    assert "final checkpoint" in learner.log.read_text(), learner.tail()
