"""`relayrl bench --suite device [--quick] [--game ALE/Breakout-v5] [--budget-seconds 480] [--out DIR]`: the GPU
learner on whatever machine runs it, in one command within a wall-time budget, written to device.json and
device.md (device-quick.* with --quick). Every file records where it came from: ``provenance`` (commit, dirty
flag, command, start and end, load average: relayrl_cli.bench.provenance), ``machine`` (cores, GPU, driver,
torch, CUDA and cuDNN versions) and ``parts`` (each part's start, end and load average).

The parts, in this order; one that the budget left cannot hold is skipped, and the results say so and why:
- correctness: the same fixed batches (Nature CNN on uint8 frames; an MLP with gSDE) give the same loss terms
  and gradients on the device as on the CPU (relayrl_cli.bench.device_checks, its tolerance); one update's
  cost on the device and on one CPU thread, and its host synchronisations;
- atari: `relayrl train` on the game with N actor processes (N = cores - 2: the learner keeps two, for its
  trainer thread and gRPC) and the learner on the device, against SB3 A2C (CnnPolicy, the zoo's Atari
  settings, device = the same) in the same run: env steps/s, the ratio, the GPU's utilisation while each
  runs, update seconds per batch, the actors' idle share behind the A2C barrier (summary.json's a2c_barrier);
  then the run's checkpoint with CUDA hidden: `relayrl eval`, and a CPU learner resuming from it with a
  CPU actor;
- a3c: the same fleet with A3C (trajectories: the learner computes, on the device): updates/s, policy lag,
  contributions dropped as stale;
- cartpole: CartPole's pipeline at 1, 2, 4, 8 and N actors (the scaling curve).
--quick: the same parts with tiny budgets on the CPU, one actor (CI runs it: tests/e2e/test_bench_device.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from relayrl_cli.bench import atari, device_checks, pipeline, provenance
from relayrl_cli.bench.gpu_sampler import GpuSampler
from relayrl_cli.bench.report import write_results

REPO_COMMIT_NOTE = provenance.REPO / ".whl" / "COMMIT"  # benchmarks/device_wheels.sh notes the commit there
BUDGET_SECONDS = 480.0  # the 8 minutes, start-up included
PARTS = ("correctness", "atari", "sb3", "a3c", "cartpole")  # atari includes its checkpoint's check


def plan(quick: bool, cores: int) -> dict:
    fleet = 1 if quick else max(1, cores - 2)
    if quick:  # every part on a few hundred env steps: the code paths, not the figures
        return dict(fleet=fleet, update_reps=1, cpu_update_reps=1, atari=["--max-env-steps", "240"],
                    sb3_steps=160, sb3_seconds=None, a3c=["--max-env-steps", "240"],
                    cartpole=["--max-env-steps", "3000"],
                    cartpole_actors=[1], resume_steps=80, eval_episodes=1,
                    estimates=dict(correctness=10, atari=40, checkpoint=40, sb3=30, a3c=30, cartpole=15))
    return dict(fleet=fleet, update_reps=20, cpu_update_reps=2, atari=["--max-seconds", "60"], sb3_steps=10_000_000,
                sb3_seconds=45, a3c=["--max-seconds", "45"], cartpole=["--max-seconds", "15"],
                cartpole_actors=sorted({k for k in (1, 2, 4, 8) if k < fleet} | {fleet}), resume_steps=2000,
                eval_episodes=3, estimates=dict(correctness=40, atari=85, checkpoint=45, sb3=70, a3c=65, cartpole=22))


class Budget:
    """Wall seconds left for the suite; a step runs only if its estimate fits in what is left."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def fits(self, seconds: float) -> bool:
        return self.left() >= seconds


def run(quick: bool, game: str, budget_seconds: float, parts: tuple[str, ...] = PARTS) -> dict:
    """Every part that fits the budget; returns the results (each part's own section, ``skipped``, ``failed``)."""
    budget = Budget(budget_seconds)
    import torch

    target = "cpu" if quick or not torch.cuda.is_available() else "cuda"
    p = plan(quick, os.cpu_count() or 1)
    results: dict = {"suite": "device", "quick": quick, "device": target, "game": game, "fleet": p["fleet"],
                     "budget_seconds": budget_seconds, "plan": {k: v for k, v in p.items() if k != "estimates"},
                     "machine": machine(), "load_average_at_start": provenance.load_average(),
                     "started_at": time.time(), "parts": {}, "skipped": [], "failed": []}
    noted = REPO_COMMIT_NOTE.read_text().strip() if REPO_COMMIT_NOTE.is_file() else None
    if noted and provenance.code()["commit"] is None:  # a copy of the tree without git history (the GPU machine)
        results["commit_noted_in_whl"] = noted
    if target == "cpu" and not quick:
        results["skipped"].append({"part": "cuda", "why": "no CUDA device here: every part ran with the learner on "
                                                          "the CPU, and SB3 too"})

    def step(name: str, estimate: float, fn, *args):
        if name.split("/")[0] not in parts and not (name == "checkpoint" and "atari" in parts):
            results["skipped"].append({"part": name, "why": "not asked for (--parts)"})
            return None
        if not budget.fits(estimate):
            results["skipped"].append({"part": name, "why": f"{budget.left():.0f} s of the budget left, the part "
                                                            f"needs about {estimate:.0f} s"})
            log(f"skip {name}: out of budget")
            return None
        log(f"{name} ({budget.left():.0f} s of the budget left)")
        started = time.time()
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - one part's failure is recorded; the others still run
            results["failed"].append({"part": name, "error": f"{type(exc).__name__}: {exc}"[-2000:]})
            log(f"{name} failed:\n{traceback.format_exc()}")  # in full: on a lent machine there is no second look
            return None
        finally:
            results["parts"][name] = {"started_at": started, "finished_at": time.time(),
                                      "load_average_at_end": provenance.load_average()}

    est = p["estimates"]
    results["correctness"] = step("correctness", est["correctness"], correctness, quick, p, target)
    with tempfile.TemporaryDirectory(prefix="relayrl-device-") as tmp:
        a2c = step("atari", est["atari"], train_with_gpu, budget,
                   ["--env", game, "--actors", str(p["fleet"]), "--device", target, "--seed", "0", *p["atari"]],
                   Path(tmp, "atari"))
        if a2c is not None:
            results["atari"] = {"relayrl": a2c}
            results["atari"]["checkpoint"] = step("checkpoint", est["checkpoint"], checkpoint_elsewhere, budget, game,
                                                  Path(tmp, "atari"), a2c, p)
    sb3 = step("sb3", est["sb3"], sb3_with_gpu, budget, game, p, target)
    if sb3 is not None:
        results.setdefault("atari", {})["sb3"] = sb3
        ours = (results["atari"].get("relayrl") or {}).get("steady_steps_per_second")
        theirs = sb3["steady_steps_per_second"]
        results["atari"]["ratio"] = ours / theirs if ours and theirs else None
    results["a3c"] = step("a3c", est["a3c"], train_with_gpu, budget,
                          ["--env", game, "--algo", "a3c", "--transport", "trajectories", "--actors", str(p["fleet"]),
                           "--device", target, "--seed", "0", *p["a3c"]], None)
    curve = []
    for actors in p["cartpole_actors"]:
        point = step(f"cartpole/{actors}", est["cartpole"], train_with_gpu, budget,
                     ["--env", "CartPole-v1", "--actors", str(actors), "--device", target, "--seed", "0",
                      *p["cartpole"]], None)
        if point is not None:
            curve.append({"actors": actors, **point})
    results["cartpole"] = {"curve": curve}
    results["seconds"] = round(time.time() - results["started_at"], 1)
    return results


def machine() -> dict:
    """The machine as this suite needs it said: cores, and the GPU, its driver and the CUDA stack torch uses."""
    import torch

    gpu: dict = {"cuda_available": torch.cuda.is_available(), "cuda_runtime": torch.version.cuda}
    if gpu["cuda_available"]:
        gpu.update(name=torch.cuda.get_device_name(0), count=torch.cuda.device_count(),
                   memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
                   cudnn=torch.backends.cudnn.version())
    gpu["driver"] = nvidia_smi_driver()
    return {**provenance.machine(), "gpu": gpu}


def nvidia_smi_driver() -> str | None:
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None


def correctness(quick: bool, p: dict, target: str) -> dict:
    out = device_checks.compare(quick)
    import torch

    out["update_on_device"] = device_checks.update_cost(p["fleet"], p["update_reps"], torch.device(target))
    out["update_on_one_cpu_thread"] = cpu_update(p["fleet"], p["cpu_update_reps"])
    return out


def cpu_update(actors: int, reps: int) -> dict:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return device_checks.update_cost(actors, reps, torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)


def train_with_gpu(budget: Budget, args: list[str], run_dir: Path | None) -> dict:
    """`relayrl train ARGS` while the GPU's utilisation is sampled; the summary's figures for this suite."""
    with GpuSampler() as gpu:
        s = pipeline.train(args, timeout=max(budget.left(), 1.0), run_dir=None if run_dir is None else str(run_dir))
    keys = ("env_steps", "steady_steps_per_second", "updates_per_second", "samples_per_second", "mean_policy_lag",
            "mean_update_seconds", "training_seconds", "wall_seconds", "dropped_stale", "a2c_barrier", "actors")
    return {**{k: s.get(k) for k in keys}, "gpu": gpu.summary(), "args": args}


def sb3_with_gpu(budget: Budget, game: str, p: dict, target: str) -> dict:
    with GpuSampler() as gpu:
        r = atari.sb3_run(game, 0, p["sb3_steps"], 1, timeout=max(budget.left(), 1.0), device=target,
                          max_seconds=p["sb3_seconds"])
    return {**r, "gpu": gpu.summary()}


def checkpoint_elsewhere(budget: Budget, game: str, run_dir: Path, trained: dict, p: dict) -> dict:
    """The run's newest checkpoint where CUDA is hidden: `relayrl eval`, and a CPU learner resuming it with a
    CPU actor (which loads the weights it broadcasts)."""
    from learner_service.checkpoints import list_checkpoints

    found = list_checkpoints(run_dir / "checkpoints")
    if not found:
        raise RuntimeError(f"the Atari run wrote no checkpoint in {run_dir / 'checkpoints'}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYRL_")}
    env["CUDA_VISIBLE_DEVICES"] = ""  # as on a machine without a GPU
    evaluated = subprocess.run([sys.executable, "-m", "relayrl_cli", "eval", str(found[0]), "--episodes",
                                str(p["eval_episodes"])], capture_output=True, text=True, env=env,
                               timeout=max(budget.left(), 1.0))
    if evaluated.returncode != 0:
        raise RuntimeError(f"relayrl eval failed ({evaluated.returncode}):\n{evaluated.stderr[-1500:]}")
    resumed_dir = run_dir.parent / "resumed"
    args = [sys.executable, "-m", "relayrl_cli", "train", "--env", game, "--actors", "1", "--device", "cpu",
            "--checkpoint-dir", str(run_dir / "checkpoints"), "--resume", "--run-dir", str(resumed_dir),
            "--max-env-steps", str(trained["env_steps"] + p["resume_steps"]), "--log-every", "3600"]
    resumed = pipeline.run_group(args, max(budget.left(), 1.0), env)
    summary_path = resumed_dir / "summary.json"
    if resumed.returncode != 0 or not summary_path.exists():
        raise RuntimeError(f"resuming on the CPU failed ({resumed.returncode}):\n{resumed.stderr[-1500:]}")
    s = json.loads(summary_path.read_text())
    saved_on, saved = saved_locations(found[0])
    return {"checkpoint": found[0].name, "saved_on": saved_on, "eval_output": evaluated.stdout.strip().splitlines()[-1],
            "resumed_env_steps": s["resumed_env_steps"], "env_steps_after": s["env_steps"],
            "version_saved": saved["version"], "policy_version_after": s["policy_version"],
            "loaded": s["resumed_env_steps"] == saved["env_steps"] and s["policy_version"] > saved["version"]}


def saved_locations(path: Path) -> tuple[list[str], dict]:
    """Where a checkpoint's tensors were when saved ("cuda:0", "cpu"), read without a GPU, and its counters."""
    import torch

    locations: set[str] = set()

    def keep(storage, location: str):
        locations.add(location)
        return storage  # torch hands it over on the CPU: nothing goes to a device

    state = torch.load(path, map_location=keep, weights_only=True)
    return sorted(locations), {"version": state["version"], "env_steps": state["env_steps"]}


def log(text: str) -> None:
    print(f"[bench device {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def results_path(out: Path, quick: bool) -> Path:
    return out / ("device-quick.json" if quick else "device.json")


def write(results: dict, out: Path) -> Path:
    from relayrl_cli.bench.device_report import markdown

    results["provenance"] = provenance.invocation()
    out.mkdir(parents=True, exist_ok=True)
    path = results_path(out, results["quick"])
    # The figures first: a one-shot run must not lose them to a fault in the table's formatting.
    write_results(path, results, "(device.json was written; its table is being formatted)\n")
    write_results(path, results, markdown(results))
    return path
