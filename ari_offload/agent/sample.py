"""The built-in sample agent: a few keyword rules behind the webhook contract.

The demo and the seed flow talk to it, and it doubles as a working example for agent
authors: the webhook helper (agent.adapters) checks the signature and parses the request,
``sample_reply`` answers it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from aiohttp import web

from ari_offload.agent.adapters import aiohttp_handler
from ari_offload.agent.contract import WebhookReply, WebhookRequest

logger = logging.getLogger("ari_offload.agent")

SAMPLE_WEBHOOK_PATH = "/ai-webhook"
HEALTH_PATH = "/healthz"
RECEIVED_KEY = web.AppKey("received", list[WebhookRequest])

RESET_REPLY = "Sure! Can you confirm your email address?"
HOURS_REPLY = "We are open from nine in the morning to five in the evening, Monday to Friday."
GOODBYE_REPLY = "Goodbye!"
DEFAULT_REPLY = (
    "I can help you reset your password or tell you our opening hours. What would you like?"
)

# First match wins. Whole words, so "reopen" or "byelaw" do not trigger a rule; STT may
# write "pass word" or "good bye", which still match.
_RULES: tuple[tuple[re.Pattern[str], WebhookReply], ...] = (
    (re.compile(r"\bpass\s?words?\b", re.IGNORECASE), WebhookReply(RESET_REPLY)),
    (re.compile(r"\b(hours?|open\w*)\b", re.IGNORECASE), WebhookReply(HOURS_REPLY)),
    (re.compile(r"\b(good)?bye\b", re.IGNORECASE), WebhookReply(GOODBYE_REPLY, hangup=True)),
)


def sample_reply(text: str) -> WebhookReply:
    """The sample agent's answer to what the caller said."""
    for pattern, reply in _RULES:
        if pattern.search(text):
            return reply
    return WebhookReply(DEFAULT_REPLY)


def make_sample_agent_app(
    secret: str | None = None, *, clock: Callable[[], float] = time.time
) -> web.Application:
    """``POST /ai-webhook`` (signature checked if ``secret``) and ``GET /healthz``.

    Every accepted request is appended to ``app[RECEIVED_KEY]``, for tests and the demo.
    """
    app = web.Application()
    received: list[WebhookRequest] = []
    app[RECEIVED_KEY] = received

    def answer(hook: WebhookRequest) -> WebhookReply:
        received.append(hook)  # only accepted requests: the helper refuses the others
        return sample_reply(hook.text)

    handler = aiohttp_handler(answer, secret=secret or None, clock=clock)
    app.router.add_post(SAMPLE_WEBHOOK_PATH, handler)
    app.router.add_get(HEALTH_PATH, _healthz)
    return app


async def run_sample_agent(host: str, port: int, *, secret: str | None = None) -> web.AppRunner:
    """Serve the sample agent; port 0 picks a free port (see ``runner.addresses``).

    The caller owns the runner and stops it with ``await runner.cleanup()``.
    """
    runner = web.AppRunner(make_sample_agent_app(secret), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    logger.info("sample agent listening on %s", runner.addresses)
    return runner


async def _healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})
