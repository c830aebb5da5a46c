"""What an agent's reply may ask for besides speech, sans-IO: the actions and their checks.

A reply (whole, or a stream's final object) may carry ``"actions"``, run in order once the
reply's text has been said::

    {"text": "Putting you through to sales.", "actions": [{"type": "transfer", "target": "sales"}]}
    {"text": "Please enter your PIN, then hash.",
     "actions": [{"type": "collect", "max_digits": 4, "terminator": "#", "timeout_s": 10}]}

``transfer``, ``hangup`` and ``send_dtmf`` mean what the flow actions of the same names do
(their fields are the same specs, action_fields); ``collect`` exists only here: it asks the
caller for keys, which come back to the agent as the next request (``"type": "dtmf"``).
``"hangup": true`` is the same as a final ``hangup`` (kept as the reply's ``hangup``).
Rules, each refused with a message saying what to fix: at most MAX_REPLY_ACTIONS;
``transfer`` or ``hangup`` only last (nothing runs after the call left); ``collect`` at most
once and not with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import ClassVar

from ari_offload.action_fields import DTMF_DIGITS, TRANSFER_TARGET
from ari_offload.errors import ValidationError, WebhookBadReply
from ari_offload.schema import Const, Int, Obj, Spec, Str

MAX_REPLY_ACTIONS = 8
MAX_COLLECT_DIGITS = 32
MAX_COLLECT_TIMEOUT_S = 60
DEFAULT_COLLECT_TIMEOUT_S = 10
COLLECT_TERMINATORS = ("#", "*")


@dataclass(frozen=True)
class Transfer:
    """Hand the caller to a transfer target of the operator's policy (the flow's transfer)."""

    target: str
    type: ClassVar[str] = "transfer"


@dataclass(frozen=True)
class Hangup:
    type: ClassVar[str] = "hangup"


@dataclass(frozen=True)
class SendDtmf:
    """Play keys to the far end (an IVR on an outbound call)."""

    digits: str
    type: ClassVar[str] = "send_dtmf"


@dataclass(frozen=True)
class Collect:
    """Wait for the caller's keys: up to ``max_digits``, or until ``terminator`` (not
    included in the digits), or ``timeout_s`` without a key; then the agent is asked again
    with them. Words instead of keys end the wait: the agent gets what was said."""

    max_digits: int = 1
    terminator: str | None = None
    timeout_s: int = DEFAULT_COLLECT_TIMEOUT_S
    type: ClassVar[str] = "collect"


ReplyAction = Transfer | Hangup | SendDtmf | Collect


def _shape(kind: str, description: str, fields: dict[str, Spec], optional: bool = False) -> Obj:
    return Obj(
        None, {"type": Const(kind), **fields}, required=("type", *([] if optional else fields)),
        description=description, unknown_field=f"unknown field for action '{kind}'",
    )  # fmt: skip


_COLLECT_FIELDS: dict[str, Spec] = {
    "max_digits": Int(1, MAX_COLLECT_DIGITS, description="stop after this many keys"),
    "terminator": Str(1, 1, enum=COLLECT_TERMINATORS, nullable=True,
                      description="a key that ends the input early (not included)"),
    "timeout_s": Int(1, MAX_COLLECT_TIMEOUT_S,
                     description="seconds to wait for the first key and between keys"),
}  # fmt: skip
SHAPES: dict[str, tuple[type[ReplyAction], Obj]] = {
    "transfer": (Transfer, _shape("transfer", Transfer.__doc__ or "", {"target": TRANSFER_TARGET})),
    "hangup": (Hangup, _shape("hangup", "End the call once the reply is said.", {})),
    "send_dtmf": (SendDtmf, _shape("send_dtmf", SendDtmf.__doc__ or "", {"digits": DTMF_DIGITS})),
    "collect": (Collect, _shape(
        "collect", "Wait for the caller's keys; the next request carries them.",
        _COLLECT_FIELDS, optional=True,
    )),
}  # fmt: skip

REPLY_ACTION_TYPES = tuple(SHAPES)
_FINAL = (Transfer, Hangup)


def parse_reply_actions(raw: object) -> tuple[ReplyAction, ...]:
    """The ``actions`` of a reply, checked; ``WebhookBadReply`` naming the field otherwise."""
    try:
        return _checked(_parsed(raw))
    except ValidationError as exc:
        raise WebhookBadReply(f'reply "{exc.field}": {exc.message}') from None


def checked_actions(actions: Sequence[ReplyAction]) -> tuple[ReplyAction, ...]:
    """The actions of a streamed reply's lines, together, checked as one list."""
    try:
        return _checked(actions)
    except ValidationError as exc:
        raise WebhookBadReply(
            f'reply "{exc.field}" (its lines\' actions joined): {exc.message}'
        ) from None


def _parsed(raw: object) -> list[ReplyAction]:
    if not isinstance(raw, list):
        raise ValidationError("actions", "expected a list of actions")
    if len(raw) > MAX_REPLY_ACTIONS:
        raise ValidationError("actions", f"at most {MAX_REPLY_ACTIONS} actions")
    out: list[ReplyAction] = []
    for i, item in enumerate(raw):
        path = f"actions[{i}]"
        kind = item.get("type") if isinstance(item, dict) else None
        if not isinstance(item, dict) or kind not in REPLY_ACTION_TYPES:
            raise ValidationError(
                f"{path}.type", f"expected one of {', '.join(REPLY_ACTION_TYPES)}"
            )
        cls, shape = SHAPES[kind]
        values = shape.validate(item, path)
        assert isinstance(values, dict)
        out.append(cls(**{k: v for k, v in values.items() if k != "type"}))
    return out


def _checked(actions: Sequence[ReplyAction]) -> tuple[ReplyAction, ...]:
    for i, action in enumerate(actions[:-1]):
        if isinstance(action, _FINAL):
            raise ValidationError(
                f"actions[{i}]", f"{action.type} ends the call's flow: it must be the last action"
            )
    collects = [i for i, a in enumerate(actions) if isinstance(a, Collect)]
    if len(collects) > 1:
        raise ValidationError(f"actions[{collects[1]}]", "at most one collect per reply")
    if collects and actions and isinstance(actions[-1], _FINAL):
        raise ValidationError(
            f"actions[{len(actions) - 1}]",
            f"{actions[-1].type} cannot follow collect: the keys would have nobody to go to",
        )
    return tuple(actions)


def split_hangup(
    actions: tuple[ReplyAction, ...], hangup: bool
) -> tuple[tuple[ReplyAction, ...], bool]:
    """The actions without a final ``hangup``, and whether to hang up: the flag and the
    action say the same thing, the reply keeps it once (as its ``hangup``)."""
    if actions and isinstance(actions[-1], Hangup):
        return actions[:-1], True
    if hangup and actions and isinstance(actions[-1], Transfer | Collect):
        raise WebhookBadReply(
            f'reply "hangup": true conflicts with its {actions[-1].type} action (the call'
            " would leave before it runs)"
        )
    return actions, hangup


def action_json(action: ReplyAction) -> dict[str, object]:
    """``action`` as a reply carries it: ``{"type": ..., fields}`` (what ``parse_reply_actions``
    reads back to the same action)."""
    return {"type": action.type, **asdict(action)}


def describe(action: ReplyAction) -> str:
    """One line for the transcript (what the agent asked for, in words)."""
    if isinstance(action, Transfer):
        return f"transfer to {action.target}"
    if isinstance(action, SendDtmf):
        return f"send keys {action.digits}"
    if isinstance(action, Collect):
        ends = f", {action.terminator} ends" if action.terminator else ""
        return f"collect up to {action.max_digits} keys{ends}, {action.timeout_s} s timeout"
    return "hang up"
