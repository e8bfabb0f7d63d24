"""The learning benchmark's pieces (relayrl_cli/bench/learning.py, zoo.py) without training: the zoo's
hyperparameters as SB3 arguments, the table (every env, short of zoo, errors) and resuming."""

import json

import gymnasium as gym
import pytest

from relayrl_cli.bench import learning, zoo

MACHINE = {"cpu_count": 2, "platform": "test", "python": "3", "torch": "t"}


def test_pendulum_translates_as_the_zoo_reads_it():
    setup = zoo.sb3_setup("Pendulum-v1")
    assert setup["n_envs"] == 8 and setup["n_timesteps"] == 1_000_000
    assert setup["normalize"] == {"gamma": 0.9}  # the zoo hands the algorithm's gamma to VecNormalize
    kwargs = setup["a2c_kwargs"]
    lr = kwargs.pop("learning_rate")
    assert lr(1.0) == pytest.approx(7e-4) and lr(0.25) == pytest.approx(1.75e-4) and lr(0.0) == 0.0
    assert kwargs == {"policy": "MlpPolicy", "ent_coef": 0.0, "max_grad_norm": 0.5, "n_steps": 8, "gae_lambda": 0.9,
                      "vf_coef": 0.4, "gamma": 0.9, "use_rms_prop": True, "normalize_advantage": False,
                      "use_sde": True, "policy_kwargs": {"log_std_init": -2, "ortho_init": False}}


def test_other_entries_translate():
    assert zoo.sb3_setup("MountainCar-v0")["normalize"] == {}  # normalize: true, no gamma given
    assert zoo.sb3_setup("CartPole-v1")["normalize"] is None
    cheetah = zoo.sb3_setup("HalfCheetah-v5")
    assert cheetah["n_envs"] == 1 and cheetah["normalize"] == {} and cheetah["a2c_kwargs"] == {"policy": "MlpPolicy"}
    lunar = zoo.sb3_setup("LunarLander-v3")["a2c_kwargs"]
    assert lunar["learning_rate"](0.5) == pytest.approx(0.000415)
    assert zoo.sb3_setup("MountainCarContinuous-v0")["a2c_kwargs"]["sde_sample_freq"] == 16
    assert [zoo.budget(e) for e in zoo.ENVS] == [500_000, 500_000, 1_000_000, 200_000, 1_000_000, 100_000, 1_000_000]


def test_policy_kwargs_are_read_without_eval():
    import torch.nn as nn

    assert zoo._policy_kwargs("dict(activation_fn=nn.ReLU, net_arch=[64, 64])") == {
        "activation_fn": nn.ReLU, "net_arch": [64, 64]}
    for bad in ("__import__('os').system('true')", "dict(x=open('f'))", "list(a=1)"):
        with pytest.raises(ValueError):
            zoo._policy_kwargs(bad)


@pytest.mark.parametrize("env_id", zoo.ENVS)
def test_sb3_accepts_every_translated_entry(env_id):
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    try:
        gym.make(env_id).close()
    except Exception as exc:  # noqa: BLE001 - an env whose extra is not installed here
        pytest.skip(f"{env_id} cannot be made here: {exc}")
    setup = zoo.sb3_setup(env_id)
    kwargs = dict(setup["a2c_kwargs"])
    env = make_vec_env(env_id, n_envs=setup["n_envs"], seed=0)
    if setup["normalize"] is not None:
        env = VecNormalize(env, **setup["normalize"])
    model = A2C(kwargs.pop("policy"), env, seed=0, device="cpu", **kwargs)
    assert model.n_envs == setup["n_envs"]
    assert model.use_sde == kwargs.get("use_sde", False)
    env.close()


def fake_run(returns_by_seed, calls, fail=()):
    def run(env_id, seed, budget, episodes, timeout, curve_every):
        calls.append((env_id, seed, budget))
        if (env_id, seed) in fail:
            raise RuntimeError(f"{env_id} broke\nRuntimeError: boom {seed}")
        return {"seed": seed, "final_return": returns_by_seed[seed], "wall_seconds": 10.0 + seed,
                "eval_returns": [returns_by_seed[seed]] * episodes}
    return run


def test_table_lists_every_env_marks_short_of_zoo_and_shows_errors(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(learning, "RUNNERS", {
        "relayrl": fake_run({0: 100.0, 1: 300.0, 2: 200.0}, calls, fail={("Pendulum-v1", 0), ("Pendulum-v1", 1)}),
        "sb3": fake_run({0: 500.0, 1: 500.0, 2: 400.0}, calls),
    })
    learning.run(["CartPole-v1", "Pendulum-v1"], 3, True, tmp_path, MACHINE, timeout=60)
    results = json.loads((tmp_path / "learning-quick.json").read_text())
    rows = {r["env"]: r for r in results["table"]}
    assert list(rows) == zoo.ENVS  # never an env dropped
    cart = rows["CartPole-v1"]
    assert cart["relayrl"]["final_return"] == {"median": 200.0, "min": 100.0, "max": 300.0}
    assert cart["relayrl"]["wall_seconds"] == 11.0 and cart["sb3"]["final_return"]["median"] == 500.0
    assert cart["short_of_zoo"] == 300.0 and cart["short_of_sb3"] == 300.0 and cart["errors"] == []
    pend = rows["Pendulum-v1"]  # one seed of three ran: it is reported, with the two failures
    assert pend["relayrl"]["seeds"] == [2] and pend["short_of_zoo"] == 0.0  # 200 >= -163
    assert pend["errors"] == ["relayrl seed 0: RuntimeError: boom 0", "relayrl seed 1: RuntimeError: boom 1"]
    table = (tmp_path / "learning-quick.md").read_text()
    lines = {line.split(" | ")[0][2:]: line for line in table.splitlines() if line.startswith("| ") and " | " in line}
    assert set(zoo.ENVS) <= set(lines)
    assert "**short of zoo** by 300.0" in lines["CartPole-v1"] and "**short of SB3** by 300.0" in lines["CartPole-v1"]
    assert rows["Acrobot-v1"]["short_of_sb3"] is None
    assert "1-minute load average at the runs' starts and ends" in table  # every run is stamped with it
    assert "200.0 (100.0–300.0), 3 seeds" in lines["CartPole-v1"]
    assert "at or above" in lines["Pendulum-v1"] and "RuntimeError: boom 1" in lines["Pendulum-v1"]
    assert "not run yet" in lines["Acrobot-v1"] and "-83.4" in lines["Acrobot-v1"]


def test_a_second_invocation_keeps_what_ran_and_retries_what_failed(tmp_path, monkeypatch):
    calls = []
    runners = {"relayrl": fake_run({0: 1.0, 1: 2.0}, calls, fail={("Acrobot-v1", 1)}),
               "sb3": fake_run({0: 1.0, 1: 2.0}, calls)}
    monkeypatch.setattr(learning, "RUNNERS", runners)
    learning.run(["Acrobot-v1"], 2, True, tmp_path, MACHINE, timeout=60)
    assert len(calls) == 4
    calls.clear()
    monkeypatch.setattr(learning, "RUNNERS", {"relayrl": fake_run({0: 1.0, 1: 2.0}, calls), "sb3": runners["sb3"]})
    learning.run(["Acrobot-v1", "CartPole-v1"], 2, True, tmp_path, MACHINE, timeout=60)
    # Acrobot: the failed run's seed again, both sides (a pair is always measured together); CartPole: all of
    # it, merged into the same file
    assert sorted(calls) == [("Acrobot-v1", 1, 3000), ("Acrobot-v1", 1, 3000), ("CartPole-v1", 0, 3000),
                             ("CartPole-v1", 0, 3000), ("CartPole-v1", 1, 3000), ("CartPole-v1", 1, 3000)]
    results = json.loads((tmp_path / "learning-quick.json").read_text())
    assert set(results["envs"]) == {"Acrobot-v1", "CartPole-v1"}
    assert results["envs"]["Acrobot-v1"]["relayrl"]["1"]["final_return"] == 2.0
    # a different budget is a different experiment: the env's runs start over
    calls.clear()
    monkeypatch.setattr(learning, "plan", lambda quick: {"eval_episodes": 3, "budget": lambda e: 4000,
                                                         "curve_every": 1.0})
    learning.run(["Acrobot-v1"], 1, True, tmp_path, MACHINE, timeout=60)
    assert calls == [("Acrobot-v1", 0, 4000), ("Acrobot-v1", 0, 4000)]
    results = json.loads((tmp_path / "learning-quick.json").read_text())
    assert set(results["envs"]["Acrobot-v1"]["relayrl"]) == {"0"}


def test_a_row_short_of_sb3_says_where_the_gap_lies(tmp_path, monkeypatch):
    # RelayRL's greedy episodes: 95 typical ones (-80) and 5 stuck ones (-300); SB3's: all -80 but one (-100)
    # on CartPole both sides play every greedy episode to 500
    def runner(eval_returns, train_return100):
        def run(env_id, seed, budget, episodes, timeout, curve_every):
            returns = eval_returns if env_id == "Acrobot-v1" else [500.0] * 100
            return {"seed": seed, "final_return": sum(returns) / len(returns), "wall_seconds": 1.0,
                    "eval_returns": returns, "train_return100": train_return100}
        return run

    monkeypatch.setattr(learning, "RUNNERS", {"relayrl": runner([-80.0] * 95 + [-300.0] * 5, -84.0),
                                              "sb3": runner([-80.0] * 99 + [-100.0], -82.0)})
    learning.run(["Acrobot-v1", "CartPole-v1"], 1, True, tmp_path, MACHINE, timeout=60)
    results = json.loads((tmp_path / "learning-quick.json").read_text())
    assert learning.gap_lines(results) == [
        "Where a row is short of SB3:", "",
        "- Acrobot-v1, short of SB3 by 10.8: the median greedy episode -80.0 against -80.0; the mean of the worst "
        "5% of greedy episodes -300.0 against -84.0; the last 100 training episodes (sampled actions) -84.0 "
        "against -82.0 (medians over the seeds, RelayRL against SB3).", ""]
    assert "- Acrobot-v1, short of SB3 by 10.8" in (tmp_path / "learning-quick.md").read_text()
    # a row at or above SB3 gets no line
    assert not any("CartPole" in line for line in learning.gap_lines(results))
