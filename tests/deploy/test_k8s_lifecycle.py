"""A run's life on Kubernetes (deploy/tools/k8s-run.py, behind `make k8s-run / k8s-finish / k8s-new-run /
k8s-delete`): the run's overlay is rendered by the real kustomize with the run's name and namespace in every
place that needs them, and the tool's decisions refuse what would leave two learners, switch a live run
between a Deployment and a Job, resume a finished run or delete checkpoints unasked. The decisions run on
real renders standing in for what `kubectl get -o json` lists; no API server can be had here, so the
kubectl calls themselves (apply, delete, wait) are not run."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess

import pytest
import yaml

from .conftest import DEPLOY, REPO, run, tool
from .kustomize import by_kind, learner_workload, pod_config, pods, service_of


def render_run(k8s_run, tmp_path, overlay: str, name: str, namespace: str = "relayrl") -> list[dict]:
    """The run's overlay as `make k8s-run` writes it (into a copy of deploy/), rendered."""
    copy_ = tmp_path / "deploy"
    if not copy_.exists():
        shutil.copytree(DEPLOY, copy_, symlinks=True, ignore=shutil.ignore_patterns("runs"))
    folder = k8s_run.run_overlay(copy_ / "k8s", overlay, name, namespace)
    result = run([tool("kubectl"), "kustomize", str(folder)])
    assert result.returncode == 0, result.stderr
    return [o for o in yaml.safe_load_all(result.stdout) if o]


@pytest.mark.parametrize("overlay", ["job", "autoscaling", "ranks"])
def test_a_run_takes_its_name_and_namespace_everywhere(k8s_run, tmp_path, overlay):
    objects = render_run(k8s_run, tmp_path, overlay, "cartpole-2", namespace="second")
    config = pod_config(objects, learner_workload(objects)["spec"]["template"],
                        learner_workload(objects)["spec"]["template"]["spec"]["containers"][0], tmp_path)
    assert config.run_name == "cartpole-2" and config.checkpoint_dir.endswith("/checkpoints/cartpole-2")
    for obj in objects:
        assert obj["metadata"]["labels"][k8s_run.INSTANCE] == "cartpole-2", obj["metadata"]["name"]
        assert obj["metadata"].get("namespace", obj["metadata"]["name"]) == "second", obj["metadata"]["name"]
    for scaler in by_kind(objects, "ScaledObject").values():
        assert 'namespace="second"' in scaler["spec"]["triggers"][0]["metadata"]["query"]
    for workload in (o for o in objects if o["kind"] in ("Deployment", "Job")):
        assert k8s_run.INSTANCE not in workload["spec"].get("selector", {}).get("matchLabels", {})


def test_bad_names_are_refused_before_anything_is_written(k8s_run, tmp_path):
    shutil.copytree(DEPLOY / "k8s", tmp_path / "k8s")
    for overlay, name, namespace in [("default", "-bad", "relayrl"), ("default", "a/b", "relayrl"),
                                     ("default", "ok", "Upper"), ("nonexistent", "ok", "relayrl")]:
        with pytest.raises(k8s_run.Refusal):
            k8s_run.run_overlay(tmp_path / "k8s", overlay, name, namespace)
    assert not (tmp_path / "k8s" / "runs").exists()


def as_live(objects: list[dict], complete: bool = False) -> list[dict]:
    """Rendered workloads as `kubectl get deployments,jobs -o json` lists them (a Job with its status)."""
    live = [copy.deepcopy(o) for o in objects if o["kind"] in ("Deployment", "Job")]
    for obj in live:
        if obj["kind"] == "Job":
            obj["status"] = {"conditions": [{"type": "Complete", "status": "True"}]} if complete else {"active": 1}
    return live


def test_the_guards(k8s_run, tmp_path):
    deployment_a = render_run(k8s_run, tmp_path, "default", "run-a")
    job_a = render_run(k8s_run, tmp_path, "job", "run-a")
    job_b = render_run(k8s_run, tmp_path, "job", "run-b")
    refusal = k8s_run.refusal_to_run
    # Nothing live, or the same run edited in place: go.
    assert refusal([], job_a, "run-a") is None
    assert refusal(as_live(deployment_a), deployment_a, "run-a") is None
    assert refusal(as_live(job_a), job_a, "run-a") is None
    # Another run's learner is live: never two learners on one volume.
    assert "run run-a is live" in refusal(as_live(job_a), job_b, "run-b")
    # The live run switched from its Deployment to the Job overlay (issue: apply does not prune).
    assert "is a Deployment and this overlay makes it a Job" in refusal(as_live(deployment_a), job_a, "run-a")
    assert "is a Job and this overlay makes it a Deployment" in refusal(as_live(job_a), deployment_a, "run-a")
    # A finished run is not re-applied.
    assert "run run-a is finished" in refusal(as_live(job_a, complete=True), job_a, "run-a")
    # Objects applied by hand (no run label) count as another run.
    unlabelled = as_live(deployment_a)
    for obj in unlabelled:
        del obj["metadata"]["labels"][k8s_run.INSTANCE]
    assert "applied without make k8s-run" in refusal(unlabelled, job_a, "run-a")
    # A new run must not take the live run's name (it would resume it).
    assert "would resume it" in k8s_run.refusal_of_new_run(as_live(job_a), "run-a")
    assert k8s_run.refusal_of_new_run(as_live(job_a), "run-b") is None


def test_delete_keeps_the_checkpoints_unless_told(k8s_run):
    """Without DELETE_CHECKPOINTS=yes, k8s-delete refuses before running any kubectl (the kubectl named here
    does not exist: calling it would raise)."""
    assert k8s_run.main(["delete", "--kubectl", "/nonexistent/kubectl"]) == 2
    with pytest.raises(FileNotFoundError):
        k8s_run.main(["delete", "--delete-checkpoints", "yes", "--kubectl", "/nonexistent/kubectl"])


def test_make_targets_call_the_tool():
    """`make -n` of each target: the tool with the overlay, namespace, run and confirmation given to make."""
    def dry(*args: str) -> str:
        result = subprocess.run(["make", "-n", "-C", str(REPO), *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        (line,) = [x for x in result.stdout.splitlines() if "k8s-run.py" in x]
        return line

    assert re.search(r"--overlay job --namespace ns2 --run \"r2\" new-run$",
                     dry("k8s-new-run", "K8S_OVERLAY=job", "K8S_NAMESPACE=ns2", "RUN=r2"))
    assert dry("k8s-run", "RUN=r1").endswith('--overlay default --namespace relayrl --run "r1" run')
    assert dry("k8s-finish").endswith("finish")
    assert dry("k8s-delete").endswith('--delete-checkpoints "" delete')


@pytest.mark.parametrize("overlay", ["default", "job"])
def test_actors_of_a_run_wait_when_it_ends(k8s_run, tmp_path, overlay):
    objects = render_run(k8s_run, tmp_path, overlay, "r")
    for template in (o["spec"]["template"] for o in objects if o["kind"] == "Deployment"):
        container = template["spec"]["containers"][0]
        if service_of(container) == "actor":
            assert pod_config(objects, template, container, tmp_path).when_finished == "wait"


def test_a_run_pins_the_recorded_digests(k8s_run, tmp_path):
    """After `make push-images` recorded digests (deploy/images/digests.txt), a run's pods name their images
    by digest: what runs is exactly what was pushed, whatever happens to the tag later."""
    shutil.copytree(DEPLOY, tmp_path / "deploy", symlinks=True, ignore=shutil.ignore_patterns("runs"))
    env = dict(line.split("=", 1) for line in (DEPLOY / "images" / "images.env").read_text().splitlines()
               if line and not line.startswith("#"))
    learner_digest, actor_digest = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    (tmp_path / "deploy" / "images" / "digests.txt").write_text(
        f"{env['RELAYRL_REGISTRY']}/relayrl@{learner_digest}\n{env['RELAYRL_REGISTRY']}/relayrl-actor@{actor_digest}\n")
    objects = render_run(k8s_run, tmp_path, "job", "pinned")
    images = {service_of(t["spec"]["containers"][0]): t["spec"]["containers"][0]["image"] for _, t in pods(objects)}
    assert images == {"learner": f"{env['RELAYRL_REGISTRY']}/relayrl@{learner_digest}",
                      "actor": f"{env['RELAYRL_REGISTRY']}/relayrl-actor@{actor_digest}"}


def test_record_digests_writes_one_line_per_repository(tmp_path):
    """deploy/tools/record-digests.sh with an engine CLI that answers `image inspect` as docker does after
    a push (a stand-in script: no engine or registry here), run twice: the newer digest replaces the older."""
    shutil.copytree(DEPLOY / "tools", tmp_path / "tools")
    (tmp_path / "images").mkdir()
    engine = tmp_path / "engine"
    engine.write_text('#!/bin/sh\necho "other.example/relayrl@sha256:0000"\necho "reg.example/relayrl@$DIGEST"\n')
    engine.chmod(0o755)
    for digest in ("sha256:aaaa", "sha256:bbbb"):
        result = subprocess.run(["bash", str(tmp_path / "tools" / "record-digests.sh"), "reg.example/relayrl:0.1.0"],
                                env={"DOCKER": str(engine), "DIGEST": digest, "PATH": "/usr/bin:/bin"},
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "images" / "digests.txt").read_text() == "reg.example/relayrl@sha256:bbbb\n"
