"""A silent network cut between an actor and the learner (no FIN, no RST: packets just stop) is noticed by
gRPC keepalive on both sides within about 2 x --keepalive-seconds, and heals by itself when the path returns.

Two variants: a loopback proxy that stops forwarding (in-process services; runs everywhere), and real
processes in two network namespaces with every packet dropped by a blackhole qdisc (needs root)."""

from __future__ import annotations

import logging
import subprocess
import time

import pytest

from tests.conftest import metric, wait_until
from tests.faults import SilentProxy, TwoHosts, netns_unavailable

KEEPALIVE = 1.0
BOUND = 2 * KEEPALIVE + 3.0  # detection: one ping interval, its timeout, and scheduling slack on 2 busy cores
CONNECT_TIMEOUT, BACKOFF_MAX = 2.0, 0.5
# healing: the attempt under way, the longest backoff, the next attempt, a few updates, the same slack
RECOVERY_BOUND = CONNECT_TIMEOUT + BACKOFF_MAX + CONNECT_TIMEOUT + 3.0


def test_a_silent_cut_is_detected_on_both_sides_and_heals(start_learner, start_actor, capsys, caplog):
    caplog.set_level(logging.INFO, logger="relayrl.actor")
    learner = start_learner(algo="a3c", transport="trajectories", n_steps=4, keepalive_seconds=KEEPALIVE)
    host, port = learner.address.split(":")
    proxy = SilentProxy((host, int(port)))
    try:
        actor = start_actor(
            proxy.address, actor_id="far", keepalive_seconds=KEEPALIVE, connect_timeout=CONNECT_TIMEOUT,
            backoff_max=BACKOFF_MAX,
        )
        connected = lambda: metric(actor.metrics.registry, "relayrl_learner_connected") == 1  # noqa: E731
        wait_until(lambda: learner.trainer.version >= 5, 30, "training through the proxy")

        proxy.cut()
        cut_at = time.monotonic()
        wait_until(lambda: learner.registry.live_count() == 0, BOUND + 2, "the learner to drop the silent actor")
        learner_detected = time.monotonic() - cut_at
        wait_until(lambda: not connected(), BOUND + 2, "the actor to notice the silent learner")
        actor_detected = time.monotonic() - cut_at
        retries = lambda: sum("unavailable" in r.getMessage() for r in caplog.records)  # noqa: E731
        wait_until(lambda: retries() >= 1, 10, "a reconnection attempt to fail while the path is still cut")
        assert actor.thread.is_alive()
        version = learner.trainer.version

        proxy.heal()
        healed_at = time.monotonic()
        wait_until(lambda: connected() and learner.registry.live_count() == 1, 15, "the actor to reconnect")
        wait_until(lambda: learner.trainer.version >= version + 5, 15, "training to resume")
        recovered = time.monotonic() - healed_at
    finally:
        proxy.close()
    assert learner_detected <= BOUND and actor_detected <= BOUND, (learner_detected, actor_detected)
    assert recovered <= RECOVERY_BOUND, f"training again only {recovered:.1f}s after the path returned"
    with capsys.disabled():
        print(
            f"\n[proxy cut] learner detected in {learner_detected:.1f}s, actor in {actor_detected:.1f}s, "
            f"training again {recovered:.2f}s after the path returned ({retries()} failed attempts while cut)"
        )


@pytest.fixture
def two_hosts():
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(f"network namespaces unavailable: {reason}; the proxy variant covers the cut")
    hosts = TwoHosts()
    yield hosts
    hosts.close()


def connecting(hosts: TwoHosts, port: int) -> bool:
    """Whether the actor's namespace has a TCP connection to the learner waiting for its SYN's answer."""
    out = subprocess.run([*hosts.prefix(hosts.actor), "ss", "-Htn", "state", "syn-sent"], capture_output=True,
                         text=True, check=True).stdout
    return f"{TwoHosts.LEARNER_IP}:{port}" in out or f"{TwoHosts.LEARNER_IP}]:{port}" in out  # v4, v4-mapped v6


def test_processes_on_two_hosts_detect_a_dropped_link_and_heal(two_hosts, procs, capsys):
    port = 50051
    common = ["--keepalive-seconds", str(KEEPALIVE), "--metrics-port", "-1"]
    learner = procs(
        "learner",
        *common,
        *("--host", TwoHosts.LEARNER_IP, "--port", str(port), "--algo", "a3c", "--transport", "trajectories"),
        *("--n-steps", "4", "--hidden-sizes", "16,16", "--log-every", "0.5"),
        prefix=two_hosts.prefix(two_hosts.learner),
    )
    actor = procs(
        "actor",
        *common,
        *("--learner", f"{TwoHosts.LEARNER_IP}:{port}", "--actor-id", "remote", "--num-envs", "4"),
        *("--health-port", "-1", "--connect-timeout", "2", "--backoff-max", "1"),
        prefix=two_hosts.prefix(two_hosts.actor),
    )
    learner.wait_for(r"actor remote connected from ipv4:10\.77\.0\.2", 60)
    learner.wait_for(r"version=([1-9]\d*)", 30)

    cut_at = two_hosts.cut()
    learner_at, _ = learner.wait_for(r"actor remote disconnected", BOUND + 5, after=cut_at)
    actor_at, match = actor.wait_for(r"link closed: (\w+)", BOUND + 5, after=cut_at)
    assert match.group(1) == "UNAVAILABLE"
    actor.wait_for(r"unavailable \(no connection within 2s\)", 10, after=actor_at)  # it retries
    assert actor.popen.poll() is None
    # the path returns in the middle of an attempt: once the next one's SYN is out and unanswered
    wait_until(lambda: connecting(two_hosts, port), 10, "the actor's next connection attempt", interval=0.02)

    healed_at = two_hosts.heal()
    reconnected_at, _ = learner.wait_for(r"actor remote connected", 20, after=healed_at)
    actor.wait_for(r"keeping the 4 environments", 5, after=healed_at)
    _, before = learner.wait_for(r"version=(\d+)", 5, after=reconnected_at)
    _, after = learner.wait_for(r"version=(\d+)", 10, after=reconnected_at + 1.5)
    assert int(after.group(1)) > int(before.group(1)), "training goes on over the healed path"
    learner_detected, actor_detected = learner_at - cut_at, actor_at - cut_at
    assert learner_detected <= BOUND and actor_detected <= BOUND, (learner_detected, actor_detected)
    # the attempt under way completes (its SYN is retransmitted within --connect-timeout) or, after at most
    # --backoff-max 1, the next one does
    reconnected = reconnected_at - healed_at
    assert reconnected <= CONNECT_TIMEOUT + 1.0 + CONNECT_TIMEOUT + 3.0, f"reconnected {reconnected:.1f}s later"
    with capsys.disabled():
        print(
            f"\n[netns cut] learner detected in {learner_detected:.1f}s, actor in {actor_detected:.1f}s, "
            f"reconnected {reconnected_at - healed_at:.2f}s after the path returned"
        )
