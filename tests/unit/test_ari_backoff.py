"""Reconnect backoff: exponential growth with full jitter, bounded, reset after a good connect."""

from __future__ import annotations

import random

import pytest

from ari_offload.ari.stream import Backoff


class FixedRandom(random.Random):
    """An rng whose random() always returns the same value: the delay becomes exact."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_first_delay_is_the_minimum() -> None:
    assert Backoff(0.5, 10.0, FixedRandom(0.99)).next_delay() == 0.5


def test_ceiling_doubles_until_the_maximum() -> None:
    # random() == 1.0 puts each delay on its ceiling: min * 2**attempt, capped at max.
    backoff = Backoff(0.5, 10.0, FixedRandom(1.0))

    delays = [backoff.next_delay() for _ in range(8)]

    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_jitter_spreads_delays_between_min_and_ceiling() -> None:
    backoff = Backoff(0.5, 10.0, FixedRandom(0.5))

    delays = [backoff.next_delay() for _ in range(4)]

    # min + 0.5 * (ceiling - min) for ceilings 0.5, 1, 2, 4
    assert delays == [0.5, 0.75, 1.25, 2.25]


@pytest.mark.parametrize("seed", range(20))
def test_delays_stay_between_min_and_max(seed: int) -> None:
    backoff = Backoff(0.5, 10.0, random.Random(seed))

    delays = [backoff.next_delay() for _ in range(50)]

    assert all(0.5 <= d <= 10.0 for d in delays)


def test_delays_grow_on_average() -> None:
    backoff = Backoff(0.5, 10.0, random.Random(1234))

    early = [backoff.next_delay() for _ in range(3)]
    for _ in range(2):
        backoff.next_delay()
    late = [backoff.next_delay() for _ in range(20)]

    assert max(early) <= 2.0  # ceilings 0.5, 1, 2
    assert sum(late) / len(late) > 2 * sum(early) / len(early)


def test_same_seed_same_delays() -> None:
    a = Backoff(0.5, 10.0, random.Random(7))
    b = Backoff(0.5, 10.0, random.Random(7))

    assert [a.next_delay() for _ in range(10)] == [b.next_delay() for _ in range(10)]


def test_reset_starts_again_from_the_minimum() -> None:
    backoff = Backoff(0.5, 10.0, FixedRandom(1.0))
    for _ in range(6):
        backoff.next_delay()

    backoff.reset()

    assert [backoff.next_delay() for _ in range(3)] == [0.5, 1.0, 2.0]


def test_a_long_outage_does_not_overflow() -> None:
    # Asterisk down for hours: thousands of attempts in a row must keep giving the maximum.
    backoff = Backoff(0.5, 10.0, FixedRandom(1.0))

    delays = [backoff.next_delay() for _ in range(5000)]

    assert delays[-1] == 10.0


def test_default_rng_is_used_without_one() -> None:
    backoff = Backoff(0.5, 10.0)

    assert 0.5 <= backoff.next_delay() <= 10.0
