"""Outbound webhook calls: one POST per caller utterance, every failure a ``WebhookError``.

``WebhookClient.ask`` raises; ``ask_or_fallback`` never does for webhook problems, because a
slow or broken agent must cost the caller one fallback line, not the call. The aiohttp session
is injected: it is the single outbound HTTP point, and tests point it at real local servers.
Messages and logs name the webhook by ``safe_url`` (no user info, no query string): secrets
often ride in query strings, and the signing secret and headers are never logged. Where a
webhook may connect is the session's business (agent.egress.webhook_session); a refusal there
arrives as ``EgressRefused``, a ``WebhookUnreachable`` naming the policy rule.

``post_event`` sends call events (agent/events.py) the same way: one signing path, one
transport, the same failures; a client made with ``noun="events URL"`` names it so.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp

from ari_offload import __version__
from ari_offload.agent.contract import (
    DELIVERY_HEADER,
    WebhookReply,
    WebhookRequest,
    parse_reply,
    sign,
)
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

USER_AGENT = f"ari-offload/{__version__}"
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
        clock: Callable[[], float] = time.time,
        noun: str = "webhook",
    ) -> None:
        """``noun`` names what is posted to in messages ("webhook", "events URL")."""
        if timeout_s <= 0:
            raise ValueError(f"webhook timeout must be positive, got {timeout_s}")
        self._session = session
        self._timeout_s = timeout_s
        self._clock = clock  # wall clock for the signature timestamp
        self._noun = noun
        self._noun_url = noun if noun.endswith(" URL") else f"{noun} URL"
        self.stats = stats if stats is not None else WebhookStats()

    async def ask(self, url: str, request: WebhookRequest, secret: str | None) -> WebhookReply:
        """The agent's reply to ``request``; raises a ``WebhookError`` subclass on failure.

        ``secret`` (None or empty: unsigned) signs the body, see ``contract.sign``.
        """
        try:
            reply = await self._ask(url, request, secret)
        except WebhookError as exc:
            self.stats.record(exc)
            raise
        self.stats.record(None)
        return reply

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

    async def _ask(self, url: str, request: WebhookRequest, secret: str | None) -> WebhookReply:
        where = safe_url(url)
        delivery = str(uuid.uuid4())  # in the header and, signed, in the body: replay dedup
        body = replace(request, delivery_id=delivery).to_json()
        headers = self._headers(body, delivery, secret)
        logger.debug(
            "POST %s call=%s turn=%d delivery=%s", where, request.call_id, request.turn, delivery
        )
        start = time.perf_counter()
        raw = await self._exchange(url, where, body, headers)
        try:
            reply = parse_reply(raw)
        except WebhookBadReply as exc:
            raise WebhookBadReply(f"webhook {where} sent a bad reply: {exc}") from None
        logger.debug(
            "webhook %s answered in %.3f s (hangup=%s)",
            where,
            time.perf_counter() - start,
            reply.hangup,
        )
        return reply

    async def post_event(self, url: str, body: bytes, delivery: str, secret: str | None) -> None:
        """POST a call event (``agent.events``), signed as webhook requests are; any 2xx is
        success, its body ignored. Raises a ``WebhookError`` subclass, as ``ask`` does."""
        headers = self._headers(body, delivery, secret)
        await self._exchange(url, safe_url(url), body, headers)

    def _headers(self, body: bytes, delivery: str, secret: str | None) -> dict[str, str]:
        """The request headers: content type, delivery id and, with a secret, the signature
        (a fresh timestamp each time: a retried event is signed anew)."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            DELIVERY_HEADER: delivery,
        }
        if secret:
            headers.update(sign(body, secret, int(self._clock())))
        return headers

    async def _exchange(self, url: str, where: str, body: bytes, headers: dict[str, str]) -> bytes:
        """The reply body of one POST, every transport failure mapped to a WebhookError."""
        if _has_credentials(url):
            # aiohttp would send them as Basic auth; the API refuses them, older agents may not.
            raise WebhookUnreachable(
                f"{self._noun} {where} is refused: credentials in the URL (user:pass@) are never "
                "sent; sign requests with the agent's secret instead"
            )
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._post(url, where, body, headers)
        except TimeoutError:  # first: aiohttp's own timeouts are also OSError/ClientError
            raise WebhookTimeout(
                f"{self._noun} {where} did not answer within {self._timeout_s:g} s"
            ) from None
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError):
            raise WebhookUnreachable(
                f"{self._noun_url} {where!r} is not a valid http:// or https:// URL"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, EgressRefused):
                refused = exc.os_error
                raise EgressRefused(
                    refused.rule, f"{self._noun} {where} is refused: {refused.message}"
                ) from None
            raise WebhookUnreachable(
                f"{self._noun} {where} is unreachable: {_describe(exc, url, where)}"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            # from None: aiohttp's own message may quote the full URL, query string included.
            raise WebhookUnreachable(
                f"{self._noun} {where} is unreachable: {_describe(exc, url, where)}"
            ) from None

    async def _post(self, url: str, where: str, body: bytes, headers: dict[str, str]) -> bytes:
        # Redirects are refused, not followed: aiohttp would turn the POST into a body-less GET.
        async with self._session.post(
            url, data=body, headers=headers, allow_redirects=False, raise_for_status=False
        ) as resp:
            if 300 <= resp.status < 400:
                location = resp.headers.get("Location")
                target = safe_url(urljoin(url, location)) if location else "(no Location)"
                raise _status_error(
                    resp.status,
                    (
                        f"{self._noun} {where} answered HTTP {resp.status} redirecting to "
                        f"{target}; redirects are not followed: set the {self._noun_url} to the "
                        "final address"
                    ),
                )
            if not 200 <= resp.status < 300:
                snippet = await _error_snippet(resp)
                raise _status_error(
                    resp.status, f"{self._noun} {where} answered HTTP {resp.status}: {snippet}"
                )
            return await _read_limited(resp, f"{self._noun} {where}")


async def _read_limited(resp: aiohttp.ClientResponse, what: str) -> bytes:
    too_big = WebhookBadReply(f"{what} sent a bad reply: larger than {MAX_REPLY_BYTES} bytes")
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
