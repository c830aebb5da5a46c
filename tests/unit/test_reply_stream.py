"""Streamed webhook replies (agent/reply_stream.py) and their chunking (StreamPlanner)."""

from __future__ import annotations

import pytest

from ari_offload.agent.reply_stream import (
    BodyFormat,
    ReplyPiece,
    ReplyStreamParser,
    body_format,
)
from ari_offload.errors import WebhookBadReply
from ari_offload.speech.reply_text import StreamPlanner, plan_chunks


def parse(fmt: BodyFormat, body: bytes, step: int = 1) -> list[ReplyPiece]:
    """The body fed ``step`` bytes at a time, as a network would cut it."""
    parser = ReplyStreamParser(fmt)
    pieces: list[ReplyPiece] = []
    for at in range(0, len(body), step):
        pieces += parser.feed(body[at : at + step])
    return pieces + parser.end()


@pytest.mark.parametrize(
    ("content_type", "fmt"),
    [
        ("application/json", BodyFormat.JSON),
        ("application/json; charset=utf-8", BodyFormat.JSON),
        ("application/x-ndjson", BodyFormat.NDJSON),
        ("application/jsonl", BodyFormat.NDJSON),
        ("text/event-stream; charset=utf-8", BodyFormat.SSE),
        ("", BodyFormat.JSON),
    ],
)
def test_the_content_type_says_how_to_read_the_body(content_type: str, fmt: BodyFormat) -> None:
    assert body_format(content_type) is fmt


@pytest.mark.parametrize("step", [1, 7, 1000])
def test_ndjson_pieces_in_order_however_the_bytes_arrive(step: int) -> None:
    body = b'{"text": "Sure, "}\n{"text": "I can help."}\r\n\n{"text": "", "hangup": true}\n'
    pieces = parse(BodyFormat.NDJSON, body, step)
    assert "".join(p.text for p in pieces) == "Sure, I can help."
    assert pieces[-1].hangup


def test_ndjson_last_line_without_newline_still_counts() -> None:
    assert parse(BodyFormat.NDJSON, b'{"text": "a"}\n{"text": "b"}') == [
        ReplyPiece("a"),
        ReplyPiece("b"),
    ]


def test_done_ends_the_reply_and_what_follows_is_ignored() -> None:
    pieces = parse(BodyFormat.NDJSON, b'{"text": "Hi."}\n{"done": true}\n{"text": "junk"}\n')
    assert [p.text for p in pieces] == ["Hi.", ""]
    assert pieces[-1].done


@pytest.mark.parametrize("step", [1, 5, 1000])
def test_sse_in_our_shape_and_in_openai_chat_chunks(step: int) -> None:
    body = (
        b": keep-alive\n\n"
        b'event: message\ndata: {"text": "Hello, "}\n\n'
        b'id: 2\ndata: {"choices": [{"delta": {"content": "how are"}}]}\n\n'
        b'data: {"choices": [{"delta": {"content": " you?"}, "finish_reason": null}]}\n\n'
        b'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    pieces = parse(BodyFormat.SSE, body, step)
    assert "".join(p.text for p in pieces) == "Hello, how are you?"
    assert pieces[-1].done


def test_sse_event_split_over_data_lines_is_joined() -> None:
    body = b'data: {"text":\ndata: "joined"}\n\n'
    assert [p.text for p in parse(BodyFormat.SSE, body)] == ["joined"]


@pytest.mark.parametrize(
    ("fmt", "body", "message"),
    [
        (BodyFormat.NDJSON, b"not json\n", "reply line is not JSON"),
        (BodyFormat.NDJSON, b"[1, 2]\n", "must be a JSON object"),
        (BodyFormat.NDJSON, b'{"text": 5}\n', '"text" must be a string'),
        (BodyFormat.NDJSON, b'{"text": "a", "hangup": "yes"}\n', "true or false"),
        (BodyFormat.SSE, b"data: {oops\n\n", "event data is not JSON"),
        (BodyFormat.NDJSON, b"\xff\xfe\n", "not UTF-8"),
    ],
)
def test_bad_lines_say_what_to_fix(fmt: BodyFormat, body: bytes, message: str) -> None:
    with pytest.raises(WebhookBadReply, match=message):
        parse(fmt, body)


def test_a_reply_past_the_limit_is_refused() -> None:
    line = b'{"text": "' + b"x" * 1000 + b'"}\n'
    with pytest.raises(WebhookBadReply, match="passed 4000 characters"):
        parse(BodyFormat.NDJSON, line * 5, step=len(line))


def test_an_endless_line_is_refused_before_it_fills_memory() -> None:
    parser = ReplyStreamParser(BodyFormat.NDJSON)
    for _ in range(63):
        parser.feed(b"x" * 1024)  # 63 KiB of one line: still within the bound
    with pytest.raises(WebhookBadReply, match="longer than"):
        parser.feed(b"x" * 2048)


def plan_streamed(pieces: list[str]) -> list[tuple[str, list[str]]]:
    """(text received so far, chunks ready then) for each piece that completed a chunk."""
    planner, seen, ready = StreamPlanner(), "", []
    for piece in pieces:
        seen += piece
        chunks = planner.feed(piece)
        if chunks:
            ready.append((seen, [c.text for c in chunks]))
    ready.append(("<end>", [c.text for c in planner.end()]))
    return ready


def test_the_first_clause_is_ready_before_the_sentence_ends() -> None:
    tokens = ["You", " said", ":", " I", " need", " to", " reset", " my", " password", ".", " How"]
    ready = plan_streamed([*tokens, " else", " can", " I", " help", "?"])
    assert ready[0] == ("You said: I", ["You said:"])  # the colon and the space after it
    assert ready[1] == (
        "You said: I need to reset my password. How",
        ["I need to reset my password."],
    )
    assert ready[-1] == ("<end>", ["How else can I help?"])


@pytest.mark.parametrize(
    "text",
    [
        "You said: I need to reset my password. How else can I help?",
        "Sure thing I can definitely help you with resetting the password on your account"
        " today. First, tell me your name.",
        "Yes. Dr. Smith is in at 3 p.m. today.\nAnything else?",
        "Hi",
    ],
)
@pytest.mark.parametrize("step", [1, 4, 10_000])
def test_streamed_text_is_said_as_the_whole_reply_would_be(text: str, step: int) -> None:
    planner = StreamPlanner()
    chunks = []
    for at in range(0, len(text), step):
        chunks += planner.feed(text[at : at + step])
    chunks += planner.end()
    assert " ".join(c.text for c in chunks) == " ".join(c.text for c in plan_chunks(text))
    if step == 10_000:  # all at once: exactly the plan of the whole text
        assert chunks == plan_chunks(text)


def test_empty_data_lines_forever_are_refused_not_collected() -> None:
    parser = ReplyStreamParser(BodyFormat.SSE)
    with pytest.raises(WebhookBadReply, match="event is longer than"):
        parser.feed(b"data:\n" * 70_000)  # one event of 70,000 empty lines


def test_good_pieces_come_out_before_an_overlong_line_is_refused() -> None:
    parser = ReplyStreamParser(BodyFormat.NDJSON)
    pieces = parser.feed(b'{"text": "Said. "}\n' + b"x" * 70_000)
    assert [p.text for p in pieces] == ["Said. "]
    with pytest.raises(WebhookBadReply, match="line is longer than"):
        parser.raise_held()


def test_a_reply_that_is_done_ignores_what_trails_it() -> None:
    parser = ReplyStreamParser(BodyFormat.NDJSON)
    pieces = parser.feed(b'{"text": "Bye.", "done": true}\n' + b"x" * 70_000)
    assert [p.text for p in pieces] == ["Bye."]
    assert parser.done
    parser.raise_held()  # nothing held: the trailing bytes are not part of the reply
