"""Stable-Baselines3 A2C on CartPole-v1 with rl-baselines3-zoo's hyperparameters (8 envs, MlpPolicy,
ent_coef 0, the rest SB3's defaults), run in its own process like `relayrl train`, with torch on one
thread: SB3's faster setting here (about 4.0k vs 3.7k env steps/s with torch's default of 2).

`python -m relayrl.bench.sb3 --seed S --steps N [--target R]` prints one JSON line: the steady env
steps/s of learn(), and the epoch time at which the mean return of the last 100 episodes reached R.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

ZOO = {"n_envs": 8, "policy": "MlpPolicy", "ent_coef": 0.0}


def run_child(seed: int, steps: int, target: float | None) -> dict:
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    class StopAtTarget(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.solved_at: float | None = None
            self.started = 0.0

        def _on_training_start(self) -> None:
            self.started = time.time()

        def _on_step(self) -> bool:
            buffer = self.model.ep_info_buffer
            if target is not None and len(buffer) == 100 and sum(e["r"] for e in buffer) / 100 >= target:
                self.solved_at = time.time()
                return False
            return True

    torch.set_num_threads(1)
    env = make_vec_env("CartPole-v1", n_envs=ZOO["n_envs"], seed=seed)
    model = A2C(ZOO["policy"], env, ent_coef=ZOO["ent_coef"], seed=seed, device="cpu", verbose=0)
    callback = StopAtTarget()
    model.learn(total_timesteps=steps, callback=callback)
    seconds = time.time() - callback.started
    return {"steps_per_second": model.num_timesteps / seconds, "env_steps": model.num_timesteps,
            "solved_at": callback.solved_at,
            "torch_threads": torch.get_num_threads()}


def run(seed: int, steps: int, target: float | None, timeout: float) -> dict:
    """Launch the child; wall_seconds counts from the launch, as for `relayrl train`."""
    args = [sys.executable, "-m", "relayrl.bench.sb3", "--seed", str(seed), "--steps", str(steps)]
    if target is not None:
        args += ["--target", str(target)]
    launched = time.time()
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)  # SB3 as users run it
    if result.returncode != 0:
        raise RuntimeError(f"SB3 run failed ({result.returncode}):\n{result.stderr[-2000:]}")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out["solved"] = out["solved_at"] is not None
    out["wall_seconds"] = (out["solved_at"] - launched) if out["solved"] else None
    return out


def available() -> bool:
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--target", type=float, default=None)
    a = parser.parse_args()
    print(json.dumps(run_child(a.seed, a.steps, a.target)))
