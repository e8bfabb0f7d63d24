"""The slim actor image leaves torch out (deploy/docker/Dockerfile.actor): an actor that sends trajectories
must train without it. Here torch is made unimportable for the actor process (a package named torch that
raises ImportError shadows the real one), and the actor must connect, pass its health check, and raise the
learner's env-step counter; the learner (with torch) runs beside it as usual."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import wait_until

from .conftest import DEPLOY, VENV_BIN
from .services import Service, scrape, try_scrape

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("RELAYRL_") and k != "PYTHONPATH"}
HEALTH_CHECK = DEPLOY / "docker" / "grpc-health-check.py"


def test_dockerfile_installs_no_torch():
    text = (DEPLOY / "docker" / "Dockerfile.actor").read_text()
    assert "torch==" not in text and 'CMD ["actor"]' in text


def test_an_actor_without_torch_trains(tmp_path, services):
    no_torch = tmp_path / "no-torch"
    (no_torch / "torch").mkdir(parents=True)
    (no_torch / "torch" / "__init__.py").write_text('raise ImportError("torch is not in the slim actor image")\n')
    relayrl = str(VENV_BIN / "relayrl")
    learner = Service("learner", [relayrl, "learner", "--host", "127.0.0.1", "--port", "0",
                                  "--metrics-port", "0", "--algo", "a2c"], CLEAN_ENV, tmp_path, cwd=tmp_path)
    services.append(learner)
    grpc, metrics = learner.port("grpc"), learner.port("metrics")
    actor = Service("actor", [relayrl, "actor", "--learner", f"127.0.0.1:{grpc}", "--num-envs", "8",
                              "--metrics-port", "-1", "--health-port", "0", "--backoff-max", "0.5"],
                    {**CLEAN_ENV, "PYTHONPATH": str(no_torch)}, tmp_path, cwd=tmp_path)
    services.append(actor)
    health = actor.port("health")

    def alive() -> bool:
        for service in (learner, actor):
            if not service.running():
                pytest.fail(f"{service.name} exited with {service.popen.returncode}\n{service.tail()}")
        return True

    wait_until(lambda: alive() and (try_scrape(metrics) or {}).get("relayrl_env_steps_total", 0) > 0, 90,
               "env steps from the torch-less actor", 0.2)
    assert scrape(metrics)["relayrl_actors_connected"] == 1
    probe = subprocess.run([sys.executable, str(HEALTH_CHECK), f"127.0.0.1:{health}"], capture_output=True, timeout=30)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert "torch is not in the slim actor image" not in actor.log.read_text()
    assert actor.terminate(15) == 0, actor.tail()
