"""`relayrl bench --quick` runs every section and writes well-formed output, and `relayrl bench --suite
learning --quick` trains, evaluates and tabulates both sides (never asserts a speed or a return)."""

import json
import math
import subprocess
import sys

import pytest

from relayrl_cli.bench import zoo


def test_quick_bench_writes_well_formed_results(tmp_path):
    result = subprocess.run([sys.executable, "-m", "relayrl_cli", "bench", "--quick", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert bench["provenance"]["command"].endswith(f"bench --quick --out {tmp_path}")
    assert all(len(figures["run_stamps"]) == 1 for figures in bench["pipeline"].values())
    assert bench["machine"]["cpu_count"] >= 1 and bench["machine"]["torch_threads_services"] == 1
    ratios = bench["vs_sb3"]
    for key in ("steps_per_second_ratio", "solve_time_ratio", "first_crossing_time_ratio", "fast_solve_time_ratio",
                "fast_first_crossing_time_ratio"):
        assert isinstance(ratios[key], float) and math.isfinite(ratios[key]) and ratios[key] > 0
    wide = "a2c/trajectories/2 (256 envs)"  # the throughput configuration, with its own time to solve
    assert set(bench["pipeline"]) == {"a2c/trajectories/1", "a3c/gradients/1", "a3c/trajectories/1", wide}
    assert bench["solve_wide"]["pipeline"] == wide and bench["solve_wide"]["all_solved"]
    assert bench["vs_sb3"]["steps_per_second_pipeline"] == bench["pipeline_best"] and bench["pipeline_best_solves"]
    for figures in bench["pipeline"].values():
        s = figures["steady_steps_per_second"]
        assert s["min"] <= s["median"] <= s["max"] and s["median"] > 0
    # the ceiling the pipeline is compared with steps as many envs as each pipeline actor does
    for figures in bench["pipeline"].values():
        assert str(figures["num_envs_per_actor"]) in bench["ceilings"] and 0 < figures["vs_ceiling"]
    assert bench["solve"]["all_solved"] and bench["solve_fast"]["all_solved"]
    assert bench["solve_fast"]["extra_args"] == ["--algo", "a3c", "--transport", "trajectories", "--actors", "1",
                                                 "--num-envs", "64"]
    # held solves: the runs go on past the crossing, far enough to decide it (twice its env steps)
    sb3_runs = bench["sb3"]["solve_runs"]
    for run in bench["solve"]["runs"] + bench["solve_wide"]["runs"] + bench["solve_fast"]["runs"] + sb3_runs:
        first, held = run["first_crossing"], run["held"]
        assert first is not None and held is not None, run
        assert first["env_steps"] <= held["env_steps"] and first["wall_seconds"] <= held["wall_seconds"]
        assert run["env_steps_run"] >= 2 * held["env_steps"], run
        assert 0 < held["wall_seconds"] <= run["wall_seconds_run"]
    assert all(r["stopped_at_held_solve"] for r in sb3_runs)  # SB3 stops once its held solve is decided
    assert bench["sb3"]["solve"]["all_solved"] and bench["solve"]["hold"] == 0.95
    assert bench["transport"]["broadcast_cartpole"]["milliseconds"]["median"] > 0
    assert bench["transport"]["gradient_1m_params"]["parameters"] > 900_000
    table = (tmp_path / "bench.md").read_text()
    assert "| headline | RelayRL | SB3 A2C | ratio |" in table and "a3c/gradients/1" in table
    assert "| seconds to a held mean return of 30 |" in table and "| seconds to its first crossing |" in table
    assert "| seconds to a held mean return of 30, fastest configuration (`relayrl train --algo a3c" in table


def run_learning(out, envs):
    return subprocess.run([sys.executable, "-m", "relayrl_cli", "bench", "--suite", "learning", "--quick", "--envs",
                           envs, "--out", str(out)], capture_output=True, text=True, timeout=900)


def test_quick_learning_suite_trains_evaluates_and_tabulates_both_sides(tmp_path):
    result = run_learning(tmp_path, "CartPole-v1,Pendulum-v1")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "learning-quick.json").read_text())
    bounds = {"CartPole-v1": (1, 500), "Pendulum-v1": (-16.3 * 200, 0)}  # what one episode can return
    for env_id, (low, high) in bounds.items():
        entry = results["envs"][env_id]
        for side in ("relayrl", "sb3"):
            run = entry[side]["0"]
            assert "error" not in run, run.get("error")
            assert len(run["eval_returns"]) == 3 and all(low <= r <= high for r in run["eval_returns"])
            assert run["env_steps"] >= entry["budget"] == 3000 and run["wall_seconds"] > 0
            assert run["run"]["started_at"] <= run["run"]["finished_at"]
        # the pair ran together: SB3's run started once RelayRL's had ended
        assert entry["relayrl"]["0"]["run"]["finished_at"] <= entry["sb3"]["0"]["run"]["started_at"]
        config = entry["relayrl"]["0"]["config"]  # trained with the env's preset: no flag but the budget and seed
        assert config["env"] == env_id and config["max_env_steps"] == 3000 and config["seed"] == 0
    rows = {r["env"]: r for r in results["table"]}
    assert list(rows) == zoo.ENVS
    assert rows["CartPole-v1"]["relayrl"]["final_return"]["median"] == results["envs"]["CartPole-v1"]["relayrl"][
        "0"]["final_return"]
    assert rows["Acrobot-v1"]["relayrl"] is None and rows["Acrobot-v1"]["errors"] == []
    table = (tmp_path / "learning-quick.md").read_text()
    for env_id in zoo.ENVS:
        assert f"| {env_id} |" in table
    # a second invocation keeps what is there instead of training again
    again = run_learning(tmp_path, "CartPole-v1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("already") == 2
    after = json.loads((tmp_path / "learning-quick.json").read_text())
    assert after["envs"]["CartPole-v1"] == results["envs"]["CartPole-v1"]


def test_quick_hold_suite_watches_a_run_past_its_crossing_and_tabulates_it(tmp_path):
    args = [sys.executable, "-m", "relayrl_cli", "bench", "--suite", "hold", "--quick", "--shapes", "1x8",
            "--out", str(tmp_path)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "hold-quick.json").read_text())
    run = results["shapes"]["1x8"]["0"]
    assert "error" not in run, run.get("error")
    assert "--suite hold" in run["run"]["command"] and results["provenance"]["finished_at"] >= run["run"]["finished_at"]
    target, span = results["plan"]["target"], results["plan"]["span"]
    assert run["crossed_at"] is not None  # a return100 of 30 takes seconds
    rows = run["rows"]
    at = [i for i, r in enumerate(rows) if r[0] == run["crossed_at"]]
    assert len(at) == 1 and rows[at[0]][2] >= target and rows[at[0]][1] == run["crossed_at_env_steps"]
    assert all(r[2] < target or r[2] != r[2] for r in rows[: at[0]]), "crossed_at is the first crossing"
    assert rows[-1][0] >= run["crossed_at"] + span  # watched for the whole span, then stopped
    # the fraction held, by another method than the harness's: the step curve sampled on a fine grid
    start, grid = run["crossed_at"], 10_000
    times = [start + span * (k + 0.5) / grid for k in range(grid)]
    value_at = [next(r[2] for r in reversed(rows) if r[0] <= t) for t in times]
    assert run["fraction"] == pytest.approx(sum(v >= target for v in value_at) / grid, abs=2 / grid * len(rows))
    held = "1 of 1" if run["fraction"] >= 0.95 else "0 of 1"
    assert f"| 1x8 | {held} |" in (tmp_path / "hold-quick.md").read_text()


def test_quick_domains_suite_trains_both_sides_and_stamps_each_run(tmp_path):
    env = "relayrl_cli.bench.tasks:TwoWalkers-v0"  # the quickest of the suite: MultiDiscrete both ways
    result = subprocess.run([sys.executable, "-m", "relayrl_cli", "bench", "--suite", "domains", "--quick", "--envs",
                             env, "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    domains = json.loads((tmp_path / "domains-quick.json").read_text())
    entry = domains["envs"][env]
    assert len(entry["random"]["returns"]) == entry["eval_episodes"] == 2
    for side in ("relayrl", "sb3"):
        run = entry[side]["0"]
        assert "error" not in run, run.get("error")
        assert run["env_steps"] >= entry["budget"] and len(run["eval_returns"]) == 2
        assert run["run"]["started_at"] <= run["run"]["finished_at"] and run["run"]["command"]
    assert "| multi-discrete | relayrl_cli.bench.tasks:TwoWalkers-v0 |" in (tmp_path / "domains-quick.md").read_text()


def test_the_hold_suite_runs_a3c_into_its_own_file(tmp_path):
    args = [sys.executable, "-m", "relayrl_cli", "bench", "--suite", "hold", "--quick", "--algo", "a3c", "--transport",
            "trajectories", "--shapes", "1x8", "--out", str(tmp_path)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "hold-quick.json").exists()  # the A2C matrix is not touched
    results = json.loads((tmp_path / "hold-a3c-trajectories-quick.json").read_text())
    assert results["algo"] == "a3c" and results["transport"] == "trajectories"
    assert results["shapes"]["1x8"]["0"]["crossed_at"] is not None
    assert "--algo a3c --transport trajectories --actors A" in (tmp_path / "hold-a3c-trajectories-quick.md").read_text()
