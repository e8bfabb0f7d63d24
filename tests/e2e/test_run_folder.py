"""What a `relayrl train` run leaves in its folder, read back with the tools users use: TensorBoard curves
(EventAccumulator) with SB3's tags and monotonic env steps, also across --resume; evaluation rows, best.pt
and an MP4 when evaluation and video are on; config.json that --config repeats; run.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import pytest

pytest.importorskip("moviepy")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

pytestmark = pytest.mark.slow  # three short training runs (about a minute on 2 busy cores)

RELAYRL = [sys.executable, "-m", "relayrl_cli"]
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("RELAYRL_")}
SMALL = ["--actors", "1", "--num-envs", "8", "--hidden-sizes", "16,16", "--log-every", "0.2"]
TAGS = (
    "rollout/ep_rew_mean",
    "rollout/ep_len_mean",
    "train/policy_loss",
    "train/value_loss",
    "train/entropy_loss",
    "train/explained_variance",
    "train/grad_norm",
    "train/learning_rate",
    "train/policy_lag",
    "time/fps",
    "time/updates_per_second",
    "eval/mean_reward",
    "eval/mean_ep_length",
)


def relayrl(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    result = subprocess.run([*RELAYRL, *args], capture_output=True, text=True, timeout=timeout, env=CLEAN_ENV)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def curves(run_dir: Path) -> event_accumulator.EventAccumulator:
    events = event_accumulator.EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()  # every event file in the folder, in order, with purged steps dropped
    return events


def steps(events, tag: str) -> list[int]:
    return [e.step for e in events.Scalars(tag)]


def test_a_run_folder_holds_curves_evaluations_video_and_its_configuration(tmp_path):
    run = tmp_path / "run"
    first = relayrl(
        "train", *SMALL, "--max-env-steps", "9000", "--run-dir", str(run),
        "--eval-every", "3000", "--eval-episodes", "2", "--eval-video-every", "2",
    )
    assert " eval=" in first.stdout  # the progress line shows the latest evaluation

    # TensorBoard: every curve, against env steps
    events = curves(run)
    assert set(TAGS) <= set(events.Tags()["scalars"]), events.Tags()["scalars"]
    assert "rollout/ep_rew" in events.Tags()["histograms"]
    summary = json.loads((run / "summary.json").read_text())
    for tag in TAGS:
        xs = steps(events, tag)
        assert xs == sorted(xs) and xs[-1] <= summary["env_steps"], tag
    assert len(steps(events, "rollout/ep_rew_mean")) >= 3

    # evaluations: in summary.json, TensorBoard and best.pt, and a video of the second one
    results = summary["eval"]["results"]
    assert len(results) >= 2 and all(len(r["returns"]) == 2 for r in results)
    assert [r["env_steps"] >= 3000 * (i + 1) for i, r in enumerate(results)] == [True] * len(results)
    assert steps(events, "eval/mean_reward") == [r["env_steps"] for r in results]
    assert summary["eval"]["best_mean_return"] == max(r["mean_return"] for r in results)
    import torch

    best = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    assert best["eval_mean_return"] == summary["eval"]["best_mean_return"] and best["env"] == "CartPole-v1"
    (video,) = sorted((run / "videos").glob("*.mp4"))
    assert video.name == f"eval-{results[1]['env_steps']:012d}-episode-0.mp4"
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(video))
    assert frames >= 9  # CartPole lasts at least 9 steps; the length itself is checked in tests/unit/test_video.py

    # best.pt plays and films like any checkpoint
    out = relayrl("eval", str(run / "checkpoints" / "best.pt"), "--episodes", "2", "--video", str(tmp_path / "v"))
    assert "mean return" in out.stdout and (tmp_path / "v" / "best-episode-0.mp4").is_file()

    # the run explains itself
    info = json.loads((run / "run.json").read_text())
    assert info["command"].startswith("relayrl train --actors 1") and info["seed"] == 0
    assert {"relayrl", "torch", "gymnasium", "python"} <= set(info["versions"]) and "git_commit" in info
    config = json.loads((run / "config.json").read_text())
    assert config["hidden_sizes"] == [16, 16] and config["eval_every"] == 3000

    # --resume from the run's own configuration: the curves continue from the checkpoint's env steps
    resumed_from = summary["env_steps"]
    relayrl("train", "--config", str(run / "config.json"), "--run-dir", str(run), "--resume",
            "--max-env-steps", "15000")
    assert len(list(run.glob("events.out.tfevents.*"))) == 2
    events = curves(run)
    resumed = json.loads((run / "summary.json").read_text())
    assert resumed["resumed_env_steps"] == resumed_from
    for tag in ("rollout/ep_rew_mean", "train/value_loss", "time/fps"):
        xs = steps(events, tag)
        assert xs == sorted(xs), f"{tag} goes back in env steps across --resume: {xs}"
        assert xs[-1] > resumed_from
    assert resumed["eval"]["results"][0]["env_steps"] >= 12000  # the next multiple of --eval-every

    # --config repeats the run's configuration in a folder of its own (a flag overrides one value)
    again = tmp_path / "again"
    relayrl("train", "--config", str(run / "config.json"), "--run-dir", str(again), "--max-env-steps", "2000",
            "--no-tensorboard")
    repeated = json.loads((again / "config.json").read_text())
    differ = {k for k in config if config[k] != repeated.get(k)}
    assert differ == {"run_dir", "checkpoint_dir", "max_env_steps", "tensorboard", "config"}, differ
    assert repeated["config"] == str(run / "config.json") and not repeated["resume"]
    assert not list(again.glob("events.out.tfevents.*"))
