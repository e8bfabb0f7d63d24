"""`relayrl bench --suite hold`: does CartPole's preset keep its solve at every fleet shape?

For each shape (actors x envs per actor) and seed: `relayrl train --env CartPole-v1 --actors A --num-envs E
--seed S`, the preset deciding everything else, watched through its progress lines. From the first line
whose return100 reaches the target (at t0 seconds), the run goes on for ``span`` seconds more and is then
stopped. The run holds when return100 stayed at or above the target for at least 95% of
[t0, t0 + span] (each line's value lasting until the next). This is issue #10's wall-clock criterion,
stricter on a fast machine than the env-step span of `relayrl bench` (relayrl_cli.bench.solve). A run with no
crossing by ``deadline`` seconds counts as not held.

Results are merged into OUT/hold.json run by run (resumable, as the learning suite) with OUT/hold.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

from relayrl_cli.bench.provenance import timed
from relayrl_cli.bench.report import write_results
from relayrl_cli.bench.solve import HOLD, fraction_at_or_above

ENV = "CartPole-v1"
# The default (2 actors x 32 envs, the preset) first, then every pair of 1, 2, 8 actors and 16, 64, 256 envs.
SHAPES = [(2, 32)] + [(a, e) for a in (1, 2, 8) for e in (16, 64, 256)]
LINE = re.compile(r"^\[\s*([\d.]+)s\] env_steps=(\d+) .*?return100=(\S+)")


def plan(quick: bool) -> dict:
    if quick:  # a smoke test of the plumbing: an easy target, a short span
        return {"target": 30.0, "span": 3.0, "deadline": 90.0, "log_every": 0.25}
    return {"target": 475.0, "span": 60.0, "deadline": 150.0, "log_every": 0.5}


def log(text: str) -> None:
    print(f"[bench hold {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def parse_shapes(text: str) -> list[tuple[int, int]]:
    """'1x16,8x256' -> [(1, 16), (8, 256)]."""
    shapes = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        actors, _, envs = part.partition("x")
        if not (actors.isdigit() and envs.isdigit()) or int(actors) < 1 or int(envs) < 1:
            raise ValueError(f"shape {part!r}: expected ACTORSxENVS, e.g. 2x64")
        shapes.append((int(actors), int(envs)))
    if not shapes:
        raise ValueError("no shape given")
    return shapes


def _lines(stream, out: queue.Queue) -> None:
    with contextlib.suppress(ValueError):  # the stream closed under us: the run is over
        for line in stream:
            out.put(line)
    out.put(None)


def watch(args: list[str], target: float, span: float, deadline: float, log_every: float) -> dict:
    """Run `relayrl train ARGS` until ``span`` seconds after its first crossing of ``target`` (or until
    ``deadline`` without one); its progress rows as [seconds, env_steps, return100] and the verdict."""
    rows: list[list[float]] = []
    crossed_at: float | None = None
    with tempfile.TemporaryDirectory(prefix="relayrl-hold-") as run_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYRL_")}
        cmd = [sys.executable, "-m", "relayrl_cli", "train", "--run-dir", run_dir, "--log-every", str(log_every),
               "--max-seconds", str(deadline + span + 5), *args]
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                              start_new_session=True) as proc:
            lines: queue.Queue = queue.Queue()
            threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
            tail: deque[str] = deque(maxlen=40)  # the last lines, for the error if no progress came
            started = time.monotonic()
            try:
                while True:
                    try:
                        line = lines.get(timeout=5.0)
                    except queue.Empty:
                        line = ""
                    if line is None:
                        break
                    tail.append(line)
                    if (m := LINE.match(line)) is not None:
                        t, steps, value = float(m[1]), int(m[2]), float(m[3])
                        rows.append([t, steps, value])
                        if crossed_at is None and value >= target:
                            crossed_at = t
                    done = crossed_at is not None and rows and rows[-1][0] >= crossed_at + span
                    late = crossed_at is None and (rows[-1][0] if rows else 0.0) > deadline
                    if done or late or time.monotonic() - started > deadline + span + 120:
                        break
            finally:
                # The rows are all this needs. SIGTERM stops the learner and the actors cleanly (SIGINT may be
                # ignored: a shell starts background jobs that way, and children inherit it).
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    pass
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        if not rows:
            raise RuntimeError(f"relayrl train {' '.join(args)} printed no progress:\n{''.join(tail)[-2000:]}")
    result: dict = {"crossed_at": crossed_at, "rows": rows, "target": target, "span": span}
    if crossed_at is None:
        return {**result, "fraction": 0.0, "held": False, "min_in_span": None, "crossed_at_env_steps": None}
    xs, values = [r[0] for r in rows], [r[2] for r in rows]
    end = crossed_at + span
    fraction = fraction_at_or_above(xs, values, target, crossed_at, end)
    in_span = [v for x, v in zip(xs, values, strict=True) if crossed_at <= x <= end]
    return {**result, "fraction": fraction, "held": fraction >= HOLD, "min_in_span": min(in_span),
            "crossed_at_env_steps": next(int(r[1]) for r in rows if r[0] == crossed_at)}


def steps_fraction(run: dict) -> float | None:
    """The same run judged as `relayrl bench` judges a solve, in env steps: the fraction of [s0, 2 s0] at or
    above the target, s0 being the env steps at the first crossing; None if the run did not reach 2 s0.
    Unlike seconds, env steps do not stretch when the machine is busy with other work."""
    if run.get("crossed_at_env_steps") is None:
        return None
    start = run["crossed_at_env_steps"]
    xs, values = [r[1] for r in run["rows"]], [r[2] for r in run["rows"]]
    if xs[-1] < 2 * start:
        return None
    return fraction_at_or_above(xs, values, run["target"], start, 2 * start)


def results_path(out: Path, quick: bool, algo: str = "a2c", transport: str | None = None) -> Path:
    """hold.json for the default algorithm (the README's matrix), hold-<algo>[-<transport>].json for another."""
    name = "-".join(["hold", *([] if algo == "a2c" else [algo]), *([transport] if transport else [])])
    return out / f"{name}{'-quick' if quick else ''}.json"


def key(actors: int, envs: int) -> str:
    return f"{actors}x{envs}"


def run(shapes: list[tuple[int, int]], seeds: int, quick: bool, out: Path, machine: dict,
        rerun: bool = False, algo: str = "a2c", transport: str | None = None) -> dict:
    p = plan(quick)
    path = results_path(out, quick, algo, transport)
    out.mkdir(parents=True, exist_ok=True)
    results = json.loads(path.read_text()) if path.exists() else {"suite": "hold", "env": ENV, "quick": quick,
                                                                     "algo": algo, "transport": transport,
                                                                     "plan": p, "shapes": {}}
    results["machine"] = machine
    for actors, envs in shapes:
        entry = results["shapes"].setdefault(key(actors, envs), {})
        for seed in range(seeds):
            if str(seed) in entry and "error" not in entry[str(seed)] and not rerun:
                log(f"{key(actors, envs)} seed {seed}: in {path.name} already")
                continue
            log(f"{key(actors, envs)} seed {seed}")
            args = ["--env", ENV, "--algo", algo, *(["--transport", transport] if transport else []), "--actors",
                    str(actors), "--num-envs", str(envs), "--seed", str(seed)]
            entry[str(seed)] = {"seed": seed, **timed(attempt, args, p)}
            write(results, path)  # run by run: each run's stamp is the time it ended
    return results


def attempt(args: list[str], p: dict) -> dict:
    """One watched run, or its error (the table shows failed runs with it)."""
    try:
        r = watch(args, p["target"], p["span"], p["deadline"], p["log_every"])
    except Exception as exc:  # noqa: BLE001
        r = {"error": str(exc)[-2000:]}
        log(f"  failed: {r['error'].splitlines()[0]}")
        return r
    log(f"  crossed at {r['crossed_at']} s, {r['fraction']:.1%} of the next {p['span']:g} s at or above "
        f"{p['target']:g} (min {r['min_in_span']})")
    return r


def markdown(results: dict) -> str:
    m, p = results.get("machine", {}), results["plan"]
    lines = [
        f"# RelayRL: does CartPole's solve hold?{' (quick: a smoke test)' if results.get('quick') else ''}",
        "",
        f"{m.get('cpu_count', '?')} cores, {m.get('platform', '?')}, torch {m.get('torch', '?')}. `relayrl train "
        f"--env {ENV} --algo {results.get('algo', 'a2c')}"
        f"{' --transport ' + results['transport'] if results.get('transport') else ''} --actors A --num-envs E "
        "--seed S` (the preset otherwise). "
        "Crossed: seconds from the learner's "
        f"start to the first return100 >= {p['target']:g}. Held: return100 >= {p['target']:g} for at least "
        f"{HOLD:.0%} of the next {p['span']:g} s. Per seed: crossed s / fraction held / lowest return100 in "
        "the span / fraction of [s0, 2 s0] env steps at or above it (as `relayrl bench` judges a solve; s0 = env "
        "steps at the crossing).",
        "",
        "| actors x envs | held | " + " | ".join(f"seed {s}" for s in range(_seeds(results))) + " |",
        "|---|---|" + "---|" * _seeds(results),
    ]
    for shape, entry in results["shapes"].items():
        runs = [entry[k] for k in sorted(entry, key=int)]
        ok = [r for r in runs if "error" not in r]
        cells = []
        for r in runs:
            if "error" in r:
                cells.append("failed: " + r["error"].splitlines()[0][:80].replace("|", "/"))
            elif r["crossed_at"] is None:
                cells.append(f"no crossing in {p['deadline']:g} s")
            else:
                by_steps = steps_fraction(r)
                cells.append(f"{r['crossed_at']:.0f} s / {r['fraction']:.0%} / {r['min_in_span']:.0f} / "
                             + ("–" if by_steps is None else f"{by_steps:.0%}"))
        cells += [""] * (_seeds(results) - len(cells))
        held = sum(r["held"] for r in ok)
        lines.append(f"| {shape} | {held} of {len(runs)} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def _seeds(results: dict) -> int:
    return max((len(e) for e in results["shapes"].values()), default=0)


def write(results: dict, path: Path) -> None:
    write_results(path, results, markdown(results))
