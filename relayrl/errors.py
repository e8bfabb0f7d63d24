"""Errors shared by the wire and the code that checks what came over it, importable without protobuf."""


class CodecError(ValueError):
    """A message's tensor (or a set of weights) does not describe what it must."""
