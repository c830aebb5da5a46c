"""Keys on real calls, both ways (RFC 4733 on the wire): a caller's keys reach the agent, a
reply's ``collect`` gathers a PIN, a reply's ``send_dtmf`` and a flow's reach the far end, and
a reply's ``transfer`` hands the caller to a named target.

The callers and the answerer are SIPp; keys they press are RFC 4733 pcaps (testbed.dtmf), and
keys they receive are read back from the RTP capture. What callers heard is transcribed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from ari_offload.app import App
from ari_offload.sdk.client import Client
from ari_offload.speech.models import SpeechModels
from testbed.audio import CACHE_DIR
from testbed.capture import RtpCapture, payload_bytes
from testbed.dialogue import Say, Silence, Step, run_dialogue, script_audio
from testbed.dtmf import keys_in
from testbed.sipp import SippAnswerer, SippCall
from tests.integration.helpers import heard, sounds_like

pytestmark = [
    pytest.mark.integration,
    pytest.mark.models,
    pytest.mark.usefixtures("loop_must_not_block"),
]

Reply = dict[str, object]


@dataclass
class ScriptedAgent:
    """A webhook answering each turn with ``replies[turn]`` ("Okay." otherwise); it keeps
    the requests it got."""

    replies: dict[int, Reply]
    url: str = ""
    requests: list[dict[str, object]] = field(default_factory=list)

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        return web.json_response(self.replies.get(body["turn"], {"text": "Okay."}))


AgentFactory = Callable[[dict[int, Reply]], Awaitable[ScriptedAgent]]


@pytest.fixture
async def scripted_agent() -> AsyncIterator[AgentFactory]:
    runners: list[web.AppRunner] = []

    async def serve(replies: dict[int, Reply]) -> ScriptedAgent:
        agent = ScriptedAgent(replies)
        app = web.Application()
        app.router.add_post("/hook", agent.hook)
        runner = web.AppRunner(app, access_log=None)
        runners.append(runner)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        agent.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        return agent

    yield serve
    for runner in runners:
        await runner.cleanup()


async def agent_flow(client: Client, agent: ScriptedAgent, welcome: str | None = None) -> str:
    made = await client.agents.create(name="keys", webhook=agent.url)
    action: dict[str, object] = {"type": "ai_talk", "agent_id": made.id}
    if welcome:
        action["welcome_message"] = welcome
    return (await client.flows.create("keys", [action])).id


PIN_PROMPT = "Please enter your PIN, then hash."
PIN_ACCEPTED = "Thank you, your PIN is accepted."
PRESSED_FIVE = "You pressed five."
# Seven words: whisper heard piper's three-word "Sending it now." as "same thing now" (CI)
# and "same being it now" (1 in 8 here); this line came through 8 in 8.
SENDING = "I am sending you the code now."


# Over chan_websocket each key comes twice (ARI and the media websocket's DTMF_END): once here.
@pytest.mark.parametrize("media_transport", ["rtp", "websocket"])
async def test_caller_keys_reach_the_agent_and_a_collect_gathers_a_pin(
    app: App, scripted_agent: AgentFactory, speech_models: SpeechModels
) -> None:
    agent = await scripted_agent(
        {
            1: {
                "text": PIN_PROMPT,
                "actions": [{"type": "collect", "max_digits": 4, "terminator": "#"}],
            },
            2: {"text": PIN_ACCEPTED},
            3: {"text": PRESSED_FIVE},
        }
    )
    async with await Client.signup(app.api_url + "/v1.0", "keys-1", "password1") as client:
        flow = await agent_flow(client, agent)
        result = await run_dialogue(
            f"8{flow}",
            [Silence(1.0), Say("I want to check my balance"), Silence(15.0)],
            # The PIN typed whole with its terminator once the prompt is said; a key later.
            dtmf=[(8.0, "1234#"), (13.0, "5")],
        )
        detail = await client.calls.get((await client.calls.list())[0].id)

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    got = [(r["turn"], r.get("type"), r.get("digits"), r.get("ended_by")) for r in agent.requests]
    assert got == [
        (1, "speech", None, None),
        (2, "dtmf", "1234", "max_digits"),  # "#" after the 4th key is the PIN's, no turn
        (3, "dtmf", "5", None),  # pressed unasked
    ]
    assert str(agent.requests[0]["text"]).strip(), "the caller's words came first"
    lines = [(line.role, line.text) for line in detail.transcript]
    assert ("system", "agent: collect up to 4 keys, # ends, 10 s timeout") in lines
    assert ("caller", "[keys 1234, max_digits]") in lines
    assert ("caller", "[keys 5]") in lines
    last = result.agent[-1]
    assert last.start > result.caller[-1].end
    said = await heard(speech_models, last)
    assert sounds_like(said, PRESSED_FIVE, PIN_PROMPT, PIN_ACCEPTED), said


async def test_a_replys_send_dtmf_reaches_the_caller_as_rfc4733_events(
    app: App, scripted_agent: AgentFactory, speech_models: SpeechModels
) -> None:
    agent = await scripted_agent(
        {1: {"text": SENDING, "actions": [{"type": "send_dtmf", "digits": "4w2"}]}}
    )
    async with await Client.signup(app.api_url + "/v1.0", "keys-2", "password1") as client:
        flow = await agent_flow(client, agent)
        result = await run_dialogue(
            f"8{flow}",
            [Silence(1.0), Say("Please send me the code"), Silence(7.0)],
            telephone_event=True,  # the caller can receive keys
        )
        detail = await client.calls.get((await client.calls.list())[0].id)

    assert result.sipp.ok, result.sipp.output + result.sipp.errors
    keys = keys_in(result.received)
    assert [k.key for k in keys] == ["4", "2"]
    # After the reply was said, and the "w" between them is a half-second wait.
    reply = next(b for b in result.agent if b.start >= result.caller[0].end)
    said = await heard(speech_models, reply)
    assert sounds_like(said, SENDING), said
    assert keys[0].time >= reply.end - 0.1
    assert keys[1].time - keys[0].time >= 0.5
    assert ("system", "agent: send keys 4w2") in [(x.role, x.text) for x in detail.transcript]


TRANSFERRED_SPEECH = "Hello, is this the front desk?"


async def test_a_replys_transfer_moves_the_caller_to_the_named_target(
    app: App, scripted_agent: AgentFactory
) -> None:
    agent = await scripted_agent(
        {1: {"text": "Connecting you.", "actions": [{"type": "transfer", "target": "desk"}]}}
    )
    answerer = SippAnswerer()  # the policy's "desk": PJSIP/sipp-uas
    far_end = RtpCapture(answerer.media_port)
    await far_end.start()
    await answerer.start()
    async with await Client.signup(app.api_url + "/v1.0", "keys-3", "password1") as client:
        flow = await agent_flow(client, agent)
        steps: list[Step] = [Silence(1.0), Say("Put me through to a person"), Silence(7.0)]
        steps += [Say(TRANSFERRED_SPEECH), Silence(2.0)]
        audio = script_audio(steps)
        path = CACHE_DIR / "dtmf-transfer.ulaw"
        path.write_bytes(audio)
        caller = SippCall(f"8{flow}", path, hangup_after_s=len(audio) / 8000 + 0.5)
        result = await caller.run()
        answered = await answerer.wait(timeout=20)
        await far_end.stop()
        await asyncio.sleep(0.5)  # the call's record catches up with its end
        detail = await client.calls.get((await client.calls.list())[0].id)

    assert result.ok, result.output + result.errors
    assert answered.ok, answered.output + answered.errors  # bridged, then the caller left
    assert len(agent.requests) == 1
    # What the caller said after the transfer reaches the desk untouched.
    said_after = script_audio([Say(TRANSFERRED_SPEECH)]).rstrip(b"\xff")
    assert said_after[:4000] in payload_bytes(far_end.received())
    lines = [(line.role, line.text) for line in detail.transcript]
    assert ("system", "agent: transfer to desk") in lines
    assert detail.status == "ended"


async def test_send_dtmf_flow_action_navigates_an_ivr_on_an_outbound_call(app: App) -> None:
    async with await Client.signup(app.api_url + "/v1.0", "keys-4", "password1") as client:
        flow = await client.flows.create(
            "ivr",
            [
                {"type": "pause", "seconds": 1},
                {"type": "send_dtmf", "digits": "3w7"},
                {"type": "pause", "seconds": 1.5},
            ],
        )
        answerer = SippAnswerer()
        capture = RtpCapture(answerer.media_port)
        await capture.start()
        await answerer.start()
        call = await client.calls.create("sipp-uas", flow.id)
        result = await answerer.wait(timeout=30)
        await capture.stop()
        await asyncio.sleep(0.5)
        record = await client.calls.get(call.id)

    assert result.ok, result.output + result.errors
    assert [k.key for k in keys_in(capture.received())] == ["3", "7"]
    assert record.status == "ended"
