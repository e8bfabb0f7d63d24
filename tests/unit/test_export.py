"""relayrl export: the ONNX file (in onnxruntime) and the TorchScript file (in torch) act as the checkpoint's
policy does, observation normalisation included, for a discrete and a continuous env."""

from __future__ import annotations

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from learner_service.checkpoints import save_file
from relayrl.model import ActorCritic
from relayrl_cli.evaluate import load_policy
from relayrl_cli.export import main as export_main

onnxruntime = pytest.importorskip("onnxruntime")


def write_checkpoint(path, env_id: str, use_sde: bool) -> ActorCritic:
    """A checkpoint as the learner writes one, with observation statistics far from the identity."""
    env = gym.make(env_id)
    torch.manual_seed(1)
    model = ActorCritic(
        env.observation_space, env.action_space, (16, 16), normalize_observations=True, use_sde=use_sde
    )
    rng = np.random.default_rng(0)
    model.update_observation_stats(rng.normal(3.0, 5.0, size=(500, env.observation_space.shape[0])))
    with torch.no_grad():  # a policy whose actions depend on the observation
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    save_file(path, {"model": model.state_dict(), "version": 7, "env": env_id, "hidden_sizes": [16, 16],
                     "activation": "tanh"})
    return model


@pytest.mark.parametrize("env_id, use_sde", [("CartPole-v1", False), ("Pendulum-v1", True)])
def test_onnx_and_torchscript_exports_match_the_checkpoints_policy(tmp_path, env_id, use_sde):
    checkpoint = tmp_path / "ckpt-000000000007.pt"
    write_checkpoint(checkpoint, env_id, use_sde)
    policy, _ = load_policy(checkpoint)
    assert export_main([str(checkpoint), "--format", "onnx", "--out", str(tmp_path / "policy.onnx")]) == 0
    assert export_main([str(checkpoint), "--format", "torchscript", "--out", str(tmp_path / "policy.pt")]) == 0

    # raw observations, spread well beyond the normalisation's mean, in a batch size not traced with
    size = (33, gym.make(env_id).observation_space.shape[0])
    obs = np.random.default_rng(2).normal(3.0, 8.0, size=size).astype(np.float32)
    with torch.no_grad():
        action, log_prob = policy.act(torch.as_tensor(obs), greedy=True)
        value = policy.value(torch.as_tensor(obs))
    expected = [action.numpy(), log_prob.numpy(), value.numpy()]
    if env_id == "CartPole-v1":
        assert len(set(expected[0].tolist())) == 2, "the test needs observations that choose both actions"

    session = onnxruntime.InferenceSession(str(tmp_path / "policy.onnx"))
    assert [o.name for o in session.get_outputs()] == ["action", "log_prob", "value"]
    assert json.loads(session.get_modelmeta().custom_metadata_map["observation_shape"]) == [obs.shape[1]]
    onnx_out = session.run(None, {"observation": obs})
    scripted = torch.jit.load(str(tmp_path / "policy.pt"))
    with torch.no_grad():
        script_out = [t.numpy() for t in scripted(torch.as_tensor(obs))]
    for got in (onnx_out, script_out):
        if env_id == "CartPole-v1":
            np.testing.assert_array_equal(got[0], expected[0])
        else:
            np.testing.assert_allclose(got[0], expected[0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got[2], expected[2], rtol=1e-4, atol=1e-5)

    # the same policy without its normalisation acts otherwise on these observations: the export carries it
    policy.normalize_observations = False
    with torch.no_grad():
        assert not np.allclose(policy.value(torch.as_tensor(obs)).numpy(), expected[2], atol=1e-3)


def test_export_help_documents_both_formats():
    result = subprocess.run([sys.executable, "-m", "relayrl_cli", "export", "--help"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    for fragment in ("--format", "onnx", "torchscript", "--out", "normalisation"):
        assert fragment in result.stdout


def test_a_dict_observation_exports_one_named_input_per_key(tmp_path):
    import tests.space_envs  # noqa: F401  (registers MatchDict-v0)

    env_id = "tests.space_envs:MatchDict-v0"
    space = gym.spec("MatchDict-v0").make().observation_space
    torch.manual_seed(3)
    model = ActorCritic(space, gym.spaces.Discrete(3), (16,), normalize_observations=True)
    model.update_observation_stats({"noise": np.random.default_rng(0).normal(2.0, 3.0, (100, 2))})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 2.0)
    checkpoint = tmp_path / "ckpt-000000000001.pt"
    save_file(checkpoint, {"model": model.state_dict(), "version": 1, "env": env_id, "hidden_sizes": [16],
                           "activation": "tanh"})
    assert export_main([str(checkpoint), "--format", "onnx", "--out", str(tmp_path / "policy.onnx")]) == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "policy.onnx"))
    assert [i.name for i in session.get_inputs()] == ["goal", "noise"]
    assert json.loads(session.get_modelmeta().custom_metadata_map["inputs"]) == ["goal", "noise"]
    rng = np.random.default_rng(1)
    obs = {"goal": rng.integers(0, 3, 17).astype(np.int64), "noise": rng.uniform(-1, 1, (17, 2)).astype(np.float32)}
    action, log_prob, value = session.run(None, obs)
    with torch.no_grad():
        want_action, want_log_prob = model.act({k: torch.as_tensor(v) for k, v in obs.items()}, greedy=True)
        want_value = model.value({k: torch.as_tensor(v) for k, v in obs.items()})
    np.testing.assert_array_equal(action, want_action.numpy())
    np.testing.assert_allclose(log_prob, want_log_prob.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(value, want_value.numpy(), rtol=1e-4, atol=1e-5)
    assert len(set(action.tolist())) > 1, "the test needs observations that choose different actions"
