"""The linear learning-rate schedule, as the trainer applies it after each update."""

import pytest

from learner_service.optim import linear_schedule


def test_linear_schedule_decays_to_zero_at_the_budget_and_stays_there():
    lr_at = linear_schedule(1e-3, 1000)
    assert lr_at(0) == pytest.approx(1e-3)
    assert lr_at(250) == pytest.approx(7.5e-4)
    assert lr_at(1000) == 0.0 and lr_at(5000) == 0.0
