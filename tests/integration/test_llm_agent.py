"""The LLM agent kind on a real call: a SIPp caller talks to an agent that is a model behind
an OpenAI-compatible endpoint (a local stand-in streaming tokens at 30 a second).

Two turns: the second request carries the first (the caller's words and the reply as the
caller heard it), and each reply is heard by the caller, transcribed from the RTP capture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ari_offload.app import App
from ari_offload.sdk.client import ApiError, Client
from ari_offload.speech.models import SpeechModels
from testbed.dialogue import Say, Silence, run_dialogue
from testbed.llm_standin import LlmStandIn, serving
from tests.integration.helpers import heard, sounds_like

pytestmark = [
    pytest.mark.integration,
    pytest.mark.models,
    pytest.mark.usefixtures("loop_must_not_block"),
]

KEY = "sk-standin-call-0123456789"
PROMPT = "You are the phone agent of Acme. Answer in one short sentence."
WELCOME = "Hello! How can I help you today?"
FIRST = "Your order ships tomorrow. Anything else?"
SECOND = "Yes, it can arrive on Friday instead."


def replies(messages: list[dict[str, str]]) -> str:
    """The model's answer: by how many times the caller has spoken."""
    turns = sum(m["role"] == "user" for m in messages)
    return FIRST if turns == 1 else SECOND


@pytest.fixture
async def standin() -> AsyncIterator[LlmStandIn]:
    async with serving(LlmStandIn(replies, api_key=KEY)) as server:
        yield server


async def test_an_llm_agent_holds_a_two_turn_call_with_its_history(
    app: App, standin: LlmStandIn, speech_models: SpeechModels
) -> None:
    async with await Client.signup(app.api_url + "/v1.0", "llm-caller", "password1") as client:
        agent = await client.agents.create(
            "concierge", kind="llm", base_url=standin.url, model="standin-1",
            system_prompt=PROMPT, api_key=KEY,
        )  # fmt: skip
        flow = await client.flows.create(
            "llm", [{"type": "ai_talk", "agent_id": agent.id, "welcome_message": WELCOME}]
        )
        result = await run_dialogue(
            f"8{flow.id}",
            [Silence(3.5), Say("Where is my order"), Silence(6.0), Say("Can it come sooner"),
             Silence(6.0)],
        )  # fmt: skip
        detail = await client.calls.get((await client.calls.list())[0].id)

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    assert len(standin.received) == 2
    assert [r.headers["Authorization"] for r in standin.received] == [f"Bearer {KEY}"] * 2
    assert all(r.body["stream"] is True for r in standin.received)
    first, second = (r.messages for r in standin.received)
    assert [m["role"] for m in first] == ["system", "assistant", "user"]
    assert (first[0]["content"], first[1]["content"]) == (PROMPT, WELCOME)
    # The model got the caller's words as the call heard them (whisper's text, which may
    # miss a word of espeak's caller: the transcript is the reference, not the script).
    caller_lines = [line.text.strip() for line in detail.transcript if line.role == "caller"]
    assert len(caller_lines) == 2, caller_lines
    assert first[2]["content"] == caller_lines[0]
    # Turn 2's request carries turn 1: the caller's words and the reply, heard to its end.
    assert second[:3] == first
    assert second[3] == {"role": "assistant", "content": FIRST}
    assert second[4] == {"role": "user", "content": caller_lines[1]}
    assert len(second) == 5

    # The caller heard each reply after the words it answers.
    one, two = result.caller[-2], result.caller[-1]
    after_one = [b for b in result.agent if one.end <= b.start < two.start]
    after_two = [b for b in result.agent if b.start >= two.end]
    assert after_one, "the caller heard no reply to turn 1"
    assert after_two, "the caller heard no reply to turn 2"
    said_one = " ".join([await heard(speech_models, b) for b in after_one])
    said_two = " ".join([await heard(speech_models, b) for b in after_two])
    assert sounds_like(said_one, FIRST), said_one
    assert sounds_like(said_two, SECOND), said_two

    agent_lines = [line.text for line in detail.transcript if line.role == "agent"]
    assert agent_lines == [WELCOME, FIRST, SECOND]
    assert [t.webhook_error for t in detail.turns] == [None, None]
    assert all(t.webhook_ms is not None for t in detail.turns)


async def test_a_base_url_the_egress_policy_refuses_is_refused_naming_the_field(
    app: App, standin: LlmStandIn
) -> None:
    # The test bed's policy allows 127.0.0.1 only: 127.0.0.2 is loopback too, and refused.
    refused = standin.url.replace("127.0.0.1", "127.0.0.2")
    async with await Client.signup(app.api_url + "/v1.0", "llm-egress", "password1") as client:
        with pytest.raises(ApiError) as caught:
            await client.agents.create("sneaky", kind="llm", base_url=refused, model="m")
        assert await client.agents.list() == []
    error = caught.value
    assert (error.status, error.code, error.field) == (403, "policy_refused", "base_url")
    assert "egress.allow" in error.message
    assert standin.received == []


async def test_a_key_the_caller_presses_reaches_the_model_as_words(
    app: App, speech_models: SpeechModels
) -> None:
    def answer(messages: list[dict[str, str]]) -> str:
        pressed = "keypad" in messages[-1]["content"]
        return "You pressed five." if pressed else "Hello. Press a key, please."

    async with (
        serving(LlmStandIn(answer)) as keys,
        await Client.signup(app.api_url + "/v1.0", "llm-keys", "password1") as client,
    ):
        agent = await client.agents.create("keys", kind="llm", base_url=keys.url, model="standin-1")
        flow = await client.flows.create("keys", [{"type": "ai_talk", "agent_id": agent.id}])
        result = await run_dialogue(
            # The key once the first reply is over (a key during it would cut it short).
            f"8{flow.id}",
            [Silence(1.0), Say("Hello there"), Silence(11.0)],
            dtmf=[(8.5, "5")],
        )

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    assert len(keys.received) == 2
    assert keys.received[1].messages[-1] == {
        "role": "user", "content": "(The caller pressed 5 on the phone's keypad.)"
    }  # fmt: skip
    assert keys.received[1].messages[-2] == {
        "role": "assistant", "content": "Hello. Press a key, please."
    }  # fmt: skip
    said = await heard(speech_models, result.agent[-1])
    assert sounds_like(said, "You pressed five.", "Hello. Press a key, please."), said
