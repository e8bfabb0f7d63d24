"""Presets: every file parses, every key is a real option with a valid value, and the layering is
flag > RELAYRL_* variable > preset > built-in default."""

import dataclasses

import gymnasium as gym
import pytest

from learner_service.config import LearnerConfig
from relayrl import presets
from relayrl.config import ConfigError, coerce, load
from relayrl_cli.train import TrainConfig

REQUIRED = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3", "Pendulum-v1",
            "MountainCarContinuous-v0", "HalfCheetah-v5"]


def test_the_standard_envs_have_an_a2c_preset_for_a_registered_env():
    found = presets.all_presets()
    for env in REQUIRED:
        assert (env, "a2c") in found, env
        gym.spec(env)  # the id is one Gymnasium knows, spelled as it spells it


@pytest.mark.parametrize("key", sorted(presets.all_presets()), ids="/".join)
def test_every_value_is_a_valid_option_and_the_config_validates(key):
    env, algo = key
    preset = presets.all_presets()[key]
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(preset.values) <= fields, set(preset.values) - fields
    for name, value in preset.values.items():
        coerce(TrainConfig, name, value, preset.name)  # raises naming the preset on a bad value
    config = load(TrainConfig, ["--env", env, "--algo", algo], environ={})
    assert config.preset == env
    for name, value in preset.values.items():
        got = getattr(config, name)
        assert got == (tuple(value) if isinstance(value, list) else value), name


def test_flags_beat_variables_beat_the_preset_beats_defaults():
    pendulum = presets.all_presets()["Pendulum-v1", "a2c"].values
    default_value_coef = next(f.default for f in dataclasses.fields(LearnerConfig) if f.name == "value_coef")
    assert pendulum["value_coef"] != default_value_coef and pendulum["gamma"] != 0.5
    c = load(LearnerConfig, ["--env", "Pendulum-v1", "--gamma", "0.5"], environ={"RELAYRL_N_STEPS": "3"})
    assert c.preset == "Pendulum-v1"
    assert c.gamma == 0.5  # flag over preset
    assert c.n_steps == 3 and pendulum["n_steps"] != 3  # variable over preset
    assert c.value_coef == pendulum["value_coef"]  # preset over default
    assert c.entropy_coef == 0.0  # not in the preset: the default


def test_none_keeps_the_defaults_and_an_env_id_borrows_its_preset():
    plain = load(LearnerConfig, ["--env", "Pendulum-v1", "--preset", "none"], environ={})
    assert plain.preset == "none" and plain.normalize_observations is False and plain.gamma == 0.99
    borrowed = load(LearnerConfig, ["--env", "InvertedPendulum-v5", "--preset", "Pendulum-v1"], environ={})
    assert borrowed.preset == "Pendulum-v1" and borrowed.gamma == 0.9
    unknown = load(LearnerConfig, ["--env", "Taxi-v3"], environ={})
    assert unknown.preset == "none"


def test_a_missing_preset_or_a_bad_preset_value_fails_naming_it(monkeypatch):
    with pytest.raises(ConfigError, match="--preset.*no a2c preset for 'Nope-v0'"):
        load(LearnerConfig, ["--preset", "Nope-v0"], environ={})
    broken = presets.Preset("CartPole-v1", "a2c", "classic_control.toml", {"n_steps": "many"})
    monkeypatch.setitem(presets.all_presets(), ("CartPole-v1", "a2c"), broken)
    with pytest.raises(ConfigError, match=r"preset CartPole-v1/a2c \(classic_control.toml\): --n-steps"):
        load(LearnerConfig, [], environ={})


def test_gradients_refuse_normalisation_and_a_linear_schedule_needs_a_budget():
    with pytest.raises(ConfigError, match="--normalize-observations"):
        load(LearnerConfig, ["--algo", "a3c", "--normalize-observations"], environ={})
    with pytest.raises(ConfigError, match="--lr-schedule"):
        load(LearnerConfig, ["--lr-schedule", "linear"], environ={})
    c = load(LearnerConfig, ["--algo", "a3c", "--transport", "trajectories", "--normalize-rewards"], environ={})
    assert c.normalize_rewards


ATARI = "ALE/* | *NoFrameskip-v4 | *Deterministic-v4"


def test_a_pattern_preset_covers_every_atari_id_and_an_own_entry_comes_first(monkeypatch):
    for game in ("ALE/Pong-v5", "ALE/Breakout-v5", "PongNoFrameskip-v4", "BreakoutDeterministic-v4"):
        config = load(TrainConfig, ["--env", game], environ={})
        assert config.preset == ATARI and config.clip_rewards and config.episodic_life and config.n_steps == 5
    assert presets.resolve("auto", "ALEX/Pong-v5", "a2c") is None, "a pattern matches whole ids only"
    own = presets.Preset("ALE/Pong-v5", "a2c", "test.toml", {"n_steps": 7})
    monkeypatch.setitem(presets.all_presets(), ("ALE/Pong-v5", "a2c"), own)
    assert load(TrainConfig, ["--env", "ALE/Pong-v5"], environ={}).n_steps == 7


def test_an_env_given_as_module_and_id_takes_the_ids_entry_and_patterns_match_the_bare_id():
    driving = load(LearnerConfig, ["--env", "highway_env:highway-fast-v0"], environ={})
    assert driving.preset == "highway-fast-v0" and driving.gamma == 0.8
    games = load(LearnerConfig, ["--env", "MinAtar/SpaceInvaders-v1"], environ={})
    assert games.preset == "MinAtar/*" and games.optimizer == "rmsprop_torch"
    assert load(LearnerConfig, ["--env", "my_pkg:Other-v0"], environ={}).preset == "none"


def test_the_zoos_atari_ids_train_as_the_ale_ids_do_but_for_what_the_id_sets():
    """BreakoutNoFrameskip-v4 (the zoo's id) once matched no preset and trained with the built-in defaults."""
    v5 = dataclasses.asdict(load(TrainConfig, ["--env", "ALE/Breakout-v5"], environ={}))
    assert v5["optimizer"] == "rmsprop" and v5["entropy_coef"] == 0.01 and v5["clip_rewards"]
    for env in ("BreakoutNoFrameskip-v4", "BreakoutDeterministic-v4"):
        v4 = dataclasses.asdict(load(TrainConfig, ["--env", env], environ={}))
        assert {**v4, "env": v5["env"]} == v5, env
    # What differs is the id's own: sticky actions, which relayrl/envs.py takes from the spec.
    pytest.importorskip("ale_py")
    from relayrl.envs import env_spec

    assert env_spec("ALE/Breakout-v5").kwargs["repeat_action_probability"] == 0.25
    assert env_spec("BreakoutNoFrameskip-v4").kwargs["repeat_action_probability"] == 0.0


def test_a_key_of_several_patterns_matches_any_of_them_and_only_whole_ids():
    assert presets.matches("BreakoutNoFrameskip-v4", ATARI) and presets.matches("ALE/Pong-v5", ATARI)
    assert not presets.matches("Breakout-v4", ATARI) and not presets.matches("CartPole-v1", ATARI)
    assert presets.resolve(ATARI, "BreakoutNoFrameskip-v4", "a2c").env == ATARI  # --preset names it as it is


SB3_A2C = {"n_steps": 5, "gamma": 0.99, "gae_lambda": 1.0, "optimizer": "rmsprop_torch", "lr": 7e-4, "rms_alpha": 0.99,
           "rms_eps": 1e-5, "entropy_coef": 0.0, "value_coef": 0.5, "max_grad_norm": 0.5, "normalize_advantage": False,
           "lr_schedule": "constant", "ortho_init": True, "hidden_sizes": (64, 64), "activation": "tanh"}


def test_an_env_without_a_preset_gets_sb3s_a2c_defaults_and_a3c_keeps_its_own():
    for argv in (["--env", "Taxi-v3"], ["--env", "CartPole-v1", "--preset", "none"]):
        config = load(TrainConfig, argv, environ={})
        assert config.preset == "none"
        assert {name: getattr(config, name) for name in SB3_A2C} == SB3_A2C
        assert config.num_envs * config.actors * config.n_steps == 40  # SB3's usual 8 envs x 5 steps an update
    a3c = load(TrainConfig, ["--env", "Taxi-v3", "--algo", "a3c"], environ={})
    assert (a3c.n_steps, a3c.gamma, a3c.optimizer, a3c.lr, a3c.normalize_advantage, a3c.num_envs) == \
        (16, 0.98, "adam", 1e-3, True, 64)
    flagged = load(TrainConfig, ["--env", "Taxi-v3", "--optimizer", "adam", "--num-envs", "8"], environ={})
    assert flagged.optimizer == "adam" and flagged.lr == 7e-4 and flagged.num_envs == 8  # a flag beats a default


# The built-in defaults before issue 24, for both algorithms (lr: 5e-3 for a2c, 1e-3 for a3c).
EARLIER = {"n_steps": 16, "gamma": 0.98, "normalize_advantage": True, "optimizer": "adam"}


@pytest.mark.parametrize("key", sorted(presets.all_presets()), ids="/".join)
def test_an_env_with_a_preset_trains_as_it_did_before_the_defaults_changed(key, monkeypatch):
    env, algo = key
    now = dataclasses.asdict(load(TrainConfig, ["--env", env, "--algo", algo], environ={}))
    from learner_service import config as learner_config
    from relayrl_cli import train

    monkeypatch.setattr(learner_config, "ALGO_DEFAULTS", {
        "a2c": {**EARLIER, "lr": 5e-3}, "a3c": {**EARLIER, "lr": 1e-3}})
    monkeypatch.setattr(train, "NUM_ENVS", {"a2c": 64, "a3c": 64})
    before = dataclasses.asdict(load(TrainConfig, ["--env", env, "--algo", algo], environ={}))
    assert now == before
