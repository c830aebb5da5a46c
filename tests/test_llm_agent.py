"""The LLM agent kind against a real local OpenAI-compatible stand-in that streams tokens slowly.

The line (agent.lines.LlmLine) is driven as a conversation drives it: each turn through a
``StreamedAnswer``, then ``said`` with what the caller heard. The stand-in
(testbed/llm_standin.py) checks the key and keeps every request it got.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import pytest

from ari_offload.agent.answer import StreamedAnswer
from ari_offload.agent.client import WebhookClient
from ari_offload.agent.contract import WebhookRequest
from ari_offload.agent.egress import RULE_ALLOW, webhook_session
from ari_offload.agent.lines import LlmLine, open_line
from ari_offload.agent.llm_chat import LlmConfig
from ari_offload.errors import EgressRefused, WebhookStatusError, WebhookTimeout
from ari_offload.policy import Policy
from ari_offload.policy_file import load_policy
from testbed.asterisk import TESTBED_POLICY_FILE
from testbed.llm_standin import LlmStandIn, serving, tokens

KEY = "sk-standin-0123456789abcdef"
PROMPT = "You are Acme's phone agent. Answer in one short sentence."
WELCOME = "Hello! How can I help you today?"
FALLBACK = "Sorry, could you say that again?"
MODEL = "standin-1"


def turn(text: str, number: int) -> WebhookRequest:
    return WebhookRequest("call-1", "agent-1", text, number, heard=None)


def scripted(messages: list[dict[str, str]]) -> str:
    asked = messages[-1]["content"]
    if "order" in asked:
        return "Your order ships tomorrow morning. Anything else?"
    return f"Noted: {asked}. Is there anything else I can do for you today?"


@pytest.fixture
async def standin() -> AsyncIterator[LlmStandIn]:
    async with serving(LlmStandIn(scripted, api_key=KEY)) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[WebhookClient]:
    # The app's own session: the test bed's egress policy allows 127.0.0.1.
    async with webhook_session(load_policy(TESTBED_POLICY_FILE).egress, set()) as session:
        yield WebhookClient(session, 2.0, stream_timeout_s=10.0)


def line_to(standin: LlmStandIn, client: WebhookClient, key: str | None = KEY) -> LlmLine:
    line = open_line(
        client, webhook=None, secret=None, llm=LlmConfig(standin.url, MODEL, PROMPT, key)
    )
    assert isinstance(line, LlmLine)  # the kind picks the line
    return line


async def spoken(answer: StreamedAnswer) -> list[tuple[float, str]]:
    return [(time.monotonic(), piece) async for piece in answer.pieces()]


async def test_two_turns_stream_token_by_token_and_carry_the_history(
    standin: LlmStandIn, client: WebhookClient
) -> None:
    line = line_to(standin, client)
    line.said(WELCOME)  # the flow's welcome, heard in full
    first = StreamedAnswer(line, turn("Where is my order?", 1), FALLBACK)
    pieces = await spoken(first)
    reply = "Your order ships tomorrow morning. Anything else?"
    assert first.text == reply
    assert first.error is None
    assert [p for _, p in pieces] == tokens(reply)  # as the stand-in sent them, one by one
    assert pieces[0][0] < standin.finished_at[0]  # the first words came before the stream ended
    line.said(first.text)  # heard to its end

    second = StreamedAnswer(line, turn("Can it come sooner?", 2), FALLBACK)
    await spoken(second)
    assert second.text.startswith("Noted: Can it come sooner?")
    asked = standin.received[1]
    assert asked.messages == [
        {"role": "system", "content": PROMPT},
        {"role": "assistant", "content": WELCOME},
        {"role": "user", "content": "Where is my order?"},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "Can it come sooner?"},
    ]
    assert (asked.body["model"], asked.body["stream"]) == (MODEL, True)
    assert "temperature" not in asked.body
    assert "max_tokens" not in asked.body
    assert [r.headers["Authorization"] for r in standin.received] == [f"Bearer {KEY}"] * 2
    assert client.stats.requests == 2
    assert client.stats.succeeded == 2


async def test_a_reply_cut_short_is_remembered_as_far_as_the_caller_heard_it(
    standin: LlmStandIn, client: WebhookClient
) -> None:
    line = line_to(standin, client)
    answer = StreamedAnswer(line, turn("Tell me about the refund policy", 1), FALLBACK)
    pieces = answer.pieces()
    said = [await anext(pieces), await anext(pieces)]
    await pieces.aclose()  # the caller barged in: the request is cancelled
    await standin.cut.wait()
    assert standin.finished_at == []
    line.said(said[0].strip())  # the caller heard only the first word
    await spoken(StreamedAnswer(line, turn("Stop, just the deadline", 2), FALLBACK))
    assert [m["content"] for m in standin.received[1].messages[1:]] == [
        "Tell me about the refund policy",
        "Noted:",
        "Stop, just the deadline",
    ]


async def test_a_refused_key_costs_the_fallback_line_and_is_never_shown(
    standin: LlmStandIn, client: WebhookClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ari_offload")
    wrong = "sk-wrong-key-never-logged-42"
    line = line_to(standin, client, key=wrong)
    answer = StreamedAnswer(line, turn("Hello?", 1), FALLBACK)
    assert [p for _, p in await spoken(answer)] == [FALLBACK]
    assert isinstance(answer.error, WebhookStatusError)
    assert answer.error.status == 401
    message = str(answer.error)
    assert message.startswith(f"LLM endpoint {standin.url}/chat/completions answered HTTP 401")
    assert "Incorrect API key provided: <api_key>" in message  # the server quoted it
    assert wrong not in message
    assert wrong not in caplog.text
    assert standin.received[0].headers["Authorization"] == f"Bearer {wrong}"  # it was sent
    # The caller heard the fallback line: so does the model, next turn.
    line.said(answer.text)
    await spoken(StreamedAnswer(line, turn("Hello again?", 2), FALLBACK))
    assert [m["role"] for m in standin.received[1].messages] == [
        "system", "user", "assistant", "user"
    ]  # fmt: skip


async def test_without_a_key_no_authorization_is_sent(client: WebhookClient) -> None:
    async with serving(LlmStandIn(scripted)) as open_server:
        answer = StreamedAnswer(line_to(open_server, client, key=None), turn("Hi", 1), FALLBACK)
        await spoken(answer)
    assert answer.error is None
    assert "Authorization" not in open_server.received[0].headers


async def test_the_knobs_are_sent_and_a_whole_completion_is_one_piece(
    client: WebhookClient,
) -> None:
    async with serving(LlmStandIn(scripted, ignore_stream=True)) as whole:
        config = LlmConfig(whole.url, MODEL, PROMPT, temperature=0.3, max_tokens=120)
        line = LlmLine(client, config)
        answer = StreamedAnswer(line, turn("Where is my order?", 1), FALLBACK)
        pieces = await spoken(answer)
    assert [p for _, p in pieces] == ["Your order ships tomorrow morning. Anything else?"]
    body = whole.received[0].body
    assert (body["temperature"], body["max_tokens"], body["stream"]) == (0.3, 120, True)


async def test_a_model_slower_than_the_first_text_timeout_is_a_timeout(
    client: WebhookClient,
) -> None:
    async with serving(LlmStandIn(scripted, first_token_s=3.0)) as slow:
        answer = StreamedAnswer(line_to(slow, client, key=None), turn("Hi", 1), FALLBACK)
        assert [p for _, p in await spoken(answer)] == [FALLBACK]
    assert isinstance(answer.error, WebhookTimeout)
    assert (
        str(answer.error) == f"LLM endpoint {slow.url}/chat/completions did not answer within 2 s"
    )


async def test_the_egress_policy_refuses_a_loopback_endpoint_at_connect_time(
    standin: LlmStandIn,
) -> None:
    # The default policy allows public addresses only: 127.0.0.1 is refused as a webhook is.
    async with webhook_session(Policy().egress, set()) as session:
        client = WebhookClient(session, 2.0)
        line = line_to(standin, client)
        answer = StreamedAnswer(line, turn("Hi", 1), FALLBACK)
        assert [p for _, p in await spoken(answer)] == [FALLBACK]
    assert isinstance(answer.error, EgressRefused)
    assert answer.error.rule == RULE_ALLOW
    assert "LLM endpoint" in str(answer.error)
    assert "loopback" in str(answer.error)
    assert standin.received == []  # nothing reached it
