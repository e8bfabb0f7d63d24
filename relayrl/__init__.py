"""RelayRL: distributed A2C and A3C over gRPC.

This package holds what the actor and learner services share: the model, the RL maths, the wire
conversions, configuration and presets. It imports no service (the commands live in relayrl_cli).
"""

import os

__version__ = "0.1.0"

# NumPy's BLAS otherwise starts a busy-waiting thread per core for every matmul past a small size: an
# actor's policy at 128 envs then fights the learner and the other actors for the cores (3x fewer env
# steps/s measured on 2 cores). One process is one core's worth of NumPy work; scale out with processes.
# Read when NumPy loads, so the services import this package first; an explicit setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
