"""The LLM agent kind's sans-IO core: the chat history and the request it builds."""

from __future__ import annotations

import json

import pytest

from ari_offload.agent.contract import WebhookRequest
from ari_offload.agent.llm_chat import (
    MAX_HISTORY_CHARS,
    MAX_HISTORY_MESSAGES,
    ChatHistory,
    LlmConfig,
    completion_body,
    completions_url,
    parse_completion,
    user_text,
)
from ari_offload.errors import WebhookBadReply

PROMPT = "You are the support line of Acme. Answer in one or two short sentences."


def said(text: str, turn: int = 1) -> WebhookRequest:
    return WebhookRequest("call-1", "agent-1", text, turn, heard=None)


def keys(digits: str, ended_by: str | None = None) -> WebhookRequest:
    return WebhookRequest(
        "call-1", "agent-1", "", 1, None, type="dtmf", digits=digits, ended_by=ended_by
    )


def test_turns_and_what_was_heard_make_the_history_in_order() -> None:
    history = ChatHistory(PROMPT)
    history.said("Hello! How can I help you today?")  # the welcome
    first = history.asked(said("Where is my order?"))
    assert first == [
        {"role": "system", "content": PROMPT},
        {"role": "assistant", "content": "Hello! How can I help you today?"},
        {"role": "user", "content": "Where is my order?"},
    ]
    history.said("It ships tomorrow. Anything else?")
    second = history.asked(said("Can it come sooner?", turn=2))
    assert second[3:] == [
        {"role": "assistant", "content": "It ships tomorrow. Anything else?"},
        {"role": "user", "content": "Can it come sooner?"},
    ]
    second[1]["content"] = "changed by the caller of asked"
    assert history.messages[1]["content"] == "Hello! How can I help you today?"  # a copy


def test_a_reply_cut_short_is_kept_as_far_as_it_was_heard() -> None:
    history = ChatHistory(PROMPT)
    history.asked(said("Tell me about your plans"))
    history.said("We have three plans")  # heard: the rest never played
    messages = history.asked(said("Just the cheapest", turn=2))
    assert [m["content"] for m in messages[1:]] == [
        "Tell me about your plans",
        "We have three plans",
        "Just the cheapest",
    ]


def test_a_reply_nobody_heard_leaves_no_message_and_user_turns_merge() -> None:
    history = ChatHistory("")
    history.asked(said("Hello"))
    history.said("   ")  # cut before its first word
    messages = history.asked(said("Are you there?", turn=2))
    # No system message for an empty prompt; one user message, not two in a row.
    assert messages == [{"role": "user", "content": "Hello\nAre you there?"}]


def test_the_fallback_line_is_what_the_caller_heard() -> None:
    history = ChatHistory(PROMPT)
    history.asked(said("My password"))
    history.said("Sorry, I am having trouble right now. Could you say that again?")
    messages = history.asked(said("My password please", turn=2))
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]


def test_the_history_is_bounded_by_messages_oldest_first() -> None:
    history = ChatHistory(PROMPT, max_messages=4)
    for turn in range(1, 6):
        history.asked(said(f"question {turn}", turn))
        history.said(f"answer {turn}")
    messages = history.asked(said("question 6", 6))
    assert messages[0]["role"] == "system"  # the prompt is never dropped
    assert [m["content"] for m in messages[1:]] == [
        "answer 4",
        "question 5",
        "answer 5",
        "question 6",
    ]


def test_the_history_is_bounded_by_characters_but_keeps_the_current_turn() -> None:
    history = ChatHistory(PROMPT, max_chars=50)
    history.asked(said("a" * 30))
    history.said("b" * 15)
    messages = history.asked(said("c" * 20, 2))
    assert [m["content"] for m in messages[1:]] == ["b" * 15, "c" * 20]
    history.said("e" * 5)
    huge = history.asked(said("d" * 80, 3))  # alone over the bound: still asked about
    assert [m["content"] for m in huge[1:]] == ["d" * 80]


def test_the_default_bounds_hold_over_a_long_call() -> None:
    history = ChatHistory(PROMPT)
    for turn in range(1, 400):
        history.asked(said(f"caller words number {turn} " * 5, turn))
        history.said(f"agent words number {turn} " * 8)
    kept = history.messages[1:]
    assert len(kept) <= MAX_HISTORY_MESSAGES
    assert sum(len(m["content"]) for m in kept) <= MAX_HISTORY_CHARS
    assert kept[-1]["content"].startswith("agent words number 399")


@pytest.mark.parametrize(
    ("request_", "text"),
    [
        (keys("5"), "(The caller pressed 5 on the phone's keypad.)"),
        (keys("1234", "terminator"), "(The caller typed 1 2 3 4 on the phone's keypad; ended"
         " with the terminator key.)"),
        (keys("12", "max_digits"), "(The caller typed 1 2 on the phone's keypad; all the digits"
         " asked for.)"),
        (keys("", "timeout"), "(The caller pressed no keys; then stopped pressing keys.)"),
        (said("Hello there"), "Hello there"),
    ],
)  # fmt: skip
def test_a_dtmf_turn_reads_as_the_keys_pressed(request_: WebhookRequest, text: str) -> None:
    assert user_text(request_) == text
    assert ChatHistory("").asked(request_) == [{"role": "user", "content": text}]


def test_the_request_body_is_a_streamed_chat_completion_with_only_the_knobs_set() -> None:
    config = LlmConfig("http://127.0.0.1:8000/v1", "llama3.1:8b", PROMPT, api_key="sk-x")
    messages = [{"role": "user", "content": "Hi"}]
    assert json.loads(completion_body(config, messages)) == {
        "model": "llama3.1:8b",
        "messages": messages,
        "stream": True,
    }
    tuned = LlmConfig("http://h/v1", "m", temperature=0.2, max_tokens=150)
    body = json.loads(completion_body(tuned, messages))
    assert (body["temperature"], body["max_tokens"]) == (0.2, 150)
    assert "sk-x" not in repr(config)  # the key never shows in a repr (nor in a log line)


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        ("https://api.openai.com/v1", "https://api.openai.com/v1/chat/completions"),
        ("https://api.openai.com/v1/", "https://api.openai.com/v1/chat/completions"),
        ("http://127.0.0.1:11434/v1/chat/completions", "http://127.0.0.1:11434/v1/chat/completions"),
        ("https://gw.example/llm?api-version=2", "https://gw.example/llm/chat/completions?api-version=2"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/chat/completions"),
    ],
)  # fmt: skip
def test_the_completions_url_is_the_base_url_plus_the_path(base_url: str, url: str) -> None:
    assert completions_url(base_url) == url


def test_a_whole_completion_is_read_from_its_first_choice() -> None:
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there."}}]}
    assert parse_completion(json.dumps(body).encode()).text == "Hi there."
    for bad, says in [
        (b"<html>", "not JSON"),
        (b'{"choices": []}', '"content" text'),
        (b'{"error": {"message": "no"}}', '"content" text'),
        (b'{"choices": [{"message": {"content": "  "}}]}', "empty"),
    ]:
        with pytest.raises(WebhookBadReply, match=says):
            parse_completion(bad)
