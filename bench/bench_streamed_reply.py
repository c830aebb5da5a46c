"""First audio of a streamed reply vs the same reply sent whole, on the wire.

    .venv/bin/python -m bench.bench_streamed_reply [--rounds 2] [--modes ndjson,sse,whole,llm]

Method: a real ``ari-offload serve`` process on the test-bed Asterisk 22 and real SIPp
callers, one call at a time, as bench.bench_turn_latency does (same caller script: four
utterances 8 s apart; same wire rule: a 20 ms packet at >= -45 dBFS is speech; latency = the
caller's last speech packet -> the first agent speech packet). The agent behaves like an LLM
server: its first token comes FIRST_TOKEN_S after the request, then a token (a word) every
1 / TOKENS_PER_S s, for a reply of about REPLY_WORDS words whose first sentence is short.
``ndjson`` and ``sse`` stream the tokens as they come; ``whole`` answers one JSON body when the
last token is written (what a webhook that waits for its LLM does); ``llm`` is an agent of
kind "llm" whose OpenAI-compatible endpoint (testbed.llm_standin) streams the same tokens at
the same pace. The app's breakdown of each turn is printed beside the wire figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from ari_offload.sdk.client import Client
from bench.bench_turn_latency import _free_port, cpu_seconds, one_row, report, script
from bench.machine import describe
from testbed.asterisk import Testbed
from testbed.dialogue import script_audio
from testbed.llm_standin import LlmStandIn, serving
from testbed.serve import ServeProcess, soak_policy
from testbed.wire import app_turns

FIRST_TOKEN_S = 0.3  # an LLM's time to first token, served nearby
TOKENS_PER_S = 30.0
REPLY = (
    "Sure, I can help with that. I have looked at your account and everything is in order, "
    "so the change you asked for will be made today and you will get an email once it is "
    "done. Is there anything else I can do for you?"
)
REPLY_WORDS = len(REPLY.split())


async def _llm_tokens() -> AsyncIterator[str]:
    await asyncio.sleep(FIRST_TOKEN_S)
    words = REPLY.split(" ")
    for index, word in enumerate(words):
        if index:
            await asyncio.sleep(1 / TOKENS_PER_S)
        yield word if index == len(words) - 1 else word + " "


async def _hook(request: web.Request) -> web.StreamResponse:
    mode = request.query["mode"]
    await request.read()
    if mode == "whole":
        text = "".join([token async for token in _llm_tokens()])
        return web.json_response({"text": text})
    sse = mode == "sse"
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream" if sse else "application/x-ndjson"}
    )
    await resp.prepare(request)
    with contextlib.suppress(ConnectionResetError):  # the caller cut the reply
        async for token in _llm_tokens():
            if sse:
                chunk = {"choices": [{"delta": {"content": token}}]}
                await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
            else:
                await resp.write(json.dumps({"text": token}).encode() + b"\n")
        await resp.write(b"data: [DONE]\n\n" if sse else b'{"done": true}\n')
    return resp


@contextlib.asynccontextmanager
async def llm_like_agent() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", _hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="calls per mode (4 turns each)")
    parser.add_argument("--modes", default="ndjson,sse,whole")
    args = parser.parse_args()
    print(describe(("faster-whisper", "ctranslate2", "piper-tts")))
    whole_s = FIRST_TOKEN_S + (REPLY_WORDS - 1) / TOKENS_PER_S
    print(
        f"agent: first token after {FIRST_TOKEN_S * 1000:.0f} ms, {TOKENS_PER_S:.0f} tokens/s, "
        f"{REPLY_WORDS} words (the whole reply written after {whole_s * 1000:.0f} ms)"
    )
    await Testbed().start()
    workdir = Path(tempfile.mkdtemp(prefix="aoff-streamed-"))
    serve = ServeProcess(workdir, _free_port(), soak_policy(workdir, 8, 1000), {})
    audio = workdir / "caller.ulaw"
    audio.write_bytes(script_audio(script()))
    started = time.monotonic()
    standin = LlmStandIn(lambda _: REPLY, tokens_per_s=TOKENS_PER_S, first_token_s=FIRST_TOKEN_S)
    async with llm_like_agent() as hook, serving(standin):
        await serve.start()
        client = await Client.signup(serve.api_url, "bench", "bench-password-1")
        try:
            for mode in args.modes.split(","):
                if mode == "llm":
                    agent = await client.agents.create(
                        name=mode, kind="llm", base_url=standin.url, model="standin"
                    )
                else:
                    agent = await client.agents.create(name=mode, webhook=f"{hook}?mode={mode}")
                actions = [{"type": "ai_talk", "agent_id": agent.id}]
                flow = await client.flows.create(f"streamed-{mode}", actions)
                since, cpu_before = datetime.now(UTC), cpu_seconds(serve.pid)
                wire, failed = await one_row(f"8{flow.id}", audio, 1, False, args.rounds)
                cpu = cpu_seconds(serve.pid) - cpu_before
                await asyncio.sleep(1.0)  # the last records
                report(f"reply {mode}", wire, await app_turns(client, since), cpu)
                if failed:
                    print(f"  {failed} SIPp calls failed")
        finally:
            await client.close()
            await serve.stop()
    errors = serve.lines_with(" ERROR ")
    print(f"\nERROR lines in the app log: {len(errors)}; wall {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
