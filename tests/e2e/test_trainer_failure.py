"""A failure in the learner's trainer thread is loud: traceback in the log, NOT_SERVING, every stream
ended, exit status 1 (`relayrl learner` and `relayrl train` alike), and no checkpoint written over the
last good one. The failure is injected into the real process by tests/inject/sitecustomize.py."""

from __future__ import annotations

import re
import subprocess

from learner_service import checkpoints
from learner_service.config import LearnerConfig
from learner_service.learner import Learner
from relayrl.config import load
from tests import clients
from tests.conftest import flags, wait_until
from tests.faults import CLEAN_ENV, RELAYRL, REPO, free_port

INJECT = {"PYTHONPATH": str(REPO / "tests" / "inject"), "INJECT_TRAINER_FAILURE": "5"}  # the 5th update raises


def test_a_trainer_failure_stops_the_learner_with_status_1_and_keeps_the_last_checkpoint(procs, tmp_path):
    # The last good checkpoint, written by a real learner at policy version 0.
    directory = tmp_path / "ckpt"
    values = dict(host="127.0.0.1", port=0, metrics_port=-1, hidden_sizes="16,16", checkpoint_dir=directory)
    seed = Learner(load(LearnerConfig, flags(**values), environ={}))
    good = seed.checkpoint()
    seed.server.stop(0)
    before = good.read_bytes()

    port, health_port = free_port(), free_port()
    learner = procs(
        *("learner", "--host", "127.0.0.1", "--port", str(port), "--health-port", str(health_port)),
        *("--metrics-port", "-1", "--algo", "a2c", "--n-steps", "4", "--hidden-sizes", "16,16"),
        *("--checkpoint-dir", str(directory), "--checkpoint-every", "3600", "--resume", "--shutdown-grace", "2"),
        env=INJECT,
    )
    learner.wait_for(r"resumed from \S+ at policy version 0", 60)
    watcher = clients.Watcher(f"127.0.0.1:{health_port}")
    wait_until(lambda: clients.SERVING in watcher.statuses(), 10, "the learner SERVING")
    actor = procs(
        *("actor", "--learner", f"127.0.0.1:{port}", "--actor-id", "a2c", "--num-envs", "4"),
        *("--metrics-port", "-1", "--health-port", "-1", "--backoff-max", "1", "--connect-timeout", "2"),
    )

    assert learner.wait(timeout=60) == 1, learner.text()[-3000:]
    log = learner.text()
    assert "the trainer thread failed" in log and "Traceback (most recent call last)" in log
    assert "InjectedFailure: injected trainer failure at optimizer step 5" in log
    assert clients.NOT_SERVING in watcher.statuses(), watcher.statuses()
    # the A2C actor, which would otherwise wait for version 5 forever, has its stream ended
    actor.wait_for(r"link closed: UNAVAILABLE", 15)
    # four whole updates were made, but no checkpoint of the state the failure left was written
    assert not re.search(r"INFO final checkpoint", log) and "no final checkpoint after the trainer's failure" in log
    assert checkpoints.list_checkpoints(directory) == [good] and good.read_bytes() == before


def test_relayrl_train_exits_non_zero_when_the_learners_trainer_fails(tmp_path):
    result = subprocess.run(
        [*RELAYRL, "train", "--actors", "1", "--num-envs", "4", "--hidden-sizes", "16,16", "--max-seconds", "60"]
        + ["--run-dir", str(tmp_path / "run"), "--metrics-port", "-1"],
        cwd=REPO,
        env={**CLEAN_ENV, **INJECT},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "InjectedFailure: injected trainer failure" in result.stderr
    assert "relayrl train: the learner exited with status 1" in result.stderr
