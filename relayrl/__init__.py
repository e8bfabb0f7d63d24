"""RelayRL: distributed A2C and A3C over gRPC.

This package holds what the actor and learner services share: the model, the RL maths, the tensor
codec, configuration and the command line.
"""

__version__ = "0.1.0"
