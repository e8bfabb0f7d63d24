"""The learner process killed, restarted with --resume, stopped with SIGTERM and resumed over broken
checkpoints, with one actor process living through all of it; a checkpoint write killed half-way; the
actor's health as a Kubernetes probe sees it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from learner_service import checkpoints
from tests import clients
from tests.conftest import RunningLearner, wait_until
from tests.faults import REPO, free_port

GRACE = 2  # --shutdown-grace, seconds
# SIGTERM to exit: the grace, then the final checkpoint and the interpreter's exit, with slack for 2 busy
# cores. A learner that waited for its connected actor to go would stop only at the test's 15 s limit.
STOP_BOUND = GRACE + 4.0


def learner_args(port: int, health_port: int, directory: Path, *extra: str) -> tuple[str, ...]:
    return (
        *("learner", "--host", "127.0.0.1", "--port", str(port), "--health-port", str(health_port)),
        *("--metrics-port", "-1", "--algo", "a2c", "--n-steps", "4", "--hidden-sizes", "16,16"),
        *("--checkpoint-dir", str(directory), "--checkpoint-every", "0.5", "--keep-checkpoints", "3"),
        *("--log-every", "0.5", "--shutdown-grace", str(GRACE)),
        *extra,
    )


def versions(directory: Path) -> list[int]:
    return [int(p.name[5:17]) for p in checkpoints.list_checkpoints(directory)]


def test_learner_killed_resumed_stopped_and_resumed_over_broken_checkpoints(procs, tmp_path, capsys):
    port, health_port, directory = free_port(), free_port(), tmp_path / "ckpt"
    actor = procs(
        *("actor", "--learner", f"127.0.0.1:{port}", "--actor-id", "survivor", "--num-envs", "4"),
        *("--metrics-port", "-1", "--health-port", "-1", "--backoff-max", "1", "--connect-timeout", "2"),
    )
    first = procs(*learner_args(port, health_port, directory))
    first.wait_for(r"actor survivor connected", 60)
    wait_until(lambda: len(versions(directory)) >= 2 and versions(directory)[0] >= 10, 60, "two checkpoints")

    # 1. SIGKILL: no final checkpoint, no goodbye. The actor keeps its envs and retries, without flooding.
    killed_at = first.signal(signal.SIGKILL)
    first.wait(timeout=10)
    _, newest = checkpoints.load_latest(directory)
    actor.wait_for(r"link closed", 10, after=killed_at)
    second = procs(*learner_args(port, health_port, directory, "--resume"))
    _, resumed = second.wait_for(r"resumed from \S+ at policy version (\d+), (\d+) env steps", 60)
    assert (int(resumed.group(1)), int(resumed.group(2))) == (newest["version"], newest["env_steps"])
    reconnected_at, match = actor.wait_for(r"connected to \S+ as survivor .* policy version (\d+)", 30, after=killed_at)
    assert int(match.group(1)) == newest["version"], "the actor takes the resumed policy"
    actor.wait_for(r"keeping the 4 environments mid-episode", 5, after=killed_at)
    outage = reconnected_at - killed_at
    retries = actor.count(r"unavailable", since=killed_at, until=reconnected_at)
    lines = actor.count(r"", since=killed_at, until=reconnected_at)
    assert retries <= outage / 1.0 + 3 and lines <= retries + 4, f"{lines} log lines in a {outage:.1f}s outage"
    _, progress = second.wait_for(r"env_steps=(\d+) .* version=(\d+)", 10, after=reconnected_at + 1)
    assert int(progress.group(2)) > newest["version"] and int(progress.group(1)) > newest["env_steps"]

    # 2. SIGTERM: NOT_SERVING at once, final checkpoint, exit 0 within the grace period; the actor stays.
    watcher = clients.Watcher(f"127.0.0.1:{health_port}")
    wait_until(lambda: watcher.statuses() == [clients.SERVING], 10, "a health watch on the running learner")
    terminated_at = second.signal(signal.SIGTERM)
    assert second.wait(timeout=15) == 0
    stopped = time.monotonic() - terminated_at
    assert stopped <= STOP_BOUND, f"exit {stopped:.1f}s after SIGTERM with --shutdown-grace {GRACE}"
    assert clients.NOT_SERVING in watcher.statuses(), watcher.statuses()
    _, final = second.wait_for(r"final checkpoint \S+ \(policy version (\d+)\)", 1)
    assert versions(directory)[0] == int(final.group(1))
    actor.wait_for(r"link closed: UNAVAILABLE: the learner is shutting down", 10, after=terminated_at)
    assert actor.popen.poll() is None, "the actor outlives the learner and will reconnect"

    # 3. Broken checkpoints: the newest truncated, and garbage with a higher version. Resume from the newest
    #    good one; the broken ones are set aside so they never displace good checkpoints in the rotation.
    good = versions(directory)[1]
    newest_path = checkpoints.checkpoint_path(directory, versions(directory)[0])
    newest_path.write_bytes(newest_path.read_bytes()[:100])
    checkpoints.checkpoint_path(directory, 10**6).write_bytes(b"not a checkpoint")
    third = procs(*learner_args(port, health_port, directory, "--resume"))
    _, resumed = third.wait_for(r"resumed from \S+ at policy version (\d+)", 60)
    assert int(resumed.group(1)) == good
    assert third.count(r"is unreadable") == 2 and third.count(r"set \S+ aside") == 2
    assert len(list(directory.glob("*.unreadable"))) == 2
    wait_until(lambda: versions(directory)[0] > good, 30, "a new checkpoint after the resumed one")
    assert checkpoints.load_latest(directory)[1]["version"] > good

    actor.signal(signal.SIGTERM)
    assert actor.wait(timeout=15) == 0
    third.signal(signal.SIGTERM)
    assert third.wait(timeout=15) == 0
    with capsys.disabled():
        print(
            f"\n[learner SIGKILL] actor back in training {outage:.1f}s after the kill (learner restart included), "
            f"{retries} retries logged; [SIGTERM] exit 0 in {stopped:.2f}s with checkpoint {final.group(1)}; "
            f"[broken checkpoints] resumed from {good}"
        )


WRITER = """
import sys, torch
from learner_service import checkpoints
state = {"model": {"w": torch.zeros(8_000_000)}, "version": 0}
for version in range(1, 1000):
    state["version"] = version
    checkpoints.save(sys.argv[1], state, keep=2)
"""


def test_a_checkpoint_write_killed_half_way_never_replaces_a_good_one(tmp_path):
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=REPO)
    try:
        wait_until(lambda: len(versions(tmp_path)) == 2, 60, "two complete checkpoints")
        wait_until(lambda: any(tmp_path.glob(".tmp-*")), 30, "a write in progress", interval=0.002)
        writer.kill()
        writer.wait(timeout=10)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert list(tmp_path.glob(".tmp-*")), "killed half-way through a write"
    for path in checkpoints.list_checkpoints(tmp_path):
        state = checkpoints.load(path)  # every checkpoint on disk is whole
        assert state["model"]["w"].numel() == 8_000_000 and path.name == f"ckpt-{state['version']:012d}.pt"
    path, state = checkpoints.resume_from(tmp_path)
    assert state["version"] == versions(tmp_path)[0]
    assert not list(tmp_path.glob(".tmp-*")), "the leftover of the killed write is cleaned up"


def test_actor_health_follows_the_learner_link(procs):
    port, health_port = free_port(), free_port()
    actor = procs(
        *("actor", "--learner", f"127.0.0.1:{port}", "--num-envs", "4", "--metrics-port", "-1"),
        *("--health-port", str(health_port), "--metrics-host", "127.0.0.1", "--backoff-max", "0.5"),
        *("--connect-timeout", "1"),
    )
    actor.wait_for(r"unavailable", 30)  # up, but no learner yet
    watcher = clients.Watcher(f"127.0.0.1:{health_port}", service="")  # the actor's overall status
    wait_until(lambda: watcher.statuses() == [clients.NOT_SERVING], 10, "NOT_SERVING before a learner")
    learner = RunningLearner(port=port, algo="a2c", n_steps=4)
    try:
        wait_until(lambda: clients.SERVING in watcher.statuses(), 30, "SERVING once the learner welcomed it")
        actor.signal(signal.SIGTERM)
        assert actor.wait(timeout=15) == 0
        assert watcher.statuses()[-1] == clients.NOT_SERVING, watcher.statuses()
    finally:
        learner.close()
