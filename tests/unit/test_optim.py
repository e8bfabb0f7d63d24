"""The optimizers against their formulas and against torch.optim.Adam."""

import math

import pytest
import torch

from learner_service.optim import Adam, RMSpropTF, RMSpropTorch


def test_rmsprop_tf_two_steps_by_hand():
    p = torch.nn.Parameter(torch.tensor([1.0]))
    opt = RMSpropTF([p], lr=0.1, alpha=0.9, eps=0.01)
    ms, expected = 1.0, 1.0  # TF starts the mean square at 1; eps inside the root
    for g in (2.0, -1.0):
        p.grad = torch.tensor([g])
        opt.step()
        ms = 0.9 * ms + 0.1 * g * g
        expected -= 0.1 * g / math.sqrt(ms + 0.01)
        assert p.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "ours_cls, theirs_cls, kwargs",
    [(Adam, torch.optim.Adam, dict(lr=0.01, eps=1e-5)), (RMSpropTorch, torch.optim.RMSprop, dict(lr=7e-4, eps=1e-5))],
)
def test_matches_torch(ours_cls, theirs_cls, kwargs):
    torch.manual_seed(0)
    ours = torch.nn.Linear(5, 3)
    theirs = torch.nn.Linear(5, 3)
    theirs.load_state_dict(ours.state_dict())
    a, b = ours_cls(ours.parameters(), **kwargs), theirs_cls(theirs.parameters(), **kwargs)
    for step in range(20):
        x = torch.randn(8, 5, generator=torch.Generator().manual_seed(step))
        for model, opt in ((ours, a), (theirs, b)):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
    for p, q in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [Adam, RMSpropTF, RMSpropTorch])
def test_state_round_trips(cls):
    p = torch.nn.Parameter(torch.ones(3))
    opt = cls([p], lr=0.1)
    p.grad = torch.full((3,), 0.5)
    opt.step()
    q = torch.nn.Parameter(torch.ones(3))
    other = cls([q], lr=0.1)
    other.load_state_dict(opt.state_dict())
    assert other.steps == 1
    for name in cls.STATE:
        assert torch.equal(other.state[0][name], opt.state[0][name])
    with pytest.raises(ValueError):
        cls([torch.nn.Parameter(torch.ones(4))], lr=0.1).load_state_dict(opt.state_dict())
    # the restored optimizer takes the very next step the original takes; a fresh one does not
    q.data.copy_(p.data)
    fresh_p = torch.nn.Parameter(p.detach().clone())
    fresh = cls([fresh_p], lr=0.1)
    for param, optimizer in ((p, opt), (q, other), (fresh_p, fresh)):
        param.grad = torch.tensor([0.1, -2.0, 0.0])
        optimizer.step()
    torch.testing.assert_close(q, p, rtol=0, atol=0)
    assert not torch.allclose(fresh_p, p, rtol=0, atol=1e-4)
