"""The actor service: steps a batch of environments with a local policy copy and streams to the learner."""

import relayrl  # noqa: F401  (first: it pins NumPy's BLAS threads before NumPy loads)
