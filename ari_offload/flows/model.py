"""Flow actions: plain frozen dataclasses, their validation and their JSON form (sans-IO).

A flow is an ordered list of actions run against one call::

    [{"type": "ai_talk", "agent_id": "...", "welcome_message": "Hello!"}]

``parse_actions(raw)`` turns decoded JSON into typed actions or raises ``ValidationError``
naming the exact field (``actions[0].agent_id``). The same field table produces the JSON
Schema that the REST API publishes, so the document and the check cannot drift apart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ari_offload.errors import ValidationError

MAX_ACTIONS = 50
MAX_TEXT_LENGTH = 2000
MAX_PAUSE_S = 60.0
MAX_ID_LENGTH = 64


@dataclass(frozen=True)
class AiTalk:
    """Speak the welcome message, then converse with the agent's webhook until hangup."""

    agent_id: str
    welcome_message: str | None = None
    type: ClassVar[Literal["ai_talk"]] = "ai_talk"


@dataclass(frozen=True)
class Talk:
    """Speak a fixed text."""

    text: str
    type: ClassVar[Literal["talk"]] = "talk"


@dataclass(frozen=True)
class Pause:
    """Wait in silence."""

    seconds: float
    type: ClassVar[Literal["pause"]] = "pause"


@dataclass(frozen=True)
class Hangup:
    """End the call."""

    type: ClassVar[Literal["hangup"]] = "hangup"


@dataclass(frozen=True)
class Transfer:
    """Leave the flow for a transfer target the operator named in the policy file.

    Tenants name a target ("operator", "sales"); only the policy knows where it leads (a
    dialplan context/extension or an endpoint), so a flow can never dial what the operator
    did not list.
    """

    target: str
    type: ClassVar[Literal["transfer"]] = "transfer"


Action = AiTalk | Talk | Pause | Hangup | Transfer
ACTION_TYPES: tuple[str, ...] = ("ai_talk", "talk", "pause", "hangup", "transfer")


@dataclass(frozen=True)
class _Field:
    name: str
    kind: Literal["string", "number", "integer"]
    required: bool = False
    min_length: int = 0
    max_length: int | None = None
    pattern: str | None = None
    exclusive_minimum: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""


@dataclass(frozen=True)
class _Shape:
    type: str
    fields: tuple[_Field, ...]
    build: Callable[[dict[str, Any]], Action]
    description: str


_NO_NUL = r"^[^\u0000]*$"  # is_storable() refuses NUL in every string
# The names of transfer targets in the policy file (policy.NAME_PATTERN).
_TARGET_RE = r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$"

_SHAPES: tuple[_Shape, ...] = (
    _Shape(
        "ai_talk",
        (
            _Field("agent_id", "string", True, 1, MAX_ID_LENGTH, description="an agent's id"),
            _Field(
                "welcome_message",
                "string",
                max_length=MAX_TEXT_LENGTH,
                description="spoken when the call starts",
            ),
        ),
        lambda v: AiTalk(v["agent_id"], v.get("welcome_message")),
        "Converse with an agent's webhook until the call ends.",
    ),
    _Shape(
        "talk",
        (_Field("text", "string", True, 1, MAX_TEXT_LENGTH),),
        lambda v: Talk(v["text"]),
        "Speak a fixed text.",
    ),
    _Shape(
        "pause",
        (_Field("seconds", "number", True, exclusive_minimum=0, maximum=MAX_PAUSE_S),),
        lambda v: Pause(float(v["seconds"])),
        "Wait in silence (0 < seconds <= 60).",
    ),
    _Shape("hangup", (), lambda v: Hangup(), "End the call."),
    _Shape(
        "transfer",
        (
            _Field(
                "target",
                "string",
                True,
                1,
                63,
                _TARGET_RE,
                description="a transfer target the operator named (ask them for the list)",
            ),
        ),
        lambda v: Transfer(v["target"]),
        "Hand the caller to a transfer target of the operator's policy.",
    ),
)
_ARTICLE = {"integer": "an integer", "number": "a number", "string": "a string"}
# The transfer forms before the operator policy: dial strings a tenant could choose.
_RETIRED_TRANSFER_KEYS = frozenset({"context", "extension", "priority", "endpoint"})


def parse_actions(raw: object, path: str = "actions") -> list[Action]:
    """Validate decoded JSON and return typed actions; raises ``ValidationError``."""
    if not isinstance(raw, list):
        raise ValidationError(path, "expected a list of actions")
    if not raw:
        raise ValidationError(path, "a flow needs at least one action")
    if len(raw) > MAX_ACTIONS:
        raise ValidationError(path, f"at most {MAX_ACTIONS} actions")
    return [parse_action(item, f"{path}[{i}]") for i, item in enumerate(raw)]


def parse_action(raw: object, path: str) -> Action:
    if not isinstance(raw, dict):
        raise ValidationError(path, "expected an object with a 'type'")
    kind = raw.get("type")
    if kind is None:
        raise ValidationError(f"{path}.type", "required")
    if not isinstance(kind, str) or kind not in ACTION_TYPES:
        raise ValidationError(f"{path}.type", f"expected one of {', '.join(ACTION_TYPES)}")
    shape = _pick_shape(kind)
    if kind == "transfer" and "target" not in raw and _RETIRED_TRANSFER_KEYS & raw.keys():
        raise ValidationError(
            f"{path}.target",
            "required: transfers name a target of the operator's policy; context, extension "
            "and endpoint are no longer accepted",
        )
    known = {f.name for f in shape.fields}
    for key in raw:
        if key != "type" and key not in known:
            raise ValidationError(f"{path}.{key}", f"unknown field for action '{kind}'")
    values = {f.name: _check_field(f, raw.get(f.name), f"{path}.{f.name}") for f in shape.fields}
    return shape.build(values)


def _pick_shape(kind: str) -> _Shape:
    return next(s for s in _SHAPES if s.type == kind)


def _check_field(spec: _Field, value: object, path: str) -> object:
    if value is None:
        if spec.required:
            raise ValidationError(path, "required")
        return None
    if spec.kind == "string":
        return _check_string(spec, value, path)
    return _check_number(spec, value, path)


def _check_string(spec: _Field, value: object, path: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(path, "expected a string")
    if len(value) < spec.min_length:
        raise ValidationError(
            path,
            "must not be empty"
            if spec.min_length == 1
            else f"at least {spec.min_length} characters",
        )
    if spec.max_length is not None and len(value) > spec.max_length:
        raise ValidationError(path, f"at most {spec.max_length} characters")
    if spec.pattern is not None and not matches_pattern(spec.pattern, value):
        raise ValidationError(path, f"must match {spec.pattern}")
    if not is_storable(value):
        raise ValidationError(path, "must be valid Unicode without NUL characters")
    return value


def matches_pattern(pattern: str, value: str) -> bool:
    # JSON Schema's "$" is the end of input; Python's also matches before a final newline.
    return (
        re.search(pattern.removesuffix("$") + r"\Z" if pattern.endswith("$") else pattern, value)
        is not None
    )


def is_storable(value: str) -> bool:
    """False for text no database can hold: NUL (PostgreSQL) or lone surrogates (UTF-8)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_number(spec: _Field, value: object, path: str) -> float | int:
    # bool is an int in Python but not a number in JSON.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(path, f"expected {_ARTICLE[spec.kind]}")
    if not math.isfinite(value):
        raise ValidationError(path, "must be finite")
    if spec.kind == "integer":
        # JSON Schema counts 1.0 as an integer; 1.5 is not.
        if isinstance(value, float) and not value.is_integer():
            raise ValidationError(path, "expected an integer")
        value = int(value)
    if spec.exclusive_minimum is not None and value <= spec.exclusive_minimum:
        raise ValidationError(path, f"must be greater than {spec.exclusive_minimum:g}")
    if spec.minimum is not None and value < spec.minimum:
        raise ValidationError(path, f"must be at least {spec.minimum:g}")
    if spec.maximum is not None and value > spec.maximum:
        raise ValidationError(path, f"must be at most {spec.maximum:g}")
    return value


def action_to_json(action: Action) -> dict[str, Any]:
    """The JSON form of an action, without absent optional fields; parses back equal."""
    out: dict[str, Any] = {"type": action.type}
    for key, value in vars(action).items():
        if value is not None:
            out[key] = value
    return out


def actions_to_json(actions: list[Action] | tuple[Action, ...]) -> list[dict[str, Any]]:
    return [action_to_json(a) for a in actions]


def action_json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12, as used by OpenAPI 3.1) of one action."""
    return {"oneOf": [_shape_schema(s) for s in _SHAPES]}


def _shape_schema(shape: _Shape) -> dict[str, Any]:
    props: dict[str, Any] = {"type": {"const": shape.type}}
    for f in shape.fields:
        prop: dict[str, Any] = {"type": f.kind if f.required else [f.kind, "null"]}
        for key, value in (
            ("minLength", f.min_length or None),
            ("maxLength", f.max_length),
            ("pattern", f.pattern or (_NO_NUL if f.kind == "string" else None)),
            ("exclusiveMinimum", f.exclusive_minimum),
            ("minimum", f.minimum),
            ("maximum", f.maximum),
            ("description", f.description or None),
        ):
            if value is not None:
                prop[key] = value
        props[f.name] = prop
    return {
        "type": "object",
        "description": shape.description,
        "properties": props,
        "required": ["type", *(f.name for f in shape.fields if f.required)],
        "additionalProperties": False,
    }
