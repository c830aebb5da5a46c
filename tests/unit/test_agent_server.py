"""The webhook helper's sans-IO core: checking a request, building whole and streamed replies."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ari_offload.agent import NDJSON_CONTENT_TYPE, Refusal, handle, reply, stream_ndjson
from ari_offload.agent.contract import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookReply,
    WebhookRequest,
    parse_reply,
    sign,
)
from ari_offload.agent.reply_actions import Collect, SendDtmf, Transfer
from ari_offload.agent.reply_stream import BodyFormat, ReplyPiece, ReplyStreamParser
from ari_offload.agent.server import as_stream, reply_body

SECRET = "whsec-helper-test"
NOW = 1_700_000_000
REQUEST = WebhookRequest("c-1", "a-1", "What are your hours?", 2, heard=None, delivery_id="d-1")
BODY = REQUEST.to_json()


def _signed(body: bytes = BODY, at: int = NOW, secret: str = SECRET) -> dict[str, str]:
    return sign(body, secret, at)


def _refusal(got: WebhookRequest | Refusal) -> dict[str, Any]:
    assert isinstance(got, Refusal), got
    assert got.content_type == "application/json"
    return {"status": got.status, **json.loads(got.body())}


def test_a_signed_request_becomes_the_typed_request() -> None:
    assert handle(BODY, _signed(), SECRET, now=NOW + 5) == REQUEST
    lowered = {k.lower(): v for k, v in _signed().items()}  # header names in any case
    assert handle(BODY, lowered, SECRET, now=NOW) == REQUEST
    assert handle(BODY, {}, None) == REQUEST  # no secret: unsigned requests are accepted


def test_fields_it_does_not_know_are_ignored() -> None:
    # A newer ari-offload may send more (a DTMF turn, say): the request still parses.
    data = {**json.loads(BODY), "type": "dtmf", "digits": "5", "extra": {"x": [1]}}
    body = json.dumps(data).encode()
    assert handle(body, _signed(body), SECRET, now=NOW) == dataclasses.replace(
        REQUEST, type="dtmf", digits="5"
    )


@pytest.mark.parametrize(
    ("headers", "now", "code", "field", "says"),
    [
        (_signed(secret="other-secret-99"), NOW, "bad_signature", SIGNATURE_HEADER, "wrong secret"),
        (_signed(BODY + b" "), NOW, "bad_signature", SIGNATURE_HEADER, "does not match the body"),
        (_signed(), NOW + 301, "stale_timestamp", TIMESTAMP_HEADER, "more than 300 s away"),
        (_signed(at=NOW + 400), NOW, "stale_timestamp", TIMESTAMP_HEADER, "more than 300 s"),
        (
            {**_signed(), TIMESTAMP_HEADER: "soon"},
            NOW,
            "bad_timestamp",
            TIMESTAMP_HEADER,
            "must be integer unix seconds",
        ),
        ({}, NOW, "missing_signature", TIMESTAMP_HEADER, "missing X-Ari-Offload-Timestamp"),
        (
            {TIMESTAMP_HEADER: str(NOW)},
            NOW,
            "missing_signature",
            SIGNATURE_HEADER,
            "or X-Ari-Offload-Signature header",
        ),
    ],
)
def test_a_bad_signature_is_a_401_saying_what_failed(
    headers: dict[str, str], now: int, code: str, field: str, says: str
) -> None:
    body = _refusal(handle(BODY, headers, SECRET, now=now))
    assert body["status"] == 401
    assert body["code"] == code
    assert body["field"] == field
    assert says in body["error"]


def test_the_signature_is_checked_before_the_body() -> None:
    # An unsigned caller learns nothing about the body format: 401, not 400.
    assert _refusal(handle(b"not json", {}, SECRET, now=NOW))["status"] == 401


@pytest.mark.parametrize(
    ("body", "code", "field", "says"),
    [
        (b'{"text": "hi"}', "bad_field", "call_id", '"call_id" must be a string, got null'),
        (
            b'{"call_id": "c", "agent_id": "a", "text": "t", "turn": "2"}',
            "bad_field",
            "turn",
            '"turn" must be an integer, got a string',
        ),
        (
            b'{"call_id": "c", "agent_id": "a", "text": "t", "turn": 1, "heard": 3}',
            "bad_field",
            "heard",
            '"heard" must be a string or null',
        ),
        (b"<html>", "bad_body", None, "request is not JSON"),
        (b"[1]", "bad_body", None, "request must be a JSON object"),
        (b"", "bad_body", None, "request body is empty"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_field(
    body: bytes, code: str, field: str | None, says: str
) -> None:
    got = _refusal(handle(body, _signed(body), SECRET, now=NOW))
    assert got == {"status": 400, "code": code, "field": field, "error": got["error"]}
    assert says in got["error"]


def test_the_error_comes_first_in_the_body() -> None:
    # ari-offload logs the first 120 characters of an error body: the reason must be there.
    got = handle(BODY, {}, SECRET, now=NOW)
    assert isinstance(got, Refusal)
    assert got.body().startswith(b'{"error":"missing X-Ari-Offload-Timestamp')


def test_an_empty_secret_is_refused_not_taken_for_none() -> None:
    with pytest.raises(ValueError, match="secret is empty; pass None"):
        handle(BODY, _signed(), "")


def test_reply_is_the_documented_json() -> None:
    assert json.loads(reply("We open at nine.")) == {"text": "We open at nine.", "hangup": False}
    assert json.loads(reply("", hangup=True)) == {"text": "", "hangup": True}
    assert "你好".encode() in reply("你好")


def test_reply_passes_actions_through_unchecked() -> None:
    actions: list[dict[str, Any]] = [
        {"type": "transfer", "target": "sales"},
        {"type": "anything", "n": 1},
    ]
    assert json.loads(reply("One moment.", actions=actions))["actions"] == actions


def test_a_webhook_replys_actions_reach_ari_offload_whole_and_streamed() -> None:
    """The callback's WebhookReply with actions: ari-offload's own parsers read back the very
    reply (the actions were dropped on the way before)."""
    answer = WebhookReply("Your PIN, then hash.", actions=(Collect(4, "#", 20),))
    body = reply_body(answer)
    assert json.loads(body)["actions"] == [
        {"type": "collect", "max_digits": 4, "terminator": "#", "timeout_s": 20}
    ]
    assert parse_reply(body) == answer
    lines = list(stream_ndjson(["One moment. ", WebhookReply("Putting you through.",
                                actions=(Transfer("sales"),))]))  # fmt: skip
    assert _parsed(lines)[1].actions == (Transfer("sales"),)


def test_a_reply_may_be_actions_only() -> None:
    body = reply("", actions=[SendDtmf("1w2")])
    assert json.loads(body) == {
        "text": "", "hangup": False, "actions": [{"type": "send_dtmf", "digits": "1w2"}],
    }  # fmt: skip
    assert parse_reply(body) == WebhookReply("", actions=(SendDtmf("1w2"),))


@pytest.mark.parametrize(
    ("text", "says"),
    [("", 'an empty text is allowed only with "hangup": true'), ("a" * 4001, "the limit is")],
)
def test_reply_refuses_what_ari_offload_would_refuse(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        reply(text)


def test_reply_body_takes_text_a_webhook_reply_or_built_bytes() -> None:
    assert reply_body("Hi") == reply("Hi")
    assert reply_body(WebhookReply("Bye", hangup=True)) == reply("Bye", hangup=True)
    assert reply_body(reply("Hi", actions=[])) == reply("Hi", actions=[])
    with pytest.raises(TypeError, match="not <class 'dict'>"):
        reply_body({"text": "Hi"})


def _parsed(lines: list[bytes]) -> list[ReplyPiece]:
    """What ari-offload's own stream parser makes of the lines: the contract's one reader."""
    parser = ReplyStreamParser(BodyFormat.NDJSON)
    return parser.feed(b"".join(lines)) + parser.end()


def test_stream_ndjson_sends_a_line_per_chunk_then_done() -> None:
    stream = stream_ndjson(iter(["Let me check, ", "", "it ships tomorrow."]))
    assert stream.content_type == NDJSON_CONTENT_TYPE == "application/x-ndjson"
    lines = list(stream)
    assert lines == [
        b'{"text":"Let me check, "}\n',
        b'{"text":"it ships tomorrow."}\n',  # the empty chunk said nothing: no line
        b'{"done":true}\n',
    ]
    assert _parsed(lines) == [
        ReplyPiece("Let me check, "),
        ReplyPiece("it ships tomorrow."),
        ReplyPiece(done=True),
    ]


def test_stream_ndjson_hangup_and_actions_ride_on_the_last_line() -> None:
    actions = [{"type": "send_dtmf", "digits": "12#"}]
    lines = list(stream_ndjson(["Bye now."], hangup=True, actions=actions))
    assert json.loads(lines[-1]) == {"done": True, "hangup": True, "actions": actions}
    assert _parsed(lines)[-1] == ReplyPiece(hangup=True, done=True, actions=(SendDtmf("12#"),))


def test_a_chunk_may_be_a_webhook_reply_deciding_the_hangup_late() -> None:
    lines = list(stream_ndjson(["Thanks for calling. ", WebhookReply("Goodbye!", hangup=True)]))
    assert lines[1] == b'{"text":"Goodbye!","hangup":true}\n'
    assert any(piece.hangup for piece in _parsed(lines))


async def test_stream_ndjson_takes_an_async_iterator() -> None:
    async def tokens() -> AsyncIterator[str]:
        for token in ["One ", "two."]:
            yield token

    stream = stream_ndjson(tokens())
    assert [line async for line in stream] == [
        b'{"text":"One "}\n',
        b'{"text":"two."}\n',
        b'{"done":true}\n',
    ]
    with pytest.raises(TypeError, match="async iterator; iterate it with async for"):
        list(stream_ndjson(tokens()))


async def test_closing_the_lines_closes_the_source() -> None:
    closed: list[str] = []

    def sync_source() -> Iterator[str]:
        try:
            yield from ["a", "b", "c"]
        finally:
            closed.append("sync")

    async def async_source() -> AsyncIterator[str]:
        try:
            for piece in ["a", "b", "c"]:
                yield piece
        finally:
            closed.append("async")

    lines = stream_ndjson(sync_source()).lines()
    next(lines)
    lines.close()  # a Flask client went away
    alines = stream_ndjson(async_source()).alines()
    await anext(alines)
    await alines.aclose()  # ari-offload closed the connection: a barge-in
    sync_in_async = stream_ndjson(sync_source()).alines()
    await anext(sync_in_async)
    await sync_in_async.aclose()
    assert closed == ["sync", "async", "sync"]


def test_a_bad_chunk_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="a streamed chunk must be a str or WebhookReply"):
        list(stream_ndjson([b"bytes"]))  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not one string"):
        stream_ndjson("one string")


def test_as_stream_tells_streams_from_whole_replies() -> None:
    for whole in ["text", b"{}", WebhookReply("x")]:
        assert as_stream(whole) is None
    made = stream_ndjson([])
    assert as_stream(made) is made
    assert as_stream(iter(["x"])) is not None
    assert as_stream(42) is None


def test_importing_the_helper_loads_no_web_framework() -> None:
    code = (
        "import sys, ari_offload.agent\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'aiohttp', 'flask'})\n"
        "print(','.join(loaded))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(__file__).parents[2],  # this checkout's ari_offload, whatever is installed
    )
    assert out.stdout.strip() == ""
