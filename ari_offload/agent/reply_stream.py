"""Streamed webhook replies, sans-IO: bytes of an NDJSON or SSE body in, reply events out.

A webhook may answer a turn three ways, told apart by its Content-Type:

- ``application/json``: the whole reply at once, ``{"text": "...", "hangup": false}``
  (``contract.parse_reply``).
- ``application/x-ndjson`` (or ``application/jsonl``): one JSON object per line, each
  ``{"text": "<more of the reply>"}``; the last may say ``"hangup": true`` or carry
  ``"actions"`` (agent.reply_actions), with or without text, and ``{"done": true}`` ends the
  reply before the body does.
- ``text/event-stream`` (SSE, what LLM servers send): each event's ``data:`` is either one
  of the NDJSON objects above or an OpenAI-style chat-completion chunk
  (``{"choices": [{"delta": {"content": "..."}}]}``); ``data: [DONE]`` ends the reply.

Text pieces are joined as sent (send the spaces between words). The caller starts hearing
the reply once its first clause is complete (speech/reply_text.StreamPlanner). A line or
event that is not valid JSON, or a reply longer than ``MAX_REPLY_TEXT_CHARS``, is a
``WebhookBadReply`` saying what to fix: the text before it is still spoken.

Written here rather than taken from a library: aiohttp has no SSE client, and the
maintained SSE packages (aiohttp-sse-client2, httpx-sse) own the HTTP request, which must
stay ours (egress policy, signing, limits).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from ari_offload.agent.contract import MAX_REPLY_TEXT_CHARS, reply_actions
from ari_offload.agent.reply_actions import ReplyAction
from ari_offload.errors import WebhookBadReply

# One line (NDJSON) or one event (SSE) at most: a reply is at most MAX_REPLY_TEXT_CHARS.
MAX_EVENT_BYTES = 64 * 1024
_SNIPPET = 60


class BodyFormat(enum.Enum):
    JSON = "json"
    NDJSON = "ndjson"
    SSE = "sse"


def body_format(content_type: str) -> BodyFormat:
    """How to read a reply body with this Content-Type (anything unknown: one JSON object)."""
    media = content_type.partition(";")[0].strip().lower()
    if media in ("application/x-ndjson", "application/ndjson", "application/jsonl"):
        return BodyFormat.NDJSON
    if media == "text/event-stream":
        return BodyFormat.SSE
    return BodyFormat.JSON


@dataclass(frozen=True)
class ReplyPiece:
    """More of the reply's text, and whether the agent asked to hang up after it (or for
    other actions: a line may carry them, usually the last one)."""

    text: str = ""
    hangup: bool = False
    done: bool = False  # the reply is complete (the body may still be open)
    actions: tuple[ReplyAction, ...] = ()


class ReplyStreamParser:
    """Feed the body as it arrives; get ``ReplyPiece``s. Raises ``WebhookBadReply``."""

    def __init__(self, fmt: BodyFormat) -> None:
        if fmt is BodyFormat.JSON:
            raise ValueError("a JSON body is parsed whole (contract.parse_reply)")
        self._fmt = fmt
        self._buffer = b""
        self._data: list[str] = []  # the SSE event's data lines so far
        self._data_chars = 0  # their length, joined (kept, not summed again per line)
        self._chars = 0
        self._error: WebhookBadReply | None = None
        self.done = False

    def feed(self, data: bytes) -> list[ReplyPiece]:
        """The pieces ``data`` completed. A bad line after good pieces is held back until
        they are handed out (``raise_held``, or the next call raises it), so the text before
        it is still said. Linear in the input: each byte is looked at once."""
        self.raise_held()
        buffer = self._buffer + data
        pieces: list[ReplyPiece] = []
        start = 0
        while not self.done and (end := buffer.find(b"\n", start)) >= 0:
            line, start = buffer[start:end], end + 1
            try:
                piece = self._line(line.rstrip(b"\r"))
            except WebhookBadReply as exc:
                if not pieces:
                    raise
                self._error = exc
                break
            if piece is not None:
                pieces.append(piece)
        self._buffer = buffer[start:]
        if not self.done and self._error is None and len(self._buffer) > MAX_EVENT_BYTES:
            too_long = WebhookBadReply(f"a reply line is longer than {MAX_EVENT_BYTES} bytes")
            if not pieces:
                raise too_long
            self._error = too_long
        return pieces

    def raise_held(self) -> None:
        """Raise the bad line held back behind good pieces, if there is one."""
        if self._error is not None:
            raise self._error

    def end(self) -> list[ReplyPiece]:
        """The body ended: what its last line (without a newline) or event still held."""
        self.raise_held()
        pieces = [] if self.done else self.feed(b"\n")
        if not self.done and self._fmt is BodyFormat.SSE:
            piece = self._line(b"")  # an event not followed by its blank line
            pieces += [piece] if piece is not None else []
        self.done = True
        return pieces

    def _line(self, line: bytes) -> ReplyPiece | None:
        text = _decode(line)
        if self._fmt is BodyFormat.NDJSON:
            return self._object(text) if text.strip() else None
        if not text:  # SSE: a blank line dispatches the event
            data, self._data, self._data_chars = "\n".join(self._data), [], 0
            if not data:
                return None
            if data.strip() == "[DONE]":
                self.done = True
                return ReplyPiece(done=True)
            return self._object(data)
        if text.startswith("data:"):
            value = text[5:]
            self._data.append(value[1:] if value.startswith(" ") else value)
            self._data_chars += len(self._data[-1]) + 1  # + the newline that joins them
            if self._data_chars > MAX_EVENT_BYTES:
                raise WebhookBadReply(f"a reply event is longer than {MAX_EVENT_BYTES} bytes")
        return None  # comments (":..."), event:, id:, retry: say nothing about the text

    def _object(self, raw: str) -> ReplyPiece:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            where = "line" if self._fmt is BodyFormat.NDJSON else "event data"
            raise WebhookBadReply(
                f"a reply {where} is not JSON; it starts with {raw[:_SNIPPET]!r}"
            ) from None
        if not isinstance(data, dict):
            raise WebhookBadReply('each reply line must be a JSON object like {"text": "..."}')
        piece = _openai_chunk(data) if "choices" in data else _our_piece(data)
        self._chars += len(piece.text)
        if self._chars > MAX_REPLY_TEXT_CHARS:
            raise WebhookBadReply(
                f"the streamed reply passed {MAX_REPLY_TEXT_CHARS} characters (the limit)"
            )
        self.done = piece.done
        return piece


def _our_piece(data: dict[str, Any]) -> ReplyPiece:
    text, hangup, done = data.get("text", ""), data.get("hangup", False), data.get("done", False)
    if not isinstance(text, str):
        raise WebhookBadReply(f'reply line "text" must be a string, got {type(text).__name__}')
    if not isinstance(hangup, bool) or not isinstance(done, bool):
        raise WebhookBadReply('reply line "hangup" and "done" must be true or false')
    return ReplyPiece(text, hangup, done, reply_actions(data))


def _openai_chunk(data: dict[str, Any]) -> ReplyPiece:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ReplyPiece()  # e.g. a usage-only chunk
    delta = choices[0].get("delta") or {}
    content = delta.get("content") if isinstance(delta, dict) else None
    return ReplyPiece(content if isinstance(content, str) else "")


def _decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookBadReply(f"a reply line is not UTF-8 (byte {exc.start})") from None
