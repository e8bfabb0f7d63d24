"""The `relayrl` command: train (embedded default), learner, actor, eval."""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = """usage: relayrl COMMAND [options]

commands:
  train        train on this machine: a learner and N actor processes over loopback gRPC
  learner      run the learner service (same as python -m learner_service)
  actor        run an actor service (same as python -m actor_service)
  eval         play a checkpoint greedily: relayrl eval CHECKPOINT --episodes N [--video DIR]
  export       write a checkpoint's policy for serving: relayrl export CHECKPOINT --format onnx|torchscript --out FILE
  bench        benchmarks against Stable-Baselines3: speed and held solves (default), or --suite learning
               (final greedy returns per env against rl-baselines3-zoo's A2C); --quick: a smoke test
  plot         draw a run's learning curve to a PNG: relayrl plot RUN_DIR [--out FILE] (needs relayrl[plot])

`relayrl COMMAND --help` lists a command's options; each also reads RELAYRL_<OPTION> variables.
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    # Imports are per command: `train` stays light so its clock starts before torch loads.
    if command == "train":
        from relayrl_cli.train import main as run
    elif command == "learner":
        from learner_service.main import main as run
    elif command == "actor":
        from actor_service.main import main as run
    elif command == "eval":
        from relayrl_cli.evaluate import main as run
    elif command == "export":
        from relayrl_cli.export import main as run
    elif command == "bench":
        from relayrl_cli.bench.main import main as run
    elif command == "plot":
        from relayrl_cli.plot import main as run
    else:
        print(f"relayrl: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return run(rest)


if __name__ == "__main__":
    sys.exit(main())
