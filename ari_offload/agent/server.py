"""The agent's side of the webhook, framework-neutral: check a request, build the reply.

For people writing a webhook (the sample agent uses it too)::

    got = handle(body, headers, secret)         # a WebhookRequest, or a Refusal to send back
    reply("We open at nine.")                   # a whole reply: JSON bytes
    stream_ndjson(llm_chunks(), hangup=False)   # a streamed reply: NDJSON lines as they come

``ari_offload.agent.adapters`` wraps these for aiohttp and Flask. Nothing here does I/O or
imports a web framework. Reply ``actions`` are passed through as given: what an action may
say is ari-offload's to check (docs/webhook.md), not the agent's.
"""

from __future__ import annotations

import json
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Generator,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any

from ari_offload.agent.contract import (
    DEFAULT_SIGNATURE_TOLERANCE_S,
    RequestFieldError,
    WebhookReply,
    WebhookRequest,
    check_reply,
    parse_request,
    signature_failure,
)
from ari_offload.agent.reply_actions import ReplyAction, action_json
from ari_offload.errors import WebhookBadReply

JSON_CONTENT_TYPE = "application/json"
NDJSON_CONTENT_TYPE = "application/x-ndjson"

# A streamed piece: more text, or a WebhookReply (its text, and hangup once it is known).
Chunk = str | WebhookReply
# A reply action: an agent.reply_actions object, or its JSON object (passed as given).
Action = ReplyAction | Mapping[str, Any]
Actions = Sequence[Action]


@dataclass(frozen=True)
class Refusal:
    """A request the agent must not answer: send back ``status`` with ``body()``.

    401 for the signature (``code`` from ``contract.SignatureFailure``), 400 for the body
    (``bad_body``: not a JSON object; ``bad_field``: ``field`` names the body field).
    ``field`` names the header or body field at fault, or is None.
    """

    status: int
    code: str
    message: str
    field: str | None = None

    content_type = JSON_CONTENT_TYPE

    def body(self) -> bytes:
        # "error" first: ari-offload logs the start of an error body, so the reason shows.
        return _dumps({"error": self.message, "code": self.code, "field": self.field})


def handle(
    body: bytes,
    headers: Mapping[str, str],
    secret: str | None,
    *,
    now: float | None = None,
    tolerance_s: float = DEFAULT_SIGNATURE_TOLERANCE_S,
) -> WebhookRequest | Refusal:
    """The request in ``body``, or why it is refused. The signature is checked first, on
    the exact bytes received, if ``secret``; None accepts unsigned requests (say it: an
    empty secret is a ``ValueError``, as it usually means an unset environment variable).
    ``now`` is unix seconds (default: the clock)."""
    if secret is not None:
        check_secret(secret)
        failure = signature_failure(
            body, headers, secret, time.time() if now is None else now, tolerance_s
        )
        if failure is not None:
            return Refusal(401, failure.code, failure.message, failure.header)
    try:
        return parse_request(body)
    except RequestFieldError as exc:
        return Refusal(400, "bad_field", str(exc), exc.field)
    except ValueError as exc:
        return Refusal(400, "bad_body", str(exc))


def check_secret(secret: str | None) -> None:
    """Refuse an empty secret up front (adapters call it when they are made)."""
    if secret is not None and not secret:
        raise ValueError("the webhook secret is empty; pass None to accept unsigned requests")


def reply(text: str, hangup: bool = False, *, actions: Actions | None = None) -> bytes:
    """A whole reply as JSON bytes (``application/json``). ``ValueError`` for a reply
    ari-offload would refuse (empty text with neither hangup nor actions, too long), so the
    agent's own log says what is wrong. ``actions``: objects (``Collect(...)``) or JSON
    objects, sent as given."""
    try:
        # Only whether there are actions is checked here: what they say is ari-offload's.
        check_reply(text, hangup or bool(actions))
    except WebhookBadReply as exc:
        raise ValueError(str(exc)) from None
    data: dict[str, Any] = {"text": text, "hangup": hangup}
    if actions is not None:
        data["actions"] = _actions_json(actions)
    return _dumps(data)


def _actions_json(actions: Actions) -> list[Mapping[str, Any]]:
    return [a if isinstance(a, Mapping) else action_json(a) for a in actions]


def reply_body(answer: object) -> bytes:
    """A callback's whole answer as a JSON body: text, a WebhookReply, or ``reply()``'s
    bytes; ``TypeError`` naming anything else."""
    if isinstance(answer, bytes):
        return answer
    if isinstance(answer, WebhookReply):
        return reply(answer.text, answer.hangup, actions=answer.actions or None)
    if isinstance(answer, str):
        return reply(answer)
    raise TypeError(
        "a webhook callback answers with a str, a WebhookReply, reply()'s bytes or an "
        f"iterator of text chunks, not {type(answer)!r}"
    )


class NdjsonStream:
    """A streamed reply: one ``{"text": ...}`` line per chunk, then a final line with
    ``"done": true`` (and ``hangup``, ``actions``). Iterate it (``for`` over a sync source,
    ``async for`` over either) to get the lines as bytes; closing the iteration (the
    caller interrupted and ari-offload closed the connection) closes the source too."""

    content_type = NDJSON_CONTENT_TYPE

    def __init__(
        self,
        chunks: Iterable[Chunk] | AsyncIterable[Chunk],
        hangup: bool = False,
        actions: Actions | None = None,
    ) -> None:
        if isinstance(chunks, str | bytes):
            raise TypeError("stream_ndjson takes an iterator of text chunks, not one string")
        self._chunks = chunks
        self._final: dict[str, Any] = {"done": True}
        if hangup:
            self._final["hangup"] = True
        if actions is not None:
            self._final["actions"] = _actions_json(actions)

    @property
    def is_async(self) -> bool:
        return isinstance(self._chunks, AsyncIterable)

    def lines(self) -> Generator[bytes, None, None]:
        """The lines, for a sync source (a Flask generator response)."""
        if isinstance(self._chunks, AsyncIterable):
            raise TypeError(
                "this stream's chunks are an async iterator; iterate it with async for "
                "(aiohttp), or give a plain generator (Flask)"
            )
        source = iter(self._chunks)
        try:
            for chunk in source:
                line = _chunk_line(chunk)
                if line is not None:
                    yield line
            yield _dumps(self._final) + b"\n"
        finally:
            _close_sync(source)

    async def alines(self) -> AsyncGenerator[bytes, None]:
        """The lines, for either kind of source (a sync one is iterated on the loop)."""
        if not isinstance(self._chunks, AsyncIterable):
            lines = self.lines()
            try:
                for whole in lines:
                    yield whole
            finally:
                lines.close()
            return
        source = aiter(self._chunks)
        try:
            async for chunk in source:
                line = _chunk_line(chunk)
                if line is not None:
                    yield line
            yield _dumps(self._final) + b"\n"
        finally:
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()

    def __iter__(self) -> Generator[bytes, None, None]:
        return self.lines()

    def __aiter__(self) -> AsyncGenerator[bytes, None]:
        return self.alines()


def stream_ndjson(
    chunks: Iterable[Chunk] | AsyncIterable[Chunk],
    hangup: bool = False,
    *,
    actions: Actions | None = None,
) -> NdjsonStream:
    """A streamed reply (``application/x-ndjson``) from text chunks as they come (an LLM's
    tokens, sentences). Send the spaces between words: chunks are joined as sent. A chunk
    may be a ``WebhookReply`` to ask for the hangup once it is decided."""
    return NdjsonStream(chunks, hangup, actions)


def as_stream(answer: object) -> NdjsonStream | None:
    """The stream to send for a callback's answer (an ``NdjsonStream``, or an iterator of
    chunks made into one), or None if the answer is a whole reply."""
    if isinstance(answer, NdjsonStream):
        return answer
    if isinstance(answer, str | bytes | WebhookReply):
        return None
    if isinstance(answer, Iterable | AsyncIterable):
        return stream_ndjson(answer)
    return None


def _chunk_line(chunk: object) -> bytes | None:
    data: dict[str, Any]
    if isinstance(chunk, WebhookReply):
        data = {"text": chunk.text}
        if chunk.hangup:
            data["hangup"] = True
        if chunk.actions:
            data["actions"] = _actions_json(chunk.actions)
    elif isinstance(chunk, str):
        if not chunk:
            return None  # nothing to say; an empty line would only cost a parse
        data = {"text": chunk}
    else:
        raise TypeError(f"a streamed chunk must be a str or WebhookReply, got {type(chunk)!r}")
    return _dumps(data) + b"\n"


def _close_sync(source: object) -> None:
    close = getattr(source, "close", None)  # a generator has one; a list's iterator not
    if close is not None:
        close()


def _dumps(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
