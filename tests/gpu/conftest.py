"""tests/gpu/ runs only where CUDA is: everywhere else each test is skipped, saying why."""

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device here: tests/gpu/ checks the learner on a GPU (relayrl bench "
                                   "--suite device runs the same checks with timings)")
    for item in items:
        if "tests/gpu/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(skip)
