"""Outbound webhook calls: one POST per caller utterance, every failure a ``WebhookError``.

``WebhookClient.ask`` raises; ``ask_or_fallback`` never does for webhook problems, because a
slow or broken agent must cost the caller one fallback line, not the call. The aiohttp session
is injected: it is the single outbound HTTP point, and tests point it at real local servers.
Messages and logs name the webhook by ``safe_url`` (no user info, no query string): secrets
often ride in query strings, and the signing secret and headers are never logged. Where a
webhook may connect is the session's business (agent.egress.webhook_session); a refusal there
arrives as ``EgressRefused``, a ``WebhookUnreachable`` naming the policy rule.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
import uuid
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp

from ari_offload import __version__
from ari_offload.agent.contract import (
    DELIVERY_HEADER,
    WebhookReply,
    WebhookRequest,
    check_reply,
    parse_reply,
    sign,
)
from ari_offload.agent.reply_actions import ReplyAction, checked_actions, split_hangup
from ari_offload.agent.reply_stream import BodyFormat, ReplyPiece, ReplyStreamParser, body_format
from ari_offload.config import DEFAULT_WEBHOOK_STREAM_TIMEOUT_S
from ari_offload.errors import (
    EgressRefused,
    WebhookBadReply,
    WebhookError,
    WebhookStatusError,
    WebhookTimeout,
    WebhookUnreachable,
)
from ari_offload.turn_fields import WebhookFailure

logger = logging.getLogger("ari_offload.agent")
_T = TypeVar("_T")

USER_AGENT = f"ari-offload/{__version__}"
# What a reply may be (agent/reply_stream.py): whole, or streamed as NDJSON or SSE.
ACCEPTED_REPLIES = "application/json, application/x-ndjson, text/event-stream"
# A reply is at most MAX_REPLY_TEXT_CHARS of text; this leaves room for JSON escaping
# (up to 6 bytes per \uXXXX char) and stops a runaway agent from filling memory.
MAX_REPLY_BYTES = 64 * 1024
_ERROR_BODY_CHARS = 120


def error_kind(error: WebhookError) -> WebhookFailure:
    """A short stable name for a failure: the log tag, the counter key, the stored value."""
    if isinstance(error, WebhookTimeout):
        return WebhookFailure.TIMEOUT
    if isinstance(error, WebhookUnreachable):  # EgressRefused too: its message names the rule
        return WebhookFailure.UNREACHABLE
    if isinstance(error, WebhookStatusError):
        return WebhookFailure.STATUS
    if isinstance(error, WebhookBadReply):
        return WebhookFailure.BAD_REPLY
    return WebhookFailure.OTHER


def safe_url(url: str) -> str:
    """``url`` without user info, query string or fragment: safe for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket; still strip what may be secret
        return url.partition("?")[0].partition("#")[0].rpartition("@")[2]
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass
class WebhookStats:
    """Webhook outcomes since start; one instance may be shared by several clients."""

    requests: int = 0
    failures: Counter[WebhookFailure] = field(default_factory=Counter)

    def record(self, error: WebhookError | None) -> None:
        self.requests += 1
        if error is not None:
            self.failures[error_kind(error)] += 1

    @property
    def succeeded(self) -> int:
        return self.requests - self.failures.total()


@dataclass(frozen=True)
class AgentAnswer:
    """What to speak for one turn: the agent's reply, or the fallback line if ``error``."""

    reply: WebhookReply
    error: WebhookError | None
    duration_s: float

    @property
    def failure(self) -> WebhookFailure | None:
        return None if self.error is None else error_kind(self.error)


class WebhookClient:
    """POSTs ``WebhookRequest``s to agent webhooks through an injected aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        timeout_s: float,
        *,
        stats: WebhookStats | None = None,
        stream_timeout_s: float = DEFAULT_WEBHOOK_STREAM_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
        noun: str = "webhook",
    ) -> None:
        """``noun`` names what is posted to in messages ("webhook", "events URL")."""
        if timeout_s <= 0:
            raise ValueError(f"webhook timeout must be positive, got {timeout_s}")
        self._session = session
        self._timeout_s = timeout_s
        self._stream_timeout_s = max(stream_timeout_s, timeout_s)
        self._clock = clock  # wall clock for the signature timestamp
        self._noun = noun
        self.stats = stats if stats is not None else WebhookStats()

    async def ask(self, url: str, request: WebhookRequest, secret: str | None) -> WebhookReply:
        """The agent's whole reply to ``request``; raises a ``WebhookError`` subclass on
        failure. A streamed reply is collected (``stream`` speaks it as it comes).

        ``secret`` (None or empty: unsigned) signs the body, see ``contract.sign``.
        """
        text, hangup, actions = "", False, list[ReplyAction]()
        async for piece in self.stream(url, request, secret):
            text, hangup = text + piece.text, hangup or piece.hangup
            actions += piece.actions
        try:
            return check_reply(text, hangup, checked_actions(actions))
        except WebhookBadReply as exc:
            raise WebhookBadReply(f"webhook {safe_url(url)} sent a bad reply: {exc}") from None

    async def ask_or_fallback(
        self, url: str, request: WebhookRequest, secret: str | None, fallback_text: str
    ) -> AgentAnswer:
        """Like ``ask`` but never raises for webhook problems: the fallback line answers."""
        start = time.perf_counter()
        try:
            reply = await self.ask(url, request, secret)
        except WebhookError as exc:
            duration = time.perf_counter() - start
            logger.warning(
                "webhook failed (%s) after %.2f s, speaking the fallback line: %s",
                error_kind(exc),
                duration,
                exc,
            )
            return AgentAnswer(WebhookReply(fallback_text), exc, duration)
        return AgentAnswer(reply, None, time.perf_counter() - start)

    async def stream(
        self, url: str, request: WebhookRequest, secret: str | None
    ) -> AsyncGenerator[ReplyPiece, None]:
        """The agent's reply as it arrives (whole JSON: one piece); raises a ``WebhookError``.

        Its first text must come within the webhook timeout, all of it within the stream
        timeout. ``aclose()`` (a barge-in) closes the connection: the agent sees its
        stream cancelled. Each request counts once in ``stats``, when it ends.
        """
        where = safe_url(url)
        delivery = str(uuid.uuid4())  # in the header and, signed, in the body: replay dedup
        body, headers = self.signed(request, secret, delivery)
        logger.debug(
            "POST %s call=%s turn=%d delivery=%s", where, request.call_id, request.turn, delivery
        )
        deadlines = _Deadlines(self._timeout_s, self._stream_timeout_s, where)
        try:
            _refuse_credentials(url, where, self._noun)
            hangup, actions = False, list[ReplyAction]()
            async for piece in self._pieces(url, where, body, headers, deadlines):
                # whitespace is no answer: it buys no time past the first-text timeout
                deadlines.text_seen = deadlines.text_seen or bool(piece.text.strip())
                hangup = hangup or piece.hangup
                actions += piece.actions
                yield piece
            if not deadlines.text_seen and not hangup and not actions:
                raise WebhookBadReply(
                    f"webhook {where} sent a bad reply: no text (an empty reply is allowed"
                    ' only with "hangup": true or actions)'
                )
            try:
                split_hangup(checked_actions(actions), hangup)
            except WebhookBadReply as exc:
                raise WebhookBadReply(f"webhook {where} sent a bad reply: {exc}") from None
        except WebhookError as exc:  # a cancelled or closed stream is no outcome: not counted
            self.stats.record(exc)
            raise
        except (aiohttp.ClientError, OSError) as exc:
            error = transport_error(exc, url, where, self._noun)
            self.stats.record(error)
            raise error from None
        self.stats.record(None)
        logger.debug("webhook %s answered in %.3f s", where, deadlines.elapsed())

    async def _pieces(
        self, url: str, where: str, body: bytes, headers: dict[str, str], deadlines: _Deadlines
    ) -> AsyncGenerator[ReplyPiece, None]:
        # Redirects are refused, not followed: aiohttp would turn the POST into a body-less GET.
        post = self._session.post(
            url, data=body, headers=headers, allow_redirects=False, raise_for_status=False
        )
        async with await deadlines.wait(post.__aenter__()) as resp:
            await deadlines.wait(check_status(resp, url, where))
            fmt = body_format(resp.headers.get("Content-Type", ""))
            if fmt is BodyFormat.JSON:
                raw = await deadlines.wait(read_limited(resp, where))
                try:
                    reply = parse_reply(raw)
                except WebhookBadReply as exc:
                    raise WebhookBadReply(f"webhook {where} sent a bad reply: {exc}") from None
                yield ReplyPiece(reply.text, reply.hangup, done=True, actions=reply.actions)
                return
            parser = ReplyStreamParser(fmt)
            try:
                while not parser.done:
                    data = await deadlines.wait(resp.content.readany())
                    try:
                        pieces = parser.feed(data) if data else parser.end()
                    except WebhookBadReply as exc:
                        raise WebhookBadReply(f"webhook {where} sent a bad reply: {exc}") from None
                    for piece in pieces:
                        yield piece
                    try:
                        parser.raise_held()  # now, not after the next read (which may stall)
                    except WebhookBadReply as exc:
                        raise WebhookBadReply(f"webhook {where} sent a bad reply: {exc}") from None
            finally:
                if not resp.content.at_eof():
                    resp.close()  # not reused: the agent sees its stream end (a barge-in)

    async def post_event(self, url: str, body: bytes, delivery: str, secret: str | None) -> None:
        """POST a call event (``agent.events``), signed as webhook requests are; any 2xx is
        success, its body ignored. Raises a ``WebhookError`` subclass, as ``ask`` does."""
        where = safe_url(url)
        _refuse_credentials(url, where, self._noun)
        headers = self._headers(body, delivery, secret)
        try:
            async with (
                asyncio.timeout(self._timeout_s),
                self._session.post(
                    url, data=body, headers=headers, allow_redirects=False, raise_for_status=False
                ) as resp,
            ):
                await check_status(resp, url, where, self._noun)
        except TimeoutError:  # first: aiohttp's own timeouts are also OSError/ClientError
            message = f"{self._noun} {where} did not answer within {self._timeout_s:g} s"
            raise WebhookTimeout(message) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise transport_error(exc, url, where, self._noun) from None

    def signed(
        self, request: WebhookRequest, secret: str | None, delivery: str
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one POST of ``request`` (signed if ``secret``)."""
        body = replace(request, delivery_id=delivery).to_json()
        return body, {"Accept": ACCEPTED_REPLIES, **self._headers(body, delivery, secret)}

    def _headers(self, body: bytes, delivery: str, secret: str | None) -> dict[str, str]:
        """Content type, delivery id and, with a secret, the signature (a fresh timestamp
        each time: a retried event is signed anew)."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            DELIVERY_HEADER: delivery,
        }
        if secret:
            headers.update(sign(body, secret, int(self._clock())))
        return headers


class _Deadlines:
    """A streamed reply's two clocks: its first text within ``first_s`` of the request,
    all of it within ``total_s``; ``wait`` bounds one step by whichever applies."""

    def __init__(self, first_s: float, total_s: float, where: str) -> None:
        self._start = time.monotonic()
        self._first_s, self._total_s, self._where = first_s, total_s, where
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
            raise WebhookTimeout(
                f"webhook {self._where} did not {what} within {limit:g} s"
            ) from None


def _refuse_credentials(url: str, where: str, noun: str = "webhook") -> None:
    if _has_credentials(url):
        # aiohttp would send them as Basic auth; the API refuses them, older agents may not.
        raise WebhookUnreachable(
            f"{noun} {where} is refused: credentials in the URL (user:pass@) are never "
            "sent; sign requests with the agent's secret instead"
        )


def transport_error(
    exc: aiohttp.ClientError | OSError, url: str, where: str, noun: str = "webhook"
) -> WebhookError:
    """A connection or transfer failure as the WebhookError that names it (URL made safe)."""
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return WebhookUnreachable(
            f"{_url_noun(noun)} {where!r} is not a valid http:// or https:// URL"
        )
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, EgressRefused):
        refused = exc.os_error
        return EgressRefused(refused.rule, f"{noun} {where} is refused: {refused.message}")
    # never chained: aiohttp's own message may quote the full URL, query string included.
    return WebhookUnreachable(f"{noun} {where} is unreachable: {_describe(exc, url, where)}")


def _url_noun(noun: str) -> str:
    return noun if noun.endswith(" URL") else f"{noun} URL"


async def check_status(
    resp: aiohttp.ClientResponse, url: str, where: str, noun: str = "webhook"
) -> None:
    """Raise the WebhookStatusError for a redirect or a non-2xx answer."""
    if 300 <= resp.status < 400:
        location = resp.headers.get("Location")
        target = safe_url(urljoin(url, location)) if location else "(no Location)"
        raise _status_error(
            resp.status,
            (
                f"{noun} {where} answered HTTP {resp.status} redirecting to {target}; "
                f"redirects are not followed: set the {_url_noun(noun)} to the final address"
            ),
        )
    if not 200 <= resp.status < 300:
        snippet = await _error_snippet(resp)
        raise _status_error(resp.status, f"{noun} {where} answered HTTP {resp.status}: {snippet}")


async def read_limited(resp: aiohttp.ClientResponse, where: str) -> bytes:
    too_big = WebhookBadReply(
        f"webhook {where} sent a bad reply: larger than {MAX_REPLY_BYTES} bytes"
    )
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


def _describe(exc: BaseException, url: str, where: str) -> str:
    """A cause for a connection failure, with the raw URL replaced by its safe form."""
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
