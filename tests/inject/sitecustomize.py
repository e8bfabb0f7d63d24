"""Fault injection into real `relayrl` processes, for tests only; production code has no hook for it.

A test puts this folder on PYTHONPATH (Python imports ``sitecustomize`` at start-up) and sets
INJECT_TRAINER_FAILURE=N (not a RELAYRL_ variable: those are options, and `relayrl train` does not pass
them on): when that process imports learner_service.trainer, its clip_and_step (the optimizer step,
called under the trainer's lock in the middle of an update) raises on its N-th call, as a real bug or a
device error would. Processes
that never import the trainer (actors, `relayrl train` itself) are untouched, so the variable can be
inherited by every process a command starts.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys

TARGET = "learner_service.trainer"
VARIABLE = "INJECT_TRAINER_FAILURE"


class InjectedFailure(RuntimeError):
    """The failure a test asked for."""


def _patch(module) -> None:
    fail_at = int(os.environ[VARIABLE])
    real = module.clip_and_step  # AttributeError if it is renamed: the test must fail loudly, not pass
    calls = 0

    def clip_and_step(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == fail_at:
            raise InjectedFailure(f"injected trainer failure at optimizer step {calls} ({VARIABLE})")
        return real(*args, **kwargs)

    module.clip_and_step = clip_and_step


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch(module)

        loader.exec_module = exec_and_patch
        return spec


if os.environ.get(VARIABLE):
    sys.meta_path.insert(0, _Finder())
