"""The learner service: owns the model and optimizer, runs A2C or A3C updates, broadcasts weights."""

import relayrl  # noqa: F401  (first: it pins NumPy's BLAS threads before NumPy loads)
