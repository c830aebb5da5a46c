"""What the store hands out: frozen records, detached from the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from ari_offload.agent.llm_chat import LlmConfig
from ari_offload.flows.actions import Action


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class CallStatus(StrEnum):
    RINGING = "ringing"
    ACTIVE = "active"
    ENDED = "ended"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (CallStatus.ENDED, CallStatus.FAILED)


class Role(StrEnum):
    CALLER = "caller"
    AGENT = "agent"
    SYSTEM = "system"


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class AccessKey:
    """An access key's metadata. The token itself is never stored, only its SHA-256."""

    id: str
    customer_id: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def is_usable(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True)
class NewAccessKey:
    """Returned once, at creation: the only moment the token is known."""

    key: AccessKey
    token: str = field(repr=False)


@dataclass(frozen=True)
class Agent:
    """An agent of kind "webhook" (``webhook`` set, the LLM fields None) or "llm" (``webhook``
    None; ``base_url`` and ``model`` set, ``system_prompt`` a string)."""

    id: str
    customer_id: str
    name: str
    detail: str
    webhook: str | None
    secret: str | None = field(repr=False)  # signs webhook requests and call events
    voice: str | None
    speaking_rate: float | None  # times the voice's normal pace; None: its own
    language: str | None
    events_url: str | None  # call events go there (agent/events.py); None: none
    created_at: datetime
    updated_at: datetime
    kind: str = "webhook"  # agent.lines.AGENT_KINDS
    base_url: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    api_key: str | None = field(default=None, repr=False)  # sent to the LLM endpoint only
    temperature: float | None = None
    max_tokens: int | None = None

    @property
    def llm(self) -> LlmConfig | None:
        """An llm agent's endpoint and model; None for a webhook agent."""
        if self.kind != "llm" or self.base_url is None or self.model is None:
            return None
        return LlmConfig(
            self.base_url, self.model, self.system_prompt or "", self.api_key,
            self.temperature, self.max_tokens,
        )  # fmt: skip


@dataclass(frozen=True)
class Flow:
    id: str
    customer_id: str
    name: str
    actions: tuple[Action, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Call:
    id: str
    customer_id: str
    flow_id: str | None
    direction: Direction
    status: CallStatus
    caller: str | None
    destination: str | None
    channel_id: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    hangup_reason: str | None
    answered_by: str | None = None  # "human" or "machine" once detect_machine decided
    message: str | None = None  # placed with it, for the flow's say_message
    node_id: str | None = None  # the cluster node running it (None: a single node)
    # Where its recording is, on the node that recorded it; None: not recorded.
    recording_path: str | None = None
    recording_started_at: datetime | None = None


@dataclass(frozen=True)
class Node:
    """A cluster node as its last heartbeat left it (store/nodes.py)."""

    id: str
    api_url: str
    asterisk: str
    started_at: datetime
    last_seen: datetime
    load: int  # calls in progress on the node
    ari_connected: bool
    down_since: datetime | None  # since when its Asterisk is unreachable (None: connected)


@dataclass(frozen=True)
class TranscriptRecord:
    call_id: str
    seq: int
    role: Role
    text: str
    at: datetime


@dataclass(frozen=True)
class Turn:
    """One caller-utterance-to-reply cycle: ``turn_fields.STORED_FIELDS``, None when not
    measured (times in milliseconds)."""

    call_id: str
    turn: int
    endpoint_ms: float | None
    stt_ms: float | None
    webhook_ms: float | None
    tts_first_audio_ms: float | None
    total_ms: float | None
    webhook_error: str | None
    at: datetime
