"""What a turn's timing record holds, declared once: the store, the API, the SDK and the
metrics derive their turn fields from ``TURN_FIELDS``, and ``WebhookFailure`` names why a
webhook gave no reply.

A leaf module (standard library only): the server's rooms and the SDK may all import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class WebhookFailure(StrEnum):
    """Why the agent webhook gave no usable reply: the stored value, the API value and the
    ``kind`` label of the webhook failure counter."""

    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"  # includes a refusal by the egress policy (its message says so)
    STATUS = "status"  # answered, but not 2xx (redirects included)
    BAD_REPLY = "bad_reply"
    OTHER = "other"


# Until issue 8 the store held the error's class name; old rows read back as the kind.
_LEGACY_NAMES = {
    "WebhookTimeout": WebhookFailure.TIMEOUT,
    "WebhookUnreachable": WebhookFailure.UNREACHABLE,
    "EgressRefused": WebhookFailure.UNREACHABLE,
    "WebhookStatusError": WebhookFailure.STATUS,
    "WebhookBadReply": WebhookFailure.BAD_REPLY,
    "WebhookError": WebhookFailure.OTHER,
}


def stored_webhook_failure(text: str | None) -> str | None:
    """A stored ``webhook_error`` as today's value (an old row may hold a class name)."""
    if text is None:
        return None
    return _LEGACY_NAMES.get(text, text)


def webhook_failure(text: str | None) -> WebhookFailure | None:
    """A stored ``webhook_error`` as one of the kinds the API documents; text that is none
    of them (the store takes any text) reads as ``other``."""
    value = stored_webhook_failure(text)
    if value is None:
        return None
    return WebhookFailure(value) if value in set(WebhookFailure) else WebhookFailure.OTHER


@dataclass(frozen=True)
class TurnField:
    """One measurement of a turn.

    ``part``: the label of the turn latency histogram, for a latency (None otherwise);
    ``short``: its name in one-line summaries; ``in_total``: one of the parts that add up to
    ``total_ms``; ``stored``: kept in the store and served by the API and the SDK.
    """

    name: str
    type: type
    unit: str
    description: str
    part: str | None = None
    short: str | None = None
    in_total: bool = False
    stored: bool = True


def _latency(name: str, description: str, short: str, *, in_total: bool = True) -> TurnField:
    part = name.removesuffix("_ms")
    return TurnField(name, float, "ms", description, part, short, in_total)


TURN_FIELDS: tuple[TurnField, ...] = (
    _latency(
        "endpoint_ms",
        "silence waited for, from the caller's last audible frame, before deciding the caller"
        " was done",
        "endpoint",
    ),
    _latency(
        "stt_ms",
        "after the endpoint, until the agent was asked: the rest of the transcription"
        " (speculative STT hides most of it) and putting the turn on record",
        "stt",
    ),
    _latency("webhook_ms", "the agent webhook's answer time", "webhook"),
    _latency(
        "tts_first_audio_ms", "webhook reply -> first reply audio on the wire to the caller", "tts"
    ),
    _latency(
        "total_ms",
        "the caller's last audible frame -> first reply audio on the wire: what the caller"
        " waits for; endpoint + stt + webhook + tts",
        "total",
        in_total=False,
    ),
    TurnField(
        "webhook_error",
        WebhookFailure,
        "",
        "why the webhook gave no reply (the fallback line was spoken): "
        + ", ".join(WebhookFailure)
        + "; null if it replied",
    ),
    TurnField("interrupted", bool, "", "the caller barged in on the reply", stored=False),
)
STORED_FIELDS = tuple(f for f in TURN_FIELDS if f.stored)
LATENCY_FIELDS = tuple(f for f in TURN_FIELDS if f.part is not None)
TOTAL_PARTS = tuple(f for f in TURN_FIELDS if f.in_total)
