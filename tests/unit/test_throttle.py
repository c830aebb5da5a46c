"""The auth rate limiter, sans-IO: time is a number the test moves."""

from __future__ import annotations

import pytest

from ari_offload.api.throttle import AuthThrottle, Limiter, retry_after_header
from ari_offload.config import ApiSettings


def test_events_below_the_limit_are_allowed() -> None:
    limiter = Limiter(3, 60.0, max_block_s=600.0)
    limiter.record("a", 0.0)
    limiter.record("a", 1.0)

    assert limiter.retry_after("a", 2.0) == 0.0


def test_reaching_the_limit_blocks_for_one_window() -> None:
    limiter = Limiter(3, 60.0, max_block_s=600.0)
    for now in (0.0, 1.0, 2.0):
        limiter.record("a", now)

    assert limiter.retry_after("a", 2.0) == 60.0
    assert limiter.retry_after("a", 61.0) == 1.0
    assert limiter.retry_after("a", 62.0) == 0.0


def test_the_window_slides() -> None:
    limiter = Limiter(3, 60.0, max_block_s=600.0)
    limiter.record("a", 0.0)
    limiter.record("a", 30.0)
    limiter.record("a", 61.0)  # the first one has left the window

    assert limiter.retry_after("a", 61.0) == 0.0
    limiter.record("a", 62.0)
    assert limiter.retry_after("a", 62.0) == 60.0


def test_repeated_blocks_double_up_to_the_maximum() -> None:
    limiter = Limiter(2, 10.0, max_block_s=50.0)
    now, blocks = 0.0, []
    for _ in range(5):
        limiter.record("a", now)
        limiter.record("a", now)
        blocks.append(limiter.retry_after("a", now))
        now += blocks[-1]

    assert blocks == [10.0, 20.0, 40.0, 50.0, 50.0]


def test_a_quiet_key_is_forgiven() -> None:
    limiter = Limiter(2, 10.0, max_block_s=50.0)
    for now in (0.0, 0.0, 10.0, 10.0):
        limiter.record("a", now)
    assert limiter.retry_after("a", 10.0) == 20.0
    limiter.record("a", 100.0)  # quiet for longer than the max block
    limiter.record("a", 100.0)

    assert limiter.retry_after("a", 100.0) == 10.0


def test_keys_are_independent_and_forget_resets() -> None:
    limiter = Limiter(1, 60.0, max_block_s=600.0)
    limiter.record("a", 0.0)

    assert limiter.retry_after("b", 0.0) == 0.0
    limiter.forget("a")
    assert limiter.retry_after("a", 0.0) == 0.0


def test_memory_is_bounded_oldest_key_evicted_first() -> None:
    limiter = Limiter(5, 60.0, max_block_s=600.0, max_keys=100)
    limiter.record("old", 0.0)
    limiter.record("kept", 0.0)
    for i in range(99):
        limiter.record("kept", float(i))  # seen again: moves to the young end
        limiter.record(f"ip{i}", float(i))

    assert len(limiter) == 100
    assert "old" not in limiter._keys
    assert "kept" in limiter._keys


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        Limiter(0, 60.0, max_block_s=60.0)


@pytest.mark.parametrize(("seconds", "header"), [(0.2, "1"), (1.0, "1"), (59.01, "60")])
def test_retry_after_rounds_up_to_whole_seconds(seconds: float, header: str) -> None:
    assert retry_after_header(seconds) == header


def test_auth_throttle_limits_per_ip_and_per_name() -> None:
    throttle = AuthThrottle(
        ApiSettings(login_failures_per_ip=5, login_failures_per_name=3, login_window_s=60.0)
    )
    for _ in range(3):
        throttle.login_failed("10.0.0.1", "Alice", 0.0)

    assert throttle.login_retry_after("10.0.0.2", "alice", 1.0) == 59.0  # the name, any IP
    assert throttle.login_retry_after("10.0.0.1", "bob", 1.0) == 0.0  # the IP is below 5
    throttle.login_failed("10.0.0.1", "bob", 1.0)
    throttle.login_failed("10.0.0.1", "carol", 1.0)
    assert throttle.login_retry_after("10.0.0.1", "dave", 1.0) == 60.0  # the IP, any name
    assert throttle.login_retry_after("10.0.0.3", "dave", 1.0) == 0.0


def test_a_successful_login_resets_the_name_not_the_ip() -> None:
    throttle = AuthThrottle(ApiSettings(login_failures_per_ip=3, login_failures_per_name=3))
    throttle.login_failed("10.0.0.1", "alice", 0.0)
    throttle.login_failed("10.0.0.1", "alice", 0.0)
    throttle.login_started("10.0.0.1", "alice", 0.0)
    throttle.login_succeeded("10.0.0.1", "alice")
    throttle.login_failed("10.0.0.2", "alice", 1.0)
    throttle.login_failed("10.0.0.2", "alice", 1.0)

    assert throttle.login_retry_after("10.0.0.2", "alice", 1.0) == 0.0
    assert throttle.login_retry_after("10.0.0.1", "x", 2.0) == 0.0
    throttle.login_failed("10.0.0.1", "mallory", 2.0)  # the IP's two earlier failures count
    assert throttle.login_retry_after("10.0.0.1", "x", 2.0) == 60.0


def test_logins_being_checked_count_against_the_limit() -> None:
    throttle = AuthThrottle(ApiSettings(login_failures_per_ip=20, login_failures_per_name=3))
    for _ in range(3):  # a burst: all three pass the check before any has failed
        assert throttle.login_retry_after("10.0.0.1", "alice", 0.0) == 0.0
        throttle.login_started("10.0.0.1", "alice", 0.0)

    assert throttle.login_retry_after("10.0.0.1", "alice", 0.0) == 1.0  # the 4th waits
    throttle.login_unchecked("10.0.0.1", "alice")  # refused for a full queue: no verdict
    assert throttle.login_retry_after("10.0.0.1", "alice", 0.0) == 0.0
    throttle.login_failed("10.0.0.1", "alice", 0.1)
    throttle.login_failed("10.0.0.1", "alice", 0.1)
    assert throttle.login_retry_after("10.0.0.1", "alice", 0.1) == 0.0
    throttle.login_started("10.0.0.1", "alice", 0.2)
    throttle.login_failed("10.0.0.1", "alice", 0.2)
    assert throttle.login_retry_after("10.0.0.1", "alice", 0.2) == 60.0


def test_signups_are_limited_per_ip() -> None:
    throttle = AuthThrottle(ApiSettings(signups_per_ip=2, signup_window_s=3600.0))
    throttle.signup_attempted("10.0.0.1", 0.0)
    assert throttle.signup_retry_after("10.0.0.1", 0.0) == 0.0
    throttle.signup_attempted("10.0.0.1", 5.0)

    assert throttle.signup_retry_after("10.0.0.1", 5.0) == 3600.0
    assert throttle.signup_retry_after("10.0.0.2", 5.0) == 0.0
