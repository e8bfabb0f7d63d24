"""Config objects: flags beat RELAYRL_* variables beat defaults; bad values fail naming the option."""

import pytest

from actor_service.config import ActorConfig
from learner_service.config import LearnerConfig
from relayrl.config import ConfigError, load


def test_defaults():
    c = load(LearnerConfig, [], environ={})
    assert (c.algo, c.transport, c.port, c.hidden_sizes) == ("a2c", "trajectories", 50051, (64, 64))
    assert c.max_policy_lag == 0  # a2c is strictly on-policy


def test_environment_then_flags():
    env = {
        "RELAYRL_ALGO": "a3c",
        "RELAYRL_LR": "0.01",
        "RELAYRL_HIDDEN_SIZES": "32,16",
        "RELAYRL_RESUME": "true",
        "RELAYRL_CHECKPOINT_DIR": "/tmp/x",
    }
    c = load(LearnerConfig, [], environ=env)
    assert (c.algo, c.transport, c.lr, c.hidden_sizes, c.resume) == ("a3c", "gradients", 0.01, (32, 16), True)
    c = load(LearnerConfig, ["--lr", "0.5", "--no-resume"], environ=env)
    assert c.lr == 0.5 and c.resume is False


@pytest.mark.parametrize(
    "argv, env, fragment",
    [
        (["--lr", "fast"], {}, "--lr"),
        ([], {"RELAYRL_N_STEPS": "five"}, "RELAYRL_N_STEPS"),
        (["--algo", "ppo"], {}, "--algo"),
        (["--transport", "gradients"], {}, "a2c makes one batched update"),
        (["--gamma", "1.5"], {}, "--gamma"),
        (["--device", "tpu"], {}, "--device"),
        (["--resume"], {}, "--resume"),
        (["--hidden-sizes", "0"], {}, "--hidden-sizes"),
        ([], {"RELAYRL_RESUME": "maybe"}, "RELAYRL_RESUME"),
    ],
)
def test_bad_values_name_the_option(argv, env, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load(LearnerConfig, argv, environ=env)


def test_unknown_flag_exits():
    with pytest.raises(SystemExit):
        load(LearnerConfig, ["--no-such-flag", "1"], environ={})


def test_actor_config():
    c = load(ActorConfig, [], environ={"RELAYRL_LEARNER": "learner:6000", "RELAYRL_NUM_ENVS": "8"})
    assert (c.learner, c.num_envs) == ("learner:6000", 8)
    with pytest.raises(ConfigError, match="--learner"):
        load(ActorConfig, ["--learner", "no-port"], environ={})
