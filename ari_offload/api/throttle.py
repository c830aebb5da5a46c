"""Login and signup rate limits, sans-IO: every method takes ``now`` (monotonic seconds).

``Limiter`` counts events per key (a client IP, an account name) in a sliding window. When a
key reaches ``max_events`` inside ``window_s`` it is blocked for ``window_s``, doubling each
time it is blocked again (up to ``max_block_s``); a key quiet for ``max_block_s`` starts over.
The number of keys is capped: the least recently seen key is forgotten first, so a flood of
distinct keys costs bounded memory.

``AuthThrottle`` applies three limiters to the auth routes, checked before any password hash
is computed: failed logins per IP and per name, and signups per IP. Logins being checked
count against the limit too, so a burst of concurrent guesses cannot all pass the check
before the first of them has failed.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from ari_offload.config import ApiSettings

DEFAULT_MAX_KEYS = 10_000
IN_FLIGHT_RETRY_S = 1.0


@dataclass
class _State:
    events: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0
    strikes: int = 0  # times blocked since the key was last quiet for max_block_s
    in_flight: int = 0  # attempts begun and not yet ended
    last_seen: float = 0.0


class Limiter:
    def __init__(
        self,
        max_events: int,
        window_s: float,
        *,
        max_block_s: float,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if max_events < 1 or window_s <= 0 or max_keys < 1:
            raise ValueError("max_events, window_s and max_keys must be positive")
        self.max_events = max_events
        self.window_s = window_s
        self.max_block_s = max(max_block_s, window_s)
        self.max_keys = max_keys
        self._keys: OrderedDict[str, _State] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again; 0.0 if it may now."""
        state = self._keys.get(key)
        if state is None:
            return 0.0
        if now < state.blocked_until:
            return state.blocked_until - now
        recent = sum(1 for t in state.events if t > now - self.window_s)
        if recent + state.in_flight >= self.max_events:
            return IN_FLIGHT_RETRY_S  # the attempts under way may still all fail
        return 0.0

    def record(self, key: str, now: float) -> None:
        """Count one event (a failed login, a signup) for ``key``."""
        state = self._touch(key, now)
        if now - state.last_seen > self.max_block_s:
            state.strikes = 0  # quiet long enough: forgiven
        state.last_seen = now
        events = state.events
        while events and events[0] <= now - self.window_s:
            events.popleft()
        events.append(now)
        if len(events) >= self.max_events:
            state.strikes += 1
            block = min(self.window_s * 2 ** (state.strikes - 1), self.max_block_s)
            state.blocked_until = now + block
            events.clear()

    def forget(self, key: str) -> None:
        self._keys.pop(key, None)

    def begin(self, key: str, now: float) -> None:
        """An attempt is under way: it counts against the limit until ``end``."""
        self._touch(key, now).in_flight += 1

    def end(self, key: str) -> None:
        state = self._keys.get(key)
        if state is not None and state.in_flight > 0:
            state.in_flight -= 1

    def _touch(self, key: str, now: float) -> _State:
        state = self._keys.get(key)
        if state is None:
            while len(self._keys) >= self.max_keys:
                self._keys.popitem(last=False)
            state = self._keys[key] = _State(last_seen=now)
        else:
            self._keys.move_to_end(key)
        return state


def retry_after_header(seconds: float) -> str:
    """Retry-After is whole seconds; round up so a client never retries too early."""
    return str(max(1, math.ceil(seconds)))


class AuthThrottle:
    """The auth routes' limits; names are compared case-folded so 'Alice' counts as 'alice'."""

    def __init__(self, settings: ApiSettings) -> None:
        window = settings.login_window_s
        block = settings.login_max_block_s
        self.login_ip = Limiter(settings.login_failures_per_ip, window, max_block_s=block)
        self.login_name = Limiter(settings.login_failures_per_name, window, max_block_s=block)
        self.signup_ip = Limiter(
            settings.signups_per_ip, settings.signup_window_s, max_block_s=block
        )

    def login_retry_after(self, ip: str, name: str, now: float) -> float:
        return max(
            self.login_ip.retry_after(ip, now), self.login_name.retry_after(name.casefold(), now)
        )

    def login_started(self, ip: str, name: str, now: float) -> None:
        self.login_ip.begin(ip, now)
        self.login_name.begin(name.casefold(), now)

    def login_failed(self, ip: str, name: str, now: float) -> None:
        self.login_ip.end(ip)
        self.login_name.end(name.casefold())
        self.login_ip.record(ip, now)
        self.login_name.record(name.casefold(), now)

    def login_succeeded(self, ip: str, name: str) -> None:
        # The IP keeps its failures: one good account must not launder a spray of guesses.
        self.login_ip.end(ip)
        self.login_name.forget(name.casefold())

    def login_unchecked(self, ip: str, name: str) -> None:
        """The attempt ended without a verdict (the hash queue was full)."""
        self.login_ip.end(ip)
        self.login_name.end(name.casefold())

    def signup_retry_after(self, ip: str, now: float) -> float:
        return self.signup_ip.retry_after(ip, now)

    def signup_attempted(self, ip: str, now: float) -> None:
        self.signup_ip.record(ip, now)
