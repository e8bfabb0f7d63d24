"""`relayrl bench --suite device --quick` (the GPU machine's one-shot script, on the CPU with tiny budgets) runs
every part through the real pipeline and writes device-quick.{json,md} with their provenance; a budget too
small for a part skips it and says so. Never asserts a speed."""

import json
import math
import subprocess
import sys

import pytest

pytest.importorskip("ale_py")
pytest.importorskip("stable_baselines3")


def bench(out, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "relayrl_cli", "bench", "--suite", "device", "--quick", "--out",
                           str(out), *extra], capture_output=True, text=True, timeout=400)


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_quick_device_suite_runs_every_part_and_records_its_provenance(tmp_path):
    result = bench(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    r = json.loads((tmp_path / "device-quick.json").read_text())
    assert r["device"] == "cpu" and r["quick"] and r["skipped"] == [] and r["failed"] == []

    pv = r["provenance"]
    assert len(pv["commit"]) == 40 and isinstance(pv["dirty"], bool) and "commit_noted_in_whl" not in r
    assert "-m relayrl_cli bench --suite device --quick" in pv["command"]
    machine = r["machine"]
    assert machine["cpu_count"] >= 1 and machine["torch"]
    assert {"cuda_available", "cuda_runtime", "driver"} <= set(machine["gpu"])
    assert len(r["load_average_at_start"]) == 3 and len(pv["load_average_at_end"]) == 3
    assert set(r["parts"]) == {"correctness", "atari", "checkpoint", "sb3", "a3c", "cartpole/1"}
    for times in r["parts"].values():
        assert r["started_at"] <= times["started_at"] <= times["finished_at"] <= pv["finished_at"]
        assert len(times["load_average_at_end"]) == 3

    c = r["correctness"]
    assert c["passed"] and set(c["cases"]) == {"cnn_uint8", "mlp_gsde"}
    for case in c["cases"].values():
        assert case["strict"]["gradients_max_relative"] <= c["tolerance_strict"]["rtol"]
    assert positive(c["update_on_device"]["ms_per_update"]) and positive(c["update_on_one_cpu_thread"]["ms_per_update"])
    assert c["update_on_device"]["synchronisations_per_update"] is None  # counted only where CUDA is

    a = r["atari"]
    ours, sb3 = a["relayrl"], a["sb3"]
    assert positive(ours["steady_steps_per_second"]) and positive(ours["mean_update_seconds"])
    barrier = ours["a2c_barrier"]
    assert barrier["rounds"] >= 1 and 0 <= barrier["idle_share"] <= 1
    assert barrier["idle_share"] == pytest.approx(barrier["waiting_for_round_share"]
                                                  + barrier["waiting_for_update_share"], abs=2e-4)
    assert positive(sb3["steady_steps_per_second"]) and sb3["device"] == "cpu" and sb3["updates"] >= 1
    assert a["ratio"] == pytest.approx(ours["steady_steps_per_second"] / sb3["steady_steps_per_second"])
    ckpt = a["checkpoint"]
    assert ckpt["loaded"] and ckpt["saved_on"] == ["cpu"] and "mean return" in ckpt["eval_output"]

    a3c = r["a3c"]
    assert positive(a3c["updates_per_second"]) and a3c["mean_policy_lag"] >= 0 and a3c["dropped_stale"] >= 0
    assert a3c["a2c_barrier"] is None  # A3C has no barrier
    assert [p["actors"] for p in r["cartpole"]["curve"]] == [1]
    assert positive(r["cartpole"]["curve"][0]["steady_steps_per_second"])

    table = (tmp_path / "device-quick.md").read_text()
    for heading in ("## Correctness", "## Atari", "## A3C", "## CartPole"):
        assert heading in table
    assert pv["commit"] in table and "## Not measured" not in table


def test_a_budget_too_small_skips_parts_and_says_why(tmp_path):
    result = bench(tmp_path, "--budget-seconds", "2", "--parts", "correctness,atari,sb3,a3c")
    assert result.returncode == 0, result.stderr[-3000:]
    r = json.loads((tmp_path / "device-quick.json").read_text())
    why = {s["part"]: s["why"] for s in r["skipped"]}
    assert set(why) == {"correctness", "atari", "sb3", "a3c", "cartpole/1"} and r["correctness"] is None
    assert why["cartpole/1"] == "not asked for (--parts)"
    assert all("budget" in why[part] for part in ("correctness", "atari", "sb3", "a3c"))
    assert "skipped atari" in (tmp_path / "device-quick.md").read_text()


def test_budget_is_refused_for_other_suites():
    from relayrl_cli.bench.main import main

    with pytest.raises(SystemExit) as exc:
        main(["--suite", "atari", "--budget-seconds", "10"])
    assert exc.value.code == 2
