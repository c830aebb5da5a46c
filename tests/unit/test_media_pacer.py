import pytest

from ari_offload.media.pacer import Pacer

T0 = 1000.0


def test_first_frame_is_due_at_start_then_every_period() -> None:
    pacer = Pacer(0.02)
    pacer.start(T0)

    assert pacer.delay(T0) == 0.0
    pacer.advance()
    assert pacer.delay(T0 + 0.005) == pytest.approx(0.015)
    assert pacer.delay(T0 + 0.020) == 0.0
    assert pacer.delay(T0 + 0.025) == 0.0  # late: send now


def test_clock_is_absolute_so_late_wakeups_do_not_drift() -> None:
    pacer = Pacer(0.02)
    pacer.start(T0)
    now = T0
    for _ in range(50):
        now += pacer.delay(now) + 0.003  # every sleep overshoots by 3 ms
        pacer.advance()

    assert pacer.next_due == pytest.approx(T0 + 1.0)
    assert pacer.resyncs == 0


def test_small_lag_catches_up_without_resync() -> None:
    pacer = Pacer(0.02, max_lag_periods=3)
    pacer.start(T0)
    pacer.advance()

    late = T0 + 0.02 + 0.05  # 2.5 periods behind
    delays = []
    for _ in range(4):
        delays.append(pacer.delay(late))
        pacer.advance()

    assert delays[:3] == [0.0, 0.0, 0.0]  # the backlog goes out at once
    assert delays[3] == pytest.approx(0.01)
    assert pacer.resyncs == 0


def test_large_lag_reanchors_instead_of_bursting() -> None:
    pacer = Pacer(0.02, max_lag_periods=3)
    pacer.start(T0)
    pacer.advance()

    stalled = T0 + 0.5
    assert pacer.delay(stalled) == 0.0
    pacer.advance()

    assert pacer.resyncs == 1
    assert pacer.delay(stalled) == pytest.approx(0.02)
    assert pacer.next_due == pytest.approx(stalled + 0.02)


def test_reset_starts_afresh_at_the_next_delay_call() -> None:
    pacer = Pacer(0.02)
    pacer.start(T0)
    pacer.advance()

    pacer.reset()

    assert pacer.next_due is None
    assert pacer.delay(T0 + 10) == 0.0
    assert pacer.next_due == T0 + 10
    assert pacer.resyncs == 0


def test_period_must_be_positive() -> None:
    with pytest.raises(ValueError, match="period_s must be positive, got 0"):
        Pacer(0)
