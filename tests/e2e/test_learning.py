"""Short learning runs that would catch a broken learner: each must end well above a random policy.

Random policies score about 22 on CartPole-v1, -500 on Acrobot-v1 (every episode times out) and under 20
on InvertedPendulum-v5 (the pole falls within a few steps).
Each run uses `relayrl train` as users do, with the env's preset, and stops at its target or its limit.
"""

import json

import pytest

from tests.e2e.test_cli import run

pytestmark = pytest.mark.slow


def train(tmp_path, *args, timeout=240):
    result = run("train", "--run-dir", str(tmp_path), "--log-every", "0.5", *args, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((tmp_path / "summary.json").read_text())


@pytest.mark.parametrize("transport", ["gradients", "trajectories"])
def test_a3c_learns_cartpole(tmp_path, transport):
    summary = train(tmp_path, "--algo", "a3c", "--transport", transport, "--target-return", "150",
                    "--max-seconds", "180")
    assert summary["solved"] and summary["mean_return"] >= 150, summary["stop_reason"]
    assert summary["updates"] > 0 and summary["transport"] == transport


def test_acrobot_learns_with_its_preset(tmp_path):
    summary = train(tmp_path, "--env", "Acrobot-v1", "--target-return", "-150", "--max-seconds", "150")
    assert summary["config"]["preset"] == "Acrobot-v1" and summary["config"]["normalize_observations"]
    assert summary["solved"] and summary["mean_return"] >= -150, (summary["stop_reason"], summary["mean_return"])


def test_a_continuous_env_learns_with_the_gaussian_head(tmp_path):
    summary = train(tmp_path, "--env", "InvertedPendulum-v5", "--num-envs", "16", "--target-return", "60",
                    "--max-seconds", "150")
    # the first 100 episodes, whenever the progress lines came: A2C's first few updates, a near-random policy
    assert summary["first_return100"] < 20, "the run starts from a random policy"
    assert summary["solved"] and summary["mean_return"] >= 60, (summary["stop_reason"], summary["mean_return"])
