"""`relayrl train`: the embedded default. One learner and N actor processes on loopback, real gRPC
between separate processes; stops at --target-return, --max-env-steps or --max-seconds."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from learner_service.config import LearnerConfig
from relayrl import presets
from relayrl.config import config_errors_exit_2, env_name, load, option, require
from relayrl_cli.run_folder import as_environ, read_config, write_config, write_run_info

# Environments per actor for an env without a preset, by algorithm (learner_service/config.py's ALGO_DEFAULTS has
# the rest): SB3 A2C's 5-step rollouts on the 8 envs the zoo's entries most often use, over the 2 actors.
NUM_ENVS = {"a2c": 4, "a3c": 64}


@dataclass
class TrainConfig(LearnerConfig):
    actors: int = option(2, "Actor processes to start.")
    num_envs: int | None = option(
        None,
        "Environments per actor. Default: 4 for a2c (2 actors x 4 envs x 5 steps: 40 transitions an update, as SB3 "
        "A2C's usual 8 envs), 64 for a3c.",
    )
    port: int = option(0, "Learner gRPC port on 127.0.0.1; 0 picks a free one.")
    actor_threads: int = option(1, "Torch threads per actor.")
    metrics_port: int = option(
        0, "Learner /metrics port (0: a free one; actors always pick free ones); negative disables."
    )
    config: str | None = option(
        None,
        "Repeat a run: read its RUN_DIR/config.json (or YAML with the same keys) for every option; flags and "
        "RELAYRL_* variables override its values, and the run gets a folder of its own.",
    )

    def validate(self) -> None:
        if self.num_envs is None:  # neither given nor in the preset
            self.num_envs = NUM_ENVS[self.algo]
        require(self.actors >= 1, "actors", "must be at least 1")
        require(self.learner_nodes == 1, "learner_nodes", "train runs on this machine: --learners ranks here; on "
                "several machines run `relayrl learner --learner-nodes` on each")
        require(self.num_envs >= 1, "num_envs", "must be at least 1")
        require(self.tls_cert is None, "tls_cert", "train runs on loopback; use TLS with `relayrl learner`/`actor`")
        super().validate()


def free_port(count: int = 1) -> int:
    """A port P such that P .. P + count - 1 are free now (several learner ranks take one each)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + count <= 65536 and all(bindable(port + i) for i in range(1, count)):
            return port


def bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def to_environ(values: dict[str, object]) -> dict[str, str]:
    """Config values as the RELAYRL_* variables a child service reads."""
    out = {}
    for key, value in values.items():
        if value is None:
            value = "none"  # not left out: the child would take a preset's value for it again
        if isinstance(value, tuple):
            value = ",".join(map(str, value))
        out[env_name(key)] = str(value)
    return out


def launch(config: TrainConfig, started: float, argv: Sequence[str] = ()) -> int:
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # The resolved configuration (preset, variables and flags merged), before anything runs, and how it was run.
    write_config(run_dir, config)
    write_run_info(run_dir, argv, config.seed, os.environ)
    # a tiny race with other programs; the learner fails loudly if it loses. Rank r of --learners listens on port + r
    port = config.port or free_port(config.learners)
    learner_fields = {f.name for f in dataclasses.fields(LearnerConfig)}
    learner_values = {k: v for k, v in dataclasses.asdict(config).items() if k in learner_fields}
    learner_values.update(host="127.0.0.1", port=port, run_dir=str(run_dir))
    base = {k: v for k, v in os.environ.items() if not k.startswith("RELAYRL_")}
    base["PYTHONUNBUFFERED"] = "1"
    procs = [subprocess.Popen([sys.executable, "-m", "learner_service"], env={**base, **to_environ(learner_values)})]
    actor_values = dict(
        num_envs=config.num_envs,
        threads=config.actor_threads,
        metrics_port=-1 if config.metrics_port < 0 else 0,
        metrics_host="127.0.0.1",
        health_port=-1,
        # Actors start with the learner, which listens only once torch has loaded (about 2 s): on
        # loopback a retry is cheap, and a capped 0.1 s backoff connects them at most 0.1 s after it does.
        backoff_initial=0.02,
        backoff_max=0.1,
        auth_token=config.auth_token,  # passed through the environment, never on a command line
        keepalive_seconds=config.keepalive_seconds,
    )
    # Actors start alongside the learner (their imports overlap its start-up) and retry until it listens.
    for i in range(config.actors):
        # with several learner ranks, actor i serves rank i mod N: each rank gets its share of the fleet
        learner = f"127.0.0.1:{port + i % config.learners}"
        env = {**base, **to_environ({**actor_values, "learner": learner, "actor_id": f"actor-{i}"})}
        procs.append(subprocess.Popen([sys.executable, "-m", "actor_service"], env=env))
    learner = procs[0]
    # Ctrl-C reaches the whole process group, the learner perhaps before this process: forward it from a handler
    # rather than a KeyboardInterrupt that could land anywhere once the learner is gone.
    signal.signal(signal.SIGINT, lambda signum, frame: learner.send_signal(signal.SIGINT))
    code = learner.wait()
    # A learner with a stop target stopped short of it exits 128 + the signal (so that a Kubernetes Job retries
    # it); here the user asked for the stop with Ctrl-C, and the run's summary is still wanted.
    if code == 128 + signal.SIGINT:
        code = 0
    # Connected actors exit on the learner's Stop at once; one still connecting never hears it.
    deadline = time.monotonic() + 2.0
    for proc in procs[1:]:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            proc.terminate()  # SIGTERM: the actor finishes what it is doing and exits 0
    for proc in procs[1:]:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    summary_path = run_dir / "summary.json"
    if code != 0 or not summary_path.exists():
        print(f"relayrl train: the learner exited with status {code}", file=sys.stderr)
        return code or 1
    summary = json.loads(summary_path.read_text())
    # Wall time counts from this command's start, not the learner's.
    summary["wall_seconds"] = round(summary["finished_at"] - started, 3)
    summary["actors"] = config.actors
    summary_path.write_text(json.dumps(summary, indent=2))
    print(
        f"{'solved' if summary['solved'] else 'stopped (' + summary['stop_reason'] + ')'}: "
        f"{summary['env']} {summary['algo']}/{summary['transport']} mean return {summary['mean_return']} "
        f"after {summary['env_steps']} env steps in {summary['wall_seconds']:.1f}s "
        f"({summary['steps_per_second']:,.0f} steps/s, {summary['updates']} updates); summary: {summary_path}",
        flush=True,
    )
    return 0


@config_errors_exit_2("relayrl train")
def main(argv: Sequence[str] | None = None) -> int:
    started = time.time()
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = dict(os.environ)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    repeat = pre.parse_known_args(argv)[0].config or environ.get(env_name("config"))
    if repeat:  # the file's values sit below flags and variables, above the preset
        environ = {**as_environ(read_config(repeat)), **environ}
    config = load(TrainConfig, argv, environ=environ, prog="relayrl train",
                  description="Train on this machine: a learner and --actors actor processes over loopback gRPC.")
    if config.run_dir is None:
        config.run_dir = f"runs/{config.env}-{config.algo}-{time.strftime('%Y%m%d-%H%M%S')}"
        config.checkpoint_dir = f"{config.run_dir}/checkpoints"
    print(f"relayrl train: {preset_line(config)}", flush=True)
    return launch(config, started, argv)


def preset_line(config: TrainConfig) -> str:
    """Which preset the run took its hyperparameters from (flags and RELAYRL_* variables override it)."""
    preset = presets.resolve(config.preset, config.env, config.algo)
    if preset is None:
        return f"no preset for {config.env}/{config.algo}: built-in defaults (see --help) and your options"
    return f"preset {preset.name} from relayrl/presets/{preset.source}, with your options over it"
