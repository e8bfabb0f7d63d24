"""The starvation meter: the share of the trainer's last WINDOW seconds spent waiting, with old passes forgotten."""

from prometheus_client import CollectorRegistry, Gauge

from learner_service.starvation import StarvationMeter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def meter(window: float = 10.0) -> tuple[StarvationMeter, Gauge, Clock]:
    gauge = Gauge("g", "", registry=CollectorRegistry())
    clock = Clock()
    return StarvationMeter(gauge, window, clock), gauge, clock


def value(gauge: Gauge) -> float:
    return gauge._value.get()


def test_share_of_time_waited():
    m, gauge, clock = meter()
    for _ in range(10):
        clock.now += 1.0
        m.record(waited=0.75, busy=0.25)
    assert value(gauge) == 0.75


def test_old_passes_leave_the_window():
    m, gauge, clock = meter(window=10.0)
    for _ in range(20):  # starved for 20 s
        clock.now += 1.0
        m.record(waited=1.0, busy=0.0)
    assert value(gauge) == 1.0
    for _ in range(11):  # then saturated for longer than the window
        clock.now += 1.0
        m.record(waited=0.0, busy=1.0)
    assert value(gauge) == 0.0


def test_zero_until_the_first_pass():
    _, gauge, _ = meter()
    assert value(gauge) == 0.0
