"""Each service process keeps NumPy's BLAS to one thread unless told otherwise (see relayrl/__init__.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "import {module}, os, sys; print(os.environ['OPENBLAS_NUM_THREADS'], 'numpy' in sys.modules)"


def blas_threads(module: str, environ: dict[str, str]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)], env=environ, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


@pytest.mark.parametrize("module", ["actor_service.main", "learner_service.main", "relayrl_cli.bench.ceilings"])
def test_services_pin_numpy_blas_to_one_thread_before_numpy_loads(module):
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    assert blas_threads(module, environ) == ["1", "True"]


def test_an_explicit_setting_wins():
    assert blas_threads("actor_service.main", {**os.environ, "OPENBLAS_NUM_THREADS": "3"}) == ["3", "True"]
