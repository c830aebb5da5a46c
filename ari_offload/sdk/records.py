"""What the REST API answers, as typed records: access keys, agents, flows, calls.

Each record's ``from_json`` reads the API's JSON (``ari_offload.api.schemas``); fields a newer
server added come last with a default, so the SDK reads older servers too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ari_offload.flows.actions import Action
from ari_offload.flows.model import parse_actions
from ari_offload.turn_fields import STORED_FIELDS

CallStatus = Literal["ringing", "active", "ended", "failed"]


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class AccessKey:
    id: str
    name: str
    created_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    token: str | None = field(default=None, repr=False)  # only when just created

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> AccessKey:
        return cls(
            d["id"],
            d["name"],
            _time(d["created_at"]),
            _time(d.get("expires_at")),
            _time(d.get("revoked_at")),
            _time(d.get("last_used_at")),
            d.get("token"),
        )


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    detail: str
    webhook: str | None  # None: an agent of kind "llm"
    has_secret: bool
    voice: str | None
    language: str | None
    created_at: datetime | None
    updated_at: datetime | None
    events_url: str | None = None  # last: older servers do not send it
    speaking_rate: float | None = None  # times the voice's pace; older servers do not send it
    # The LLM agent kind (older servers send none of these): its endpoint, model and knobs.
    kind: str = "webhook"
    base_url: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    has_api_key: bool = False
    temperature: float | None = None
    max_tokens: int | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Agent:
        return cls(
            d["id"],
            d["name"],
            d["detail"],
            d["webhook"],
            d["has_secret"],
            d["voice"],
            d["language"],
            _time(d["created_at"]),
            _time(d["updated_at"]),
            d.get("events_url"),
            d.get("speaking_rate"),
            **{k: d[k] for k in _LLM_AGENT_FIELDS if k in d},
        )


_LLM_AGENT_FIELDS = (
    "kind", "base_url", "model", "system_prompt", "has_api_key", "temperature", "max_tokens"
)  # fmt: skip


@dataclass(frozen=True)
class Flow:
    id: str
    name: str
    actions: tuple[Action, ...]
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Flow:
        return cls(
            d["id"],
            d["name"],
            tuple(parse_actions(d["actions"])),
            _time(d["created_at"]),
            _time(d["updated_at"]),
        )


@dataclass(frozen=True)
class TranscriptLine:
    role: Literal["caller", "agent", "system"]
    text: str
    at: datetime | None


@dataclass(frozen=True)
class TurnLatency:
    """One turn's measurements; the fields are ``turn_fields.STORED_FIELDS``."""

    turn: int
    endpoint_ms: float | None
    stt_ms: float | None
    webhook_ms: float | None
    tts_first_audio_ms: float | None
    total_ms: float | None
    webhook_error: str | None
    at: datetime | None


@dataclass(frozen=True)
class Call:
    id: str
    flow_id: str | None
    direction: Literal["in", "out"]
    status: CallStatus
    caller: str | None
    destination: str | None
    started_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    hangup_reason: str | None
    # Filled by ``calls.get`` only.
    transcript: tuple[TranscriptLine, ...] = ()
    turns: tuple[TurnLatency, ...] = ()
    answered_by: Literal["human", "machine"] | None = None  # a flow's detect_machine verdict
    message: str | None = None  # what it was placed with; older servers do not send it
    recording_started_at: datetime | None = None  # None: not recorded (``calls.recording``)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Call:
        return cls(
            d["id"],
            d["flow_id"],
            d["direction"],
            d["status"],
            d["caller"],
            d["destination"],
            _time(d["started_at"]),
            _time(d["answered_at"]),
            _time(d["ended_at"]),
            d["hangup_reason"],
            tuple(
                TranscriptLine(e["role"], e["text"], _time(e["at"]))
                for e in d.get("transcript", ())
            ),
            tuple(
                TurnLatency(
                    turn=t["turn"],
                    at=_time(t["at"]),
                    **{f.name: t[f.name] for f in STORED_FIELDS},
                )
                for t in d.get("turns", ())
            ),
            d.get("answered_by"),
            d.get("message"),
            _time(d.get("recording_started_at")),
        )
