"""The chaos soak (issue 15): a real learner and several actor processes, with faults drawn from a seed and
overlapping in time, then the invariants checked from what the services counted and logged themselves.

    python -m tests.e2e.chaos --seconds 60 --seed 7        # make chaos CHAOS_SECONDS=60 CHAOS_SEED=7

Faults: SIGKILL an actor (a replacement with the same id starts a little later, as a pod restarted), SIGTERM
an actor (likewise), SIGKILL the learner (restarted with --resume), SIGTERM the learner (restarted once it
has exited), and cut an actor's network path silently (each actor reaches the learner through its own
tests.faults.SilentProxy) for a few seconds. Then a calm tail: no faults, the whole fleet up, until training
reaches --target and holds it. Then everything is stopped in order and checked (ledger.py, and below).

Each service process keeps its Prometheus counters in memory-mapped files of its own (prometheus_client's
multiprocess mode, PROMETHEUS_MULTIPROC_DIR), so what a SIGKILLed process had counted is read exactly.
Prints the schedule it ran and a table of the figures; exits 1 on a broken invariant, naming the seed.

    python -m tests.e2e.chaos --learners 2 --seconds 60 --seed 7   # data-parallel learner ranks (A2C)

With --learners N > 1 the learner is N ranks under torchrun (README "Several learners"), actor slot s reaching
rank s mod N, and one more fault: SIGKILL one rank (kill_rank), after which torchrun restarts the whole group
from the newest checkpoint by itself. The learner faults act on the whole learner as a container runtime would:
SIGKILL takes torchrun and its ranks together, SIGTERM goes to torchrun, which passes it on to the ranks. The
checks read each rank process apart (its own metrics files, its own pid): see RANKS below.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from actor_service.actor import A3C_IN_FLIGHT
from learner_service import checkpoints
from tests.conftest import wait_until
from tests.e2e.ledger import ActorBooks, Check, LearnerBooks, check_books, pids, read_samples, value
from tests.faults import Proc, SilentProxy, descendants, free_port

RANKS_RESTART = 15.0  # s a group of ranks may take to start (N ranks import torch at once); here 6-7 s, a restart 2.5
MIN_UPDATES_IN_HOLD = 10  # versions published during the hold; here 100-1,000 are
RSS_GROWTH_MIB, FD_GROWTH = 100, 16  # within one learner process that lived a minute or more
KEEPALIVE = 1.0  # seconds: a cut is noticed within about twice this
# Lines a service logs only once its SIGTERM handler is installed. A SIGTERM before then takes the default
# action, as in any process: it dies of the signal (-15) with nothing to save yet (a learner still importing
# torch or resuming; an actor not yet connected). Such an end is counted as "SIGTERM at start-up".
HANDLING_SIGTERM = {"learner": r"env_steps=", "actor": r"connected to|unavailable"}
# RANKS. What a rank kill explains, and only after one, in the learner it hit: the surviving ranks' trainer fails
# loudly in its all-reduce (gloo: the peer's connection closed) and logs why; and torchrun, SIGTERMed, raises
# SignalException once it has stopped its ranks, so it exits 1 with that traceback however well they stopped.
RANK_KILL_ERROR = r"gloo.*(Connection closed by peer|Connection reset by peer)"
TORCHRUN_SIGTERM = r"SignalException: Process \d+ got signal: 15"
TORCHRUN_SIGTERM_EXIT = 1


def rank_pids(torchrun: int) -> list[int]:
    """The learner ranks torchrun runs now (its children running learner_service)."""
    out = []
    for pid in descendants(torchrun):
        try:
            if b"learner_service" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                out.append(pid)
        except OSError:
            continue  # gone since
    return out


def gone(pid: int) -> bool:
    """Whether a process has ended (a zombie has: it holds no port or file any more)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def resource_usage(pid: int) -> tuple[int, int] | None:
    """(RSS bytes, open descriptors) of a process; None once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) * 1024, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, AttributeError):
        return None


@dataclass
class Fault:
    at: float  # seconds after the chaos began
    kind: str  # kill_actor, term_actor, kill_learner, term_learner, cut; kill_rank with --learners > 1
    slot: int | None  # the actor slot, for actor faults and cuts; the rank, for kill_rank
    length: float  # seconds until the replacement, the restart or the heal (kill_rank: torchrun's own, 0)

    def __str__(self) -> str:
        what = self.kind if self.slot is None else f"{self.kind} {self.slot}"
        if self.kind == "kill_rank":
            return f"{self.at:7.1f}s  {what:<14} the group restarted by torchrun"
        until = {"cut": "healed", "kill_learner": "restarted", "term_learner": "restarted"}.get(self.kind, "replaced")
        return f"{self.at:7.1f}s  {what:<14} {until} {self.length:.1f}s later"


def draw_schedule(seed: int, seconds: float, actors: int, mean_gap: float, learners: int = 1) -> list[Fault]:
    """Faults at exponential gaps; a learner fault (kill_rank among them) is not drawn while the last one's
    outage (and its restart) can still be running, nor a fault on an actor slot still out, so every fault finds
    its target up. With one learner the draws are those the soak always made: a seed replays as before."""
    rng = random.Random(seed)
    kinds = ("kill_actor", "term_actor", "kill_learner", "term_learner", "cut")
    weights = (3, 1, 2, 1, 3)
    if learners > 1:
        kinds, weights = (*kinds, "kill_rank"), (*weights, 2)
    faults: list[Fault] = []
    learner_free, slot_free, cut_free = 0.0, [0.0] * actors, [0.0] * actors
    restart = max(8.0, seconds / 10) if learners == 1 else max(RANKS_RESTART, seconds / 10)
    t = rng.uniform(1.0, mean_gap)
    while t < seconds:
        kind = rng.choices(kinds, weights)[0]
        slot = rng.randrange(actors)
        if kind == "kill_rank":
            rank = rng.randrange(learners)
            if t >= learner_free:
                faults.append(Fault(round(t, 1), kind, rank, 0.0))
                learner_free = t + restart  # torchrun stops the other ranks and starts them all again
        elif kind.endswith("learner"):
            length = rng.uniform(0.5, 4.0)
            if t >= learner_free:
                faults.append(Fault(round(t, 1), kind, None, round(length, 1)))
                # 8 s: a SIGTERM drains and checkpoints, a start imports torch. A tenth of the run: in a long run
                # a learner process lives long enough for its memory and descriptors to show a leak.
                learner_free = t + length + restart
        elif kind == "cut":
            length = rng.uniform(1.0, 8.0)  # shorter and longer than keepalive's detection
            if t >= cut_free[slot]:
                faults.append(Fault(round(t, 1), kind, slot, round(length, 1)))
                cut_free[slot] = t + length + 1.0
        else:
            length = rng.uniform(0.2, 3.0)
            if t >= slot_free[slot]:
                faults.append(Fault(round(t, 1), kind, slot, round(length, 1)))
                slot_free[slot] = t + length + 2.0
        t += rng.expovariate(1.0 / mean_gap)
    return faults


@dataclass
class Service:
    name: str
    proc: Proc
    metrics: Path
    ended: str = "SIGTERM"  # how it was ended: SIGKILL or SIGTERM (also the orderly stop at the end)
    ended_at: float | None = None
    ranks_at_end: set[int] = field(default_factory=set)  # --learners > 1: the rank processes up when it was ended


@dataclass
class Sample:
    at: float
    learner: str
    processes: dict[int, tuple[int, int]]  # pid -> (RSS bytes, open descriptors): the learner, or torchrun and ranks
    version: float | None
    newest_checkpoint: int | None
    mean_return: float | None
    episodes: float

    @property
    def rss(self) -> int:
        return max((rss for rss, _ in self.processes.values()), default=0)

    @property
    def fds(self) -> int:
        return max((fds for _, fds in self.processes.values()), default=0)


@dataclass
class Restart:
    """torchrun's restart of a group of ranks after a rank kill (RANKS)."""

    killed_at: float  # the kill (monotonic)
    resumed_at: float | None  # the first restarted rank's "resumed" line; None: none within 120 s of the kill
    newest: int | None  # the newest checkpoint on disk then: what every restarted rank must resume


@dataclass
class Chaos:
    seconds: float
    seed: int
    algo: str
    transport: str
    actors: int
    num_envs: int
    target: float
    hold_seconds: float
    hold_fraction: float
    hold_tries: int
    calm_timeout: float
    mean_gap: float
    rss_limit_mib: float
    fd_limit: int
    workdir: Path
    ranks: int = 1  # --learners: learner ranks under torchrun when more than 1
    learners: list[Service] = field(default_factory=list)
    fleet: list[Service] = field(default_factory=list)  # every actor process ever started
    slots: list[Service | None] = field(default_factory=list)
    proxies: list[SilentProxy] = field(default_factory=list)
    cuts: list[list[float]] = field(default_factory=list)  # per slot: [cut at, healed at, cut at, ...]
    samples: list[Sample] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)  # the schedule as executed, with actual times
    problems: list[Check] = field(default_factory=list)
    resumes: list[tuple[str, int | None, int | None]] = field(default_factory=list)  # (learner, on disk, resumed)
    # --learners > 1: (when, the learner, the rank's pid, None where no rank was up to kill) per kill_rank, and per
    # rank killed, the group restart that followed
    rank_kills: list[tuple[float, Service, int | None]] = field(default_factory=list)
    restarts: list[Restart] = field(default_factory=list)
    max_restarts: int = 0

    def __post_init__(self) -> None:
        self.port = free_port(count=self.ranks)  # rank r serves on port + r
        self.checkpoint_dir = self.workdir / "checkpoints"
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._watchers: list[threading.Thread] = []

    # --- processes --------------------------------------------------------------------------------------
    def _metrics_dir(self, name: str) -> Path:
        path = self.workdir / "metrics" / name
        path.mkdir(parents=True)
        return path

    def start_learner(self) -> Service:
        name = f"learner-{len(self.learners) + 1}"
        metrics = self._metrics_dir(name)
        newest = checkpoints.list_checkpoints(self.checkpoint_dir)
        on_disk = int(newest[0].name[5:17]) if newest else None
        proc = Proc(
            *("learner", "--host", "127.0.0.1", "--port", str(self.port), "--metrics-port", "-1"),
            *("--env", "CartPole-v1", "--algo", self.algo, "--transport", self.transport, "--seed", str(self.seed)),
            *("--checkpoint-dir", str(self.checkpoint_dir), "--checkpoint-every", "1", "--keep-checkpoints", "3"),
            *("--resume", "--log-every", "1", "--shutdown-grace", "2", "--keepalive-seconds", str(KEEPALIVE)),
            *("--round-timeout", "2"),
            *(("--learners", str(self.ranks), "--max-restarts", str(self.max_restarts)) if self.ranks > 1 else ()),
            env={"PROMETHEUS_MULTIPROC_DIR": str(metrics)},  # every rank writes its own files there
        )
        service = Service(name, proc, metrics)
        with self._lock:
            self.learners.append(service)
        self.resumes.append((name, on_disk, None))
        return service

    def start_actor(self, slot: int) -> Service:
        name = f"actor-{slot}.{sum(1 for s in self.fleet if s.name.startswith(f'actor-{slot}.')) + 1}"
        metrics = self._metrics_dir(name)
        proc = Proc(
            *("actor", "--learner", self.proxies[slot].address, "--actor-id", f"slot-{slot}"),
            *("--num-envs", str(self.num_envs), "--metrics-port", "-1", "--health-port", "-1"),
            *("--keepalive-seconds", str(KEEPALIVE), "--connect-timeout", "2"),
            *("--backoff-initial", "0.1", "--backoff-max", "1"),
            env={"PROMETHEUS_MULTIPROC_DIR": str(metrics)},
        )
        service = Service(name, proc, metrics)
        self.fleet.append(service)
        self.slots[slot] = service
        return service

    def end(self, service: Service, signum: int) -> None:
        service.ended = "SIGKILL" if signum == signal.SIGKILL else "SIGTERM"
        if self.ranks > 1 and signum == signal.SIGKILL and service.name.startswith("learner"):
            service.ended_at, ranks = self._kill_group(service)
            service.ranks_at_end = set(ranks)
            return
        if self.ranks > 1 and service.name.startswith("learner"):
            service.ranks_at_end = set(rank_pids(service.proc.pid))  # torchrun passes the SIGTERM on to them
        service.ended_at = service.proc.signal(signum)

    def _kill_group(self, service: Service) -> tuple[float, list[int]]:
        """SIGKILL torchrun and its ranks at once, as a container's end takes every process in it. torchrun is
        stopped first, so that it cannot start a rank between the listing and the kill, nor see one die."""
        torchrun = service.proc.pid
        try:
            os.kill(torchrun, signal.SIGSTOP)
        except ProcessLookupError:
            pass  # it has exited; its ranks went before it
        ranks = rank_pids(torchrun)
        at = service.proc.signal(signal.SIGKILL)
        for pid in ranks:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # their ports are the next learner's: it must not start before they are gone
        wait_until(lambda: all(gone(pid) for pid in ranks), 10, f"the ranks {ranks} of {service.name} to die")
        return at, ranks

    def kill_rank(self, rank: int) -> None:
        """SIGKILL one rank process (not torchrun): the others' all-reduce fails, torchrun restarts the group."""
        service = self.learner()
        up = rank_pids(service.proc.pid)
        logged = re.findall(rf"rank {rank} of {self.ranks} \(pid (\d+)\)", service.proc.text())
        pid = int(logged[-1]) if logged and int(logged[-1]) in up else None
        if pid is None:  # between two attempts, or still starting: nothing to kill, and counted so
            self.rank_kills.append((time.monotonic(), service, None))
            return
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        self.rank_kills.append((killed_at, service, pid))
        watcher = threading.Thread(target=self._watch_restart, args=(service, killed_at), daemon=True)
        watcher.start()
        self._watchers.append(watcher)

    def _watch_restart(self, service: Service, killed_at: float) -> None:
        """The newest checkpoint on disk when the restarted ranks read theirs: what they must resume (the ranks
        that survived the kill may still write one while torchrun stops them)."""
        try:
            at, _ = service.proc.wait_for(r"resumed from \S+ at policy version|no usable checkpoint", 120, killed_at)
        except BaseException:  # noqa: BLE001 - pytest's Failed: the group never came back, a broken invariant
            self.restarts.append(Restart(killed_at, None, None))
            return
        newest = checkpoints.list_checkpoints(self.checkpoint_dir)
        self.restarts.append(Restart(killed_at, at, int(newest[0].name[5:17]) if newest else None))

    def kill_leftovers(self) -> None:
        """Whatever ranks outlived the run (a failure half-way), with their torchrun."""
        for service in self.learners:
            if self.ranks > 1 and service.proc.popen.poll() is None:
                self._kill_group(service)

    def was_cut(self, slot: int, start: float, end: float) -> bool:
        """Whether slot's path was cut at any time between ``start`` and ``end`` (monotonic)."""
        times = [*self.cuts[slot], float("inf")] if len(self.cuts[slot]) % 2 else self.cuts[slot]
        return any(times[i] <= end and times[i + 1] >= start for i in range(0, len(times), 2))

    def learner(self) -> Service:
        return self.learners[-1]

    def wait_exit(self, service: Service, timeout: float) -> int | None:
        try:
            return service.proc.wait(timeout=timeout)
        except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: reported as a broken invariant
            return None

    # --- the sampler: memory, descriptors, versions and return, twice a second --------------------------
    def _sample(self) -> None:
        while not self._done.wait(0.5):
            with self._lock:
                service = self.learners[-1]
            pid = service.proc.pid
            ranks = rank_pids(pid) if self.ranks > 1 else []
            processes = {p: usage for p in (pid, *ranks) if (usage := resource_usage(p)) is not None}
            if pid not in processes:
                continue  # between a kill and the restart
            newest = checkpoints.list_checkpoints(self.checkpoint_dir)  # read before the version: see below
            if self.ranks == 1:
                serving = service.proc.count(r"learner \S+ on port") > 0  # the trainer has published its version
                samples = read_samples(service.metrics)
                version = value(samples, "relayrl_policy_version", None) if serving else None
                mean_return = value(samples, "relayrl_mean_return_100", None)
                episodes = value(samples, "relayrl_episodes_total")
            else:
                version, mean_return, episodes = self._group_figures(service, ranks)
            self.samples.append(
                Sample(
                    time.monotonic() - self.started,
                    service.name,
                    processes,
                    version,
                    int(newest[0].name[5:17]) if newest else None,
                    mean_return,
                    episodes,
                )
            )

    def _group_figures(self, service: Service, ranks: list[int]) -> tuple[float | None, float | None, float]:
        """The ranks up now, as one learner: the version the group has published (the highest: the ranks publish
        each version at the same update, and one may trail the other by it for a moment; rank 0, which writes the
        checkpoints, is never behind its own), return100 as the mean of the ranks' (each over its own actors'
        episodes, on the same weights), and the episodes of the rank with the fewest."""
        text = service.proc.text()
        serving = [p for p in ranks if f"(pid {p})" in text]  # it has published its version
        if not serving:
            return None, None, 0.0
        each = [read_samples(service.metrics, p) for p in serving]
        versions = [v for v in (value(s, "relayrl_policy_version", None) for s in each) if v is not None]
        returns = [value(s, "relayrl_mean_return_100", None) for s in each]
        return (
            max(versions, default=None),
            None if None in returns else sum(returns) / len(returns),
            min(value(s, "relayrl_episodes_total") for s in each),
        )

    # --- the run -----------------------------------------------------------------------------------------
    def note(self, text: str) -> None:
        line = f"{time.monotonic() - self.started:7.1f}s  {text}"
        self.ran.append(line)
        print(line, flush=True)

    def run(self, schedule: list[Fault]) -> None:
        self.proxies = [SilentProxy(("127.0.0.1", self.port + slot % self.ranks)) for slot in range(self.actors)]
        # torchrun gives up after --max-restarts group failures: as many as the rank kills, and no more, so a group
        # that fails by itself as well ends the run instead of hiding among them
        self.max_restarts = sum(1 for f in schedule if f.kind == "kill_rank")
        self.slots = [None] * self.actors
        self.cuts = [[] for _ in range(self.actors)]
        self.start_learner()
        for slot in range(self.actors):
            self.start_actor(slot)
        sampler = threading.Thread(target=self._sample, daemon=True)
        sampler.start()
        try:
            self.learner().proc.wait_for(r"version=[1-9]", 120)  # training runs before the first fault
            self.note(f"training; chaos for {self.seconds:g}s")
            self._chaos(schedule)
            self._calm()
        finally:
            self._stop_all()
            self._done.set()
            sampler.join(timeout=5)
            for watcher in self._watchers:  # each ends once its learner has (wait_for gives up on an ended one)
                watcher.join(timeout=10)
            for proxy in self.proxies:
                proxy.close()

    def _chaos(self, schedule: list[Fault]) -> None:
        began = time.monotonic()
        actions: list[tuple[float, int, str, int | None]] = []  # (time, order, action, slot)
        for i, f in enumerate(schedule):
            actions.append((f.at, i, f.kind, f.slot))
            if f.kind == "kill_rank":
                continue  # torchrun restarts the group: nothing for the soak to start
            after = {"cut": "heal", "kill_learner": "start_learner", "term_learner": "start_learner"}
            actions.append((f.at + f.length, i, after.get(f.kind, "start_actor"), f.slot))
        for at, _, action, slot in sorted(actions):
            wait = began + at - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # the schedule itself: faults are timed
            self._do(action, slot)
        wait = began + self.seconds - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def _do(self, action: str, slot: int | None) -> None:
        learner = self.learner()
        if action == "kill_learner":
            self.end(learner, signal.SIGKILL)
            self.wait_exit(learner, 10)
        elif action == "term_learner":
            self.end(learner, signal.SIGTERM)
        elif action == "start_learner":
            if self.wait_exit(learner, 60) is None:
                self.problems.append(
                    Check(f"{learner.name} exits on {learner.ended}", False, "still running after 60s")
                )
                self.end(learner, signal.SIGKILL)
                self.wait_exit(learner, 10)
            self.start_learner()
        elif action in ("kill_actor", "term_actor"):
            self.end(self.slots[slot], signal.SIGKILL if action == "kill_actor" else signal.SIGTERM)
        elif action == "start_actor":
            self.start_actor(slot)
        elif action == "cut":
            self.proxies[slot].cut()
            self.cuts[slot].append(time.monotonic())
        elif action == "heal":
            self.proxies[slot].heal()
            self.cuts[slot].append(time.monotonic())
        elif action == "kill_rank":
            self.kill_rank(slot)
            if self.rank_kills[-1][2] is None:
                self.note(f"kill_rank {slot}: no rank {slot} up (the group is starting); nothing killed")
                return
        self.note(f"{action}{'' if slot is None else f' {slot}'}")

    def _calm(self) -> None:
        """No more faults: wait for the target with the whole fleet up, then for it to hold.

        CartPole's return100 can fall after its first 475 with no fault at all (issue 10, README "Does
        CartPole's solve hold?"), so a fall during the hold is reported, and the target is waited for and
        held again, up to --hold-tries times within --calm-timeout. A learner left broken by the faults does
        not come back; one that is merely CartPole's does."""
        deadline = time.monotonic() + self.calm_timeout
        learner = self.learner()
        floor = self.hold_fraction * self.target
        self.falls: list[float] = []
        while len(self.falls) < self.hold_tries:
            reached = None
            while time.monotonic() < deadline and reached is None:
                time.sleep(0.5)  # the sampler's interval
                recent = [s for s in self.samples if s.learner == learner.name and s.episodes >= 100]
                if recent and recent[-1].mean_return is not None and recent[-1].mean_return >= self.target:
                    reached = time.monotonic()
            if reached is None:
                self.problems.append(
                    Check("training reached the target", False, f"not within {self.calm_timeout:g}s of calm")
                )
                return
            self.note(f"target {self.target:g} reached; holding for {self.hold_seconds:g}s")
            self.calm_reached = getattr(self, "calm_reached", None) or reached - self.started
            held: list[float] = []
            while time.monotonic() < reached + self.hold_seconds and (not held or min(held) >= floor):
                time.sleep(0.5)
                held = [s.mean_return for s in learner_samples(self, learner.name) if s.at >= reached - self.started]
            if held and min(held) >= floor:
                break
            self.falls.append(min(held, default=float("nan")))
            self.note(f"return100 fell to {self.falls[-1]:.1f} during the hold")
        low, high = min(held, default=float("nan")), max(held, default=float("nan"))
        # A frozen return100 also "holds": the fleet must have gone on training through the hold (an actor
        # waiting forever for an Ack, say, stops contributing without breaking any count).
        versions = [s.version for s in learner_samples(self, learner.name) if s.at >= reached - self.started]
        versions = [v for v in versions if v is not None]
        advanced = versions[-1] - versions[0] if versions else 0
        self.problems.append(
            Check(
                "training went on through the hold",
                advanced >= MIN_UPDATES_IN_HOLD,
                f"the policy version advanced by {advanced:.0f} (at least {MIN_UPDATES_IN_HOLD})",
            )
        )
        self.problems.append(
            Check(
                "training held the target once the faults stopped",
                bool(held) and low >= floor,
                f"return100 {low:.1f} to {high:.1f} over {self.hold_seconds:g}s (at least {floor:g})"
                + (
                    f", after {len(self.falls)} fall(s) to {', '.join(f'{f:.0f}' for f in self.falls)}"
                    if self.falls
                    else ""
                ),
            )
        )

    def _stop_all(self) -> None:
        """SIGTERM every actor (each delivers its message in flight), then the learner: all orderly exits."""
        for slot, proxy in enumerate(self.proxies):
            if len(self.cuts[slot]) % 2:  # heal() also drops the connections it forwards: only the cut ones
                proxy.heal()
                self.cuts[slot].append(time.monotonic())
        for service in [s for s in self.slots if s is not None and s.ended_at is None]:
            self.end(service, signal.SIGTERM)
        for service in self.fleet:
            self._check_exit(service, 30)
        learner = self.learner()
        if learner.ended_at is None:
            self.end(learner, signal.SIGTERM)
        for service in self.learners:
            self._check_exit(service, 60)
        self.note("all stopped")

    def _check_exit(self, service: Service, timeout: float) -> None:
        code = self.wait_exit(service, timeout)
        ranks = self.ranks > 1 and service.name.startswith("learner")
        orderly = TORCHRUN_SIGTERM_EXIT if ranks else 0  # torchrun exits 1 on a SIGTERM: see _check_ranks_stopped
        since = max((at for at, s, pid in self.rank_kills if s is service and pid is not None), default=0.0)
        if service.ended == "SIGKILL":
            expected = {-9}
        elif (
            service.proc.count(
                HANDLING_SIGTERM[service.name.split("-")[0]], since=since, until=service.ended_at or float("inf")
            )
            == 0
        ):
            expected = {orderly, -15}
            service.ended = "SIGTERM at start-up" if code == -15 else service.ended
        else:
            expected = {orderly}
            if ranks:
                self._check_ranks_stopped(service)
        if code not in expected:
            self.problems.append(Check(f"{service.name} exit status", False, f"{code}, expected {sorted(expected)}"))
            if ranks:
                self._kill_group(service)  # torchrun and whatever ranks it still has
            service.proc.stop()

    def _check_ranks_stopped(self, service: Service) -> None:
        """torchrun turns a SIGTERM into an exception: it SIGTERMs its ranks, waits for them (SIGKILLing any still
        up after 30 s), then raises it again and exits 1 however they ended. Each rank's orderly stop is read in
        the log instead: one "stopped:" per rank up at the SIGTERM, none exiting 1, none SIGKILLed by torchrun."""
        stopped = service.proc.count(r" INFO stopped: ", since=service.ended_at)
        failed = service.proc.count(r"exiting with status 1|Unable to shutdown process", since=service.ended_at)
        if stopped < len(service.ranks_at_end) or failed:
            self.problems.append(
                Check(
                    f"{service.name}'s ranks stop in order on SIGTERM",
                    False,
                    f"{stopped} of {len(service.ranks_at_end)} ranks stopped in order, {failed} failed or SIGKILLed",
                )
            )


# --- the checks -------------------------------------------------------------------------------------------
def checkpoint_checks(chaos: Chaos) -> list[Check]:
    checks = []
    unreadable = []
    for path in checkpoints.list_checkpoints(chaos.checkpoint_dir):
        try:
            checkpoints.load(path)
        except Exception as exc:  # noqa: BLE001 - any failure to load is the finding
            unreadable.append(f"{path.name}: {exc}")
    aside = sorted(p.name for p in chaos.checkpoint_dir.glob("*.unreadable"))
    checks.append(
        Check("every checkpoint on disk loads", not unreadable and not aside, f"{unreadable or aside or 'all load'}")
    )
    backwards = [
        s
        for s in chaos.samples
        if s.version is not None and s.newest_checkpoint is not None and s.version < s.newest_checkpoint
    ]
    checks.append(
        Check(
            "the policy version never went below the newest checkpoint",
            not backwards,
            f"{len(backwards)} of {len(chaos.samples)} samples below"
            + (f", first {backwards[0]}" if backwards else ""),
        )
    )
    wrong = []
    for learner, (name, on_disk, _) in zip(chaos.learners, chaos.resumes):
        # its start, then each group restart torchrun made after a rank kill (RANKS): each resumes what was newest
        attempts = [(learner.proc.started, on_disk, "")]
        for killed_at, service, pid in chaos.rank_kills:
            if service is learner and pid is not None:
                restart = next((r for r in chaos.restarts if r.killed_at == killed_at), None)
                when = f"{killed_at - chaos.started:.1f}s"
                if restart is None or restart.resumed_at is None:
                    wrong.append(f"{name}: the group did not come back within 120 s of the rank kill at {when}")
                    continue
                attempts.append((killed_at, restart.newest, f" (restarted after the rank kill at {when})"))
        for i, (since, newest, which) in enumerate(attempts):
            until = attempts[i + 1][0] if i + 1 < len(attempts) else float("inf")
            if learner.proc.count(r"learner \S+ on port", since, until) == 0:
                continue  # ended while starting: it never served
            resumed = {
                int(m.group(1))
                for at, line in list(learner.proc.lines)
                if since <= at < until and (m := re.search(r"resumed from \S+ at policy version (\d+)", line))
            }
            if resumed != ({newest} if newest is not None else set()):
                wrong.append(f"{name}{which}: newest on disk {newest}, resumed {sorted(resumed) or None}")
    checks.append(Check("each restart resumed from the newest checkpoint", not wrong, "; ".join(wrong) or "all did"))
    return checks


RUN_ID = re.compile(r"connected to \S+ as \S+ \(run (\w+)\)")
STREAM_END = re.compile(r"stream ended \((\w+)\): (\d+) contributions sent")
DISCONNECTED = re.compile(r"actor \S+ disconnected \(run (\w+), (\d+) contributions received\)")


def orderly_stop_checks(chaos: Chaos) -> list[Check]:
    """An actor that stops in order over a sound path (its own SIGTERM, its path not cut, its learner not
    going down meanwhile) half-closes its stream after its last message: the learner must have received every
    contribution the actor sent on it. A contribution dropped on arrival without being counted (which an A3C
    actor only notices as an Ack that never comes) shows here."""
    received = []  # (time, run id, count, the learner's service)
    for learner in chaos.learners:
        for at, line in list(learner.proc.lines):
            if match := DISCONNECTED.search(line):
                received.append((at, match.group(1), int(match.group(2)), learner))
    checked, skipped, wrong = 0, 0, []
    for actor in chaos.fleet:
        run = RUN_ID.search(actor.proc.text())
        ends = [(at, m) for at, line in list(actor.proc.lines) if (m := STREAM_END.search(line))]
        if actor.ended != "SIGTERM" or run is None or not ends or ends[-1][1].group(1) != "actor_stopping":
            continue
        ended_at, sent = ends[-1][0], int(ends[-1][1].group(2))
        slot = int(actor.name.split("-")[1].split(".")[0])
        theirs = [r for r in received if r[1] == run.group(1) and r[0] >= actor.ended_at]
        learner_went = theirs and (
            (theirs[0][3].ended_at is not None and theirs[0][3].ended_at <= theirs[0][0])
            or any(s is theirs[0][3] and actor.ended_at <= at <= theirs[0][0] for at, s, _ in chaos.rank_kills)
        )
        if chaos.was_cut(slot, actor.ended_at, ended_at) or not theirs or learner_went:
            skipped += 1
            continue
        checked += 1
        if theirs[0][2] != sent:
            wrong.append(f"{actor.name} sent {sent} on its last stream, the learner received {theirs[0][2]}")
    return [
        Check(
            "an actor stopping in order over a sound path loses nothing on the way",
            not wrong and checked > 0,
            "; ".join(wrong) or f"{checked} stops matched exactly ({skipped} with a cut or a learner going down)",
        )
    ]


def resource_checks(chaos: Chaos) -> list[Check]:
    """Memory and descriptors of every learner process: the learner, or torchrun and each of its rank processes
    (a rank restarted by torchrun is a new process, and grows or not on its own)."""
    rss = max((s.rss for s in chaos.samples), default=0) / 2**20
    fds = max((s.fds for s in chaos.samples), default=0)
    series: dict[int, list[tuple[float, int, int]]] = {}  # pid -> (at, RSS, descriptors)
    for sample in chaos.samples:
        for pid, (rss_now, fds_now) in sample.processes.items():
            series.setdefault(pid, []).append((sample.at, rss_now, fds_now))
    growth = []  # (MiB, descriptors) within one learner process, from 30 s after its start to its end
    for own in series.values():
        if own[-1][0] - own[0][0] >= 60:
            base = next(s for s in own if s[0] - own[0][0] >= 30)
            growth.append(((own[-1][1] - base[1]) / 2**20, own[-1][2] - base[2]))
    worst = (max(g[0] for g in growth), max(g[1] for g in growth)) if growth else None
    group = max((sum(r for r, _ in s.processes.values()) for s in chaos.samples), default=0) / 2**20
    return [
        Check(
            "no learner process grew (from its 30th second on)",
            worst is None or (worst[0] <= RSS_GROWTH_MIB and worst[1] <= FD_GROWTH),
            "no process lived 60 s"
            if worst is None
            else f"at most {worst[0]:+.0f} MiB and {worst[1]:+d} descriptors "
            f"in {len(growth)} process(es) (bounds {RSS_GROWTH_MIB} MiB, {FD_GROWTH})",
        ),
        Check(
            "learner RSS within bound",
            0 < rss <= chaos.rss_limit_mib,
            f"peak {rss:.0f} MiB (at most {chaos.rss_limit_mib:g})"
            + (f" in one process; torchrun and its ranks together {group:.0f} MiB" if chaos.ranks > 1 else ""),
        ),
        Check(
            "learner open descriptors within bound", 0 < fds <= chaos.fd_limit, f"peak {fds} (at most {chaos.fd_limit})"
        ),
    ]


def learner_samples(chaos: Chaos, name: str) -> list[Sample]:
    return [s for s in chaos.samples if s.learner == name]


def traceback_checks(chaos: Chaos) -> list[Check]:
    found, explained = [], 0
    for service in chaos.learners + chaos.fleet:
        lines = list(service.proc.lines)
        for i, (at, line) in enumerate(lines):
            if re.search(r"Traceback \(most recent call last\)|CRITICAL", line):
                if explained_by_a_fault(chaos, service, at, lines[i : i + 200]):
                    explained += 1
                    continue
                found.append(f"{service.name}: {chr(10).join(text for _, text in lines[i : i + 12])[:600]}")
    return [
        Check(
            "no unexplained traceback in any log",
            not found,
            found[0] if found else "none" + (f" ({explained} explained by rank kills and torchrun's SIGTERM)"
                                             if explained else ""),
        )
    ]


def explained_by_a_fault(chaos: Chaos, service: Service, at: float, following: list[tuple[float, str]]) -> bool:
    """Whether the traceback (or CRITICAL line) starting ``following`` is what a fault makes a learner of ranks log
    (RANKS): a surviving rank's trainer failing in its all-reduce, until the group restarted after a rank kill;
    torchrun's SignalException once it was SIGTERMed. Nothing is explained with one learner."""
    if chaos.ranks == 1 or not service.name.startswith("learner"):
        return False
    error = exception_line(following)
    if service.ended == "SIGTERM" and service.ended_at is not None and at >= service.ended_at:
        if re.search(TORCHRUN_SIGTERM, error):
            return True
    for killed_at, s, pid in chaos.rank_kills:
        restart = next((r for r in chaos.restarts if r.killed_at == killed_at), None)
        until = restart.resumed_at if restart is not None and restart.resumed_at is not None else float("inf")
        if s is service and pid is not None and killed_at <= at <= until and re.search(RANK_KILL_ERROR, error):
            return True
    return False


def exception_line(following: list[tuple[float, str]]) -> str:
    """The exception a traceback ends with (for a CRITICAL line, the one of the traceback logged with it): the first
    line after "Traceback (most recent call last):" that is not one of its indented frames."""
    texts = [text for _, text in following]
    start = next((i for i, text in enumerate(texts) if text.startswith("Traceback (most recent call last)")), None)
    if start is None:
        return texts[0]  # a CRITICAL line without a traceback: the line itself
    return next((text for text in texts[start + 1 :] if text and not text[0].isspace()), "")


def rank_books(chaos: Chaos, service: Service) -> list[LearnerBooks]:
    """RANKS: the books of each rank process a learner ran (its first ranks and each restart's), read from the files
    it wrote under the learner's metrics directory, each with how it ended: SIGKILLed (a rank kill, or the whole
    learner's), stopped with the learner (as the learner was), or brought down by a rank kill elsewhere in its
    group ("group failure": its all-reduce failed or torchrun stopped it; what it held is lost as a killed one's
    is, and delivered again by its actors)."""
    killed = {pid for _, s, pid in chaos.rank_kills if s is service and pid is not None}
    books = []
    for pid in pids(service.metrics):
        rank = rank_of(read_samples(service.metrics, pid), chaos.ranks)
        if rank is None:
            continue  # not a rank: no learner there
        if pid in killed or (service.ended == "SIGKILL" and pid in service.ranks_at_end):
            ended = "SIGKILL"
        elif pid in service.ranks_at_end:
            ended = service.ended
        else:
            ended = "group failure"
        books.append(LearnerBooks.read(f"{service.name} rank {rank} (pid {pid})", ended, service.metrics, pid))
    return books


def rank_of(samples: dict, world_size: int) -> str | None:
    """The rank a process's relayrl_learner_rank says it was, None if it ran no learner rank. Every learner sets
    rank 0 of 1 first (learner_service/metrics.py), and a gauge's clear() leaves that in its multiprocess file."""
    ranks = [dict(labels)["rank"] for labels, v in samples.get("relayrl_learner_rank", {}).items()
             if v == 1 and dict(labels).get("world_size") == str(world_size)]
    return ranks[0] if ranks else None


def figures(chaos: Chaos, schedule: list[Fault], totals: dict[str, int]) -> list[tuple[str, str]]:
    """The soak's figures as (name, value) rows: what the table prints and the results file holds."""
    names = ("kill_actor", "term_actor", "kill_learner", "term_learner", "cut")
    kinds = {k: sum(1 for f in schedule if f.kind == k) for k in (*names, "kill_rank")[: 6 if chaos.ranks > 1 else 5]}
    rows = [("faults", ", ".join(f"{k} {v}" for k, v in kinds.items())), *totals.items()]
    if chaos.ranks > 1:
        done = sum(1 for _, _, pid in chaos.rank_kills if pid is not None)
        rows.append(("ranks killed (of kill_rank drawn; none up to kill: the group was starting)",
                     f"{done} of {kinds['kill_rank']}"))
        rows.append(("group restarts by torchrun", str(sum(1 for r in chaos.restarts if r.resumed_at is not None))))
        rows.append(("learner rank processes", str(sum(1 for s in chaos.learners for p in pids(s.metrics)
                                                       if rank_of(read_samples(s.metrics, p), chaos.ranks)))))
    rows.append(("learner processes", str(len(chaos.learners))))
    rows.append(("actor processes", str(len(chaos.fleet))))
    rows.append(("falls of return100 during the hold (CartPole's own)", str(len(getattr(chaos, "falls", [])))))
    if getattr(chaos, "calm_reached", None) is not None:
        rows.append(("target reached, seconds from start", f"{chaos.calm_reached:.1f}"))
    final = learner_samples(chaos, chaos.learner().name)
    if chaos.ranks > 1:  # the ranks' last samples can fall between their stop and torchrun's
        final = [s for s in final if s.version is not None] or final
    if final:
        rows.append(("final policy version", f"{final[-1].version:.0f}" if final[-1].version is not None else "?"))
    return [(name, str(figure)) for name, figure in rows]


def report(chaos: Chaos, schedule: list[Fault], checks: list[Check], rows: list[tuple[str, str]]) -> str:
    lines = [
        f"\n== chaos seed {chaos.seed}: {chaos.algo}/{chaos.transport}, "
        + (f"{chaos.ranks} learner ranks, " if chaos.ranks > 1 else "")
        + f"{chaos.actors} actors x {chaos.num_envs} envs, {chaos.seconds:g}s of faults ==",
        "schedule drawn:",
        *(f"  {fault}" for fault in schedule),
        "\nfigures:",
        *(f"  {name:<58} {figure}" for name, figure in rows),
        "\ninvariants:",
        *(f"  [{'ok' if check.ok else 'BROKEN'}] {check.name}: {check.detail}" for check in checks),
    ]
    return "\n".join(lines)


def write_out(path: Path, chaos: Chaos, schedule: list[Fault], checks: list[Check], rows: list[tuple[str, str]],
              stamp: dict, text: str) -> None:
    """The soak as a results file with its provenance (relayrl_cli.bench), for figures the docs may cite."""
    from relayrl_cli.bench.report import write_results

    results = {"suite": "chaos", "seed": chaos.seed, "algo": chaos.algo, "transport": chaos.transport,
               "seconds": chaos.seconds, "learners": chaos.ranks, "actors": chaos.actors, "num_envs": chaos.num_envs,
               "schedule": [str(f).strip() for f in schedule], "figures": dict(rows),
               "invariants": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
               "all_hold": all(c.ok for c in checks), "run": stamp}
    write_results(path, results, f"```\n{text.strip()}\n```\n")


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=float(env.get("CHAOS_SECONDS", 600)))
    parser.add_argument("--seed", type=int, default=int(env.get("CHAOS_SEED", 1)))
    parser.add_argument("--algo", default=env.get("CHAOS_ALGO", "a2c"), choices=("a2c", "a3c"))
    parser.add_argument(
        "--transport", default=env.get("CHAOS_TRANSPORT", "trajectories"), choices=("trajectories", "gradients")
    )
    parser.add_argument("--learners", type=int, default=int(env.get("CHAOS_LEARNERS", 1)),
                        help="learner ranks under torchrun (a2c); more than 1 adds the fault kill_rank")
    parser.add_argument("--actors", type=int, default=3)
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--target", type=float, default=475.0, help="return100 to reach once the faults stop")
    parser.add_argument("--hold-seconds", type=float, default=10.0)
    parser.add_argument("--hold-fraction", type=float, default=0.9, help="return100 stays above this x target")
    parser.add_argument("--hold-tries", type=int, default=3, help="holds tried after falls CartPole makes alone")
    parser.add_argument("--calm-timeout", type=float, default=180.0, help="seconds of calm allowed to reach the target")
    parser.add_argument("--mean-gap", type=float, default=4.0, help="mean seconds between faults")
    parser.add_argument("--rss-limit-mib", type=float, default=1536)
    parser.add_argument("--fd-limit", type=int, default=256)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, metrics, checkpoints)")
    parser.add_argument("--out", type=Path, default=env.get("CHAOS_OUT") or None,
                        help="also write the schedule, figures and invariants, with provenance, to this .json file")
    args = parser.parse_args(argv)
    from relayrl_cli.bench.provenance import load_average, stamp_since

    started, load_before = time.time(), load_average()
    if args.algo == "a2c":
        args.transport = "trajectories"  # A2C always sends trajectories
    if args.learners > 1 and args.algo != "a2c":
        parser.error("--learners > 1 runs data-parallel A2C ranks: --algo a2c")
    workdir = Path(tempfile.mkdtemp(prefix=f"relayrl-chaos-{args.seed}-"))
    schedule = draw_schedule(args.seed, args.seconds, args.actors, args.mean_gap, args.learners)
    chaos = Chaos(
        args.seconds,
        args.seed,
        args.algo,
        args.transport,
        args.actors,
        args.num_envs,
        args.target,
        args.hold_seconds,
        args.hold_fraction,
        args.hold_tries,
        args.calm_timeout,
        args.mean_gap,
        args.rss_limit_mib,
        args.fd_limit,
        workdir,
        args.learners,
    )
    try:
        chaos.run(schedule)
    finally:
        chaos.kill_leftovers()
        for service in chaos.learners + chaos.fleet:
            service.proc.stop()
    actors = [ActorBooks.read(s.name, s.ended, s.metrics, s.proc.text()) for s in chaos.fleet]
    if args.learners == 1:
        learners = [LearnerBooks.read(s.name, s.ended, s.metrics) for s in chaos.learners]
    else:  # each rank process apart: each keeps its own books, and ends its own way
        learners = [books for s in chaos.learners for books in rank_books(chaos, s)]
    in_flight = 2 if args.algo == "a2c" else A3C_IN_FLIGHT  # A2C: a round's Ack may trail the next round's weights
    # A killed learner can hold what every connected stream had in flight: a slot's old stream (a killed actor's,
    # until noticed) and its replacement's.
    books, totals = check_books(actors, learners, in_flight, max_pending=2 * in_flight * args.actors)
    checks = (
        chaos.problems
        + books
        + orderly_stop_checks(chaos)
        + checkpoint_checks(chaos)
        + resource_checks(chaos)
        + traceback_checks(chaos)
    )
    rows = figures(chaos, schedule, totals)
    text = report(chaos, schedule, checks, rows)
    print(text)
    if args.out is not None:
        write_out(args.out, chaos, schedule, checks, rows, stamp_since(started, load_before), text)
        print(f"\nwrote {args.out} and its .md")
    for service in chaos.learners + chaos.fleet:
        (workdir / f"{service.name}.log").write_text(service.proc.text())
    broken = [c for c in checks if not c.ok]
    if broken:
        print(
            f"\nBROKEN: {len(broken)} invariant(s). Replay with CHAOS_SEED={args.seed} CHAOS_SECONDS={args.seconds:g} "
            f"CHAOS_ALGO={args.algo} CHAOS_TRANSPORT={args.transport}"
            + (f" CHAOS_LEARNERS={args.learners}" if args.learners > 1 else "")
            + f"; logs in {workdir}"
        )
        return 1
    print(f"\nall invariants hold (seed {args.seed})")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
