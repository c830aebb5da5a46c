"""A local stand-in for an OpenAI-compatible chat-completions server, for the LLM agent kind.

``POST /v1/chat/completions`` answers as OpenAI's API does: with ``"stream": true``, SSE
``chat.completion.chunk`` events, one token (a word and its space) at a time at about
``tokens_per_s`` (30 by default: a slow hosted model), then ``data: [DONE]``; without it, one
``chat.completion`` JSON. With an ``api_key`` it refuses any other ``Authorization`` with
OpenAI's 401 body, which quotes the key it was given (as some servers do: ari-offload must
not log it). ``reply`` picks the answer to each request from its messages.

It keeps every request (headers and body), the time each stream finished, and whether one
was cut (the client closed it mid-stream: a barge-in).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

PATH = "/v1/chat/completions"
Reply = Callable[[list[dict[str, str]]], str]


def tokens(text: str) -> list[str]:
    """The text as a tokenizer streams it, roughly: each word with the space before it."""
    return re.findall(r"\s*\S+", text)


def echo_reply(messages: list[dict[str, str]]) -> str:
    return f"You said: {messages[-1]['content']}"


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, str]]:
        messages: list[dict[str, str]] = self.body["messages"]
        return messages


@dataclass
class LlmStandIn:
    reply: Reply = echo_reply
    api_key: str | None = None
    tokens_per_s: float = 30.0
    first_token_s: float = 0.2  # before the first token, as a model reads its prompt
    ignore_stream: bool = False  # answer with one whole completion, as some servers do
    received: list[Received] = field(default_factory=list)
    finished_at: list[float] = field(default_factory=list)  # monotonic, per whole stream
    cut: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""  # the base_url to give an agent, once serving

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(PATH, self._complete)
        return app

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.received.append(Received(dict(request.headers), body))
        if self.api_key is not None:
            given = request.headers.get("Authorization", "")
            if given != f"Bearer {self.api_key}":
                shown = given.removeprefix("Bearer ")
                error = {"message": f"Incorrect API key provided: {shown}", "code": "invalid"}
                return web.json_response({"error": error}, status=401)
        text = self.reply(body["messages"])
        if self.ignore_stream or not body.get("stream"):
            return web.json_response(_completion(body["model"], text))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            await asyncio.sleep(self.first_token_s)
            await resp.write(_event(_chunk(body["model"], {"role": "assistant", "content": ""})))
            for token in tokens(text):
                await resp.write(_event(_chunk(body["model"], {"content": token})))
                await asyncio.sleep(1 / self.tokens_per_s)
            await resp.write(_event(_chunk(body["model"], {}, finish="stop")))
            await resp.write(b"data: [DONE]\n\n")
            self.finished_at.append(time.monotonic())
        except ConnectionResetError:  # the client closed the stream: a barge-in
            self.cut.set()
        return resp


def _chunk(model: str, delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-standin",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
    }


def _event(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


@asynccontextmanager
async def serving(standin: LlmStandIn, host: str = "127.0.0.1") -> AsyncIterator[LlmStandIn]:
    """Serve ``standin`` on a free port; its ``url`` is the base_url (``.../v1``)."""
    runner = web.AppRunner(standin.app(), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, host, 0).start()
    standin.url = f"http://{host}:{runner.addresses[0][1]}/v1"
    try:
        yield standin
    finally:
        await runner.cleanup()
