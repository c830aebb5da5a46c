"""Send-time pacing on an absolute clock (sans-IO: the caller passes ``now``).

Frame n is due at ``anchor + n * period``, so sleep overshoot does not accumulate into drift.
After a stall longer than ``max_lag_periods`` (a blocked event loop), the pacer re-anchors at
``now`` instead of bursting the backlog: Asterisk would drop or re-time a burst anyway.
"""

from __future__ import annotations

from ari_offload.audio import FRAME_S

DEFAULT_MAX_LAG_PERIODS = 3


class Pacer:
    def __init__(
        self, period_s: float = FRAME_S, max_lag_periods: int = DEFAULT_MAX_LAG_PERIODS
    ) -> None:
        if period_s <= 0:
            raise ValueError(f"period_s must be positive, got {period_s}")
        self.period_s = period_s
        self.max_lag_periods = max_lag_periods
        self.resyncs = 0
        self.frames = 0  # frames advanced over, across anchors
        self._anchor: float | None = None
        self._index = 0  # frames since the anchor

    @property
    def next_due(self) -> float | None:
        """When the next frame is due, or None before ``start()`` / after ``reset()``."""
        if self._anchor is None:
            return None
        return self._anchor + self._index * self.period_s

    def start(self, now: float) -> None:
        """Anchor the clock: the next frame is due at ``now``."""
        self._anchor = now
        self._index = 0

    def reset(self) -> None:
        """Forget the anchor (idle between talkspurts); the next ``delay()`` starts afresh."""
        self._anchor = None
        self._index = 0

    def delay(self, now: float) -> float:
        """Seconds until the next frame is due; 0.0 if it is due or late."""
        due = self.next_due
        if due is None:
            self.start(now)
            return 0.0
        if now - due > self.max_lag_periods * self.period_s:
            self.resyncs += 1
            self.start(now)
            return 0.0
        return max(0.0, due - now)

    def advance(self) -> None:
        """One frame has been sent."""
        self._index += 1
        self.frames += 1
