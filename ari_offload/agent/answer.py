"""One turn's reply as the conversation speaks it: text as it arrives, never an exception.

``StreamedAnswer.pieces()`` yields the reply's text as the agent's line (agent.lines: its
webhook or its LLM endpoint) sends it (a whole JSON reply is one piece) and keeps what it
learnt: the text so far, whether the agent asked to hang up, when its first text came, and
the failure if there was one. An agent that fails before any text answers with the fallback
line, as a whole reply always did; one that fails midway has said what it said: the caller
hears that much, the failure is logged and on the turn's record, and nothing is made up to
fill the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator

from ari_offload.agent.client import error_kind
from ari_offload.agent.contract import WebhookRequest
from ari_offload.agent.lines import AgentLine
from ari_offload.agent.reply_actions import ReplyAction, split_hangup
from ari_offload.errors import WebhookError
from ari_offload.turn_fields import WebhookFailure

logger = logging.getLogger("ari_offload.agent")


class StreamedAnswer:
    """The reply to ``request``, or ``fallback_text`` if the agent fails before any text."""

    def __init__(self, line: AgentLine, request: WebhookRequest, fallback_text: str) -> None:
        self._line, self._request = line, request
        self._fallback = fallback_text
        self.text = ""  # received so far (the fallback line, if it answered)
        self.hangup = False  # the agent asked to hang up once it is said
        self.actions: tuple[ReplyAction, ...] = ()  # to run once it is said (not hangup)
        self.answered_at: float | None = None  # monotonic: the first text (or the fallback)
        self.error: WebhookError | None = None

    @property
    def failure(self) -> WebhookFailure | None:
        return None if self.error is None else error_kind(self.error)

    async def pieces(self) -> AsyncGenerator[str, None]:
        """The reply's text, piece by piece; ``aclose()`` cancels the agent's request."""
        start = time.monotonic()
        try:
            async for piece in self._line.stream(self._request):
                self.hangup = self.hangup or piece.hangup
                self.actions += piece.actions
                if piece.text:
                    yield self._took(piece.text)
            self.actions, self.hangup = split_hangup(self.actions, self.hangup)
        except WebhookError as exc:  # a broken reply's actions are not run: it is not whole
            self.error, self.hangup, self.actions = exc, False, ()
            took = time.monotonic() - start
            if self.text.strip():
                logger.warning(
                    "agent reply broke (%s) after %.2f s and %d characters; the rest"
                    " is not said: %s", error_kind(exc), took, len(self.text), exc,
                )  # fmt: skip
                return
            logger.warning(
                "agent failed (%s) after %.2f s, speaking the fallback line: %s",
                error_kind(exc), took, exc,
            )  # fmt: skip
            self.text = ""
            yield self._took(self._fallback)

    def _took(self, text: str) -> str:
        if self.answered_at is None and text.strip():  # whitespace is no answer yet
            self.answered_at = time.monotonic()
        self.text += text
        return text
