"""A webhook agent on aiohttp, with ari-offload's helper: a plain and a streamed reply."""

import asyncio
import os
from collections.abc import AsyncIterator

from aiohttp import web

from ari_offload.agent import WebhookReply, WebhookRequest, aiohttp_handler

# The agent's secret in ari-offload; None accepts unsigned requests (an agent without one).
SECRET = os.environ.get("AGENT_SECRET")


async def answer(request: WebhookRequest) -> str | WebhookReply:
    if "bye" in request.text.lower():
        return WebhookReply("Goodbye!", hangup=True)
    return f"You said: {request.text}"


async def answer_streamed(request: WebhookRequest) -> AsyncIterator[str]:
    # Each piece is sent as it is yielded (an LLM's tokens, say): the caller hears the first
    # clause while the rest is still being written.
    yield "Let me look that up for you, "
    await asyncio.sleep(0.5)
    yield f"you said: {request.text}"


def make_app(secret: str | None = SECRET) -> web.Application:
    app = web.Application()
    app.router.add_post("/ai-webhook", aiohttp_handler(answer, secret=secret))
    app.router.add_post("/ai-webhook/streamed", aiohttp_handler(answer_streamed, secret=secret))
    return app


if __name__ == "__main__":
    web.run_app(make_app(), port=9000)
