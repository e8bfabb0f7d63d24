"""Image names in one place: deploy/images/images.env's registry and tag are what Compose runs and builds,
what every kustomize target deploys and what make builds, pushes and loads, for the shipped values and for
a registry with a port; and wherever actors run the slim image (no torch) the learner asks them for
trajectories, which is all that image can send."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml

from .conftest import DEPLOY, REPO, load_config, run, tool
from .kustomize import TARGETS, by_kind, pod_config, pods, service_of

IMAGES_ENV = DEPLOY / "images" / "images.env"
SLIM = "relayrl-actor"


def read_env(path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))


def expected(names: dict[str, str], image: str) -> str:
    return f"{names['RELAYRL_REGISTRY']}/{image}:{names['RELAYRL_TAG']}"


def compose_model(root, *extra: str) -> dict:
    files = ["-f", str(root / "compose" / "compose.yaml"), *extra]
    result = run([tool("docker-compose"), *files, "config", "--format", "json"])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_reads_the_images_file():
    assert (DEPLOY / "compose" / ".env").resolve() == IMAGES_ENV.resolve(), "compose/.env must link to images.env"
    names = read_env(IMAGES_ENV)
    services = compose_model(DEPLOY)["services"]
    assert services["learner"]["image"] == expected(names, "relayrl")
    assert services["actor"]["image"] == expected(names, SLIM)
    assert services["actor"]["build"]["dockerfile"] == "deploy/docker/Dockerfile.actor"
    gpu = compose_model(DEPLOY, "-f", str(DEPLOY / "compose" / "compose.gpu.yaml"))["services"]
    assert gpu["learner"]["image"] == expected(names, "relayrl-cuda")


GPU_TARGETS = ("overlays/gpu", "overlays/gpu-ranks", "all-components")  # those with components/learner-gpu


@pytest.mark.parametrize("target", TARGETS)
def test_kustomize_deploys_the_same_names(rendered, target):
    names = read_env(IMAGES_ENV)
    assert "relayrl-images" not in by_kind(rendered[target], "ConfigMap"), "local-config: never applied"
    for _, template in pods(rendered[target]):
        container = template["spec"]["containers"][0]
        image = {"learner": "relayrl-cuda" if target in GPU_TARGETS else "relayrl", "actor": SLIM}
        assert container["image"] == expected(names, image[service_of(container)]), target


def test_another_registry_flows_everywhere(tmp_path):
    """A registry with a port and a path, and another tag, edited in the one file only."""
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy, symlinks=True)
    names = {"RELAYRL_REGISTRY": "registry.example.com:5000/ml", "RELAYRL_TAG": "9.9.9"}
    (copy / "images" / "images.env").write_text("".join(f"{k}={v}\n" for k, v in names.items()))
    for overlay, learner in (("default", "relayrl"), ("gpu", "relayrl-cuda"), ("gpu-ranks", "relayrl-cuda")):
        result = run([tool("kubectl"), "kustomize", str(copy / "k8s" / "overlays" / overlay)])
        assert result.returncode == 0, result.stderr
        images = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
                  for d in yaml.safe_load_all(result.stdout) if d and d["kind"] in ("Deployment", "Job")}
        assert images == {"relayrl-learner": expected(names, learner), "relayrl-actor": expected(names, SLIM)}
    services = compose_model(copy)["services"]
    assert services["learner"]["image"] == expected(names, "relayrl")
    # make reads the file at the repository's path: run it where that path is the copy.
    (tmp_path / "Makefile").write_text("include deploy/deploy.mk\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYRL_")}
    dry = subprocess.run(["make", "-n", "-C", str(tmp_path), "push-images", "kind-load"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert f"kind load docker-image --name kind {expected(names, 'relayrl')} {expected(names, SLIM)}" in dry.stdout
    assert "push learner actor" in dry.stdout


@pytest.mark.parametrize("target", TARGETS)
def test_slim_actors_are_asked_for_trajectories(rendered, target, tmp_path):
    objects = rendered[target]
    images = {}
    learner = None
    for _, template in pods(objects):
        container = template["spec"]["containers"][0]
        images[service_of(container)] = container["image"]
        if service_of(container) == "learner":
            learner = pod_config(objects, template, container, tmp_path)
    if f"/{SLIM}:" in images["actor"]:
        assert learner.transport == "trajectories", f"{target}: slim actors cannot compute gradients"


def test_compose_slim_actors_are_asked_for_trajectories():
    services = compose_model(DEPLOY)["services"]
    assert f"/{SLIM}:" in services["actor"]["image"]
    env = {k: v for k, v in services["learner"]["environment"].items() if v is not None}
    assert load_config("learner", {**env, "RELAYRL_CHECKPOINT_DIR": str(REPO)}).transport == "trajectories"
