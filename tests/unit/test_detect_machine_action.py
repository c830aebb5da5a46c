"""The detect_machine flow action's shape: parsed, refused with the field named, first only."""

from __future__ import annotations

from typing import Any, cast

import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev extras
import pytest

from ari_offload.agent.client import WebhookClient
from ari_offload.ari.call import ActiveCall
from ari_offload.ari.events import Channel
from ari_offload.ari.rest import AriRest
from ari_offload.config import Settings
from ari_offload.errors import ValidationError
from ari_offload.flows.actions import AiTalk, DetectMachine
from ari_offload.flows.actions.detect_machine import ADOPTED_NOTE, run_detect_machine
from ari_offload.flows.executor import FlowContext
from ari_offload.flows.model import action_json_schema, actions_to_json, parse_actions
from ari_offload.speech.models import SpeechModels
from ari_offload.voice.call_book import ConversationObserver
from ari_offload.voice.turns import TranscriptEntry
from tests.unit.fake_media import FakeMediaPort

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


def call_of(direction: str, adopted: bool = False) -> ActiveCall:
    channel = Channel(id="1795476849.0", name="PJSIP/sipp-uas-00000000", state="Up")
    call = ActiveCall("call-1", channel, {}, direction, cast(AriRest, None), FakeMediaPort())
    call.adopted = adopted
    return call


def context(notes: list[TranscriptEntry]) -> FlowContext:
    class Notes:
        def transcript_added(self, call: ActiveCall, entry: TranscriptEntry) -> None:
            notes.append(entry)

    async def no_agent(agent_id: str) -> None:
        return None

    # Nothing but the transcript is reached on these paths: no models, no webhook.
    return FlowContext(
        cast(Settings, None), cast(SpeechModels, None), cast(WebhookClient, None), no_agent,
        cast(ConversationObserver, Notes()),
    )  # fmt: skip


async def test_an_inbound_call_goes_on_with_the_flow_unscreened() -> None:
    notes: list[TranscriptEntry] = []
    assert await run_detect_machine(call_of("in"), DetectMachine(MESSAGE), context(notes))
    assert notes == []


async def test_an_adopted_outbound_call_is_not_screened_mid_conversation() -> None:
    # The app restarted mid-call: the flow begins again while the person talks; hearing that
    # as a long greeting would leave them a voicemail message.
    notes: list[TranscriptEntry] = []
    call = call_of("out", adopted=True)
    assert await run_detect_machine(call, DetectMachine(MESSAGE), context(notes))
    assert [(n.role, n.text) for n in notes] == [("system", ADOPTED_NOTE)]
    assert call.hangup_reason == ""
