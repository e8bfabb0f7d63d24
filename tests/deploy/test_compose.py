"""Compose: the real Compose binary validates and resolves the files; the resolved model is checked here."""

from __future__ import annotations

import json
import re

import pytest

from actor_service.config import ActorConfig
from learner_service.config import LearnerConfig

from .conftest import (
    DEPLOY,
    PER_ACTOR_VARS,
    REPO,
    VARS_BY_SERVICE,
    assert_variables_taken,
    default,
    load_config,
    run,
    tool,
)

BASE = DEPLOY / "compose" / "compose.yaml"
GPU = DEPLOY / "compose" / "compose.gpu.yaml"
VARIANTS = {"cpu": [BASE], "gpu": [BASE, GPU]}


def compose(files, *args: str):
    cmd = [tool("docker-compose")]
    for f in files:
        cmd += ["-f", str(f)]
    return run([*cmd, *args])


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request):
    """(name, resolved model with the observability profile on)."""
    result = compose(VARIANTS[request.param], "--profile", "observability", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return request.param, json.loads(result.stdout)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_compose_config_is_valid_without_warnings(name):
    result = compose(VARIANTS[name], "--profile", "observability", "config", "-q")
    assert result.returncode == 0, result.stderr
    assert "warn" not in result.stderr.lower(), result.stderr


def test_observability_is_a_profile():
    """Without the profile only RelayRL's own services run, so nothing needs pulling."""
    result = compose([BASE], "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)["services"]) == {"learner", "actor"}


def test_services_and_actor_replicas(variant):
    _, model = variant
    assert set(model["services"]) == {"learner", "actor", "prometheus", "grafana"}
    assert model["services"]["actor"]["deploy"]["replicas"] == 2
    # Scaled replicas must not fight over host ports or container names.
    actor = model["services"]["actor"]
    assert not actor.get("ports") and not actor.get("container_name")


def test_every_service_has_a_shell_form_healthcheck(variant):
    _, model = variant
    for name, service in model["services"].items():
        test = service.get("healthcheck", {}).get("test")
        # CMD-SHELL: Podman 4.3 splits exec-form arrays (shared/TOOLING.md).
        assert test and test[0] == "CMD-SHELL" and len(test) == 2, f"{name}: {test}"


def service_env(service) -> dict[str, str]:
    return {k: v for k, v in (service.get("environment") or {}).items() if v is not None}


def test_grpc_healthchecks_probe_the_configured_ports(variant):
    _, model = variant
    learner_env = service_env(model["services"]["learner"])
    actor_env = service_env(model["services"]["actor"])
    expected = {
        "learner": int(learner_env.get("RELAYRL_PORT", default(LearnerConfig, "port"))),
        "actor": int(actor_env.get("RELAYRL_HEALTH_PORT", default(ActorConfig, "health_port"))),
    }
    for name, port in expected.items():
        command = model["services"][name]["healthcheck"]["test"][1]
        assert command.startswith("grpc-health-check "), command  # the client the Dockerfiles install
        assert re.search(rf":{port}\b", command), f"{name} healthcheck {command!r} is not on port {port}"
    assert "relayrl.v1.Learner" in model["services"]["learner"]["healthcheck"]["test"][1]


def test_relayrl_variables_are_real_config_fields(variant):
    _, model = variant
    for name in ("learner", "actor"):
        env = service_env(model["services"][name])
        unknown = {k for k in env if k.startswith("RELAYRL_")} - set(VARS_BY_SERVICE[name])
        assert not unknown, f"{name} sets variables its config does not read: {sorted(unknown)}"
    shared = PER_ACTOR_VARS & set(service_env(model["services"]["actor"]))
    assert not shared, f"every actor replica would share {sorted(shared)}"


def test_services_accept_their_configuration(variant):
    """Names are not enough: the values must parse and validate (e.g. RELAYRL_ALGO=a2cc would not)."""
    _, model = variant
    for name in ("learner", "actor"):
        env = service_env(model["services"][name])
        assert_variables_taken(name, load_config(name, env), env)


def test_actors_point_at_the_learner(variant):
    _, model = variant
    host, _, port = service_env(model["services"]["actor"])["RELAYRL_LEARNER"].rpartition(":")
    assert host == "learner"
    learner_port = service_env(model["services"]["learner"]).get("RELAYRL_PORT", default(LearnerConfig, "port"))
    assert int(port) == int(learner_port)


def test_checkpoints_on_a_named_volume_and_resumed(variant):
    _, model = variant
    learner = model["services"]["learner"]
    env = service_env(learner)
    mounts = {m["target"]: m for m in learner["volumes"]}
    target = env["RELAYRL_CHECKPOINT_DIR"]
    assert target in mounts, f"{target} is not mounted"
    assert mounts[target]["type"] == "volume" and mounts[target]["source"] in model["volumes"]
    assert env["RELAYRL_RESUME"].lower() == "true"


def test_build_contexts_and_bind_mounts_exist(variant):
    """Compose does not check these; a typo would only show at `up`."""
    _, model = variant
    for name, service in model["services"].items():
        if "build" in service:
            context = REPO / service["build"]["context"]
            assert context.is_dir() and (context / service["build"]["dockerfile"]).is_file(), name
        for mount in service.get("volumes", []):
            if mount["type"] == "bind":
                assert (REPO / mount["source"]).exists(), f"{name}: {mount['source']}"


def test_gpu_variant_reserves_an_nvidia_device_for_the_learner(variant):
    name, model = variant
    learner = model["services"]["learner"]
    devices = learner.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    if name == "cpu":
        assert not devices and learner["build"]["dockerfile"].endswith("Dockerfile")
        return
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices), devices
    assert learner["build"]["dockerfile"] == "deploy/docker/Dockerfile.cuda"
    assert service_env(learner)["RELAYRL_DEVICE"] == "cuda"
    assert "deploy" not in model["services"]["actor"] or not model["services"]["actor"]["deploy"].get("resources")
