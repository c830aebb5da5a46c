"""An llm agent's conversation over the in-memory port: the history its requests carry is
the call as the caller heard it (the welcome, replies cut where the caller cut them)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from ari_offload.agent.http_reply import Peer
from ari_offload.agent.llm_chat import LlmConfig
from ari_offload.agent.reply_stream import ReplyPiece
from tests.unit.test_conversation_port import WORD_SAMPLES, Rig, hang_up, until, utterance

LONG = "One two three four five six seven eight."


class ModelClient:
    """Stands in for the WebhookClient an LlmLine posts through: keeps each request's
    messages and answers the first turn at length, later ones briefly."""

    def __init__(self) -> None:
        self.asked: list[list[dict[str, str]]] = []
        self.urls: list[str] = []

    async def exchange(
        self, peer: Peer, body: bytes, headers: dict[str, str], whole: Any
    ) -> AsyncIterator[ReplyPiece]:
        self.urls.append(peer.url)
        messages = json.loads(body)["messages"]
        self.asked.append(messages)
        yield ReplyPiece(LONG if len(self.asked) == 1 else "Okay.", done=True)


async def test_the_model_is_told_the_call_as_the_caller_heard_it() -> None:
    model = ModelClient()
    config = LlmConfig("http://llm.invalid/v1", "m", "Be brief.")
    rig = Rig(hold=True, agent=model, llm=config)
    task = asyncio.create_task(rig.conversation.run("Welcome."))
    try:
        await until(lambda: rig.port.queued == WORD_SAMPLES)
        rig.port.advance()  # the welcome, heard whole
        rig.port.say(utterance(1000))  # "hello"
        await until(lambda: rig.port.queued == 8 * WORD_SAMPLES)
        rig.port.advance(3 * WORD_SAMPLES)  # the caller heard "One two three" ...
        rig.port.say(utterance(2000, speech_ms=400))  # ... and said "goodbye" over the rest
        await until(lambda: len(model.asked) == 2)
        await until(lambda: rig.port.queued == WORD_SAMPLES)  # "Okay."
        rig.port.advance()
        await until(lambda: rig.states[-1:] == ["listening"])
    finally:
        await hang_up(task)
        rig.close()
    assert model.urls == ["http://llm.invalid/v1/chat/completions"] * 2
    assert model.asked[0] == [
        {"role": "system", "content": "Be brief."},
        {"role": "assistant", "content": "Welcome."},
        {"role": "user", "content": "hello"},
    ]
    assert model.asked[1][3:] == [
        {"role": "assistant", "content": "One two three"},  # not the whole reply
        {"role": "user", "content": "goodbye"},
    ]
    assert rig.lines()[2] == ("agent", LONG, "One two three")  # the transcript agrees
