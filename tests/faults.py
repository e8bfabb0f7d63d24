"""Fault injection for tests: service processes with timestamped logs, a TCP proxy that can go silent,
and network namespaces joined by a veth pair whose packets can be dropped."""

from __future__ import annotations

import os
import random
import re
import selectors
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

RELAYRL = [sys.executable, "-m", "relayrl_cli"]
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("RELAYRL_")}
REPO = Path(__file__).resolve().parents[1]


EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_port(host: str = "127.0.0.1", count: int = 1) -> int:
    """A free port for a service that must know its port before it starts (a learner restarted on the same
    address, a proxy in front of it); a service that need not binds 0 and logs the port it got. Drawn below
    the kernel's ephemeral range, where outgoing connections take their local ports, so between this probe and
    the service's bind only another listener could take it (a port probed with bind(0) is in that range, and
    a CI run lost one so). ``count`` > 1: the first of that many consecutive free ports (learner ranks serve
    on --port + their rank)."""
    low = int(EPHEMERAL.read_text().split()[0]) if EPHEMERAL.exists() else 32768
    if low <= 10000 and count == 1:  # no room below the range: the kernel's pick, as before
        with socket.socket() as s:
            s.bind((host, 0))
            return s.getsockname()[1]
    high = low if low > 10000 else 65536  # no room below the range for several: anywhere
    draw = random.SystemRandom()
    for _ in range(1000):
        port = draw.randrange(10000, high - count + 1)
        if all(_bindable(host, p) for p in range(port, port + count)):
            return port
    raise RuntimeError(f"no {count} consecutive free port(s) in 10000-{high - 1} on {host}")


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (torchrun's learner ranks, say: each in a session of its own, so a signal to
    torchrun's process group misses them), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class Proc:
    """A `relayrl` service process; every output line is kept with the monotonic time it arrived."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()) -> None:
        self.args = [*prefix, *RELAYRL, *args]
        environ = {**CLEAN_ENV, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.started = time.monotonic()
        self.popen = subprocess.Popen(
            self.args, cwd=REPO, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            with self._cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def text(self) -> str:
        with self._cond:
            return "\n".join(line for _, line in self.lines)

    def wait_for(self, pattern: str, timeout: float, after: float = 0.0) -> tuple[float, re.Match]:
        """The first line after time ``after`` matching ``pattern``: (its time, the match); fails on timeout."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = 0
            while True:
                for at, line in self.lines[seen:]:
                    match = regex.search(line)
                    if at >= after and match:
                        return at, match
                seen = len(self.lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.popen.poll() is not None and not self._reader.is_alive()):
                    tail = "\n".join(line for _, line in self.lines[-40:])
                    command = " ".join(self.args[self.args.index("relayrl_cli") + 1 :][:1])
                    pytest.fail(f"no line matching {pattern!r} within {timeout}s from relayrl {command}:\n{tail}")
                self._cond.wait(min(remaining, 0.1))

    def count(self, pattern: str, since: float = 0.0, until: float = float("inf")) -> int:
        regex = re.compile(pattern)
        with self._cond:
            return sum(1 for at, line in self.lines if since <= at <= until and regex.search(line))

    def signal(self, signum: int) -> float:
        self.popen.send_signal(signum)
        return time.monotonic()

    def wait(self, timeout: float) -> int:
        code = self.popen.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)
        self._reader.join(timeout=5)


# --- a proxy that can go silent --------------------------------------------------------------------------
class SilentProxy:
    """A loopback TCP proxy. ``cut()`` stops forwarding in both directions without closing any socket (the
    peers see silence, as from a pulled cable); ``heal()`` forwards again for new connections and drops
    the ones that went silent, as both ends have given up on them by then."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self._cut = False
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.listener, selectors.EVENT_READ)
        self._closed = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def cut(self) -> None:
        with self._lock:
            self._cut = True

    def heal(self) -> None:
        with self._lock:
            self._cut = False
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            self._drop(a, b)

    def _drop(self, a: socket.socket, b: socket.socket) -> None:
        for s in (a, b):
            try:
                self._selector.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()

    def _loop(self) -> None:
        while not self._closed:
            for key, _ in self._selector.select(timeout=0.05):
                if key.fileobj is self.listener:
                    self._accept()
                    continue
                with self._lock:
                    if self._cut:
                        continue  # leave the bytes where they are: the other side hears nothing
                source, sink = key.fileobj, key.data
                try:
                    data = source.recv(65536)
                    if data:
                        sink.sendall(data)
                        continue
                except OSError:
                    pass
                with self._lock:
                    self._pairs = [p for p in self._pairs if source not in p]
                self._drop(source, sink)
            if self._cut:
                time.sleep(0.02)  # readable sockets stay readable while cut: do not spin

    def _accept(self) -> None:
        client, _ = self.listener.accept()
        try:
            upstream = socket.create_connection(self.target, timeout=2)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            self._pairs.append((client, upstream))
            self.connections += 1
        self._selector.register(client, selectors.EVENT_READ, upstream)
        self._selector.register(upstream, selectors.EVENT_READ, client)

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=2)
        for a, b in self._pairs:
            a.close()
            b.close()
        self.listener.close()


# --- two hosts on one machine -----------------------------------------------------------------------------
def netns_unavailable() -> str | None:
    """Why network namespaces cannot be used here, or None when they can."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "the ip and tc commands (iproute2) are missing"
    probe = f"rlp{uuid.uuid4().hex[:8]}"
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if result.returncode != 0:
        return f"ip netns add is not allowed here: {result.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


class TwoHosts:
    """Two network namespaces ("learner" and "actor") joined by a veth pair, 10.77.0.1 and 10.77.0.2.

    ``cut()`` puts a blackhole qdisc on both ends: every packet is dropped silently, no FIN, no RST, no
    ICMP, and the interfaces stay up; ``heal()`` removes it."""

    LEARNER_IP, ACTOR_IP = "10.77.0.1", "10.77.0.2"

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.learner, self.actor = f"rl{tag}l", f"rl{tag}a"
        self._veth = (f"rl{tag}vl", f"rl{tag}va")
        self._created: list[str] = []
        try:
            for ns in (self.learner, self.actor):
                self._ip("netns", "add", ns)
                self._created.append(ns)
                self._ip("-n", ns, "link", "set", "lo", "up")
            self._ip("link", "add", self._veth[0], "type", "veth", "peer", "name", self._veth[1])
            ends = ((self.learner, self._veth[0], self.LEARNER_IP), (self.actor, self._veth[1], self.ACTOR_IP))
            for ns, dev, ip in ends:
                self._ip("link", "set", dev, "netns", ns)
                self._ip("-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
                self._ip("-n", ns, "link", "set", dev, "up")
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True)

    def prefix(self, ns: str) -> tuple[str, ...]:
        return ("ip", "netns", "exec", ns)

    def cut(self) -> float:
        for ns, dev in ((self.learner, self._veth[0]), (self.actor, self._veth[1])):
            subprocess.run(
                ["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "blackhole"], check=True
            )
        return time.monotonic()

    def heal(self) -> float:
        for ns, dev in ((self.learner, self._veth[0]), (self.actor, self._veth[1])):
            subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root"], check=True)
        return time.monotonic()

    def close(self) -> None:
        for ns in self._created:  # deleting a namespace deletes its end of the veth, and with it the pair
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self._created = []
