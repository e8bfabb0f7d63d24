"""`relayrl bench --suite domains`: the standard tasks of the domains RelayRL's users come from, RelayRL beside
Stable-Baselines3 A2C at equal env steps, interleaved per seed in one run.

- driving: highway-env's highway-fast-v0 (5x5 Kinematics observations, flattened);
- games: MinAtar Breakout-v1 and SpaceInvaders-v1 (10x10 channels-last bool grids: MinAtar's small CNN here;
  SB3 does not take bool grids for images, so it flattens them, as it does out of the box);
- robots: gymnasium-robotics' PointMaze_UMazeDense-v3 (Dict goal observations; SB3's MultiInputPolicy);
- a MultiDiscrete task: relayrl_cli.bench.tasks' TwoWalkers-v0 (no standard env has MultiDiscrete actions).

RelayRL runs `relayrl train --env ENV --seed S --max-env-steps BUDGET` with the env's preset
(relayrl/presets/domains.toml); SB3 runs A2C with its own defaults (no zoo entry exists for these envs) on
SB3_ENVS parallel envs. Each final policy is played greedily by the same loop (relayrl.evaluation), for
EVAL_EPISODES episodes, cut at MAX_EPISODE_STEPS (MinAtar has no time limit); a uniformly random policy is
played the same way. Budgets fit a 2-core machine (minutes a run): they show where each side stands early in
its curve, not the asymptote. Results are merged into OUT/domains.json run by run, each with its ``run`` stamp
(relayrl_cli.bench.provenance: commit, command, start, end and load average); a run already there is not repeated.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from relayrl_cli.bench import pipeline, provenance
from relayrl_cli.bench.report import write_results

EVAL_EPISODES = 20
MAX_EPISODE_STEPS = 5000
SB3_ENVS = 8
SIDES = ("relayrl", "sb3")
EVAL_SEED = 1000


@dataclass(frozen=True)
class Task:
    domain: str
    env: str
    budget: int
    sb3_policy: str
    why: str  # the budget's reason


# In the order they run: the quick ones first.
TASKS = [
    Task("multi-discrete", "relayrl_cli.bench.tasks:TwoWalkers-v0", 50_000, "MlpPolicy", "3k episodes of 16 steps"),
    Task("robots", "gymnasium_robotics:PointMaze_UMazeDense-v3", 100_000, "MultiInputPolicy",
         "333 episodes of 300 steps, a few minutes a run"),
    Task("games", "MinAtar/Breakout-v1", 200_000, "MlpPolicy", "1-4 min a run"),
    Task("games", "MinAtar/SpaceInvaders-v1", 200_000, "MlpPolicy", "1-4 min a run"),
    Task("driving", "highway_env:highway-fast-v0", 4_000, "MlpPolicy",
         "highway-env steps 10-30 times a second here (its traffic model is Python): 4k steps (about 150 episodes) "
         "is several minutes a run"),
]
BY_ENV = {t.env: t for t in TASKS}


def log(text: str) -> None:
    print(f"[bench domains {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def stamp_of_first_format(record: dict, invocations: list[dict]) -> dict:
    """The ``run`` stamp of a run written by this suite's first version (commit f9accf3), from the fields it
    recorded itself at the time (its commit, dirty flag, start, end and load averages; the command from the
    invocation it ran in)."""
    command = next((i["command"] for i in reversed(invocations) if i["started_at"] <= record["started_at"]), None)
    return {"commit": record["git_commit"], "dirty": record["git_dirty"], "command": command,
            "started_at": record["started_at"], "finished_at": record["finished_at"],
            "load_average_at_start": record["load_average_before"], "load_average_at_end": record["load_average_after"]}


def evaluate(act, env_id: str, episodes: int, seed: int) -> list[float]:
    from relayrl.evaluation import play_first_episodes

    return play_first_episodes(act, env_id, episodes, seed, max_steps=MAX_EPISODE_STEPS)[0].tolist()


def random_policy(env_id: str, episodes: int, seed: int) -> list[float]:
    from relayrl.envs import single_spaces

    _, action_space = single_spaces(env_id)
    action_space.seed(seed)
    return evaluate(lambda obs: np.stack([action_space.sample() for _ in range(episodes)]), env_id, episodes, seed)


def run_relayrl(task: Task, seed: int, budget: int, episodes: int, timeout: float) -> dict:
    import torch

    from learner_service.checkpoints import list_checkpoints
    from relayrl.evaluation import play_greedy
    from relayrl_cli.evaluate import load_policy

    with tempfile.TemporaryDirectory(prefix="relayrl-domains-") as run_dir:
        s = pipeline.train(["--env", task.env, "--seed", str(seed), "--max-env-steps", str(budget)], timeout,
                           log_every=5.0, keep_curve=True, run_dir=run_dir, keep_config=True)
        found = list_checkpoints(Path(run_dir, "checkpoints"))
        if not found:
            raise RuntimeError(f"relayrl train wrote no checkpoint in {run_dir}/checkpoints")
        torch.set_num_threads(1)
        model, env_id = load_policy(found[0])
        returns = play_greedy(model, env_id, episodes, EVAL_SEED + seed, max_steps=MAX_EPISODE_STEPS)[0].tolist()
    return {"final_return": statistics.fmean(returns), "eval_returns": returns, "env_steps": s["env_steps"],
            "wall_seconds": s["wall_seconds"], "preset": (s.get("config") or {}).get("preset"), "curve": s["curve"]}


def sb3_child(env_id: str, seed: int, budget: int, episodes: int, policy: str) -> dict:
    """SB3 A2C with its defaults on SB3_ENVS envs for ``budget`` env steps, then its greedy policy."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env

    from relayrl.envs import env_spec

    torch.set_num_threads(1)
    spec = env_spec(env_id)  # imports the env's module (MinAtar: registers its ids)
    started = time.time()
    env = make_vec_env(lambda: gym.make(spec.id), n_envs=SB3_ENVS, seed=seed)
    model = A2C(policy, env, seed=seed, device="cpu", verbose=0)
    model.learn(total_timesteps=budget)
    trained = time.time()
    returns = evaluate(lambda obs: model.predict(obs, deterministic=True)[0], env_id, episodes, EVAL_SEED + seed)
    return {"final_return": statistics.fmean(returns), "eval_returns": returns, "env_steps": model.num_timesteps,
            "train_seconds": trained - started}


def run_sb3(task: Task, seed: int, budget: int, episodes: int, timeout: float) -> dict:
    args = [sys.executable, "-m", "relayrl_cli.bench.domains", "--sb3-child", task.env, "--seed", str(seed),
            "--budget", str(budget), "--episodes", str(episodes), "--policy", task.sb3_policy]
    launched = time.time()
    result = pipeline.run_group(args, timeout)
    if result.returncode != 0:
        raise RuntimeError(f"SB3 run failed ({result.returncode}):\n{result.stderr[-2000:]}")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out["wall_seconds"] = time.time() - launched
    return out


RUNNERS = {"relayrl": run_relayrl, "sb3": run_sb3}


def run(envs: list[str], seeds: int, quick: bool, out: Path, timeout: float, rerun: bool = False) -> dict:
    path = out / ("domains-quick.json" if quick else "domains.json")
    out.mkdir(parents=True, exist_ok=True)
    results = json.loads(path.read_text()) if path.exists() else {"suite": "domains", "quick": quick, "envs": {}}
    invocations = results.pop("invocations", [])  # the first version's record of each invocation
    for entry in results["envs"].values():
        for side in SIDES:
            for record in entry[side].values():
                if "run" not in record and "git_commit" in record:
                    record["run"] = stamp_of_first_format(record, invocations)
    episodes = 2 if quick else EVAL_EPISODES
    for env_id in envs:
        task = BY_ENV[env_id]
        budget = 2_000 if quick else task.budget
        entry = results["envs"].get(env_id)
        if entry is None or entry["budget"] != budget or entry["eval_episodes"] != episodes:
            entry = results["envs"][env_id] = {"env": env_id, "domain": task.domain, "budget": budget,
                                               "budget_why": task.why, "eval_episodes": episodes,
                                               "sb3_policy": task.sb3_policy, "relayrl": {}, "sb3": {}}
        if "random" not in entry:
            entry["random"] = {"returns": random_policy(env_id, episodes, EVAL_SEED)}
            write(results, path)
        for seed in range(seeds):
            for side in SIDES:  # interleaved: both sides of a seed run back to back, on the same machine state
                done = entry[side].get(str(seed))
                if done is not None and "error" not in done and not rerun:
                    continue
                log(f"{env_id} seed {seed} {side}: {budget:,} env steps, then {episodes} greedy episodes")
                started, load_before = time.time(), provenance.load_average()
                record = {"seed": seed}
                try:
                    record.update(RUNNERS[side](task, seed, budget, episodes, timeout))
                    log(f"  final return {record['final_return']:.2f}, {record['wall_seconds']:.0f} s")
                except Exception as exc:  # noqa: BLE001 - the table shows every env, failed ones with their error
                    record["error"] = "".join(traceback.format_exception_only(exc)).strip()[-3000:]
                    log(f"  failed: {record['error'].splitlines()[-1]}")
                record["run"] = provenance.stamp_since(started, load_before)
                entry[side][str(seed)] = record
                write(results, path)
    write(results, path)  # even when every run was there: the file then carries this invocation's provenance
    return results


def row(entry: dict) -> dict:
    out = {"env": entry["env"], "domain": entry["domain"], "budget": entry["budget"],
           "random": statistics.fmean(entry["random"]["returns"]) if "random" in entry else None}
    for side in SIDES:
        ok = [r for r in entry[side].values() if "error" not in r]
        out[side] = None if not ok else {
            "seeds": len(ok), "median": statistics.median(r["final_return"] for r in ok),
            "min": min(r["final_return"] for r in ok), "max": max(r["final_return"] for r in ok),
            "wall_seconds": statistics.median(r["wall_seconds"] for r in ok)}
        out[f"{side}_errors"] = [r["error"].splitlines()[-1][:200] for r in entry[side].values() if "error" in r]
    ours, theirs = out["relayrl"], out["sb3"]
    out["short_of_sb3"] = None if ours is None or theirs is None else ours["median"] < theirs["median"]
    return out


def markdown(results: dict) -> str:
    lines = [
        f"# RelayRL on each domain's standard task{' (quick: the numbers mean nothing)' if results['quick'] else ''}",
        "",
        f"Final greedy return of the final policy over {EVAL_EPISODES} episodes (cut at {MAX_EPISODE_STEPS:,} steps), "
        "median (min–max) over seeds; SB3 A2C with its defaults on 8 envs, interleaved per seed at equal env "
        "steps. Wall seconds: median, launch to the end of training, on a machine shared with other work: each run's "
        "load average is in domains.json.",
        "",
        "| domain | env | budget (env steps) | random | RelayRL | RelayRL s | SB3 A2C | SB3 s | vs SB3 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for task in TASKS:
        entry = results["envs"].get(task.env)
        if entry is None:
            lines.append(f"| {task.domain} | {task.env} | {task.budget:,} | | not run yet | | not run yet | | |")
            continue
        r = row(entry)
        cells = []
        for side in SIDES:
            s = r[side]
            if s is None:
                cells += ["failed: " + "; ".join(r[f"{side}_errors"]) if r[f"{side}_errors"] else "not run yet", ""]
            else:
                cells += [f"{s['median']:.2f} ({s['min']:.2f}–{s['max']:.2f}), {s['seeds']} seeds",
                          f"{s['wall_seconds']:,.0f}"]
        verdict = "" if r["short_of_sb3"] is None else "**short**" if r["short_of_sb3"] else "at or above"
        random_cell = "" if r["random"] is None else f"{r['random']:.2f}"
        lines.append(f"| {task.domain} | {task.env} | {r['budget']:,} | {random_cell} | {cells[0]} | {cells[1]} | "
                     f"{cells[2]} | {cells[3]} | {verdict} |")
    lines += ["", "Budgets: " + "; ".join(f"{t.env.rpartition(':')[2]}: {t.why}" for t in TASKS) + ".", ""]
    return "\n".join(lines)


def write(results: dict, path: Path) -> None:
    results["table"] = [row(e) for e in results["envs"].values()]
    write_results(path, results, markdown(results))


if __name__ == "__main__":  # the SB3 side, in a process of its own
    parser = argparse.ArgumentParser()
    parser.add_argument("--sb3-child", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--budget", type=int, required=True)
    parser.add_argument("--episodes", type=int, required=True)
    parser.add_argument("--policy", required=True)
    a = parser.parse_args()
    print(json.dumps(sb3_child(a.sb3_child, a.seed, a.budget, a.episodes, a.policy)))
