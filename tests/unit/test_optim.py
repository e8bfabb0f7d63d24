"""TF-style RMSprop: mean square starts at 1, eps inside the root."""

import math

import torch

from learner_service.optim import RMSpropTF


def test_two_steps_by_hand():
    p = torch.nn.Parameter(torch.tensor([1.0]))
    opt = RMSpropTF([p], lr=0.1, alpha=0.9, eps=0.01)
    ms = 1.0
    expected = 1.0
    for g in (2.0, -1.0):
        p.grad = torch.tensor([g])
        opt.step()
        ms = 0.9 * ms + 0.1 * g * g
        expected -= 0.1 * g / math.sqrt(ms + 0.01)
        assert p.item() == pytest_approx(expected)


def pytest_approx(x):
    import pytest

    return pytest.approx(x, rel=1e-6)


def test_state_round_trips_through_state_dict():
    p = torch.nn.Parameter(torch.ones(3))
    opt = RMSpropTF([p], lr=0.1)
    p.grad = torch.ones(3)
    opt.step()
    other = RMSpropTF([torch.nn.Parameter(torch.ones(3))], lr=0.1)
    other.load_state_dict(opt.state_dict())
    assert torch.equal(other.state[other.param_groups[0]["params"][0]]["square_avg"],
                       opt.state[p]["square_avg"])
