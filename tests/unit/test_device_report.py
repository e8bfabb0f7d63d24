"""The device benchmark's table formats what only a GPU run produces (GPU utilisation, host synchronisations,
CUDA checkpoints, TF32 differences, the barrier's shares), so that a fault there cannot first show on the lent
machine; and the figures are written before the table."""

import json

import pytest

from relayrl_cli.bench import device
from relayrl_cli.bench.device_report import markdown


def gpu_results() -> dict:
    gpu = {"source": "nvidia-smi", "mean_percent": 37.5, "max_percent": 91.0, "samples": 300, "period_seconds": 0.2}
    barrier = {"rounds": 900, "idle_share": 0.21, "waiting_for_round_share": 0.15, "waiting_for_update_share": 0.06,
               "mean_close_to_publish_seconds": 0.004}
    run = {"env_steps": 600_000, "steady_steps_per_second": 9876.0, "updates_per_second": 35.2,
           "samples_per_second": 9876.0, "mean_policy_lag": 0.0, "mean_update_seconds": 0.0042,
           "training_seconds": 55.0,
           "wall_seconds": 61.0, "dropped_stale": 0, "a2c_barrier": barrier, "actors": 14, "gpu": gpu, "args": []}
    update = {"device": "cuda", "samples": 560, "reps": 20, "ms_per_update": 4.2, "ms_per_env_step": 0.0075,
              "synchronisations_per_update": 1, "synchronisations_per_weights_copy": 1}
    case = {"samples": 80, "strict": {"loss_terms_max_relative": 3e-7, "gradients_max_relative": 2e-6},
            "tf32": {"loss_terms_max_relative": 4e-4, "gradients_max_relative": 3e-3}, "passed": True}
    return {
        "suite": "device", "quick": False, "device": "cuda", "game": "ALE/Breakout-v5", "fleet": 14,
        "budget_seconds": 480.0, "seconds": 431.2, "started_at": 1.8e9, "load_average_at_start": [0.5, 0.4, 0.3],
        "machine": {"cpu_count": 16, "platform": "Linux", "python": "3.12.3", "torch": "2.11.0+cu130",
                    "gpu": {"cuda_available": True, "cuda_runtime": "13.0", "name": "NVIDIA H200", "count": 1,
                            "memory_gib": 139.8, "cudnn": 91000, "driver": "580.159.03"}},
        "provenance": {"commit": None, "dirty": None, "command": "python3 -m relayrl_cli bench --suite device",
                       "finished_at": 1.8e9 + 431, "load_average_at_end": [12.0, 8.0, 4.0]},
        "commit_noted_in_whl": "0123456789abcdef0123456789abcdef01234567",
        "correctness": {"device": "cuda", "tolerance_strict": {"rtol": 1e-4, "atol": 1e-6},
                        "tolerance_tf32": {"rtol": 2e-2, "atol": 1e-4}, "passed": True,
                        "cases": {"cnn_uint8": case, "mlp_gsde": case}, "update_on_device": update,
                        "update_on_one_cpu_thread": {**update, "device": "cpu", "synchronisations_per_update": None,
                                                     "synchronisations_per_weights_copy": None}},
        "atari": {"relayrl": run, "ratio": 7.31,
                  "sb3": {"steady_steps_per_second": 1351.0, "device": "cuda", "mean_update_seconds": 0.011,
                          "gpu": {**gpu, "mean_percent": 12.0}},
                  "checkpoint": {"checkpoint": "ckpt-000000002000.pt", "saved_on": ["cuda:0"],
                                 "eval_output": "ALE/Breakout-v5 ckpt: mean return 1.00 over 3 greedy episodes",
                                 "resumed_env_steps": 600_000, "env_steps_after": 602_000, "version_saved": 2000,
                                 "policy_version_after": 2010, "loaded": True}},
        "a3c": {**run, "a2c_barrier": None, "mean_policy_lag": 1.7, "dropped_stale": 3},
        "cartpole": {"curve": [{"actors": k, **run} for k in (1, 2, 4, 8, 14)]},
        "skipped": [{"part": "cartpole/14", "why": "20 s of the budget left, the part needs about 22 s"}],
        "failed": [{"part": "sb3", "error": "RuntimeError: SB3 Atari run failed (1):\nTraceback\nOSError: boom"}],
    }


def test_a_gpu_run_is_tabulated_with_what_only_a_gpu_gives():
    table = markdown(gpu_results())
    assert "NVIDIA H200 (driver 580.159.03, CUDA runtime 13.0)" in table
    assert "0123456789abcdef0123456789abcdef01234567 (noted in .whl/COMMIT" in table
    assert "host synchronisations: 1 per update, 1 per weights copy" in table
    assert "38% mean, 91% peak" in table and "| **ratio** | **7.31x** |" in table
    assert "21% (round 15%, update 6%)" in table and "saved on cuda:0" in table
    assert "mean policy lag 1.70, 3 contributions dropped as stale" in table
    assert "| 14 | 9,876 |" in table
    assert "- skipped cartpole/14: 20 s of the budget left" in table and "- **failed** sb3: OSError: boom" in table


def test_the_figures_are_written_before_the_table(tmp_path, monkeypatch):
    import relayrl_cli.bench.device_report as report

    def broken(results: dict) -> str:
        raise KeyError("a field the table expected")

    monkeypatch.setattr(report, "markdown", broken)
    with pytest.raises(KeyError):
        device.write(gpu_results(), tmp_path)
    written = json.loads((tmp_path / "device.json").read_text())
    assert written["atari"]["ratio"] == 7.31 and written["cartpole"] == gpu_results()["cartpole"]
    assert {"commit", "dirty", "command", "finished_at"} <= set(written["provenance"])  # stamped when written
