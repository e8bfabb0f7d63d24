"""The learner's host <-> device transfers (learner_service/device_batch.py), run here on the CPU: the packed
buffer must give back every field exactly, with its dtype and shape, however the fields' sizes fall against
the alignment; tests/gpu/ runs the same through pinned memory to CUDA."""

import dataclasses

import gymnasium as gym
import numpy as np
import torch

from learner_service.device_batch import pack, packed_to_host, stage, stage_rollouts
from learner_service.optim import make_optimizer
from learner_service.trainer import update_from_rollouts
from relayrl.loss import FIELDS, LossConfig, actor_critic_loss, gather
from relayrl.model import ActorCritic
from tests.helpers import CARTPOLE_ACT, CARTPOLE_OBS, random_rollout

CPU = torch.device("cpu")


def odd_rollout(seed: int):
    """A rollout whose fields have sizes that are no multiple of 8 bytes (uint8 frames of 3x7x5)."""
    rng = np.random.default_rng(seed)
    T, N = 3, 5
    return dataclasses.replace(
        random_rollout(T=T, N=N, seed=seed),
        observations=rng.integers(0, 256, (T, N, 3, 7, 5), dtype=np.uint8),
        bootstrap_observations=rng.integers(0, 256, (N, 3, 7, 5), dtype=np.uint8),
    )


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        if isinstance(a[name], dict):
            assert_same(a[name], b[name])
            continue
        assert a[name].dtype == b[name].dtype, name
        assert a[name].shape == b[name].shape, name
        assert torch.equal(a[name], b[name]), name


def test_packed_fields_equal_gathered_ones():
    rollouts = [odd_rollout(1), odd_rollout(2)]
    packed = pack({name: [getattr(r, name) for r in rollouts] for name in FIELDS}, FIELDS, CPU)
    assert_same(packed, gather(rollouts, FIELDS, CPU))
    assert packed["observations"].dtype == torch.uint8  # pixels travel as they are, scaled on the device
    assert packed["observations"].shape == (3, 10, 3, 7, 5)


def test_packed_mapping_fields_keep_their_keys():
    """Observations of Dict spaces: each array of the mapping is batched and staged like any field."""
    rng = np.random.default_rng(0)
    parts = {"observations": [{"image": rng.integers(0, 256, (2, n, 3), dtype=np.uint8),
                               "vector": rng.random((2, n, 5)).astype(np.float32)} for n in (1, 3)],
             "rewards": [rng.random((2, n)).astype(np.float32) for n in (1, 3)]}
    packed = pack(parts, {"observations": 1, "rewards": 1}, CPU)
    for key in ("image", "vector"):
        expected = np.concatenate([p[key] for p in parts["observations"]], axis=1)
        assert np.array_equal(packed["observations"][key].numpy(), expected)
    assert np.array_equal(packed["rewards"].numpy(), np.concatenate(parts["rewards"], axis=1))


def test_staged_gradients_are_writable_copies():
    grads = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float32)}
    for array in grads.values():
        array.setflags(write=False)  # as the wire's buffers are
    staged = stage(grads, CPU)
    staged["w"].add_(1.0)
    assert grads["w"][0, 0] == 0.0 and staged["w"][0, 0] == 1.0


def test_state_packed_to_host_equals_the_state():
    """float32 parameters and float64 statistics of odd sizes: each comes back bit for bit, as a tensor of its own."""
    torch.manual_seed(0)
    model = ActorCritic(gym.spaces.Box(-1, 1, (3,), np.float32), CARTPOLE_ACT, (5,), normalize_observations=True,
                        normalize_rewards=True)
    with torch.no_grad():
        model.obs_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        model.return_var.fill_(3.25)
    state = model.state_dict()
    host = packed_to_host(state)
    assert_same(host, {name: tensor for name, tensor in state.items()})
    assert host["obs_count"].dtype == torch.float64 and host["obs_count"].shape == ()


def test_update_through_the_staging_matches_the_plain_loss():
    """The learner's update (staged batch, one host read of diagnostics and norm) steps as the plain loss would."""
    torch.manual_seed(0)
    model = ActorCritic(CARTPOLE_OBS, CARTPOLE_ACT, (16, 16))
    twin = ActorCritic(CARTPOLE_OBS, CARTPOLE_ACT, (16, 16))
    twin.load_state_dict(model.state_dict())
    rollouts = [random_rollout(seed=3), random_rollout(seed=4)]
    config = LossConfig(gamma=0.9, value_coef=0.5, entropy_coef=0.01)
    optimizer = make_optimizer("rmsprop", model.parameters(), lr=1e-3, alpha=0.99, eps=1e-5)
    terms, norm = update_from_rollouts(model, optimizer, rollouts, config, max_grad_norm=0.5)

    reference = actor_critic_loss(twin, rollouts, config)
    reference.loss.backward()
    expected_norm = float(torch.nn.utils.clip_grad_norm_(twin.parameters(), 0.5))
    assert norm == expected_norm
    assert terms.policy_loss == reference.policy_loss and terms.value_loss == reference.value_loss
    assert terms.entropy == reference.entropy
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))  # it stepped
    assert_same(stage_rollouts(rollouts, FIELDS, CPU), gather(rollouts, FIELDS, CPU))


def test_dict_observation_rollouts_stage_as_they_gather_and_give_the_same_loss():
    from learner_service.device_batch import pack_rollouts
    from tests.unit.test_spaces import DICT, dict_rollout

    rollouts = [dict_rollout(seed=1), dict_rollout(seed=2)]
    staged = pack_rollouts(rollouts, FIELDS, CPU)
    assert_same(staged, gather(rollouts, FIELDS, CPU))
    assert staged["observations"]["pixels"].dtype == torch.uint8 and staged["observations"]["goal"].shape == (3, 4)
    torch.manual_seed(0)
    model = ActorCritic(DICT, gym.spaces.MultiBinary(3), (8,), normalize_observations=True)
    through_staging = actor_critic_loss(model, rollouts, LossConfig(), gather=pack_rollouts)
    plain = actor_critic_loss(model, rollouts, LossConfig())
    torch.testing.assert_close(through_staging.loss, plain.loss)
    assert through_staging.num_samples == 3 * 4
