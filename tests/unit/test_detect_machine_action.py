"""The detect_machine flow action's shape: parsed, refused with the field named, first only."""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev extras
import pytest

from ari_offload.errors import ValidationError
from ari_offload.flows.actions import AiTalk, DetectMachine
from ari_offload.flows.model import action_json_schema, actions_to_json, parse_actions

MESSAGE = "Hi, this is Acme. Please call us back."


def test_it_parses_and_round_trips_before_the_flow_it_guards() -> None:
    raw: list[dict[str, Any]] = [
        {"type": "detect_machine", "voicemail_message": MESSAGE},
        {"type": "ai_talk", "agent_id": "a1", "welcome_message": "Hello!"},
    ]
    actions = parse_actions(raw)
    assert actions == [DetectMachine(MESSAGE), AiTalk("a1", "Hello!")]
    assert actions_to_json(actions) == raw
    for action in raw:
        jsonschema.validate(action, action_json_schema())


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ([{"type": "detect_machine"}], "actions[0].voicemail_message", "required"),
        (
            [{"type": "detect_machine", "voicemail_message": ""}],
            "actions[0].voicemail_message",
            "must not be empty",
        ),
        (
            [{"type": "detect_machine", "voicemail_message": "x" * 2001}],
            "actions[0].voicemail_message",
            "at most 2000",
        ),
        (
            [{"type": "detect_machine", "voicemail_message": 7}],
            "actions[0].voicemail_message",
            "expected a string",
        ),
        (
            [{"type": "detect_machine", "voicemail_message": "hi", "beep": True}],
            "actions[0].beep",
            "unknown field",
        ),
        # It listens from the answer on: after another action it would hear the wrong moment.
        (
            [
                {"type": "talk", "text": "Hello"},
                {"type": "detect_machine", "voicemail_message": "hi"},
            ],
            "actions[1].type",
            "first action",
        ),
        (
            [
                {"type": "detect_machine", "voicemail_message": "hi"},
                {"type": "detect_machine", "voicemail_message": "again"},
            ],
            "actions[1].type",
            "first action",
        ),
    ],
)
def test_errors_name_the_field(raw: object, field: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_actions(raw)
    assert caught.value.field == field
    assert message in str(caught.value)
