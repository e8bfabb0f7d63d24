"""Running the deploy artifacts' processes for real on loopback: a service process with an exact environment,
the ports it bound, and a scrape of a real /metrics endpoint."""

from __future__ import annotations

import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_until

# The line each program logs once it has bound a port it was given as 0. Tests give every port as 0 and
# read it back: a port probed free and handed over can be taken before the service binds it (a CI run
# failed so, on an actor's metrics port taken by an outgoing connection).
BOUND = {
    "grpc": r"learner \S+ on port (\d+)",
    "metrics": r"metrics on http://\S+:(\d+)/metrics",
    "health": r"health on \S+:(\d+)",
    "prometheus": r'msg="Listening on" address=\S+:(\d+)',
}


class Service:
    """A process started with exactly ``env`` (nothing inherited), its output in a log file under ``log_dir``."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path, cwd: Path) -> None:
        self.name = name
        self.argv = argv
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return f"--- {self.name} ({' '.join(self.argv)}), last lines:\n" + "\n".join(text[-lines:])

    def port(self, kind: str, timeout: float = 90.0) -> int:
        """The port this service bound for ``kind`` (a key of BOUND), as its log says; waits for the line."""
        found: list[int] = []

        def logged() -> bool:
            match = self.alive() and re.search(BOUND[kind], self.log.read_text(errors="replace"))
            if match:
                found.append(int(match.group(1)))
            return bool(match)

        wait_until(logged, timeout, f"{self.name} to log its {kind} port", 0.1)
        return found[0]

    def running(self) -> bool:
        return self.popen.poll() is None

    def alive(self) -> bool:
        """True while running; once it has exited, fails the test with its exit code and log tail."""
        if not self.running():
            pytest.fail(f"{self.name} exited with {self.popen.returncode}\n{self.tail()}")
        return True

    def terminate(self, timeout: float) -> int:
        """SIGTERM, then wait up to ``timeout`` seconds (the grace a container engine gives) for the exit code."""
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name} still running {timeout}s after SIGTERM\n{self.tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """For teardown: SIGTERM, then SIGKILL if still running after ``timeout`` seconds; never fails."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def scrape(port: int, timeout: float = 2.0) -> dict[str, float]:
    """GET http://127.0.0.1:PORT/metrics and parse it with prometheus_client: sample name -> value, for
    samples without labels (labelled samples are keyed as name{k="v",...}, labels sorted)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return samples


def try_scrape(port: int) -> dict[str, float] | None:
    """The samples, or None while nothing answers on the port yet."""
    try:
        return scrape(port)
    except OSError:
        return None
