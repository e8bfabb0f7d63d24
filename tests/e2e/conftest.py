"""Process-level fixtures for the e2e tests."""

from __future__ import annotations

import pytest

from tests.faults import Proc


@pytest.fixture
def procs():
    """Start service processes with ``procs(*args, env=..., prefix=...)``; any still running are killed at the end."""
    started: list[Proc] = []

    def start(*args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()) -> Proc:
        proc = Proc(*args, env=env, prefix=prefix)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
