"""Outbound agent calls: one POST per caller turn, every failure a ``WebhookError``.

``WebhookClient.ask`` raises; ``ask_or_fallback`` never does for webhook problems, because a
slow or broken agent must cost the caller one fallback line, not the call. The aiohttp session
is injected: it is the single outbound HTTP point, and tests point it at real local servers.
Messages and logs name the webhook by ``safe_url`` (no user info, no query string): secrets
often ride in query strings, and the signing secret and headers are never logged. Where a
webhook may connect is the session's business (agent.egress.webhook_session); a refusal there
arrives as ``EgressRefused``, a ``WebhookUnreachable`` naming the policy rule.

``exchange`` is the POST itself, for any body: a webhook's signed request (``stream``) and an
LLM endpoint's chat-completions request (agent.llm) share its timeouts, limits and counting.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field, replace

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
from ari_offload.agent.http_reply import (
    Deadlines,
    Peer,
    check_status,
    read_reply,
    refuse_credentials,
    safe_url,
    transport_error,
)
from ari_offload.agent.reply_actions import ReplyAction, checked_actions, split_hangup
from ari_offload.agent.reply_stream import ReplyPiece
from ari_offload.config import DEFAULT_WEBHOOK_STREAM_TIMEOUT_S
from ari_offload.errors import (
    WebhookBadReply,
    WebhookError,
    WebhookStatusError,
    WebhookTimeout,
    WebhookUnreachable,
)
from ari_offload.turn_fields import WebhookFailure

logger = logging.getLogger("ari_offload.agent")

USER_AGENT = f"ari-offload/{__version__}"
# What a reply may be (agent/reply_stream.py): whole, or streamed as NDJSON or SSE.
ACCEPTED_REPLIES = "application/json, application/x-ndjson, text/event-stream"


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

        ``secret`` (None or empty: unsigned) signs the body, see ``contract.sign``.
        """
        delivery = str(uuid.uuid4())  # in the header and, signed, in the body: replay dedup
        body, headers = self.signed(request, secret, delivery)
        logger.debug(
            "POST %s call=%s turn=%d delivery=%s",
            safe_url(url), request.call_id, request.turn, delivery,
        )  # fmt: skip
        async for piece in self.exchange(Peer(url, self._noun), body, headers, parse_reply):
            yield piece

    async def exchange(
        self,
        peer: Peer,
        body: bytes,
        headers: dict[str, str],
        whole: Callable[[bytes], WebhookReply],
    ) -> AsyncGenerator[ReplyPiece, None]:
        """POST ``body`` to ``peer``; the reply as it arrives (a JSON body, parsed by
        ``whole``: one piece); raises a ``WebhookError``.

        Its first text must come within the webhook timeout, all of it within the stream
        timeout. ``aclose()`` (a barge-in) closes the connection: the agent sees its
        stream cancelled. Each request counts once in ``stats``, when it ends.
        """
        name = peer.name
        deadlines = Deadlines(self._timeout_s, self._stream_timeout_s, name)
        try:
            refuse_credentials(peer)
            hangup, actions = False, list[ReplyAction]()
            reply = read_reply(self._session, peer, body, headers, deadlines, whole)
            async for piece in reply:
                # whitespace is no answer: it buys no time past the first-text timeout
                deadlines.text_seen = deadlines.text_seen or bool(piece.text.strip())
                hangup = hangup or piece.hangup
                actions += piece.actions
                yield piece
            if not deadlines.text_seen and not hangup and not actions:
                raise WebhookBadReply(
                    f"{name} sent a bad reply: no text (an empty reply is allowed"
                    ' only with "hangup": true or actions)'
                )
            try:
                split_hangup(checked_actions(actions), hangup)
            except WebhookBadReply as exc:
                raise WebhookBadReply(f"{name} sent a bad reply: {exc}") from None
        except WebhookError as exc:  # a cancelled or closed stream is no outcome: not counted
            self.stats.record(exc)
            raise
        except (aiohttp.ClientError, OSError) as exc:
            error = transport_error(exc, peer)
            self.stats.record(error)
            raise error from None
        self.stats.record(None)
        logger.debug("%s answered in %.3f s", name, deadlines.elapsed())

    async def post_event(self, url: str, body: bytes, delivery: str, secret: str | None) -> None:
        """POST a call event (``agent.events``), signed as webhook requests are; any 2xx is
        success, its body ignored. Raises a ``WebhookError`` subclass, as ``ask`` does."""
        peer = Peer(url, self._noun)
        refuse_credentials(peer)
        headers = self._headers(body, delivery, secret)
        try:
            async with (
                asyncio.timeout(self._timeout_s),
                self._session.post(
                    url, data=body, headers=headers, allow_redirects=False, raise_for_status=False
                ) as resp,
            ):
                await check_status(resp, peer)
        except TimeoutError:  # first: aiohttp's own timeouts are also OSError/ClientError
            message = f"{peer.name} did not answer within {self._timeout_s:g} s"
            raise WebhookTimeout(message) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise transport_error(exc, peer) from None

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
