"""One POST whose answer is an agent's reply, read as it arrives; every failure a WebhookError.

Shared by the kinds of agent line (agent.lines): a webhook's signed POST and an LLM
endpoint's chat-completions request go out and come back the same way. The aiohttp session
is the caller's (agent.egress.webhook_session: where it may connect is its business). Messages
name the peer as ``"<noun> <safe_url>"`` ("webhook http://host/hook"): no user info, no query
string (secrets often ride there), never a header.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp

from ari_offload.agent.contract import WebhookReply
from ari_offload.agent.reply_stream import BodyFormat, ReplyPiece, ReplyStreamParser, body_format
from ari_offload.errors import (
    EgressRefused,
    WebhookBadReply,
    WebhookError,
    WebhookStatusError,
    WebhookTimeout,
    WebhookUnreachable,
)

_T = TypeVar("_T")

# A reply is at most MAX_REPLY_TEXT_CHARS of text; this leaves room for JSON escaping
# (up to 6 bytes per \uXXXX char) and stops a runaway agent from filling memory.
MAX_REPLY_BYTES = 64 * 1024
_ERROR_BODY_CHARS = 120


def safe_url(url: str) -> str:
    """``url`` without user info, query string or fragment: safe for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket; still strip what may be secret
        return url.partition("?")[0].partition("#")[0].rpartition("@")[2]
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class Peer:
    """Where a POST goes, and what messages call it: ``noun`` is "webhook", "events URL"..."""

    url: str
    noun: str = "webhook"

    @property
    def where(self) -> str:
        return safe_url(self.url)

    @property
    def name(self) -> str:
        return f"{self.noun} {self.where}"

    @property
    def url_noun(self) -> str:
        return self.noun if self.noun.endswith(" URL") else f"{self.noun} URL"


class Deadlines:
    """A streamed reply's two clocks: its first text within ``first_s`` of the request,
    all of it within ``total_s``; ``wait`` bounds one step by whichever applies.

    ``name`` is the peer as messages name it ("webhook http://host/hook")."""

    def __init__(self, first_s: float, total_s: float, name: str) -> None:
        self._start = time.monotonic()
        self._first_s, self._total_s, self._name = first_s, total_s, name
        self.text_seen = False

    def elapsed(self) -> float:
        return time.monotonic() - self._start

    async def wait(self, step: Awaitable[_T]) -> _T:
        limit = self._total_s if self.text_seen else self._first_s
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for may swallow a cancellation
            # that lands as the step completes (a barge-in closing the stream).
            async with asyncio.timeout(max(0.0, limit - self.elapsed())):
                return await step
        except TimeoutError:
            what = "finish its streamed reply" if self.text_seen else "answer"
            raise WebhookTimeout(f"{self._name} did not {what} within {limit:g} s") from None


async def read_reply(
    session: aiohttp.ClientSession,
    peer: Peer,
    body: bytes,
    headers: dict[str, str],
    deadlines: Deadlines,
    whole: Callable[[bytes], WebhookReply],
) -> AsyncGenerator[ReplyPiece, None]:
    """POST ``body``; the reply's pieces as they arrive (NDJSON, SSE), or ``whole`` parsing
    a JSON body into one piece. Raises WebhookError subclasses and aiohttp's own errors
    (``transport_error`` names those)."""
    name = peer.name
    # Redirects are refused, not followed: aiohttp would turn the POST into a body-less GET.
    post = session.post(
        peer.url, data=body, headers=headers, allow_redirects=False, raise_for_status=False
    )
    async with await deadlines.wait(post.__aenter__()) as resp:
        await deadlines.wait(check_status(resp, peer))
        fmt = body_format(resp.headers.get("Content-Type", ""))
        if fmt is BodyFormat.JSON:
            raw = await deadlines.wait(read_limited(resp, name))
            try:
                reply = whole(raw)
            except WebhookBadReply as exc:
                raise WebhookBadReply(f"{name} sent a bad reply: {exc}") from None
            yield ReplyPiece(reply.text, reply.hangup, done=True, actions=reply.actions)
            return
        parser = ReplyStreamParser(fmt)
        try:
            while not parser.done:
                data = await deadlines.wait(resp.content.readany())
                try:
                    pieces = parser.feed(data) if data else parser.end()
                except WebhookBadReply as exc:
                    raise WebhookBadReply(f"{name} sent a bad reply: {exc}") from None
                for piece in pieces:
                    yield piece
                try:
                    parser.raise_held()  # now, not after the next read (which may stall)
                except WebhookBadReply as exc:
                    raise WebhookBadReply(f"{name} sent a bad reply: {exc}") from None
        finally:
            if not resp.content.at_eof():
                resp.close()  # not reused: the agent sees its stream end (a barge-in)


def refuse_credentials(peer: Peer) -> None:
    if _has_credentials(peer.url):
        # aiohttp would send them as Basic auth; the API refuses them, older agents may not.
        raise WebhookUnreachable(
            f"{peer.name} is refused: credentials in the URL (user:pass@) are never sent; sign "
            "requests with the agent's secret (a webhook) or set its api_key (an LLM) instead"
        )


def transport_error(exc: aiohttp.ClientError | OSError, peer: Peer) -> WebhookError:
    """A connection or transfer failure as the WebhookError that names it (URL made safe)."""
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return WebhookUnreachable(
            f"{peer.url_noun} {peer.where!r} is not a valid http:// or https:// URL"
        )
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, EgressRefused):
        refused = exc.os_error
        return EgressRefused(refused.rule, f"{peer.name} is refused: {refused.message}")
    # never chained: aiohttp's own message may quote the full URL, query string included.
    return WebhookUnreachable(f"{peer.name} is unreachable: {_describe(exc, peer)}")


async def check_status(resp: aiohttp.ClientResponse, peer: Peer) -> None:
    """Raise the WebhookStatusError for a redirect or a non-2xx answer."""
    if 300 <= resp.status < 400:
        location = resp.headers.get("Location")
        target = safe_url(urljoin(peer.url, location)) if location else "(no Location)"
        raise _status_error(
            resp.status,
            (
                f"{peer.name} answered HTTP {resp.status} redirecting to {target}; "
                f"redirects are not followed: set the {peer.url_noun} to the final address"
            ),
        )
    if not 200 <= resp.status < 300:
        snippet = await _error_snippet(resp)
        raise _status_error(resp.status, f"{peer.name} answered HTTP {resp.status}: {snippet}")


async def read_limited(resp: aiohttp.ClientResponse, name: str) -> bytes:
    too_big = WebhookBadReply(f"{name} sent a bad reply: larger than {MAX_REPLY_BYTES} bytes")
    if resp.content_length is not None and resp.content_length > MAX_REPLY_BYTES:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def _error_snippet(resp: aiohttp.ClientResponse) -> str:
    """The start of an error body, one line: agents often put the exception there."""
    raw = await resp.content.read(4 * _ERROR_BODY_CHARS)
    text = " ".join(raw.decode("utf-8", errors="replace").split())
    if not text:
        return "(empty body)"
    return text if len(text) <= _ERROR_BODY_CHARS else text[:_ERROR_BODY_CHARS] + "..."


def _has_credentials(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "@" in url.partition("?")[0].partition("#")[0]
    return "@" in parts.netloc


def _status_error(status: int, message: str) -> WebhookStatusError:
    error = WebhookStatusError(status)
    error.args = (message,)  # errors.py's default message does not name the URL
    return error


def _describe(exc: BaseException, peer: Peer) -> str:
    """A cause for a connection failure, with the raw URL replaced by its safe form."""
    url, where = peer.url, peer.where
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _os_reason(exc.os_error)
    if isinstance(exc, aiohttp.ClientResponseError):
        # Not str(exc): it ends with the request URL, re-encoded, so the query would survive.
        text = " ".join(exc.message.split())
    else:
        text = str(exc).replace(url, where)
        query = url.partition("?")[2].partition("#")[0]
        if query:
            text = text.replace(query, "<query>")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _os_reason(error: OSError) -> str:
    """Say "Connection refused", not asyncio's "Connect call failed ('10.0.0.1', 80)"."""
    if isinstance(error, ssl.SSLError):
        return f"TLS error: {error.reason or error}"
    if error.errno and error.errno > 0:  # DNS errors have negative codes; keep their text
        return os.strerror(error.errno)
    return error.strerror or str(error) or type(error).__name__
