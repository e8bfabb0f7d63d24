"""`relayrl bench [--quick] [--out DIR]`: every figure of the performance comparison, in one run.
`relayrl bench --suite learning [--quick] [--envs A,B] [--seeds N] [--out DIR]`: the learning benchmark
against rl-baselines3-zoo's A2C results (relayrl_cli.bench.learning).
`relayrl bench --suite hold [--quick] [--shapes 1x16,8x256] [--seeds N] [--out DIR]`: whether CartPole's solve
holds at every fleet shape (relayrl_cli.bench.hold).
`relayrl bench --suite atari [--quick] [--game ALE/Breakout-v5] [--seeds N] [--learn-steps N]`: Atari throughput
against SB3 A2C and a bounded-time learning run (relayrl_cli.bench.atari).
`relayrl bench --suite domains [--quick] [--envs A,B] [--seeds N]`: each domain's standard task (driving, games,
robots, MultiDiscrete) against SB3 A2C at equal env steps (relayrl_cli.bench.domains).
`relayrl bench --suite device [--quick] [--game G] [--budget-seconds S]`: the GPU learner proven on this machine
within a time budget: correctness on the device, Atari against SB3 on the device, A3C, CartPole's scaling
(relayrl_cli.bench.device)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from relayrl_cli.bench import (
    atari,
    ceilings,
    device,
    domains,
    hold,
    learners,
    learning,
    pipeline,
    provenance,
    sb3,
    transport,
    zoo,
)
from relayrl_cli.bench.provenance import machine, timed
from relayrl_cli.bench.report import markdown, write_results
from relayrl_cli.bench.solve import HOLD
from relayrl_cli.bench.stats import paired_ratio, summary

TRANSPORTS = [("a2c", "trajectories"), ("a3c", "gradients"), ("a3c", "trajectories")]
# The throughput configuration: the default's algorithm and learning rate with 4x the envs per actor,
# bigger batches for fewer rounds. It counts for the headline only if it solves CartPole in the same run.
WIDE = dict(algo="a2c", transport="trajectories", actors=2, num_envs=256, budget_factor=3)  # x pipeline and solve steps
# The fastest held solve measured here (issue 24): A3C with one actor of 64 envs, CartPole's a3c preset otherwise.
# A2C's barrier makes the actor and the learner take turns (measured with one actor of 32 envs: a round of 3.6 ms,
# of which the update is 1.6 and the collection 0.9); A3C's actor collects its next rollout while the learner
# applies the last, and sends it to wait in the learner's queue (two in flight), so both cores work. Its hold matrix:
# `relayrl bench --suite hold --algo a3c --transport trajectories` (hold-a3c-trajectories.md).
FAST_SOLVE = ["--algo", "a3c", "--transport", "trajectories", "--actors", "1", "--num-envs", "64"]


def plan(quick: bool) -> dict:
    if quick:  # a smoke test of every section: tiny budgets, one repetition
        return dict(reps=1, seconds=0.2, actors=[1], pipeline_steps=4096, solve_target=30.0, solve_steps=300_000,
                    solve_seconds=90, sb3_steps=2000, sb3_solve_steps=200_000, broadcasts=10, big_broadcasts=3)
    # Solve runs go on past the first crossing: a held solve at x0 env steps is decided at 2 x0, so the
    # budget decides crossings up to half of it (RelayRL runs it whole; SB3 stops once a held solve is decided).
    return dict(reps=3, seconds=2.0, actors=[1, 2, 4], pipeline_steps=300_000, solve_target=475.0,
                solve_steps=2_000_000, solve_seconds=180, sb3_steps=100_000, sb3_solve_steps=1_000_000,
                broadcasts=200, big_broadcasts=20)


def _at(runs: list[dict], point: str, key: str) -> list[float]:
    """``key`` of each run's ``point`` (first_crossing or held); infinity where the run has none."""
    return [r[point][key] if r[point] is not None else float("inf") for r in runs]


def solve_figures(runs: list[dict]) -> dict:
    """Held solve (the headline) and first crossing, each as wall seconds and env steps over the runs."""
    return {"wall_seconds": summary(_at(runs, "held", "wall_seconds")),
            "env_steps": summary(_at(runs, "held", "env_steps")),
            "first_crossing": {"wall_seconds": summary(_at(runs, "first_crossing", "wall_seconds")),
                               "env_steps": summary(_at(runs, "first_crossing", "env_steps"))},
            "all_solved": all(r["held"] is not None for r in runs),
            "all_crossed": all(r["first_crossing"] is not None for r in runs)}


def solve_section(p: dict, seeds: list[int], extra: list[str], budget_factor: int = 1) -> dict:
    runs = [timed(pipeline.solve_run, p["solve_target"], s, p["solve_steps"] * budget_factor, p["solve_seconds"], extra)
            for s in seeds]
    return {"target": p["solve_target"], "hold": HOLD, "extra_args": extra, "runs": runs, **solve_figures(runs)}


def train_defaults() -> dict:
    """What `relayrl train` runs on CartPole with no option (its preset over the built-in defaults): the
    ceilings step the same envs per actor with the same policy."""
    from relayrl.config import load
    from relayrl_cli.train import TrainConfig

    return dataclasses.asdict(load(TrainConfig, ["--env", "CartPole-v1"], environ={}))


def _ratio(ours: list[float], theirs: list[float]) -> float | None:
    """Median of the paired (same seed) ratios; a side that did not solve counts as infinitely slow (ratio
    infinity or 0), a seed where neither solved is left out; None if no seed is left."""
    pairs = [(a, b) for a, b in zip(ours, theirs, strict=True) if a != float("inf") or b != float("inf")]
    return paired_ratio([a for a, _ in pairs], [b for _, b in pairs])["median"] if pairs else None


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run(quick: bool, env_id: str = "CartPole-v1") -> dict:
    p = plan(quick)
    seeds = list(range(p["reps"]))
    result: dict = {"machine": machine(), "quick": quick, "env": env_id, "plan": p}
    log("ceilings")
    defaults = train_defaults()
    num_envs = defaults["num_envs"]  # what each pipeline actor steps: its ceiling is the one to compare with
    policy = dict(hidden_sizes=defaults["hidden_sizes"], activation=defaults["activation"])
    result["ceilings"] = {
        str(n): {"env_only_steps_per_second": summary([ceilings.env_only(env_id, n, p["seconds"], s) for s in seeds]),
                 "env_and_inference_steps_per_second":
                     summary([ceilings.env_and_inference(env_id, n, p["seconds"], **policy, seed=s) for s in seeds])}
        for n in sorted({num_envs, 64, WIDE["num_envs"]})
    }
    log("transport")
    result["transport"] = {
        "codec": transport.codec_microseconds(200),
        "broadcast_cartpole": transport.broadcast_latency(transport.CARTPOLE_HIDDEN, p["broadcasts"]),
        "broadcast_1m_params": transport.broadcast_latency(transport.MILLION_HIDDEN, p["big_broadcasts"]),
        "broadcast_atari_cnn": transport.broadcast_latency((64,), p["big_broadcasts"], env="ALE/Pong-v5"),
        "gradient_cartpole": transport.gradient_bytes(transport.CARTPOLE_HIDDEN),
        "gradient_1m_params": transport.gradient_bytes(transport.MILLION_HIDDEN),
    }
    log("pipeline throughput")
    configs = [(f"{algo}/{kind}/{actors}", algo, kind, actors, num_envs, p["pipeline_steps"])
               for algo, kind in TRANSPORTS for actors in p["actors"]]
    wide_key = f"{WIDE['algo']}/{WIDE['transport']}/{WIDE['actors']} ({WIDE['num_envs']} envs)"
    configs.append((wide_key, WIDE["algo"], WIDE["transport"], WIDE["actors"], WIDE["num_envs"],
                    p["pipeline_steps"] * WIDE["budget_factor"]))
    throughput = {}
    for key, algo, kind, actors, envs, budget in configs:
        extra = ["--num-envs", str(envs)]
        runs = [timed(pipeline.throughput, algo, kind, actors, budget, s, timeout=300, extra=extra) for s in seeds]
        row = {k: summary([r[k] for r in runs]) for k in ("steady_steps_per_second", "steps_per_second",
                                                          "updates_per_second", "samples_per_second",
                                                          "mean_policy_lag")}
        row["num_envs_per_actor"] = envs
        row["run_stamps"] = [r["run"] for r in runs]
        ceiling = result["ceilings"][str(envs)]["env_and_inference_steps_per_second"]["median"]
        row["vs_ceiling"] = row["steady_steps_per_second"]["median"] / ceiling
        throughput[key] = row
        log(f"  {key}: {row['steady_steps_per_second']}")
    result["pipeline"] = throughput
    log("time to solve (default configuration, the throughput configuration, the fastest configuration)")
    result["solve"] = solve_section(p, seeds, [])
    # 512 envs cross later in env steps (1.9M here): its budget must reach twice that to decide a held solve.
    result["solve_wide"] = {"pipeline": wide_key, **solve_section(p, seeds, ["--num-envs", str(WIDE["num_envs"])],
                                                                  WIDE["budget_factor"])}
    result["solve_fast"] = solve_section(p, seeds, FAST_SOLVE)
    # The headline is the fastest configuration that also solved CartPole in this run.
    solved = {k for k in throughput if result["solve_wide" if k == wide_key else "solve"]["all_solved"]}
    candidates = solved or set(throughput)
    best = max(candidates, key=lambda k: throughput[k]["steady_steps_per_second"]["median"])
    result["pipeline_best"] = best
    result["pipeline_best_solves"] = best in solved
    result["pipeline_vs_ceiling"] = throughput[best]["vs_ceiling"]
    solve, fast = result["solve"]["runs"], result["solve_fast"]["runs"]
    if sb3.available():
        log("Stable-Baselines3 A2C (rl-baselines3-zoo CartPole-v1 hyperparameters)")
        sb3_speed = [timed(sb3.run, s, p["sb3_steps"], None, timeout=600) for s in seeds]
        sb3_solve = []
        for s in seeds:
            r = timed(sb3.run, s, p["sb3_solve_steps"], p["solve_target"], timeout=1200)
            sb3_solve.append({**r["solve"], "env_steps_run": r["env_steps"], "wall_seconds_run": r["wall_seconds"],
                              "stopped_at_held_solve": r["stopped_at_held_solve"], "run": r["run"]})
        result["sb3"] = {
            "steps_per_second": summary([r["steps_per_second"] for r in sb3_speed]),
            "solve": solve_figures(sb3_solve),
            "solve_runs": sb3_solve,
            "speed_run_stamps": [r["run"] for r in sb3_speed],
        }
        ours_speed = [r for r in throughput[best]["steady_steps_per_second"]["runs"]]
        result["vs_sb3"] = {
            "steps_per_second_ratio": paired_ratio(ours_speed, [r["steps_per_second"] for r in sb3_speed])["median"],
            # the headline: seconds to a held solve; then the same to the first crossing
            "solve_time_ratio": _ratio(_at(solve, "held", "wall_seconds"), _at(sb3_solve, "held", "wall_seconds")),
            "first_crossing_time_ratio": _ratio(_at(solve, "first_crossing", "wall_seconds"),
                                                _at(sb3_solve, "first_crossing", "wall_seconds")),
            # the same for the fastest configuration (FAST_SOLVE)
            "fast_solve_time_ratio": _ratio(_at(fast, "held", "wall_seconds"), _at(sb3_solve, "held", "wall_seconds")),
            "fast_first_crossing_time_ratio": _ratio(_at(fast, "first_crossing", "wall_seconds"),
                                                     _at(sb3_solve, "first_crossing", "wall_seconds")),
            "steps_per_second_pipeline": best,
        }
    else:
        log("stable-baselines3 is not installed (pip install '.[bench]'): no comparison")
        result["vs_sb3"] = None
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relayrl bench", description=__doc__)
    parser.add_argument("--suite",
                        choices=("performance", "learning", "hold", "atari", "domains", "device", "learners"),
                        default="performance",
                        help="performance (default): speed and time to a held solve against SB3 on CartPole; "
                             "learning: final greedy return per env against SB3 and rl-baselines3-zoo's A2C; "
                             "hold: whether CartPole's solve holds at 1, 2, 8 actors x 16, 64, 256 envs; "
                             "atari: pixels' env steps/s against SB3 A2C, and a bounded-time learning run; "
                             "domains: highway-env, MinAtar, PointMaze and a MultiDiscrete task against SB3 A2C; "
                             "device: the GPU learner's correctness and speed on this machine (device.json); "
                             "learners: 2 data-parallel learner ranks against 1 on the same actors (learners.json)")
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks that every section runs")
    parser.add_argument("--out", default="benchmarks/results",
                        help="folder for bench.json and bench.md (learning: learning.json and learning.md, "
                             "merged with what is there) [default: benchmarks/results]")
    parser.add_argument("--envs", default=None,
                        help="learning, domains: comma-separated env ids [default: all of the suite's]")
    parser.add_argument("--seeds", type=int, default=None,
                        help="learning, hold, learners: seeds 0..N-1 [default: 3; --quick: 1]")
    parser.add_argument("--shapes", default=",".join(hold.key(a, e) for a, e in hold.SHAPES),
                        help="hold: comma-separated ACTORSxENVS [default: 2x32, then 1, 2, 8 x 16, 64, 256]")
    parser.add_argument("--timeout", type=float, default=6 * 3600,
                        help="learning: seconds one training run may take [default: 21600]")
    parser.add_argument("--algo", choices=("a2c", "a3c"), default="a2c",
                        help="hold: the algorithm (a3c writes hold-a3c[-TRANSPORT].json) [default: a2c]")
    parser.add_argument("--transport", choices=("gradients", "trajectories"), default=None,
                        help="hold: the transport (written into the file's name) [default: the algorithm's]")
    parser.add_argument("--rerun", action="store_true",
                        help="learning, hold: run again what the results file already holds")
    parser.add_argument("--game", default="ALE/Breakout-v5", help="atari: the ALE id [default: ALE/Breakout-v5]")
    parser.add_argument("--learn-steps", type=int, default=None,
                        help="atari: env steps of each side's learning run [default: 1000000; --quick: 2000]")
    parser.add_argument("--parts", default=None,
                        help="atari: any of throughput, costs (CPU ms per env step of each part), learning; a "
                             "part left out keeps its earlier results [default: all three]. device: any of "
                             f"{', '.join(device.PARTS)} (a re-run of what failed) [default: all]")
    parser.add_argument("--budget-seconds", type=float, default=None,
                        help="device: wall seconds the suite may take, start-up included; parts that no longer fit "
                             "are skipped and listed [default: 480]")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.budget_seconds is not None and (args.suite != "device" or args.budget_seconds <= 0):
        parser.error("--budget-seconds: a positive number of seconds, for --suite device only")
    seeds = args.seeds if args.seeds is not None else 1 if args.quick else 3
    if seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.suite == "hold":
        try:
            shapes = hold.parse_shapes(args.shapes)
        except ValueError as exc:
            parser.error(f"--shapes: {exc}")
        results = hold.run(shapes, seeds, args.quick, out, machine(), args.rerun, args.algo, args.transport)
        print(hold.markdown(results))
        log(f"wrote {hold.results_path(out, args.quick, args.algo, args.transport)} and its .md")
        return 0
    if args.suite == "device":
        parts = tuple(part.strip() for part in (args.parts or ",".join(device.PARTS)).split(",") if part.strip())
        if not parts or any(part not in device.PARTS for part in parts):
            parser.error(f"--parts: {args.parts!r}; choose from {', '.join(device.PARTS)}")
        results = device.run(args.quick, args.game, args.budget_seconds or device.BUDGET_SECONDS, parts)
        path = device.write(results, out)
        print(path.with_suffix(".md").read_text())
        log(f"wrote {path} and its .md")
        return 1 if results["failed"] else 0  # a part that failed is loud: the files say which and why
    if args.suite == "atari":
        parts = tuple(part.strip() for part in (args.parts or ",".join(atari.PARTS)).split(",") if part.strip())
        if not parts or any(part not in atari.PARTS for part in parts):
            parser.error(f"--parts: {args.parts!r}; choose from {', '.join(atari.PARTS)}")
        results = atari.run(args.game, args.seeds or 1 if args.quick else args.seeds or 2, args.quick,
                            args.learn_steps, out, machine(), parts)
        path = atari.write(results, out)
        print(atari.markdown(results))
        log(f"wrote {path} and its .md")
        return 0
    if args.suite == "domains":
        envs = [e.strip() for e in (args.envs or ",".join(domains.BY_ENV)).split(",") if e.strip()]
        unknown = [e for e in envs if e not in domains.BY_ENV]
        if unknown or not envs:
            parser.error(f"--envs: {', '.join(unknown) or 'none given'}; the suite's envs are "
                         f"{', '.join(domains.BY_ENV)}")
        results = domains.run(envs, seeds, args.quick, out, args.timeout, args.rerun)
        print(domains.markdown(results))
        return 0
    if args.suite == "learners":
        results = learners.run(seeds, args.quick, out, machine())
        print(learners.markdown(results))
        log(f"wrote {learners.results_path(out, args.quick)} and its .md")
        return 0
    if args.suite == "learning":
        envs = [e.strip() for e in (args.envs or ",".join(zoo.ENVS)).split(",") if e.strip()]
        unknown = [e for e in envs if e not in zoo.ENVS]
        if unknown or not envs:
            parser.error(f"--envs: {', '.join(unknown) or 'none given'}; the suite's envs are {', '.join(zoo.ENVS)}")
        results = learning.run(envs, seeds, args.quick, out, machine(), args.timeout, args.rerun)
        print(learning.markdown(results))
        log(f"wrote {learning.results_path(out, args.quick)} and its .md")
        return 0
    result = run(args.quick)
    result["bench_seconds"] = round(time.time() - provenance.STARTED, 1)
    write_results(out / "bench.json", result, markdown(result))
    print(markdown(result))
    log(f"wrote {out / 'bench.json'} and {out / 'bench.md'} in {result['bench_seconds']} s")
    return 0
