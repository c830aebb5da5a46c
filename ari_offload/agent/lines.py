"""The line to an agent: where one conversation's turns go, chosen by the agent's kind.

    kind "webhook"  WebhookLine  each turn POSTed to the tenant's webhook, signed (contract)
    kind "llm"      LlmLine      each turn a chat-completions request to an OpenAI-compatible
                                 endpoint, with the call's history (agent.llm_chat)

A conversation opens one line (``open_line``) and asks it for each turn's reply
(``stream``: ``ReplyPiece``s as they arrive, a ``WebhookError`` on failure); once something
has been said to the caller it tells the line what the caller heard of it (``said``). Both
kinds go out through the same ``WebhookClient``: the egress-guarded session, the same
timeouts (first text, whole reply), limits and counters.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Protocol

from ari_offload.agent.client import USER_AGENT, WebhookClient
from ari_offload.agent.contract import WebhookRequest
from ari_offload.agent.http_reply import Peer
from ari_offload.agent.llm_chat import ChatHistory, LlmConfig, completion_body, parse_completion
from ari_offload.agent.reply_stream import ReplyPiece
from ari_offload.errors import WebhookError

logger = logging.getLogger("ari_offload.agent")

AGENT_KINDS = ("webhook", "llm")
LLM_NOUN = "LLM endpoint"  # how messages and logs name it
_LLM_ACCEPT = "text/event-stream, application/json"
_REDACTED = "<api_key>"


class AgentLine(Protocol):
    def stream(self, request: WebhookRequest) -> AsyncGenerator[ReplyPiece, None]:
        """The reply to one caller turn as it arrives; ``aclose()`` cancels the request."""
        ...

    def said(self, text: str) -> None:
        """The caller heard ``text`` from the agent's side (a reply as far as it was heard,
        the fallback line, the welcome, an API text)."""
        ...


class WebhookLine:
    """Kind "webhook": the webhook learns what was heard from the next request's ``heard``."""

    def __init__(self, client: WebhookClient, url: str, secret: str | None) -> None:
        self._client, self._url, self._secret = client, url, secret

    def stream(self, request: WebhookRequest) -> AsyncGenerator[ReplyPiece, None]:
        return self._client.stream(self._url, request, self._secret)

    def said(self, text: str) -> None:
        pass  # the webhook keeps its own history, from the requests


class LlmLine:
    """Kind "llm": one call's chat with an OpenAI-compatible endpoint, streamed."""

    def __init__(self, client: WebhookClient, config: LlmConfig) -> None:
        self._client, self._config = client, config
        self._peer = Peer(config.url, LLM_NOUN)
        self._history = ChatHistory(config.system_prompt)

    async def stream(self, request: WebhookRequest) -> AsyncGenerator[ReplyPiece, None]:
        messages = self._history.asked(request)
        body = completion_body(self._config, messages)
        headers = {
            "Content-Type": "application/json",
            "Accept": _LLM_ACCEPT,
            "User-Agent": USER_AGENT,
        }
        key = self._config.api_key
        if key:
            headers["Authorization"] = f"Bearer {key}"
        logger.debug(
            "POST %s call=%s turn=%d model=%s messages=%d", self._peer.where, request.call_id,
            request.turn, self._config.model, len(messages),
        )  # fmt: skip
        try:
            async for piece in self._client.exchange(self._peer, body, headers, parse_completion):
                yield piece
        except WebhookError as exc:
            if key:
                _redact(exc, key)  # a server may echo the key in its error body
            raise

    def said(self, text: str) -> None:
        self._history.said(text)


def open_line(
    client: WebhookClient, *, webhook: str | None, secret: str | None, llm: LlmConfig | None
) -> AgentLine:
    """The line for an agent: its LLM endpoint if it is of kind "llm", else its webhook."""
    if llm is not None:
        return LlmLine(client, llm)
    if webhook is None:
        raise ValueError("an agent needs a webhook or an LLM endpoint")
    return WebhookLine(client, webhook, secret)


def _redact(error: WebhookError, key: str) -> None:
    error.args = tuple(a.replace(key, _REDACTED) if isinstance(a, str) else a for a in error.args)
