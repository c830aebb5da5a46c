"""An agent webhook that misbehaves on purpose, as real ones do under load: slow, past the
timeout, 500, garbage, a dropped connection, a 1,500-character reply; and one that answers
well the rest of the time, with the kind of reply an LLM gives (a long first sentence).

It remembers every request it received, so a soak can compare what the agent was asked with
what the store kept.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum

from aiohttp import web


class Behaviour(StrEnum):
    GOOD = "good"
    SLOW = "slow"  # answers well, but takes most of the timeout
    TIMEOUT = "timeout"  # answers after the app has given up
    STATUS_500 = "500"
    GARBAGE = "garbage"  # 200 with a body that is not the contract's JSON
    DROP = "drop"  # closes the connection without an answer
    LONG = "long"  # a 1,500-character reply


MISBEHAVIOURS = [b for b in Behaviour if b is not Behaviour.GOOD]
LONG_REPLY = " ".join(
    f"Point {i}: our records show that your request was received and is being handled."
    for i in range(1, 20)
)[:1500]


@dataclass
class HostileAgent:
    """The webhook app; ``hostile_share`` of requests get one of the misbehaviours."""

    timeout_s: float  # the app's webhook timeout: TIMEOUT sleeps past it, SLOW stays within
    hostile_share: float = 0.6
    seed: int = 1
    # per call, every (turn, text) it was asked, in order: a turn asked twice shows up twice
    asked: dict[str, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    behaviours: dict[Behaviour, int] = field(default_factory=lambda: dict.fromkeys(Behaviour, 0))

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        return app

    def _pick(self) -> Behaviour:
        if self._random.random() >= self.hostile_share:
            return Behaviour.GOOD
        return self._random.choice(MISBEHAVIOURS)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.asked[str(body["call_id"])].append((int(body["turn"]), str(body.get("text", ""))))
        behaviour = self._pick()
        self.behaviours[behaviour] += 1
        said = str(body.get("text", ""))
        if behaviour is Behaviour.SLOW:
            await asyncio.sleep(self.timeout_s * self._random.uniform(0.4, 0.8))
        elif behaviour is Behaviour.TIMEOUT:
            await asyncio.sleep(self.timeout_s + 1.0)  # the app has hung up on us by now
        elif behaviour is Behaviour.STATUS_500:
            return web.json_response({"error": "internal"}, status=500)
        elif behaviour is Behaviour.GARBAGE:
            return web.Response(text="<html>\x00 not json {", content_type="application/json")
        elif behaviour is Behaviour.DROP:
            assert request.transport is not None
            request.transport.close()
            return web.Response()  # never reaches the app: the connection is gone
        elif behaviour is Behaviour.LONG:
            return web.json_response({"text": LONG_REPLY})
        reply = (
            f"You said: {said.rstrip('.?!')}, and I have written that down for you. "
            "How else can I help?"
        )
        return web.Response(text=json.dumps({"text": reply}), content_type="application/json")
