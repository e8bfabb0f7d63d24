"""`relayrl bench --suite learning`: does RelayRL learn each standard task as well as rl-baselines3-zoo's A2C?

For every env and seed, one side after the other in one invocation: (a) `relayrl train --env ENV --seed S
--max-env-steps BUDGET` with no other hyperparameter flag (the env's preset applies), then its newest
checkpoint played greedily for the evaluation episodes (relayrl_cli.evaluate); (b) Stable-Baselines3 A2C with
the zoo's hyperparameters for the env (relayrl_cli.bench.zoo) for the same budget, its final policy played
greedily (deterministic=True, VecNormalize statistics frozen). BUDGET is the zoo's n_timesteps. Wall seconds
are from launching each process to the end of training (evaluation excluded).

Results are merged into OUT/learning.json run by run (OUT/learning-quick.json with --quick), so a long
suite can be split across invocations (`--envs`) or resumed after an interruption: a run already in the
file with the same budget and evaluation episodes is not repeated (failed runs are). learning.md, the
table, always lists every env of the suite.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from relayrl_cli.bench import pipeline, sb3, zoo
from relayrl_cli.bench.provenance import timed
from relayrl_cli.bench.report import write_results

SIDES = ("relayrl", "sb3")
EVAL_SEED = 1000  # evaluation episodes use seed EVAL_SEED + training seed, on both sides


def plan(quick: bool) -> dict:
    if quick:  # a smoke test of the plumbing: tiny budgets, few evaluation episodes; numbers mean nothing
        return {"eval_episodes": 3, "budget": lambda env_id: 3000, "curve_every": 1.0}
    return {"eval_episodes": 100, "budget": zoo.budget, "curve_every": 10.0}


def log(text: str) -> None:
    print(f"[bench learning {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _error(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()[-3000:]


def run_relayrl(env_id: str, seed: int, budget: int, episodes: int, timeout: float, curve_every: float) -> dict:
    """`relayrl train` with the env's preset for ``budget`` env steps, then its newest checkpoint, greedy."""
    import torch

    from learner_service.checkpoints import list_checkpoints
    from relayrl_cli.evaluate import evaluate, load_policy

    with tempfile.TemporaryDirectory(prefix="relayrl-learning-") as run_dir:
        s = pipeline.train(["--env", env_id, "--seed", str(seed), "--max-env-steps", str(budget)], timeout,
                           log_every=curve_every, keep_curve=True, run_dir=run_dir, keep_config=True)
        found = list_checkpoints(Path(run_dir, "checkpoints"))
        if not found:
            raise RuntimeError(f"relayrl train wrote no checkpoint in {run_dir}/checkpoints")
        evaluated = time.time()
        torch.set_num_threads(1)  # as every service and the SB3 process run
        model, trained_on = load_policy(found[0])
        returns = evaluate(model, trained_on, episodes, EVAL_SEED + seed)
    return {"seed": seed, "final_return": float(returns.mean()), "eval_returns": returns.tolist(),
            "wall_seconds": s["wall_seconds"], "eval_seconds": time.time() - evaluated, "env_steps": s["env_steps"],
            "checkpoint": found[0].name, "train_return100": s["mean_return"],
            "preset": (s.get("config") or {}).get("preset", s.get("preset")),
            "config": s.get("config"), "curve": s["curve"]}


def run_sb3(env_id: str, seed: int, budget: int, episodes: int, timeout: float, curve_every: float) -> dict:
    if not sb3.available():
        raise RuntimeError("stable-baselines3 is not installed (pip install '.[bench]')")
    r = sb3.run(seed, budget, None, timeout, env_id=env_id, eval_episodes=episodes, eval_seed=EVAL_SEED + seed,
                curve_every=curve_every)
    returns = r["eval_returns"]
    return {"seed": seed, "final_return": statistics.fmean(returns), "eval_returns": returns,
            "wall_seconds": r["wall_seconds"], "eval_seconds": r["eval_seconds"], "env_steps": r["env_steps"],
            "train_return100": r["curve"][-1][2] if r["curve"] else None, "curve": r["curve"]}


RUNNERS = {"relayrl": run_relayrl, "sb3": run_sb3}


def results_path(out: Path, quick: bool) -> Path:
    return out / ("learning-quick.json" if quick else "learning.json")


def load_results(path: Path, quick: bool) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    return {"suite": "learning", "quick": quick, "zoo_commit": zoo.ZOO_COMMIT, "envs": {}}


def env_entry(results: dict, env_id: str, budget: int, episodes: int) -> dict:
    """The env's entry, reset when the budget or the number of evaluation episodes changed."""
    entry = results["envs"].get(env_id)
    if entry is None or entry["budget"] != budget or entry["eval_episodes"] != episodes:
        entry = {"env": env_id, "budget": budget, "eval_episodes": episodes, "zoo_return": zoo.PUBLISHED[env_id],
                 "zoo_hyperparams": zoo.HYPERPARAMS[env_id], "relayrl": {}, "sb3": {}}
        results["envs"][env_id] = entry
    return entry


def run(envs: list[str], seeds: int, quick: bool, out: Path, machine: dict, timeout: float,
        rerun: bool = False) -> dict:
    p = plan(quick)
    path = results_path(out, quick)
    out.mkdir(parents=True, exist_ok=True)
    results = load_results(path, quick)
    results["machine"] = machine
    for env_id in envs:
        budget, episodes = p["budget"](env_id), p["eval_episodes"]
        entry = env_entry(results, env_id, budget, episodes)
        for seed in range(seeds):
            done = [entry[side].get(str(seed)) for side in SIDES]
            if all(r is not None and "error" not in r for r in done) and not rerun:
                for side in SIDES:
                    log(f"{env_id} seed {seed} {side}: in {path.name} already")
                continue
            # Both sides of a seed, one after the other, even when only one is missing: a pair is always
            # measured in the same invocation under the same load, never one side kept from another day.
            for side in SIDES:
                log(f"{env_id} seed {seed} {side}: {budget:,} env steps, then {episodes} greedy episodes")
                entry[side][str(seed)] = timed(attempt, side, env_id, seed, budget, episodes, timeout, p)
                write(results, path)
    return results


def attempt(side: str, env_id: str, seed: int, budget: int, episodes: int, timeout: float, p: dict) -> dict:
    """One side's run, or its error: the table shows every env, failed ones with their error."""
    try:
        r = RUNNERS[side](env_id, seed, budget, episodes, timeout, p["curve_every"])
    except Exception as exc:  # noqa: BLE001
        r = {"seed": seed, "error": _error(exc)}
        log(f"  failed: {r['error'].splitlines()[-1]}")
        return r
    log(f"  final return {r['final_return']:.1f}, {r['wall_seconds']:.0f} s")
    return r


def row(env_id: str, entry: dict | None, quick: bool = False) -> dict:
    """One table row: every side's final return (median, min, max over seeds) and wall seconds; where
    RelayRL's median is below the zoo's figure, by how much (else 0); the errors of failed runs."""
    out: dict = {"env": env_id, "budget": plan(quick)["budget"](env_id) if entry is None else entry["budget"],
                 "zoo_return": zoo.PUBLISHED[env_id], "errors": []}
    for side in SIDES:
        runs = [] if entry is None else sorted(entry[side].values(), key=lambda r: r["seed"])
        ok = [r for r in runs if "error" not in r]
        out["errors"] += [f"{side} seed {r['seed']}: {r['error'].splitlines()[-1][:200]}" for r in runs if "error" in r]
        out[side] = None if not ok else {
            "seeds": [r["seed"] for r in ok],
            "final_return": {"median": statistics.median(r["final_return"] for r in ok),
                             "min": min(r["final_return"] for r in ok), "max": max(r["final_return"] for r in ok)},
            "wall_seconds": statistics.median(r["wall_seconds"] for r in ok),
        }
    ours, sb3_side = out["relayrl"], out["sb3"]
    out["short_of_zoo"] = None if ours is None else max(out["zoo_return"] - ours["final_return"]["median"], 0.0)
    out["short_of_sb3"] = None if ours is None or sb3_side is None else max(
        sb3_side["final_return"]["median"] - ours["final_return"]["median"], 0.0)
    return out


def verdict(short: float | None, of: str) -> str:
    if short is None:
        return "no result"
    return f"**short of {of}** by {short:,.1f}" if short > 0 else "at or above"


def load_line(results: dict) -> str:
    """The 1-minute load average at the start and end of every run: how quiet the machine was for the wall
    seconds (the returns, counted in env steps, do not depend on it)."""
    loads = [load for entry in results["envs"].values() for side in SIDES for r in entry[side].values()
             if "run" in r for load in (r["run"]["load_average_at_start"][0], r["run"]["load_average_at_end"][0])]
    if not loads:
        return "No run carries a load average (measured before runs were stamped)."
    cores = results.get("machine", {}).get("cpu_count", "?")
    return (f"1-minute load average at the runs' starts and ends: {min(loads):.1f}–{max(loads):.1f} on {cores} "
            "cores; wall seconds measured above the core count were slowed by other work.")


def _across_seeds(runs: dict, of: Callable[[dict], float | None]) -> str:
    """The median over a side's seeds of ``of(run)``, formatted; runs that failed or lack the figure left out."""
    values = [v for run in runs.values() if "error" not in run and (v := of(run)) is not None]
    return f"{statistics.median(values):,.1f}" if values else "n/a"


def _worst_twentieth(run: dict) -> float:
    ranked = sorted(run["eval_returns"])
    return statistics.fmean(ranked[: max(len(ranked) // 20, 1)])


def gap_lines(results: dict) -> list[str]:
    """For each row short of SB3, where the gap lies: the typical greedy episode, the worst 5% of them, and the
    sampling policy's last 100 training episodes (medians over the seeds, RelayRL against SB3). A final return
    is a mean over greedy episodes, so a few long ones can make a row short with the typical episode equal."""
    lines = []
    for env_id in zoo.ENVS:
        entry = results["envs"].get(env_id)
        r = row(env_id, entry, bool(results.get("quick")))
        if not r["short_of_sb3"]:
            continue

        pairs = [(what, _across_seeds(entry["relayrl"], of), _across_seeds(entry["sb3"], of)) for what, of in (
            ("the median greedy episode", lambda run: statistics.median(run["eval_returns"])),
            ("the mean of the worst 5% of greedy episodes", _worst_twentieth),
            ("the last 100 training episodes (sampled actions)", lambda run: run.get("train_return100")))]
        lines.append(f"- {env_id}, short of SB3 by {r['short_of_sb3']:,.1f}: "
                     + "; ".join(f"{what} {ours} against {theirs}" for what, ours, theirs in pairs)
                     + " (medians over the seeds, RelayRL against SB3).")
    return ["Where a row is short of SB3:", "", *lines, ""] if lines else []


def markdown(results: dict) -> str:
    m = results.get("machine", {})
    quick = results.get("quick")
    lines = [
        f"# RelayRL learning benchmark{' (quick: a smoke test, the numbers mean nothing)' if quick else ''}",
        "",
        f"{m.get('cpu_count', '?')} cores, {m.get('platform', '?')}, Python {m.get('python', '?')}, torch "
        f"{m.get('torch', '?')}. Final return: the mean over the evaluation episodes of the final policy, played "
        "greedily; median (min–max) over the seeds. Wall seconds: launch to the end of training, median. "
        f"SB3 A2C with rl-baselines3-zoo's hyperparameters (commit {results.get('zoo_commit', '?')[:7]}); zoo A2C: "
        "the zoo's published figure. Each seed's two sides ran one after the other in one invocation (a side "
        "missing or failed re-runs both); each run's commit, command, start, end and load average are in its "
        "`run` stamp in the JSON file.",
        "",
        "| env | budget (env steps) | RelayRL final return | RelayRL s | SB3 A2C final return | SB3 s | "
        "RelayRL vs SB3 | zoo A2C | RelayRL vs zoo | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for env_id in zoo.ENVS:
        entry = results["envs"].get(env_id)
        r = row(env_id, entry, bool(quick))
        cells = []
        for side in SIDES:
            s = r[side]
            if s is None:
                failed = any(e.startswith(f"{side} ") for e in r["errors"])
                cells += ["failed (see notes)" if failed else "not run yet", ""]
            else:
                f = s["final_return"]
                cells += [f"{f['median']:,.1f} ({f['min']:,.1f}–{f['max']:,.1f}), {len(s['seeds'])} seeds",
                          f"{s['wall_seconds']:,.0f}"]
        notes = "; ".join(r["errors"]).replace("|", "/")
        lines.append(f"| {env_id} | {r['budget']:,} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} | "
                     f"{verdict(r['short_of_sb3'], 'SB3')} | {r['zoo_return']:g} | {verdict(r['short_of_zoo'], 'zoo')} "
                     f"| {notes} |")
    lines += ["", *gap_lines(results), load_line(results), ""]
    return "\n".join(lines)


def write(results: dict, path: Path) -> None:
    results["table"] = [row(env_id, results["envs"].get(env_id), results["quick"]) for env_id in zoo.ENVS]
    write_results(path, results, markdown(results))
