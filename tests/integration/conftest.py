"""Integration fixtures: the real test-bed Asterisk and an in-process controller.

A missing or broken test bed FAILS these tests (never skips): CI must prove real calls work.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from ari_offload.agent.client import WebhookClient
from ari_offload.agent.contract import WebhookRequest
from ari_offload.agent.sample import RECEIVED_KEY, make_sample_agent_app
from ari_offload.app import App
from ari_offload.ari.call import ActiveCall, FlowRunner
from ari_offload.ari.observer import CallObserver
from ari_offload.config import (
    AgentSettings,
    ApiSettings,
    MediaSettings,
    PolicySettings,
    Settings,
    StoreSettings,
)
from ari_offload.flows.actions import Action, AiTalk
from ari_offload.flows.builtin import BUILTIN_FLOWS
from ari_offload.flows.dispatch import FlowDispatcher
from ari_offload.flows.executor import FlowContext, run_actions
from ari_offload.policy_file import load_policy
from ari_offload.service import AriService
from ari_offload.speech.models import SpeechModels
from ari_offload.voice.conversation import AgentBinding
from ari_offload.voice.turns import TranscriptEntry, TurnTiming
from testbed.asterisk import TESTBED_ARI, TESTBED_POLICY_FILE, TESTBED_SCRIPT, Testbed

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def _asterisk_running() -> Iterator[None]:
    result = subprocess.run(
        [str(TESTBED_SCRIPT), "start"], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            "the test-bed Asterisk did not start (run scripts/install-testbed):\n"
            + result.stdout
            + result.stderr
        )
    yield
    subprocess.run([str(TESTBED_SCRIPT), "stop"], capture_output=True, timeout=60, check=False)


@pytest.fixture
async def testbed(_asterisk_running: None) -> AsyncIterator[Testbed]:
    bed = Testbed()
    await bed.start()  # no-op when running; restarts it if an earlier test stopped it
    yield bed
    # Every test must leave Asterisk clean: a leak in one test is reported there.
    channels, bridges = await bed.wait_idle(timeout=10)
    assert channels == [], f"channels leaked: {channels}"
    assert bridges == [], f"bridges leaked: {bridges}"


ServiceFactory = Callable[..., Awaitable[AriService]]

# A test parametrized over these runs its calls over each media transport ("transport/codec").
TRANSPORTS = ["rtp", "websocket", "websocket/slin16"]


@pytest.fixture
def media_transport() -> str:
    """The media transport of the test's calls ("rtp" unless the test is parametrized with
    ``@pytest.mark.parametrize("media_transport", TRANSPORTS)``)."""
    return "rtp"


@pytest.fixture
def media(media_transport: str) -> MediaSettings:
    transport, _, codec = media_transport.partition("/")
    return MediaSettings(transport=transport, codec=codec or "ulaw")  # type: ignore[arg-type]


@pytest.fixture
async def start_service(testbed: Testbed, media: MediaSettings) -> AsyncIterator[ServiceFactory]:
    """Start controllers with given test flows (plus the built-ins); all stopped at the end."""
    started: list[AriService] = []

    async def factory(
        flows: dict[str, FlowRunner] | None = None, observer: CallObserver | None = None
    ) -> AriService:
        dispatcher = FlowDispatcher({**BUILTIN_FLOWS, **(flows or {})})
        service = AriService(Settings(ari=TESTBED_ARI, media=media), dispatcher, observer)
        await service.start()
        await service.wait_connected()
        started.append(service)
        return service

    yield factory
    for service in started:
        await service.stop()


class Recorder:
    """A test flow that keeps every inbound payload and the call, until the call ends."""

    def __init__(self) -> None:
        self.payloads: dict[str, list[bytes]] = {}
        self.calls: list[ActiveCall] = []
        self.started = asyncio.Event()

    async def __call__(self, call: ActiveCall) -> None:
        self.calls.append(call)
        received = self.payloads.setdefault(call.call_id, [])
        with call.media.tap() as heard:
            self.started.set()
            async for frame in heard:
                received.append(frame.payload)

    def audio_of(self, call: ActiveCall) -> bytes:
        return b"".join(self.payloads[call.call_id])

    @property
    def audio(self) -> bytes:
        """The audio of the only call recorded."""
        assert len(self.calls) == 1, f"{len(self.calls)} calls recorded"
        return self.audio_of(self.calls[0])


class ConversationLog:
    """A ConversationObserver that keeps every transcript entry and turn timing per call."""

    def __init__(self) -> None:
        self.entries: dict[str, list[TranscriptEntry]] = {}
        self.timings: dict[str, list[TurnTiming]] = {}

    def transcript_added(self, call: ActiveCall, entry: TranscriptEntry) -> None:
        self.entries.setdefault(call.call_id, []).append(entry)

    def transcript_corrected(
        self, call: ActiveCall, entry: TranscriptEntry, corrected: TranscriptEntry
    ) -> None:
        entries = self.entries[call.call_id]
        entries[next(i for i, e in enumerate(entries) if e is entry)] = corrected

    def turn_updated(self, call: ActiveCall, timing: TurnTiming) -> None:
        pass  # the timing is kept whole once its reply has ended

    async def caught_up(self, call: ActiveCall) -> None:
        pass  # written at once: never behind

    def turn_finished(self, call: ActiveCall, timing: TurnTiming) -> None:
        self.timings.setdefault(call.call_id, []).append(timing)

    def only_call(self) -> list[TranscriptEntry]:
        assert len(self.entries) == 1, f"{len(self.entries)} calls"
        return next(iter(self.entries.values()))


AgentServiceFactory = Callable[..., Awaitable[ConversationLog]]


@pytest.fixture
async def start_agent_service(
    start_service: ServiceFactory, speech_models: SpeechModels, media: MediaSettings
) -> AsyncIterator[AgentServiceFactory]:
    """Start a controller whose flow `talk` converses with the webhook at `url`.

    ``before``: actions the flow runs first (e.g. a `talk`), then ai_talk.
    """
    sessions: list[aiohttp.ClientSession] = []

    async def factory(
        url: str,
        welcome: str | None = "Hello! How can I help you today?",
        secret: str | None = None,
        webhook_timeout_s: float = 2.0,
        before: tuple[Action, ...] = (),
    ) -> ConversationLog:
        session = aiohttp.ClientSession()
        sessions.append(session)
        settings = Settings(
            ari=TESTBED_ARI, media=media, agent=AgentSettings(webhook_timeout_s=webhook_timeout_s)
        )
        log = ConversationLog()
        binding = AgentBinding("agent-1", url, secret)

        async def find_agent(agent_id: str) -> AgentBinding | None:
            return binding if agent_id == binding.agent_id else None

        ctx = FlowContext(
            settings, speech_models, WebhookClient(session, webhook_timeout_s), find_agent, log
        )
        actions: list[Action] = [*before, AiTalk("agent-1", welcome)]

        async def talk(call: ActiveCall) -> None:
            await run_actions(call, actions, ctx)

        await start_service({"talk": talk})
        return log

    yield factory
    for session in sessions:
        await session.close()


@pytest.fixture
async def sample_agent() -> AsyncIterator[tuple[str, list[WebhookRequest]]]:
    """The built-in sample agent on a free port: (webhook url, requests it received)."""
    app = make_sample_agent_app()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/ai-webhook", app[RECEIVED_KEY]
    await runner.cleanup()


@pytest.fixture
async def flow_context(speech_models: SpeechModels) -> AsyncIterator[FlowContext]:
    """What flow actions need, for flows that talk to no agent."""
    async with aiohttp.ClientSession() as session:

        async def no_agent(agent_id: str) -> AgentBinding | None:
            return None

        yield FlowContext(
            Settings(ari=TESTBED_ARI), speech_models, WebhookClient(session, 2.0), no_agent,
            policy=load_policy(TESTBED_POLICY_FILE),
        )  # fmt: skip


def flow_of(actions: list[Action], ctx: FlowContext) -> FlowRunner:
    async def run(call: ActiveCall) -> None:
        await run_actions(call, actions, ctx)

    return run


# A loop step this long delays every call's 20 ms media frames. Blocking model calls on the loop
# take 0.5 s and more (whisper) and are caught; on this 2-core machine (2026-12-01) steps of
# 0.10-0.24 s were seen with nothing blocking in our code, while worker threads (whisper, piper)
# held the GIL in their Python glue: a 0.1 s bound failed the unchanged main 3 runs in 3.
SLOW_CALLBACK_S = 0.3


class _SlowStepLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.slow: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executing") and "took" in message:
            self.slow.append(message)


@pytest.fixture
async def loop_must_not_block() -> AsyncIterator[None]:
    """Fail the test if any single step of the event loop ran longer than SLOW_CALLBACK_S
    (blocking work such as whisper or piper must run in their thread pools)."""
    loop = asyncio.get_running_loop()
    handler = _SlowStepLog()
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.addHandler(handler)
    loop.set_debug(True)
    loop.slow_callback_duration = SLOW_CALLBACK_S
    try:
        yield
    finally:
        loop.set_debug(False)
        asyncio_log.removeHandler(handler)
    assert handler.slow == [], "the event loop was blocked:\n" + "\n".join(handler.slow)


@pytest.fixture(autouse=True)
async def no_errors_logged(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    """A real call that works must not log an ERROR from any logger (asyncio's included: a
    task destroyed while pending, an exception nobody retrieved), nor leave a task of its own
    running once every fixture is torn down, nor raise in a task or callback nobody awaits.

    Autouse fixtures are set up first and torn down last: this check runs after the app,
    the service and the test bed fixtures have cleaned up.
    """
    caplog.set_level(logging.WARNING)  # the root logger: every logger that propagates
    loop = asyncio.get_running_loop()
    unhandled: list[str] = []

    def on_unhandled(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        unhandled.append(f"{context.get('message')}: {context.get('exception')!r}")
        loop.default_exception_handler(context)

    loop.set_exception_handler(on_unhandled)
    before = asyncio.all_tasks()
    try:
        yield
        gc.collect()  # a task destroyed while pending is only reported when it is collected
        await asyncio.sleep(0)
        left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
    finally:
        loop.set_exception_handler(None)
    errors = [
        f"{r.name}: {r.getMessage()}"
        for phase in ("setup", "call", "teardown")
        for r in caplog.get_records(phase)
        if r.levelno >= logging.ERROR
    ]
    assert errors == [], "errors were logged:\n" + "\n".join(errors)
    assert unhandled == [], "unhandled in a task or callback:\n" + "\n".join(unhandled)
    assert left == [], "tasks left running after the test:\n" + "\n".join(map(repr, left))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def app(
    testbed: Testbed, speech_models: SpeechModels, tmp_path: Path, media: MediaSettings
) -> AsyncIterator[App]:
    """The whole product on the test bed, with the test bed's operator policy."""
    settings = Settings(
        ari=TESTBED_ARI,
        media=media,
        api=ApiSettings(port=free_port()),
        store=StoreSettings(data_dir=tmp_path),
        policy=PolicySettings(file=TESTBED_POLICY_FILE),
    )
    running = await App.start(settings, models=speech_models)
    await running.service.wait_connected()
    yield running
    await running.stop()
