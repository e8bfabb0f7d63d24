"""The `relayrl` command as users run it: separate processes, real gRPC on loopback, real CartPole."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

RELAYRL = [sys.executable, "-m", "relayrl_cli"]
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("RELAYRL_")}


def run(*args, timeout=120, env=None):
    return subprocess.run(
        [*RELAYRL, *args], capture_output=True, text=True, timeout=timeout, env={**CLEAN_ENV, **(env or {})}
    )


@pytest.mark.parametrize(
    "args, env, fragment",
    [
        (["learner", "--lr", "abc"], {}, "--lr"),
        (["learner", "--env", "NoSuchEnv-v9"], {}, "--env"),
        (["learner", "--env", "no_such_pkg.envs:Thing-v0"], {}, "cannot import module 'no_such_pkg.envs'"),
        (["learner", "--env", "CartPole-v1", "--env-kwargs", "[1]"], {}, "--env-kwargs"),
        (["learner", "--env", "ALE/Pong-v5", "--normalize-observations"], {}, "covers vector observations"),
        (["learner", "--net-arch", "pi=64;q=1"], {}, "--net-arch"),
        (["learner", "--cnn", "resnet"], {}, "--cnn"),
        (["learner", "--features-kwargs", '{"width": 8}'], {}, "--features-kwargs"),
        (["learner", "--features-extractor", "no_such_pkg.nets:Net"], {}, "--features-extractor"),
        (["train", "--algo", "ppo"], {}, "--algo"),
        (["actor", "--learner", "nohost"], {}, "--learner"),
        (["learner"], {"RELAYRL_N_STEPS": "-3"}, "RELAYRL_N_STEPS"),
        (["learner", "--algo", "a2c", "--transport", "gradients"], {}, "--transport"),
        (["learner", "--learners", "2", "--algo", "a3c"], {}, "--learners"),
        (["train", "--learners", "0"], {}, "--learners"),
        (["learner", "--learners", "2", "--learner-nodes", "2"], {}, "--rendezvous"),
    ],
)
def test_bad_configuration_fails_at_start_naming_it(args, env, fragment):
    result = run(*args, env=env, timeout=60)
    assert result.returncode == 2
    assert fragment in result.stderr


def test_train_learns_cartpole_with_separate_processes(tmp_path):
    run_dir = tmp_path / "run"
    result = run(
        "train",
        "--env",
        "CartPole-v1",
        "--actors",
        "2",
        "--target-return",
        "200",
        "--max-seconds",
        "90",
        "--run-dir",
        str(run_dir),
        "--log-every",
        "0.2",  # often enough to catch the curve before learning has begun
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in (
        "env",
        "algo",
        "transport",
        "actors",
        "solved",
        "env_steps",
        "wall_seconds",
        "mean_return",
        "updates",
        "steps_per_second",
    ):
        assert key in summary, key
    assert summary["peak_actors_connected"] == 2, "both actor processes joined over gRPC"
    # returns rise: from a random policy's ~22 to the target (mean of the last 100 episodes)
    first = next(r for _, _, r in summary["curve"] if r == r)
    assert first < 60
    assert summary["solved"] and summary["mean_return"] >= 200
    assert "return100=" in result.stdout and "steps/s=" in result.stdout

    checkpoint = sorted((run_dir / "checkpoints").glob("ckpt-*.pt"))[-1]
    evaluation = run("eval", str(checkpoint), "--episodes", "5", timeout=60)
    assert evaluation.returncode == 0, evaluation.stderr
    assert "mean return" in evaluation.stdout
    mean = float(evaluation.stdout.split("mean return ")[1].split()[0])
    assert mean > 100, evaluation.stdout


def test_learner_and_actor_commands_run_standalone(tmp_path):
    """`relayrl learner` and `relayrl actor` as two independent processes, as in a deployment."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**CLEAN_ENV, "RELAYRL_METRICS_PORT": "-1"}
    learner = subprocess.Popen(
        [
            *RELAYRL,
            "learner",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--max-env-steps",
            "2000",
            "--run-dir",
            str(tmp_path),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    actor = subprocess.Popen(
        [*RELAYRL, "actor", "--learner", f"127.0.0.1:{port}", "--num-envs", "8", "--health-port", "-1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert learner.wait(timeout=90) == 0
        assert actor.wait(timeout=30) == 0, "the actor exits 0 on the learner's Stop"
    finally:
        for p in (learner, actor):
            if p.poll() is None:
                p.kill()
    summary = json.loads(Path(tmp_path, "summary.json").read_text())
    assert summary["env_steps"] >= 2000 and summary["stop_reason"] == "max_env_steps"


def test_train_passes_the_auth_token_to_its_actors(tmp_path):
    """With a shared token the learner refuses strangers; train's own actors must still get in."""
    result = run("train", "--target-return", "30", "--max-seconds", "60", "--run-dir", str(tmp_path), timeout=120,
                 env={"RELAYRL_AUTH_TOKEN": "a-token-for-this-test-only"})
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["solved"] and summary["peak_actors_connected"] >= 1
    assert "a-token-for-this-test-only" not in (tmp_path / "summary.json").read_text() + result.stdout + result.stderr


def test_ctrl_c_on_train_with_a_target_still_ends_with_the_summary(tmp_path):
    """Ctrl-C reaches the whole process group: the learner, with a stop target it has not met, exits 130 (a
    Kubernetes Job must retry such a stop); `relayrl train`, whose user asked for the stop, still prints the
    run's summary and exits 0."""
    proc = subprocess.Popen(
        [*RELAYRL, "train", "--actors", "1", "--num-envs", "8", "--hidden-sizes", "16,16", "--log-every", "0.2",
         "--target-return", "100000", "--run-dir", str(tmp_path / "run")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=CLEAN_ENV, start_new_session=True)
    try:
        lines = []
        for line in proc.stdout:  # the first progress line: training is under way
            lines.append(line)
            if "env_steps=" in line:
                break
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        out = "".join(lines) + proc.stdout.read()
        assert proc.wait(timeout=60) == 0, out[-3000:]
        assert "mean return" in out and (tmp_path / "run" / "summary.json").is_file(), out[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
