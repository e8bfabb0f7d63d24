"""Runs that start and end cleanly on a kept volume: the learner exactly as Compose runs it (resolved
environment, RELAYRL_RUN_NAME=auto, --resume), started again with another env on the same checkpoint
volume, must start a new run beside the old one (not exit 2 and restart forever), and the first run must
still resume from its own checkpoints afterwards."""

from __future__ import annotations

import pytest

from learner_service.config import LearnerConfig
from tests.conftest import wait_until

from .conftest import default
from .services import Service
from .test_compose_parity import health_check, healthy, localize, resolved_model, service_argv


def start_learner(tmp_path, name: str, volume, **overrides: str) -> Service:
    """The Compose learner on loopback ports it picks with ``volume`` as its checkpoint volume; healthy."""
    service = resolved_model()["services"]["learner"]
    argv, env = service_argv(service)
    grpc = int(env.get("RELAYRL_PORT", default(LearnerConfig, "port")))
    env.update(RELAYRL_HOST="127.0.0.1", RELAYRL_PORT="0", RELAYRL_METRICS_PORT="0",
               RELAYRL_CHECKPOINT_DIR=str(volume), **overrides)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    argv, env = localize(argv, env, home)
    learner = Service(name, argv, env, tmp_path, cwd=home)
    probe = health_check(service, {grpc: learner.port("grpc")})

    def up() -> bool:
        if not learner.running():
            pytest.fail(f"{name} exited with {learner.popen.returncode}\n{learner.tail()}")
        return healthy(probe)

    wait_until(up, 90, f"{name} to pass its Compose healthcheck", 0.5)
    return learner


def test_another_env_on_a_kept_volume_starts_beside_the_old_run(tmp_path, services):
    volume = tmp_path / "volumes" / "checkpoints"
    volume.mkdir(parents=True)

    first = start_learner(tmp_path, "cartpole", volume, RELAYRL_ENV="CartPole-v1")
    services.append(first)
    assert first.terminate(30) == 0, first.tail()
    (cartpole,) = [d for d in volume.iterdir() if d.is_dir()]
    assert cartpole.name.startswith("CartPole-v1-") and list(cartpole.glob("ckpt-*.pt")), first.tail()

    # `RELAYRL_ENV=Acrobot-v1 make up` after `make down`: same volume, another env. Before run names, this
    # learner refused CartPole's checkpoint and exited 2, which restart: on-failure repeats forever.
    second = start_learner(tmp_path, "acrobot", volume, RELAYRL_ENV="Acrobot-v1")
    services.append(second)
    assert second.terminate(30) == 0, second.tail()
    runs = {d.name: d for d in volume.iterdir() if d.is_dir()}
    assert len(runs) == 2 and cartpole.name in runs, runs
    (acrobot,) = [d for name, d in runs.items() if name.startswith("Acrobot-v1-")]
    assert list(acrobot.glob("ckpt-*.pt")) and list(cartpole.glob("ckpt-*.pt"))

    # Back to CartPole: it resumes from its own run's newest checkpoint, untouched by the Acrobot run.
    third = start_learner(tmp_path, "cartpole-again", volume, RELAYRL_ENV="CartPole-v1")
    services.append(third)
    assert third.terminate(30) == 0, third.tail()
    log = third.log.read_text()
    assert f"resumed from {cartpole}/ckpt-" in log, third.tail()


def test_a_named_run_on_another_env_fails_with_the_reason(tmp_path):
    """The other way a start can go wrong: an explicit run name reused for another env is refused at start
    (exit 2, the message naming the option), never resumed into the wrong model."""
    from learner_service.learner import Learner
    from relayrl.config import ConfigError, load

    def config(env: str) -> LearnerConfig:
        return load(LearnerConfig, argv=["--env", env, "--checkpoint-dir", str(tmp_path), "--run-name", "mine",
                                         "--resume", "--port", "0", "--metrics-port", "-1"], environ={})

    learner = Learner(config("CartPole-v1"))
    learner.checkpoint()
    learner.server.stop(0)
    with pytest.raises(ConfigError, match="resume.*holds {'env'"):
        Learner(config("Acrobot-v1"))


def test_the_last_checkpoint_time_is_exported(tmp_path):
    """relayrl_last_checkpoint_timestamp_seconds (what the stale-checkpoint alert reads): 0 until a write, then
    the write's time."""
    import time

    from learner_service.learner import Learner
    from relayrl.config import load

    config = load(LearnerConfig, argv=["--checkpoint-dir", str(tmp_path), "--port", "0", "--metrics-port", "-1"],
                  environ={})
    learner = Learner(config)
    try:
        gauge = learner.metrics.registry.get_sample_value
        assert gauge("relayrl_last_checkpoint_timestamp_seconds") == 0
        before = time.time()
        learner.checkpoint()
        assert before <= gauge("relayrl_last_checkpoint_timestamp_seconds") <= time.time()
    finally:
        learner.server.stop(0)
