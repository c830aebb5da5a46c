"""Flow actions: parsing, exact error paths, JSON round trip, and schema == validator."""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev extras
import pytest

from ari_offload.errors import ValidationError
from ari_offload.flows.actions import AiTalk, Hangup, Pause, Talk, Transfer
from ari_offload.flows.model import MAX_ACTIONS, action_json_schema, action_to_json, parse_actions

VALID: list[tuple[dict[str, Any], object]] = [
    ({"type": "ai_talk", "agent_id": "a1"}, AiTalk("a1")),
    ({"type": "ai_talk", "agent_id": "a1", "welcome_message": "Hi"}, AiTalk("a1", "Hi")),
    ({"type": "ai_talk", "agent_id": "a1", "welcome_message": None}, AiTalk("a1")),
    ({"type": "talk", "text": "Hello"}, Talk("Hello")),
    ({"type": "pause", "seconds": 60}, Pause(60.0)),
    ({"type": "pause", "seconds": 0.2}, Pause(0.2)),
    ({"type": "hangup"}, Hangup()),
    ({"type": "transfer", "target": "operator"}, Transfer("operator")),
    ({"type": "transfer", "target": "sales.desk-2"}, Transfer("sales.desk-2")),
]

INVALID: list[tuple[object, str, str]] = [
    ({"type": "ai_talk"}, "actions[0].agent_id", "required"),
    ({"type": "ai_talk", "agent_id": 5}, "actions[0].agent_id", "expected a string"),
    ({"type": "ai_talk", "agent_id": ""}, "actions[0].agent_id", "must not be empty"),
    (
        {"type": "ai_talk", "agent_id": "a", "welcome_message": "x" * 2001},
        "actions[0].welcome_message",
        "at most 2000",
    ),
    ({"type": "ai_talk", "agent_id": "a", "bogus": 1}, "actions[0].bogus", "unknown field"),
    ({"type": "talk"}, "actions[0].text", "required"),
    ({"type": "talk", "text": "a\x00b"}, "actions[0].text", "NUL"),
    ({"type": "talk", "text": "\ud800"}, "actions[0].text", "Unicode"),
    ({"type": "pause", "seconds": 0}, "actions[0].seconds", "greater than 0"),
    ({"type": "pause", "seconds": 60.5}, "actions[0].seconds", "at most 60"),
    ({"type": "pause", "seconds": True}, "actions[0].seconds", "expected a number"),
    ({"type": "pause", "seconds": "1"}, "actions[0].seconds", "expected a number"),
    ({"type": "pause", "seconds": float("nan")}, "actions[0].seconds", "finite"),
    ({"type": "hangup", "now": True}, "actions[0].now", "unknown field"),
    ({"type": "transfer"}, "actions[0].target", "required"),
    # Dial strings and dialplan locations are the operator's: a tenant names a target only.
    (
        {"type": "transfer", "context": "from-internal", "extension": "00900123"},
        "actions[0].target",
        "no longer accepted",
    ),
    ({"type": "transfer", "endpoint": "Local/8me@from-test"}, "actions[0].target", "required"),
    ({"type": "transfer", "target": "PJSIP/alice"}, "actions[0].target", "match"),
    ({"type": "transfer", "target": "a,b"}, "actions[0].target", "match"),
    ({"type": "transfer", "target": "x", "endpoint": "PJSIP/a"}, "actions[0].endpoint", "unknown"),
    ({"type": "dance"}, "actions[0].type", "expected one of"),
    ({"type": 3}, "actions[0].type", "expected one of"),
    ({"agent_id": "a"}, "actions[0].type", "required"),
    ("hangup", "actions[0]", "expected an object"),
]


@pytest.mark.parametrize(("raw", "expected"), VALID)
def test_valid_actions_parse_and_round_trip(raw: dict[str, Any], expected: object) -> None:
    (action,) = parse_actions([raw])
    assert action == expected
    assert parse_actions([action_to_json(action)]) == [action]


@pytest.mark.parametrize(("raw", "field", "message"), INVALID)
def test_errors_name_the_exact_field(raw: object, field: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_actions([raw])
    assert err.value.field == field
    assert message in err.value.message
    assert str(err.value).startswith(f"{field}: ")


def test_error_path_counts_the_position() -> None:
    with pytest.raises(ValidationError) as err:
        parse_actions([{"type": "hangup"}, {"type": "talk", "text": 1}], path="body.actions")
    assert err.value.field == "body.actions[1].text"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"type": "hangup"}, "expected a list"),
        ([], "at least one"),
        ([{"type": "hangup"}] * (MAX_ACTIONS + 1), f"at most {MAX_ACTIONS}"),
    ],
)
def test_list_level_errors(raw: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as err:
        parse_actions(raw)
    assert err.value.field == "actions"


def test_validation_error_is_a_value_error() -> None:
    assert issubclass(ValidationError, ValueError)


@pytest.mark.parametrize("raw", [r for r, _ in VALID])
def test_schema_accepts_what_the_parser_accepts(raw: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(action_json_schema()).validate(raw)


# NaN/surrogates/NUL are refused beyond the schema: JSON cannot carry NaN, and the other two
# cannot be stored. A final newline: the schema's (ECMA) "$" refuses it, but the jsonschema
# package checks patterns with Python's re, whose "$" lets it through.
_SCHEMA_BLIND = {"NUL", "Unicode", "finite"}


def _schema_sees(raw: object, message: str) -> bool:
    values = raw.values() if isinstance(raw, dict) else ()
    return message not in _SCHEMA_BLIND and not any(
        isinstance(v, str) and v.endswith("\n") for v in values
    )


@pytest.mark.parametrize(
    ("raw", "field", "message"), [c for c in INVALID if _schema_sees(c[0], c[2])]
)
def test_schema_rejects_what_the_parser_rejects(raw: object, field: str, message: str) -> None:
    validator = jsonschema.Draft202012Validator(action_json_schema())
    assert not validator.is_valid(raw), (raw, field)
