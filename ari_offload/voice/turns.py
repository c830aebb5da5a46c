"""Sans-IO pieces of a conversation: turn timings, the transcript, what the caller heard."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ari_offload.turn_fields import LATENCY_FIELDS, STORED_FIELDS, TOTAL_PARTS, WebhookFailure


@dataclass
class TurnTiming:
    """Where one turn's latency went (ms); each field is described in ``TURN_FIELDS``.

    Filled in as the turn goes (the store is told each step): None is not measured (yet), e.g.
    the webhook of a call that ended while it was thinking.
    """

    turn: int
    endpoint_ms: float = 0.0
    stt_ms: float = 0.0
    webhook_ms: float | None = None
    tts_first_audio_ms: float | None = None
    total_ms: float | None = None
    webhook_error: WebhookFailure | None = None
    interrupted: bool = False

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def stored(self) -> dict[str, Any]:
        """The values the store keeps, by field name (``Calls.add_turn``'s keywords)."""
        return {f.name: getattr(self, f.name) for f in STORED_FIELDS}

    def latencies_ms(self) -> dict[str, float | None]:
        """The latency parts, by field name (None: not measured)."""
        return {f.name: getattr(self, f.name) for f in LATENCY_FIELDS}

    def summary(self) -> str:
        parts = " + ".join(f"{f.short} {_ms(getattr(self, f.name))}" for f in TOTAL_PARTS)
        return f"turn {self.turn}: total {_ms(self.total_ms)} ms = {parts}" + (
            f" (webhook {self.webhook_error})" if self.webhook_error else ""
        )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


@dataclass(frozen=True)
class TranscriptEntry:
    role: str  # "caller", "agent" or "system"
    text: str
    at: float = field(default_factory=time.time)
    heard: str | None = None  # for an interrupted agent line: what the caller actually heard


@dataclass(frozen=True)
class Segment:
    """One sentence queued for playback, as a range of the port's playout positions."""

    text: str
    start: int
    end: int


def heard_text(segments: list[Segment], played_until: int) -> str:
    """What the caller heard of a reply cut at sample position ``played_until``.

    Whole sentences played to their end, plus the share of the next one's words that
    matches the share of its audio played (speech is near enough to uniform for this).
    """
    parts: list[str] = []
    for segment in segments:
        if played_until >= segment.end:
            parts.append(segment.text)
            continue
        if played_until > segment.start:
            words = segment.text.split()
            share = (played_until - segment.start) / max(1, segment.end - segment.start)
            cut = int(len(words) * share)
            if cut:
                parts.append(" ".join(words[:cut]))
        break
    return " ".join(parts)
