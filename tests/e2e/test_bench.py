"""`relayrl bench --quick` runs every section and writes well-formed output (never asserts a speed)."""

import json
import math
import subprocess
import sys


def test_quick_bench_writes_well_formed_results(tmp_path):
    result = subprocess.run([sys.executable, "-m", "relayrl.cli", "bench", "--quick", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert bench["machine"]["cpu_count"] >= 1 and bench["machine"]["torch_threads_services"] == 1
    ratios = bench["vs_sb3"]
    for key in ("steps_per_second_ratio", "solve_time_ratio"):
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
    assert bench["solve"]["all_solved"]
    assert bench["transport"]["broadcast_cartpole"]["milliseconds"]["median"] > 0
    assert bench["transport"]["gradient_1m_params"]["parameters"] > 900_000
    table = (tmp_path / "bench.md").read_text()
    assert "| headline | RelayRL | SB3 A2C | ratio |" in table and "a3c/gradients/1" in table
