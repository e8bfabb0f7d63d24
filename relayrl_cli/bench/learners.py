"""`relayrl bench --suite learners`: data-parallel learner ranks (issue 26) against one learner, on this machine.

- Curves: `relayrl train --learners 2 --actors 2` (2 ranks x 1 actor) against `--learners 1 --actors 2` (1 rank x
  2 actors) on CartPole and on a pixel task (MinAtar Breakout), the presets' settings otherwise, seeds 0..N-1,
  the two shapes interleaved per seed. Each update trains on the same transitions in both shapes (two actors'
  rounds, in one rank or split over two), so the curves against env steps should agree; what differs is what
  the all-reduce and a second process cost on the machine's cores. Reported: mean return of the last 100
  episodes at fixed env steps, the env steps and seconds to a threshold, env steps/s.
- All-reduce: the ranks' one collective per update (learner_service.group.average_gradients) between 2 gloo
  ranks on this machine, for the CartPole MLP and the Atari Nature CNN, milliseconds per update.

Writes OUT/learners.json and learners.md (OUT/learners-quick.* with --quick), each run stamped (provenance).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from relayrl_cli.bench import pipeline
from relayrl_cli.bench.provenance import timed
from relayrl_cli.bench.report import write_results

SHAPES = {"1 rank x 2 actors": ["--learners", "1", "--actors", "2"],
          "2 ranks x 1 actor": ["--learners", "2", "--actors", "2"]}
# env -> (env steps a run, the return a curve is timed to, env steps at which the curves are compared)
TASKS = {"CartPole-v1": (400_000, 475.0, (100_000, 200_000, 300_000, 400_000)),
         "MinAtar/Breakout-v1": (150_000, 3.0, (50_000, 100_000, 150_000))}
QUICK_TASKS = {"CartPole-v1": (6_000, 30.0, (3_000, 6_000))}


def log(text: str) -> None:
    print(f"[bench learners {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def results_path(out: Path, quick: bool) -> Path:
    return out / ("learners-quick.json" if quick else "learners.json")


def return_at(curve: list, steps: int) -> float | None:
    """return100 on the last curve row at or before ``steps`` env steps (None before any episode ended)."""
    rows = [row for row in curve if row[1] <= steps and row[2] is not None and row[2] == row[2]]
    return rows[-1][2] if rows else None


def first_reaching(curve: list, target: float) -> list | None:
    """The first row [seconds, env_steps, return100] at or above ``target``, if any."""
    return next((row for row in curve if row[2] is not None and row[2] >= target), None)


def one_run(env_id: str, shape: str, seed: int, budget: int, target: float, at: tuple[int, ...]) -> dict:
    s = pipeline.train(["--env", env_id, "--seed", str(seed), "--max-env-steps", str(budget), *SHAPES[shape]],
                       timeout=1800, log_every=0.5, keep_curve=True)
    reached = first_reaching(s["curve"], target)
    return {"env": env_id, "shape": shape, "seed": seed, "env_steps": s["env_steps"],
            "wall_seconds": s["wall_seconds"], "steady_steps_per_second": s["steady_steps_per_second"],
            "updates": s["updates"], "learners": s.get("learners"), "final_return100": s["mean_return"],
            "return_at": {str(n): return_at(s["curve"], n) for n in at},
            "reached": None if reached is None else {"seconds": reached[0], "env_steps": reached[1]},
            "curve": s["curve"]}


def curves(tasks: dict, seeds: int) -> dict:
    runs: dict = {}
    for env_id, (budget, target, at) in tasks.items():
        for seed in range(seeds):
            for shape in SHAPES:  # interleaved per seed: drift on this machine touches both shapes alike
                log(f"{env_id} seed {seed}, {shape}: {budget:,} env steps")
                runs.setdefault(env_id, {}).setdefault(shape, []).append(
                    timed(one_run, env_id, shape, seed, budget, target, at))
    return runs


def _allreduce_rank(rank: int, init: str, model_name: str, reps: int, out: str) -> None:
    import torch
    import torch.distributed as dist

    from learner_service.group import average_gradients

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    model = _model(model_name)
    params = list(model.parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    times = []
    for i in range(reps + 3):
        began = time.perf_counter()
        average_gradients(params, 40.0, env_steps=40.0)
        if i >= 3:  # warm-up: the first collectives set up the connections
            times.append((time.perf_counter() - began) * 1e3)
    if rank == 0:
        Path(out).write_text(",".join(f"{t:.6f}" for t in times))
    dist.destroy_process_group()


def _model(name: str):
    import gymnasium as gym
    import numpy as np

    from relayrl.model import ActorCritic

    if name == "cartpole_mlp":
        obs = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
        return ActorCritic(obs, gym.spaces.Discrete(2), (64, 64))
    obs = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    return ActorCritic(obs, gym.spaces.Discrete(4), (64, 64))  # images get the Nature CNN


def allreduce_cost(reps: int) -> dict:
    """Milliseconds of one average_gradients between 2 gloo ranks (processes) on this machine, per model."""
    import torch.multiprocessing as mp

    out = {}
    for name in ("cartpole_mlp", "atari_nature_cnn"):
        with tempfile.TemporaryDirectory(prefix="relayrl-allreduce-") as tmp:
            mp.start_processes(_allreduce_rank, args=(f"file://{tmp}/rendezvous", name, reps, f"{tmp}/times"),
                               nprocs=2, start_method="spawn")
            times = [float(t) for t in Path(tmp, "times").read_text().split(",")]
        params = sum(p.numel() for p in _model(name).parameters())
        out[name] = {"parameters": params, "bytes": 4 * params, "ms": {
            "median": statistics.median(times), "min": min(times), "max": max(times)}, "reps": len(times)}
        log(f"all-reduce {name} ({params:,} parameters): median {out[name]['ms']['median']:.3f} ms")
    return out


def summarise(runs: dict) -> dict:
    table: dict = {}
    for env_id, shapes in runs.items():
        for shape, rs in shapes.items():
            def med(values):
                values = [v for v in values if v is not None]
                return statistics.median(values) if values else None

            at = rs[0]["return_at"].keys()
            table.setdefault(env_id, {})[shape] = {
                "seeds": len(rs),
                "return_at": {n: med([r["return_at"][n] for r in rs]) for n in at},
                "reached": sum(r["reached"] is not None for r in rs),
                "reached_env_steps": med([r["reached"]["env_steps"] for r in rs if r["reached"]]),
                "reached_seconds": med([r["reached"]["seconds"] for r in rs if r["reached"]]),
                "steady_steps_per_second": med([r["steady_steps_per_second"] for r in rs]),
            }
    return table


def run(seeds: int, quick: bool, out: Path, machine: dict) -> dict:
    tasks = QUICK_TASKS if quick else TASKS
    results = {"quick": quick, "machine": machine, "tasks": {k: list(v) for k, v in tasks.items()},
               "shapes": SHAPES, "runs": curves(tasks, seeds)}
    results["allreduce"] = timed(allreduce_cost, 20 if quick else 200)
    results["table"] = summarise(results["runs"])
    results["load_average_at_end"] = os.getloadavg()
    write_results(results_path(out, quick), results, markdown(results))
    return results


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"# Several learner ranks against one{' (quick: smoke-test budgets)' if r['quick'] else ''}", "",
             f"{m.get('cpu_count', '?')} cores, no GPU, torch {m.get('torch', '?')}, gloo. Both shapes run the "
             "same actors (2, the preset's envs each) and so train on the same transitions per update; medians "
             "over the seeds, the shapes interleaved per seed. Load average at the end (1, 5, 15 min): "
             f"{', '.join(f'{v:.1f}' for v in r['load_average_at_end'])}.", ""]
    for env_id, shapes in r["table"].items():
        budget, target, at = r["tasks"][env_id]
        lines += [f"## {env_id}, {budget:,} env steps a run", "",
                  "| shape | " + " | ".join(f"return100 at {int(n):,}" for n in at)
                  + f" | runs reaching {target:g} | env steps to it | s to it | env steps/s |",
                  "|---|" + "---|" * (len(at) + 4)]
        for shape, row in shapes.items():
            lines.append(f"| {shape} | " + " | ".join(fmt(row["return_at"][str(n)]) for n in at)
                         + f" | {row['reached']} of {row['seeds']} | {fmt(row['reached_env_steps'], 0)} | "
                         f"{fmt(row['reached_seconds'])} | {fmt(row['steady_steps_per_second'], 0)} |")
        lines.append("")
    lines += ["## The all-reduce, 2 gloo ranks on this machine", "", "| model | parameters | ms per update |",
              "|---|---|---|"]
    for name, a in r["allreduce"].items():
        if name == "run":
            continue
        ms = a["ms"]
        lines.append(f"| {name} | {a['parameters']:,} | {ms['median']:.3f} ({ms['min']:.3f}–{ms['max']:.3f}) |")
    return "\n".join(lines) + "\n"
