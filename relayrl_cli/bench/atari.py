"""`relayrl bench --suite atari [--quick] [--game ALE/Breakout-v5] [--seeds N] [--learn-steps N]`: Atari from
pixels on this machine, written to atari.json, atari.md and a learning-curve PNG.

- Throughput: env steps/s through the whole pipeline (`relayrl train`, the game's preset: 2 actors x 8 envs,
  the Nature CNN) against Stable-Baselines3 A2C with its Atari wrappers and CnnPolicy, rl-baselines3-zoo's
  Atari settings (16 envs, 5 steps), on the same game in the same run, each in its own process.
- Costs: CPU milliseconds per env step of each part (emulation, inference, the learner's update).
- Learning: RelayRL (the game's preset) and SB3 A2C (the zoo's Atari settings) for the same env steps on the
  same id (the same sticky actions), one after the other; each side's true game score (the mean of its last
  100 whole games, unclipped) against env steps, both curves in one PNG, and a random policy's mean score.

`--parts throughput` or `--parts learning` runs one part and keeps the others' results from the game's file
(atari.json for Breakout, atari-<game>.json for another game).
`python -m relayrl_cli.bench.atari --sb3 --game G --seed S --steps N` is the SB3 child: one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np

from relayrl_cli.bench import pipeline
from relayrl_cli.bench.pipeline import run_group
from relayrl_cli.bench.provenance import timed
from relayrl_cli.bench.report import write_results
from relayrl_cli.bench.solve import mean_over
from relayrl_cli.bench.stats import paired_ratio, summary
from relayrl_cli.plot import render_curves

# rl-baselines3-zoo's A2C "atari" entry (hyperparams/a2c.yml); n_steps and gamma are SB3's defaults.
SB3_ATARI = dict(n_envs=16, frame_stack=4, n_steps=5, ent_coef=0.01, vf_coef=0.25, rms_eps=1e-5)
# SB3 is timed at both: one process stepping its envs in turn, its update may or may not gain from a second core.
SB3_THREADS = (1, 2)
CURVE_EVERY = 10.0  # seconds between a learning run's curve rows, both sides


def plan(quick: bool) -> dict:
    if quick:
        return dict(ours_steps=1_000, sb3_steps=800, learn_steps=2_000, random_episodes=4, cost_reps=3)
    return dict(ours_steps=40_000, sb3_steps=12_000, learn_steps=1_000_000, random_episodes=100, cost_reps=40)


def sb3_child(game: str, seed: int, steps: int, threads: int, device: str = "cpu",
              max_seconds: float | None = None, curve_every: float | None = None) -> dict:
    """SB3 A2C on ``game`` as the zoo trains Atari; steady env steps/s of learn() after its first update.
    ``max_seconds``: learn() stops once its first update is that long ago (the device benchmark's budget).
    ``curve_every``: "curve" holds a row [seconds, env_steps, mean true score of the last 100 games] that
    often, as `relayrl train`'s summary does. The scores are Monitor's: make_atari_env puts Monitor inside
    AtariWrapper, so its episodes are whole games with unclipped rewards, as RelayRL's are."""
    import ale_py
    import gymnasium as gym
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
    from stable_baselines3.common.vec_env import VecFrameStack

    class Clock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.first: tuple[float, int] | None = None
            self.scores: deque[float] = deque(maxlen=100)
            self.episodes = 0
            self.curve: list[list] = []
            self.next_row = 0.0

        def _on_rollout_end(self) -> None:
            if self.first is None:
                self.first = (time.time(), self.model.num_timesteps)

        def _on_step(self) -> bool:
            if curve_every is not None:
                for info in self.locals["infos"]:
                    if "episode" in info:
                        self.scores.append(float(info["episode"]["r"]))
                        self.episodes += 1
                if time.time() - started >= self.next_row:
                    self.row()
                    self.next_row += curve_every
            return max_seconds is None or self.first is None or time.time() - self.first[0] < max_seconds

        def row(self) -> None:
            mean = float(np.mean(self.scores)) if self.scores else None
            self.curve.append([time.time() - started, self.model.num_timesteps, mean])

    gym.register_envs(ale_py)
    torch.set_num_threads(threads)
    # v5 ids skip 4 frames inside the env; SB3's AtariWrapper skips 4 itself, so the env must not.
    env = make_atari_env(game, n_envs=SB3_ATARI["n_envs"], seed=seed, env_kwargs={"frameskip": 1})
    env = VecFrameStack(env, n_stack=SB3_ATARI["frame_stack"])
    model = A2C("CnnPolicy", env, n_steps=SB3_ATARI["n_steps"], ent_coef=SB3_ATARI["ent_coef"],
                vf_coef=SB3_ATARI["vf_coef"], seed=seed, device=device, verbose=0,
                policy_kwargs=dict(optimizer_class=RMSpropTFLike, optimizer_kwargs=dict(eps=SB3_ATARI["rms_eps"])))
    clock = Clock()
    updates = [0, 0.0]  # count, seconds in A2C.train(): SB3's update (its loss reads .item(): synchronised)
    train = model.train

    def timed_train() -> None:
        began = time.perf_counter()
        train()
        updates[0] += 1
        updates[1] += time.perf_counter() - began

    model.train = timed_train
    started = time.time()
    model.learn(total_timesteps=steps, callback=clock)
    finished = time.time()
    first_at, first_steps = clock.first or (started, 0)
    curve = {}
    if curve_every is not None:
        clock.row()
        curve = {"curve": clock.curve, "episodes": clock.episodes, "mean_score_last_100": clock.curve[-1][2],
                 "wall_seconds": finished - started}
    return {**curve, "game": game, "seed": seed, "env_steps": model.num_timesteps,
            "steps_per_second": model.num_timesteps / (finished - started),
            "steady_steps_per_second": (model.num_timesteps - first_steps) / max(finished - first_at, 1e-9),
            "torch_threads": torch.get_num_threads(), "settings": SB3_ATARI, "device": str(model.device),
            "updates": updates[0], "mean_update_seconds": updates[1] / max(updates[0], 1),
            "update_share": updates[1] / max(finished - started, 1e-9)}


def sb3_run(game: str, seed: int, steps: int, threads: int, timeout: float, device: str = "cpu",
            max_seconds: float | None = None, curve_every: float | None = None) -> dict:
    extra = ["--device", device] + ([] if max_seconds is None else ["--max-seconds", str(max_seconds)])
    extra += [] if curve_every is None else ["--curve-every", str(curve_every)]
    result = run_group([sys.executable, "-m", "relayrl_cli.bench.atari", "--sb3", "--game", game, "--seed", str(seed),
                        "--steps", str(steps), "--threads", str(threads), *extra], timeout)
    if result.returncode != 0:
        raise RuntimeError(f"SB3 Atari run failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def random_scores(game: str, episodes: int, seed: int = 0) -> list[float]:
    """True scores of the first episode of each of ``episodes`` envs under uniformly random actions."""
    from relayrl.envs import single_spaces
    from relayrl.evaluation import play_first_episodes

    n_actions, rng = single_spaces(game)[1].n, np.random.default_rng(seed)
    scores, _ = play_first_episodes(lambda obs: rng.integers(0, n_actions, len(obs)), game, episodes, seed)
    return scores.tolist()


PARTS = ("throughput", "costs", "learning")


DEFAULT_GAME = "ALE/Breakout-v5"


def results_path(out: Path, quick: bool, game: str = DEFAULT_GAME) -> Path:
    """atari.json for the default game (the README's), atari-<game>.json for any other."""
    name = "atari" if game == DEFAULT_GAME else f"atari-{slug(game)}"
    return out / f"{name}{'-quick' if quick else ''}.json"


def run(game: str, seeds: int, quick: bool, learn_steps: int | None, out: Path, machine: dict,
        parts: tuple[str, ...] = PARTS) -> dict:
    """The parts asked for; the others' results are kept from an earlier run on the same game."""
    p = plan(quick)
    learn_steps = learn_steps or p["learn_steps"]
    path = results_path(out, quick, game)
    earlier = json.loads(path.read_text()) if path.exists() else {}
    results: dict = {part: earlier[part] for part in PARTS if part not in parts and earlier.get("game") == game
                     and part in earlier}
    results.update(quick=quick, game=game)
    # each part with its own stamp: a part left out keeps the commit and time it was measured at
    if "throughput" in parts:
        results["throughput"] = timed(throughput, game, seeds, p, machine)
    if "costs" in parts:
        results["costs"] = timed(costs, game, p["cost_reps"])
    if "learning" in parts:
        threads = results.get("throughput", {}).get("sb3", {}).get("torch_threads", SB3_THREADS[-1])
        results["learning"] = timed(learning, game, learn_steps, p["random_episodes"], quick, out, machine, threads)
    return results


def throughput(game: str, seeds: int, p: dict, machine: dict) -> dict:
    ours: list[dict] = []
    theirs: dict[int, list[dict]] = {}
    for seed in range(seeds):  # interleaved, so that drift on this machine touches both sides alike
        log(f"relayrl {game} seed {seed}: {p['ours_steps']} env steps")
        ours.append(timed(pipeline.train, ["--env", game, "--max-env-steps", str(p["ours_steps"]), "--seed",
                                           str(seed)], timeout=1800))
        for threads in SB3_THREADS:
            log(f"SB3 A2C {game} seed {seed}, {threads} torch threads: {p['sb3_steps']} env steps")
            theirs.setdefault(threads, []).append(timed(sb3_run, game, seed, p["sb3_steps"], threads, timeout=1800))
    ours_speed = [r["steady_steps_per_second"] for r in ours]
    by_threads = {t: [r["steady_steps_per_second"] for r in runs] for t, runs in theirs.items()}
    best = max(by_threads, key=lambda t: summary(by_threads[t])["median"])  # SB3 at its faster setting
    theirs_speed = by_threads[best]
    return {
        "machine": machine, "env_steps": {"relayrl": p["ours_steps"], "sb3": p["sb3_steps"]},
        "relayrl": {"steady_steps_per_second": summary(ours_speed),
                    "updates_per_second": summary([r["updates_per_second"] for r in ours])},
        "sb3": {"steady_steps_per_second": summary(theirs_speed), "torch_threads": best,
                "by_threads": {str(t): summary(v) for t, v in by_threads.items()}},
        "ratio": paired_ratio(ours_speed, theirs_speed)["median"],
        "run_stamps": {"relayrl": [r["run"] for r in ours],
                       "sb3": {str(t): [r["run"] for r in runs] for t, runs in theirs.items()}},
        "load_average_at_end": os.getloadavg(),
    }


def costs(game: str, reps: int) -> dict:
    """CPU milliseconds per env step of each part of the pipeline, in this process, the preset's shapes (an
    actor's 8 envs, a round of 2 actors x 8 envs x 5 steps): what bounds env steps/s on a machine's cores."""
    import torch

    from learner_service.optim import make_optimizer
    from learner_service.trainer import update_from_rollouts
    from relayrl.envs import make_vector_env
    from relayrl.loss import LossConfig
    from relayrl.model import ActorCritic
    from relayrl.rollout import Rollout

    def ms_per_call(fn, n: int) -> float:
        fn()  # warm-up
        started = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - started) / n * 1e3

    envs, steps, rng = 8, 5, np.random.default_rng(0)
    env = make_vector_env(game, envs)
    try:
        obs, _ = env.reset(seed=0)
        n_actions = env.single_action_space.n
        emulation = ms_per_call(lambda: env.step(rng.integers(0, n_actions, envs)), 10 * reps) / envs
        model = ActorCritic(env.single_observation_space, env.single_action_space, (64, 64))
    finally:
        env.close()
    n = 2 * envs
    round_ = Rollout(
        observations=np.repeat(obs[None], steps, 0).repeat(2, 1), actions=rng.integers(0, n_actions, (steps, n)),
        rewards=rng.random((steps, n)).astype(np.float32), terminated=np.zeros((steps, n), bool),
        truncated=np.zeros((steps, n), bool), valid=np.ones((steps, n), bool),
        log_probs=np.zeros((steps, n), np.float32), bootstrap_observations=np.repeat(obs, 2, 0), policy_version=0,
    )
    optimizer = make_optimizer("rmsprop", model.parameters(), lr=7e-4, alpha=0.99, eps=1e-5)  # the preset's
    loss = LossConfig(gamma=0.99, value_coef=0.25, entropy_coef=0.01)
    threads_before, result = torch.get_num_threads(), {"emulation": emulation}
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with torch.inference_mode():
                result[f"inference_{threads}"] = ms_per_call(lambda: model.act(torch.as_tensor(obs)), 5 * reps) / envs
            result[f"learner_{threads}"] = ms_per_call(
                lambda: update_from_rollouts(model, optimizer, [round_], loss, 0.5), reps) / (steps * n)
    finally:
        torch.set_num_threads(threads_before)
    return {"ms_per_env_step": result, "cores": os.cpu_count()}


def learning(game: str, steps: int, random_episodes: int, quick: bool, out: Path, machine: dict,
             sb3_threads: int) -> dict:
    """Both sides for ``steps`` env steps, seed 0, one after the other, then both curves in one PNG."""
    log(f"random policy: {random_episodes} episodes")
    random = random_scores(game, random_episodes)
    timeout = 600 + steps / 100  # 100 env steps/s: a fifth of either side's speed here
    log(f"relayrl {game} learning for {steps:,} env steps")
    ours = timed(pipeline.train, ["--env", game, "--max-env-steps", str(steps), "--seed", "0"],
                 timeout=timeout, log_every=CURVE_EVERY, keep_curve=True)
    log(f"SB3 A2C {game} learning for {steps:,} env steps, {sb3_threads} torch threads")
    theirs = timed(sb3_run, game, 0, steps, sb3_threads, timeout, curve_every=CURVE_EVERY)
    curve_png = out / f"atari-{slug(game)}{'-quick' if quick else ''}.png"
    render_curves({"RelayRL A2C (preset)": ours["curve"], f"SB3 A2C (zoo settings, {sb3_threads} threads)":
                   theirs["curve"]}, curve_png, f"{game}, seed 0: true game score, training episodes")
    return {
        "machine": machine, "env_steps": steps, "curve_png": curve_png.name,
        "random_mean_score": float(np.mean(random)), "random_scores": summary(random),
        "relayrl": {"env_steps": ours["env_steps"], "episodes": ours.get("episodes"),
                    "mean_score_last_100": ours["mean_return"], "wall_seconds": ours["wall_seconds"],
                    "steady_steps_per_second": ours["steady_steps_per_second"], "curve": ours["curve"],
                    "run": ours["run"]},
        "sb3": {"env_steps": theirs["env_steps"], "episodes": theirs["episodes"], "torch_threads": sb3_threads,
                "mean_score_last_100": theirs["mean_score_last_100"], "wall_seconds": theirs["wall_seconds"],
                "steady_steps_per_second": theirs["steady_steps_per_second"], "curve": theirs["curve"],
                "run": theirs["run"]},
        "load_average_at_end": os.getloadavg(),  # other work on this machine slows the runs: say how much
    }


def slug(game: str) -> str:
    return game.split("/")[-1].split("-")[0].lower()


def log(text: str) -> None:
    print(f"[bench atari {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def markdown(r: dict) -> str:
    lines = [f"# Atari: {r['game']}{' (quick: smoke-test budgets)' if r['quick'] else ''}", ""]
    if "throughput" in r:
        lines += throughput_lines(r["throughput"])
    if "costs" in r:
        lines += costs_lines(r["costs"])
    if "learning" in r:
        lines += learning_lines(r["learning"])
    return "\n".join(lines) + "\n"


def throughput_lines(t: dict) -> list[str]:
    ours, theirs = t["relayrl"]["steady_steps_per_second"], t["sb3"]["steady_steps_per_second"]
    return [
        f"{t['machine'].get('cpu_count')} cores, no GPU. Medians over {len(ours['runs'])} seeds, the two sides "
        f"interleaved in one run ({t['env_steps']['relayrl']:,} and {t['env_steps']['sb3']:,} env steps a run).",
        "",
        "| | env steps/s (steady) | runs |",
        "|---|---|---|",
        f"| RelayRL A2C, preset (2 actors x 8 envs, Nature CNN) | {ours['median']:.0f} | "
        f"{', '.join(f'{v:.0f}' for v in ours['runs'])} |",
        f"| SB3 A2C, CnnPolicy, zoo Atari settings (16 envs), torch {t['sb3']['torch_threads']} threads | "
        f"{theirs['median']:.0f} | {', '.join(f'{v:.0f}' for v in theirs['runs'])} |",
        f"| **ratio (paired median)** | **{t['ratio']:.2f}x** | |",
        "",
        "SB3 ran with " + " and ".join(f"{k} torch thread{'s' if k != '1' else ''} ({v['median']:.0f} env steps/s)"
                                       for k, v in t["sb3"].get("by_threads", {}).items())
        + "; the ratio is against the faster.",
        "",
    ]


def costs_lines(c: dict) -> list[str]:
    ms = c["ms_per_env_step"]
    serial = ms["emulation"] + ms["inference_1"] + ms["learner_1"]
    return [
        "CPU milliseconds per env step (one round: 2 actors x 8 envs x 5 steps):",
        "",
        "| part | 1 thread | 2 threads |",
        "|---|---|---|",
        f"| emulation and preprocessing (ale-py, 8 envs, one thread) | {ms['emulation']:.2f} | |",
        f"| CNN inference (batch 8) | {ms['inference_1']:.2f} | {ms['inference_2']:.2f} |",
        f"| learner forward and backward | {ms['learner_1']:.2f} | {ms['learner_2']:.2f} |",
        "",
        f"All of it on one thread: {serial:.2f} ms, so {c['cores']} cores compute at most "
        f"{c['cores'] * 1e3 / serial:,.0f} env steps/s; the actors' share alone (a GPU learner): "
        f"{c['cores'] * 1e3 / (ms['emulation'] + ms['inference_1']):,.0f}.",
        "",
    ]


def learning_lines(learn: dict) -> list[str]:
    ours, theirs = learn["relayrl"], learn["sb3"]
    return [
        f"Learning at equal env steps ({learn['env_steps']:,} a side, seed 0, one after the other): the mean true "
        f"score of the last 100 training games, against a random policy's {learn['random_mean_score']:.1f} "
        f"({len(learn['random_scores']['runs'])} games). Curves: {learn['curve_png']}.",
        "",
        "| | mean score, last 100 games | games | wall s | env steps/s (steady) |",
        "|---|---|---|---|---|",
        f"| RelayRL A2C, preset | **{fmt(ours['mean_score_last_100'])}** | {ours['episodes']} | "
        f"{ours['wall_seconds']:.0f} | {ours['steady_steps_per_second']:.0f} |",
        f"| SB3 A2C, zoo Atari settings, {theirs['torch_threads']} torch threads | "
        f"**{fmt(theirs['mean_score_last_100'])}** | {theirs['episodes']} | {theirs['wall_seconds']:.0f} | "
        f"{theirs['steady_steps_per_second']:.0f} |",
        "",
        f"Mean of each curve over each quarter of the budget (env steps): {quarters_sentence(learn)}.",
        "",
        f"Load average at the end (1, 5, 15 min): {', '.join(f'{v:.1f}' for v in learn['load_average_at_end'])}.",
        "",
    ]


def quarters_sentence(learn: dict) -> str:
    steps = learn["env_steps"]
    ours, theirs = (quarter_means(learn[side]["curve"], steps) for side in ("relayrl", "sb3"))
    cells = [f"{steps * k // 4:,}–{steps * (k + 1) // 4:,}: {fmt(a)} against {fmt(b)}"
             for k, (a, b) in enumerate(zip(ours, theirs))]
    return "RelayRL against SB3, " + "; ".join(cells)


def quarter_means(curve: list, steps: int) -> list[float]:
    """The learning curve's mean return100 over each quarter of the budget's env steps: where two curves part,
    and whether one side is behind for long or only at the end (one seed's curve swings by tens of points)."""
    xs = [row[1] for row in curve]
    values = [math.nan if row[2] is None else row[2] for row in curve]
    return [mean_over(xs, values, steps * k / 4, steps * (k + 1) / 4) for k in range(4)]


def fmt(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.1f}"


def write(results: dict, out: Path) -> Path:
    path = results_path(out, results["quick"], results["game"])
    write_results(path, results, markdown(results))
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sb3", action="store_true", required=True)
    parser.add_argument("--game", default="ALE/Breakout-v5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-seconds", type=float, default=None)
    parser.add_argument("--curve-every", type=float, default=None)
    a = parser.parse_args()
    print(json.dumps(sb3_child(a.game, a.seed, a.steps, a.threads, a.device, a.max_seconds, a.curve_every)))
