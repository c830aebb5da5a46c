"""Request bodies and response objects of the REST API, and records -> JSON.

Request specs are strict (no unknown fields); response specs document what handlers return.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ari_offload import policy
from ari_offload.action_fields import DTMF_DIGITS, TRANSFER_TARGET
from ari_offload.api.agent_kinds import (
    HTTP_URL,
    KIND,
    LLM_FIELDS,
    LLM_RESPONSE_FIELDS,
    llm_json,
    url_problem,
)
from ari_offload.flows import model
from ari_offload.flows.actions.base import MAX_TEXT_LENGTH
from ari_offload.flows.actions.say_message import CALL_MESSAGE
from ari_offload.schema import (
    ID,
    MAX_SPEAKING_RATE,
    MIN_SPEAKING_RATE,
    ONE_LINE,
    VOICE_NAME,
    Arr,
    Bool,
    Custom,
    Int,
    Num,
    Obj,
    Spec,
    Str,
)
from ari_offload.store import (
    AccessKey,
    Agent,
    Call,
    CallStatus,
    Customer,
    Flow,
    NewAccessKey,
    TranscriptRecord,
    Turn,
)
from ari_offload.turn_fields import STORED_FIELDS, TurnField, WebhookFailure, webhook_failure

MAX_EXPIRES_IN_S = 10 * 365 * 24 * 3600


MIN_SECRET_CHARS = 16  # an HMAC key a tenant can guess offline makes the signature worthless


# --- fields ----------------------------------------------------------------------------------
TIME = Str(40, format="date-time")
TIME_OR_NULL = Str(40, format="date-time", nullable=True)
CUSTOMER_NAME = Str(
    64, 1, r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$", description="letters, digits and . _ @ + -"
)
PASSWORD = Str(256, 8, description="at least 8 characters")
AGENT_NAME = Str(100, 1, r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
# Flow names are the tenant's own labels; the dialplan reaches flows by number or id only.
FLOW_NAME = Str(
    64,
    1,
    r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    description="unique among your flows; calls reach a flow through a number the operator "
    "assigns to it, never by name",
)
DETAIL = Str(2000)
_SIGN = "sign with the agent's secret"
WEBHOOK = Str(
    2048,
    1,
    HTTP_URL,
    also=url_problem(_SIGN),
    description="webhook agents (required): where the agent's text turns are POSTed: http "
    "or https, no user:pass@; the operator's policy (egress) says which addresses it may reach",
)
EVENTS_URL = Str(
    2048,
    1,
    HTTP_URL,
    also=url_problem(_SIGN),
    nullable=True,
    description="optional: where call events (call.started, call.answered, turn.finished, "
    "call.ended) are POSTed, signed like the webhook; the same rules as the webhook's URL; "
    "null: none",
)
SECRET = Str(
    256,
    MIN_SECRET_CHARS,
    ONE_LINE,
    nullable=True,
    description="signs webhook requests and call events, at least 16 characters (a short one "
    "can be guessed from one signed request); never returned, see has_secret",
)
VOICE = Str(
    100,
    1,
    VOICE_NAME,
    nullable=True,
    description="a TTS voice of this server (a 422 lists them); null for the server default",
)
SPEAKING_RATE = Num(
    nullable=True,
    minimum=MIN_SPEAKING_RATE,
    maximum=MAX_SPEAKING_RATE,
    description=f"how fast the agent's voice speaks, times its normal pace ({MIN_SPEAKING_RATE:g}"
    f" to {MAX_SPEAKING_RATE:g}: 1.5 is half again as fast); null for the voice's own pace",
)
LANGUAGE = Str(
    16,
    2,
    r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
    nullable=True,
    description="e.g. en, en-US: one the server transcribes (a 422 lists them); null for the "
    "server default",
)
KEY_NAME = Str(100, 0, ONE_LINE)
# Loose on purpose: the operator's policy decides, and its refusal names the rule that said no.
DESTINATION = Str(
    200,
    1,
    ONE_LINE,
    description="a number (digits, optional +) dialled on one of the operator's routes, or "
    "the name of an endpoint the operator allows; dial strings are refused",
)
ROUTE = Str(
    63, 1, policy.NAME_PATTERN, nullable=True,
    description="the operator's route for a number; null: the default route",
)  # fmt: skip
CALLER_ID = Str(
    21, 1, ONE_LINE, nullable=True,
    description="a number the operator lets this account present; null: the route's default",
)  # fmt: skip
SAY_TEXT = Str(MAX_TEXT_LENGTH, 1)
ACTIONS = Custom(
    {
        "type": "array",
        "minItems": 1,
        "maxItems": model.MAX_ACTIONS,
        "items": model.action_json_schema(),
    },
    lambda value, path: model.parse_actions(value, path),
)
STATUS = Str(8, enum=tuple(s.value for s in CallStatus))
DIRECTION = Str(3, enum=("in", "out"))

# --- request bodies ---------------------------------------------------------------------------
CREDENTIALS = Obj(
    "Credentials", {"name": CUSTOMER_NAME, "password": PASSWORD}, required=("name", "password")
)
ACCESSKEY_CREATE = Obj(
    "AccessKeyCreate",
    {
        "name": KEY_NAME,
        "expires_in_s": Int(1, MAX_EXPIRES_IN_S, nullable=True, description="null: never expires"),
    },
)
_AGENT_FIELDS: dict[str, Spec] = {
    "name": AGENT_NAME,
    "detail": DETAIL,
    "webhook": WEBHOOK,
    "secret": SECRET,
    "voice": VOICE,
    "speaking_rate": SPEAKING_RATE,
    "language": LANGUAGE,
    "events_url": EVENTS_URL,
    **LLM_FIELDS,
}
# webhook (kind "webhook") or base_url and model (kind "llm"): api.agent_kinds checks them.
AGENT_CREATE = Obj("AgentCreate", {"kind": KIND, **_AGENT_FIELDS}, required=("name",))
AGENT_UPDATE = Obj("AgentUpdate", {"kind": KIND, **_AGENT_FIELDS})
FLOW_CREATE = Obj(
    "FlowCreate", {"name": FLOW_NAME, "actions": ACTIONS}, required=("name", "actions")
)
FLOW_UPDATE = Obj("FlowUpdate", {"name": FLOW_NAME, "actions": ACTIONS})
RECORDING_STARTED = Str(
    40, format="date-time", nullable=True,
    description="when its recording began (GET /calls/{id}/recording); null: not recorded",
)  # fmt: skip
CALL_CREATE = Obj(
    "CallCreate",
    {
        "destination": DESTINATION, "flow_id": ID, "caller_id": CALLER_ID, "route": ROUTE,
        "message": CALL_MESSAGE,
    },
    required=("destination", "flow_id"),
)  # fmt: skip
TALK = Obj("TalkRequest", {"text": SAY_TEXT}, required=("text",))
DTMF = Obj("DtmfRequest", {"digits": DTMF_DIGITS}, required=("digits",))
TRANSFER = Obj("TransferRequest", {"target": TRANSFER_TARGET}, required=("target",))

# --- responses --------------------------------------------------------------------------------
_STR = Str(10_000, any_text=True)
_STR_OR_NULL = Str(10_000, nullable=True, any_text=True)
ERROR = Obj(
    "Error",
    {
        "error": Obj(
            "ErrorDetail",
            {
                "code": _STR,
                "message": _STR,
                "field": _STR_OR_NULL,
            },
            required=("code", "message", "field"),
        )
    },
    required=("error",),
)
CUSTOMER = Obj(
    "Customer",
    {"id": _STR, "name": _STR, "created_at": TIME},
    required=("id", "name", "created_at"),
)
_KEY_FIELDS: dict[str, Spec] = {
    "id": _STR,
    "name": _STR,
    "created_at": TIME,
    "expires_at": TIME_OR_NULL,
    "revoked_at": TIME_OR_NULL,
    "last_used_at": TIME_OR_NULL,
}
ACCESSKEY = Obj("AccessKey", _KEY_FIELDS, required=tuple(_KEY_FIELDS))
NEW_ACCESSKEY = Obj(
    "NewAccessKey",
    {
        **_KEY_FIELDS,
        "token": Str(200, description="shown once: store it now, it cannot be retrieved again"),
    },
    required=(*_KEY_FIELDS, "token"),
)
SESSION = Obj(
    "Session",
    {"customer": CUSTOMER, "accesskey": NEW_ACCESSKEY},
    required=("customer", "accesskey"),
)
ACCESSKEY_LIST = Obj(
    "AccessKeyList", {"accesskeys": Arr(ACCESSKEY, 10_000)}, required=("accesskeys",)
)
AGENT = Obj(
    "Agent",
    {
        "id": _STR,
        "name": _STR,
        "detail": _STR,
        "webhook": _STR_OR_NULL,
        "has_secret": Bool(),
        "voice": _STR_OR_NULL,
        "speaking_rate": Num(nullable=True),
        "language": _STR_OR_NULL,
        "events_url": _STR_OR_NULL,
        "created_at": TIME,
        "updated_at": TIME,
        **LLM_RESPONSE_FIELDS,
    },
    required=(
        "id", "name", "detail", "webhook", "has_secret", "voice", "speaking_rate", "language",
        "events_url", "created_at", "updated_at", *LLM_RESPONSE_FIELDS,
    ),
)  # fmt: skip
AGENT_LIST = Obj("AgentList", {"agents": Arr(AGENT, 10_000)}, required=("agents",))
FLOW = Obj(
    "Flow",
    {
        "id": _STR,
        "name": _STR,
        "actions": ACTIONS,
        "created_at": TIME,
        "updated_at": TIME,
    },
    required=("id", "name", "actions", "created_at", "updated_at"),
)
FLOW_LIST = Obj("FlowList", {"flows": Arr(FLOW, 10_000)}, required=("flows",))
_CALL_FIELDS: dict[str, Spec] = {
    "id": _STR,
    "flow_id": _STR_OR_NULL,
    "direction": DIRECTION,
    "status": STATUS,
    "caller": _STR_OR_NULL,
    "destination": _STR_OR_NULL,
    "started_at": TIME,
    "answered_at": TIME_OR_NULL,
    "ended_at": TIME_OR_NULL,
    "hangup_reason": _STR_OR_NULL,
    "message": _STR_OR_NULL,
    "answered_by": Str(
        8,
        nullable=True,
        enum=("human", "machine"),
        description="who answered an outbound call (a flow's detect_machine); null: not asked",
    ),
    "recording_started_at": RECORDING_STARTED,
}
CALL = Obj("Call", _CALL_FIELDS, required=tuple(_CALL_FIELDS))
CALL_LIST = Obj("CallList", {"calls": Arr(CALL, 10_000)}, required=("calls",))
TRANSCRIPT_ENTRY = Obj(
    "TranscriptEntry",
    {
        "role": Str(8, enum=("caller", "agent", "system")),
        "text": _STR,
        "at": TIME,
    },
    required=("role", "text", "at"),
)
_MS_NOTE = "milliseconds; null if not measured"


def _turn_property(f: TurnField) -> Spec:
    if f.type is float:
        return Num(nullable=True, description=f"{f.description}; {_MS_NOTE}")
    assert f.type is WebhookFailure, f"{f.name}: give its type a spec"
    return Str(
        20, nullable=True, enum=tuple(k.value for k in WebhookFailure), description=f.description
    )


_TURN_FIELDS: dict[str, Spec] = {
    "turn": Int(0, 2**31),
    **{f.name: _turn_property(f) for f in STORED_FIELDS},
    "at": TIME,
}
TURN = Obj("Turn", _TURN_FIELDS, required=tuple(_TURN_FIELDS))
CALL_DETAIL = Obj(
    "CallDetail",
    {
        **_CALL_FIELDS,
        "transcript": Arr(TRANSCRIPT_ENTRY, 1_000_000),
        "turns": Arr(TURN, 1_000_000),
    },
    required=(*_CALL_FIELDS, "transcript", "turns"),
)


# --- records -> JSON ------------------------------------------------------------------------
def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def customer_json(c: Customer) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "created_at": _time(c.created_at)}


def accesskey_json(k: AccessKey) -> dict[str, Any]:
    return {
        "id": k.id,
        "name": k.name,
        "created_at": _time(k.created_at),
        "expires_at": _time(k.expires_at),
        "revoked_at": _time(k.revoked_at),
        "last_used_at": _time(k.last_used_at),
    }


def new_accesskey_json(k: NewAccessKey) -> dict[str, Any]:
    return {**accesskey_json(k.key), "token": k.token}


def agent_json(a: Agent) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "detail": a.detail,
        "webhook": a.webhook,
        "has_secret": a.secret is not None,
        "voice": a.voice,
        "speaking_rate": a.speaking_rate,
        "language": a.language,
        "events_url": a.events_url,
        "created_at": _time(a.created_at),
        "updated_at": _time(a.updated_at),
        **llm_json(a),
    }


def flow_json(f: Flow) -> dict[str, Any]:
    return {
        "id": f.id,
        "name": f.name,
        "actions": model.actions_to_json(f.actions),
        "created_at": _time(f.created_at),
        "updated_at": _time(f.updated_at),
    }


def call_json(c: Call) -> dict[str, Any]:
    return {
        "id": c.id,
        "flow_id": c.flow_id,
        "direction": c.direction.value,
        "status": c.status.value,
        "caller": c.caller,
        "destination": c.destination,
        "started_at": _time(c.started_at),
        "answered_at": _time(c.answered_at),
        "ended_at": _time(c.ended_at),
        "hangup_reason": c.hangup_reason,
        "message": c.message,
        "answered_by": c.answered_by,
        "recording_started_at": _time(c.recording_started_at),
    }


def call_detail_json(
    c: Call, transcript: list[TranscriptRecord], turns: list[Turn]
) -> dict[str, Any]:
    return {
        **call_json(c),
        "transcript": [
            {"role": e.role.value, "text": e.text, "at": _time(e.at)} for e in transcript
        ],
        "turns": [
            {
                "turn": t.turn,
                **{f.name: getattr(t, f.name) for f in STORED_FIELDS},
                "webhook_error": webhook_failure(t.webhook_error),
                "at": _time(t.at),
            }
            for t in turns
        ],
    }
