"""Actor processes killed with SIGKILL mid-round (A2C) and mid-stream (A3C), restarted, and stopped with
SIGTERM, against an in-process learner whose sessions and counters the test can read."""

from __future__ import annotations

import signal
import time

from tests.conftest import metric, wait_until

ACTOR_FLAGS = (
    *("--num-envs", "4", "--metrics-port", "-1", "--health-port", "-1"),
    *("--backoff-initial", "0.05", "--backoff-max", "0.5", "--connect-timeout", "2"),
)


STOP_BOUND = 5.0  # seconds from SIGTERM to exit: the message in flight, its Ack, the interpreter's exit


def session(learner, actor_id: str):
    return learner.registry._by_actor.get(actor_id)


def start(procs, learner, actor_id: str):
    actor = procs("actor", "--learner", learner.address, "--actor-id", actor_id, *ACTOR_FLAGS)
    wait_until(lambda: session(learner, actor_id) is not None, 30, f"actor {actor_id} to connect")
    return actor, session(learner, actor_id)


def report(capsys, text: str) -> None:
    with capsys.disabled():
        print(f"\n{text}")


def test_a2c_goes_on_without_a_killed_actor_and_takes_it_back(start_learner, procs, capsys):
    learner = start_learner(algo="a2c", n_steps=4, round_timeout=2.0)
    a, a_session = start(procs, learner, "a")
    b, _ = start(procs, learner, "b")
    reg = learner.metrics.registry
    wait_until(lambda: learner.trainer.version >= 20, 60, "rounds with both actors")

    version, killed_at = learner.trainer.version, b.signal(signal.SIGKILL)  # mid-round: rounds never pause
    wait_until(lambda: learner.registry.live_count() == 1, 5, "the learner to see the killed actor go")
    left = time.monotonic() - killed_at
    wait_until(lambda: learner.trainer.version >= version + 3, 10, "rounds to go on with the survivor")
    resumed = time.monotonic() - killed_at
    assert resumed < 2.0 + 3, "well within --round-timeout plus three rounds"
    assert sum(metric(reg, "relayrl_rejected_total", {"reason": r}) for r in ("malformed", "invalid_tensor")) == 0

    restarted_at = time.monotonic()
    _, b_session = start(procs, learner, "b")  # same actor id, new run id: a restart
    wait_until(lambda: b_session.accepted >= 3, 30, "the restarted actor to contribute again")
    rejoined = time.monotonic() - restarted_at

    terminated_at = a.signal(signal.SIGTERM)
    assert a.wait(timeout=15) == 0
    stopped = time.monotonic() - terminated_at
    # one rollout of 4 steps and its Ack, then the process exits: far under the 15 s the wait allows
    assert stopped <= STOP_BOUND, f"the SIGTERM'd actor took {stopped:.1f}s to exit"
    _, sent = a.wait_for(r"exiting: (\d+) contributions sent", 1)
    assert int(sent.group(1)) == a_session.accepted, "its last message was delivered, not lost"
    version = learner.trainer.version
    wait_until(lambda: learner.trainer.version >= version + 3, 10, "the restarted actor to carry on alone")
    report(
        capsys,
        f"[a2c SIGKILL] stream gone after {left:.2f}s, 3 more rounds {resumed:.2f}s after the kill; restarted "
        f"actor contributing {rejoined:.2f}s after its start; SIGTERM'd actor exited 0 in {stopped:.2f}s, "
        f"{sent.group(1)} sent = {a_session.accepted} received",
    )


def test_a3c_goes_on_without_a_killed_actor_and_accounts_for_every_contribution(start_learner, procs, capsys):
    n_steps, num_envs = 4, 4
    learner = start_learner(algo="a3c", transport="trajectories", n_steps=n_steps, max_policy_lag=4)
    c, c_session = start(procs, learner, "c")
    d, _ = start(procs, learner, "d")
    reg = learner.metrics.registry
    wait_until(lambda: learner.trainer.version >= 30, 60, "updates from both actors")

    version, killed_at = learner.trainer.version, d.signal(signal.SIGKILL)  # mid-stream: it never pauses
    wait_until(lambda: learner.registry.live_count() == 1, 5, "the learner to see the killed actor go")
    left = time.monotonic() - killed_at
    wait_until(lambda: learner.trainer.version >= version + 10, 10, "updates to go on with the survivor")
    resumed = time.monotonic() - killed_at

    restarted_at = time.monotonic()
    d2, d_session = start(procs, learner, "d")
    wait_until(lambda: d_session.accepted >= 5, 30, "the restarted actor to contribute again")
    rejoined = time.monotonic() - restarted_at

    for actor in (c, d2):
        actor.signal(signal.SIGTERM)
    for actor, s in ((c, c_session), (d2, d_session)):
        assert actor.wait(timeout=15) == 0
        _, sent = actor.wait_for(r"exiting: (\d+) contributions sent", 1)
        assert int(sent.group(1)) == s.accepted, "SIGTERM: the message in flight is delivered"
    wait_until(lambda: learner.registry.live_count() == 0 and learner.coordinator.depth() == 0, 10, "quiet")

    # Every contribution the learner decoded was applied or counted as dropped; a half-sent one from the
    # killed actor was never decoded (nothing refused, nothing half-applied).
    def handled() -> float:
        return metric(reg, "relayrl_updates_total") + metric(reg, "relayrl_dropped_stale_total")

    wait_until(lambda: learner.progress.contributions == handled(), 5, "every contribution applied or dropped")
    # every applied rollout was trained on whole: n_steps x num_envs transitions each
    assert metric(reg, "relayrl_samples_total") == metric(reg, "relayrl_updates_total") * n_steps * num_envs
    assert sum(metric(reg, "relayrl_rejected_total", {"reason": r}) for r in ("malformed", "invalid_tensor")) == 0
    report(
        capsys,
        f"[a3c SIGKILL] stream gone after {left:.2f}s, 10 more updates {resumed:.2f}s after the kill; restarted "
        f"actor contributing {rejoined:.2f}s after its start; {handled():.0f} contributions, all applied or dropped",
    )
