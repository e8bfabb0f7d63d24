"""Stable-Baselines3 A2C with rl-baselines3-zoo's hyperparameters for the env (relayrl_cli.bench.zoo), run in
its own process like `relayrl train`, with torch on one thread: SB3's faster setting here (about 4.0k vs
3.7k env steps/s on CartPole with torch's default of 2).

`python -m relayrl_cli.bench.sb3 --env ENV --seed S --steps N [--target R] [--eval-episodes K]` prints one
JSON line: the steady env steps/s of learn(); the learning curve, one [epoch seconds, env steps, mean
return of the last 100 episodes] row per --curve-every seconds of training; with --target, training stops
as soon as the curve has a held solve of R (relayrl_cli.bench.solve); with --eval-episodes, the returns of K
greedy (deterministic) episodes of the final policy, VecNormalize statistics frozen.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time

from relayrl_cli.bench import zoo
from relayrl_cli.bench.pipeline import run_group
from relayrl_cli.bench.solve import held_solve, solve_points


def run_child(env_id: str, seed: int, steps: int, target: float | None, eval_episodes: int = 0,
              curve_every: float = 0.2, eval_seed: int = 1000) -> dict:
    import numpy as np
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    class Curve(BaseCallback):
        """return100 against env steps, every ``curve_every`` seconds; stops at a held solve of ``target``."""

        def __init__(self) -> None:
            super().__init__()
            self.rows: list[list[float]] = []
            self.started = 0.0
            self.next_row = 0.0
            self.held = False

        def _on_training_start(self) -> None:
            self.started = time.time()
            self.next_row = self.started + curve_every

        def row(self) -> None:
            buffer = self.model.ep_info_buffer
            mean = float(np.mean([e["r"] for e in buffer])) if buffer else math.nan
            self.rows.append([time.time(), self.model.num_timesteps, mean])

        def _on_step(self) -> bool:
            if time.time() < self.next_row:
                return True
            self.next_row += curve_every
            self.row()
            if target is not None and held_solve([r[1] for r in self.rows], [r[2] for r in self.rows],
                                                 target) is not None:
                self.held = True
                return False
            return True

        def _on_training_end(self) -> None:
            self.row()

    torch.set_num_threads(1)
    setup = zoo.sb3_setup(env_id)
    kwargs = dict(setup["a2c_kwargs"])
    policy = kwargs.pop("policy")
    env = make_vec_env(env_id, n_envs=setup["n_envs"], seed=seed)
    if setup["normalize"] is not None:
        env = VecNormalize(env, **setup["normalize"])
    model = A2C(policy, env, seed=seed, device="cpu", verbose=0, **kwargs)
    callback = Curve()
    model.learn(total_timesteps=steps, callback=callback)
    finished = time.time()
    out = {"env": env_id, "seed": seed, "steps_per_second": model.num_timesteps / (finished - callback.started),
           "env_steps": model.num_timesteps, "started_at": callback.started, "finished_at": finished,
           "stopped_at_held_solve": callback.held, "curve": callback.rows, "torch_threads": torch.get_num_threads(),
           "zoo": zoo.HYPERPARAMS[env_id]}
    if eval_episodes:
        out["eval_returns"] = evaluate(model, env, env_id, eval_episodes, eval_seed)
        out["eval_seconds"] = time.time() - finished
    return out


def evaluate(model, train_env, env_id: str, episodes: int, seed: int) -> list[float]:
    """Returns of ``episodes`` greedy episodes (deterministic=True, as the zoo evaluates), observations
    normalised with the training statistics frozen and rewards left raw."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize

    eval_env = make_vec_env(env_id, n_envs=min(episodes, 10), seed=seed)
    if isinstance(train_env, VecNormalize):
        eval_env = VecNormalize(eval_env, training=False, norm_reward=False, clip_obs=train_env.clip_obs)
        eval_env.obs_rms = copy.deepcopy(train_env.obs_rms)
    returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=episodes, deterministic=True,
                                 return_episode_rewards=True)
    eval_env.close()
    return [float(r) for r in returns]


def run(seed: int, steps: int, target: float | None, timeout: float, env_id: str = "CartPole-v1",
        eval_episodes: int = 0, eval_seed: int = 1000, curve_every: float = 0.2) -> dict:
    """Launch the child; times count from the launch, as for `relayrl train`: ``wall_seconds`` to the end
    of learn(), curve rows in seconds since the launch, and with ``target`` the first crossing and the
    held solve (``solve``)."""
    args = [sys.executable, "-m", "relayrl_cli.bench.sb3", "--env", env_id, "--seed", str(seed), "--steps", str(steps),
            "--eval-episodes", str(eval_episodes), "--eval-seed", str(eval_seed), "--curve-every", str(curve_every)]
    if target is not None:
        args += ["--target", str(target)]
    launched = time.time()
    result = run_group(args, timeout)  # SB3 as users run it, in its own process
    if result.returncode != 0:
        raise RuntimeError(f"SB3 run failed ({result.returncode}):\n{result.stderr[-2000:]}")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out["wall_seconds"] = out["finished_at"] - launched
    out["curve"] = [[row[0] - launched, row[1], row[2]] for row in out["curve"]]
    if target is not None:
        out["solve"] = solve_points(out["curve"], target)
    return out


def available() -> bool:
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="CartPole-v1", choices=zoo.ENVS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--target", type=float, default=None)
    parser.add_argument("--eval-episodes", type=int, default=0)
    parser.add_argument("--eval-seed", type=int, default=1000)
    parser.add_argument("--curve-every", type=float, default=0.2)
    a = parser.parse_args()
    print(json.dumps(run_child(a.env, a.seed, a.steps, a.target, a.eval_episodes, a.curve_every, a.eval_seed)))
