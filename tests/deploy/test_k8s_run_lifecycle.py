"""A run's whole life with real processes, the way the Kubernetes pods run them: the learner and the actor
get exactly the environment `make k8s-run` renders for their containers (the job overlay under a run name),
with only what a pod gets from the cluster rewritten for loopback (ports, the learner's address, the PVC's
and the token Secret's mount points, the actor's pod name).

The walk: run `first` meets its stop target and its learner exits 0; its actor stays up, idle and healthy
(a Deployment would restart an actor that exits); `first` applied again refuses to resume the finished run
(exit 2, which fails the Job once); run `second` starts beside `first`'s checkpoints, trains with a new actor
while the idle one never joins it, and a SIGTERM before its target exits 143 (a Job retries it rather than
completing); `first`'s checkpoints are untouched throughout."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import wait_until
from tests.faults import free_port

from .conftest import DEPLOY, VENV_BIN, run, tool
from .kustomize import container_env, learner_workload, pods, service_of
from .services import Service, try_scrape
from .test_compose_parity import HEALTH_CHECK_SCRIPT

TOKEN = "lifecycle-token-0123456789abcdef"
STEPS = 3000  # the stop target of this walk: small, so that the run finishes in seconds


def rendered_env(k8s_run, tmp_path, run_name: str, overlay: str = "job") -> dict[str, dict[str, str]]:
    """service -> its container's environment, from the run's overlay as `make k8s-run` writes it."""
    deploy = tmp_path / "deploy"
    if not deploy.exists():
        shutil.copytree(DEPLOY, deploy, symlinks=True, ignore=shutil.ignore_patterns("runs"))
    folder = k8s_run.run_overlay(deploy / "k8s", overlay, run_name, "relayrl")
    result = run([tool("kubectl"), "kustomize", str(folder)])
    assert result.returncode == 0, result.stderr
    objects = [o for o in yaml.safe_load_all(result.stdout) if o]
    assert learner_workload(objects)["kind"] == "Job"
    return {service_of(t["spec"]["containers"][0]): container_env(objects, t["spec"]["containers"][0])
            for _, t in pods(objects)}


class Cluster:
    """What the cluster gives the pods, on loopback: one checkpoint volume and one token Secret for the
    namespace, a port per container."""

    def __init__(self, tmp_path) -> None:
        self.tmp = tmp_path
        self.volume = tmp_path / "pvc"
        self.volume.mkdir()
        self.token = tmp_path / "secret-token"
        self.token.write_text(TOKEN + "\n")  # as `kubectl create secret --from-file` stores a file

    def learner(self, env: dict[str, str], name: str, port: int, steps: int = STEPS,
                **cluster: str) -> tuple[Service, int]:
        """A learner pod's process; ``cluster``: other variables whose value the cluster stands behind (a pod's
        DNS name), rewritten for loopback."""
        assert env["RELAYRL_CHECKPOINT_DIR"] == "/data/checkpoints" and env["RELAYRL_RESUME"] == "true"
        env = {k: v for k, v in env.items() if k != "RELAYRL_TARGET_RETURN"}  # the overlay's: hours for CartPole
        metrics = free_port()
        env.update(RELAYRL_MAX_ENV_STEPS=str(steps), RELAYRL_HOST="127.0.0.1", RELAYRL_PORT=str(port),
                   RELAYRL_METRICS_PORT=str(metrics), RELAYRL_CHECKPOINT_DIR=str(self.volume),
                   RELAYRL_AUTH_TOKEN_FILE=self._file(env["RELAYRL_AUTH_TOKEN_FILE"]), HOME=str(self.tmp), **cluster)
        return Service(name, [str(VENV_BIN / "relayrl"), "learner"], env, self.tmp, cwd=self.tmp), metrics

    def actor(self, env: dict[str, str], name: str, learner_port: int) -> tuple[Service, int, int]:
        metrics, health = free_port(), free_port()
        env = dict(env, RELAYRL_LEARNER=f"127.0.0.1:{learner_port}", RELAYRL_ACTOR_ID=name, RELAYRL_NUM_ENVS="8",
                   RELAYRL_METRICS_HOST="127.0.0.1", RELAYRL_METRICS_PORT=str(metrics),
                   RELAYRL_HEALTH_PORT=str(health), RELAYRL_BACKOFF_MAX="0.5",
                   RELAYRL_AUTH_TOKEN_FILE=self._file(env["RELAYRL_AUTH_TOKEN_FILE"]), HOME=str(self.tmp))
        return Service(name, [str(VENV_BIN / "relayrl"), "actor"], env, self.tmp, cwd=self.tmp), metrics, health

    def _file(self, mounted: str) -> str:
        assert mounted == "/etc/relayrl/auth/token", mounted
        return str(self.token)

    def files(self, run_name: str) -> dict[str, str]:
        """The run's checkpoint folder: file name -> sha256."""
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (self.volume / run_name).iterdir()}


def serving(health_port: int) -> bool:
    probe = [sys.executable, str(HEALTH_CHECK_SCRIPT), f"127.0.0.1:{health_port}"]
    return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0


def test_a_run_finishes_stays_down_and_a_new_run_starts_beside_it(k8s_run, tmp_path, services):
    cluster = Cluster(tmp_path)
    first = rendered_env(k8s_run, tmp_path, "first")
    port = free_port()

    # Run `first`: the learner Job and an actor of the Deployment.
    learner, _ = cluster.learner(first["learner"], "learner-first", port)
    services.append(learner)
    actor, actor_metrics, actor_health = cluster.actor(first["actor"], "actor-first", port)
    services.append(actor)
    try:
        assert learner.popen.wait(timeout=180) == 0, learner.tail()
    except subprocess.TimeoutExpired:
        pytest.fail(f"run first did not meet its stop target\n{learner.tail()}\n{actor.tail()}")
    assert "stopped: max_env_steps" in learner.log.read_text(), learner.tail()
    kept = cluster.files("first")
    assert any(name.startswith("ckpt-") for name in kept), kept

    # The actor heard the run is over and stays down: running, not connected, healthy (no probe kills it).
    wait_until(lambda: "idle until SIGTERM" in actor.log.read_text(), 30, "the actor to go idle", 0.2)
    assert actor.alive() and serving(actor_health), actor.tail()
    assert (try_scrape(actor_metrics) or {}).get("relayrl_learner_connected") == 0

    # `first` applied again (the Job deleted and re-applied with the same name): refused, nothing written.
    again, _ = cluster.learner(first["learner"], "learner-first-again", free_port())
    services.append(again)
    assert again.popen.wait(timeout=120) == 2, again.tail()
    assert "finished (max_env_steps" in again.log.read_text() and "--resume-finished" in again.log.read_text()
    assert cluster.files("first") == kept

    # Run `second` (make k8s-new-run RUN=second), on the same address and volume: a new run beside the old.
    second = rendered_env(k8s_run, tmp_path, "second")
    assert second["learner"]["RELAYRL_RUN_NAME"] == "second"
    # (a stop target far off: the SIGTERM below must come before it)
    learner2, learner2_metrics = cluster.learner(second["learner"], "learner-second", port, steps=10**9)
    services.append(learner2)
    actor2, _, _ = cluster.actor(second["actor"], "actor-second", port)
    services.append(actor2)

    def training() -> bool:
        learner2.alive()
        samples = try_scrape(learner2_metrics) or {}
        return samples.get("relayrl_updates_total", 0) >= 3 and samples.get("relayrl_actors_connected") == 1

    wait_until(training, 120, "run second to train with its own actor", 0.5)
    assert "resumed" not in learner2.log.read_text(), "a new run must start fresh"
    # The idle actor of `first` never dialled the new learner.
    assert actor.alive() and "actor-first" not in learner2.log.read_text()
    assert try_scrape(learner2_metrics)["relayrl_actors_connected"] == 1

    # SIGTERM before the stop target (a drain): not 0, so a Job retries instead of completing.
    assert learner2.terminate(60) == 143, learner2.tail()
    assert any(name.startswith("ckpt-") for name in cluster.files("second"))
    assert cluster.files("first") == kept, "the old run's checkpoints changed"
    assert actor.terminate(30) == 0, actor.tail()
