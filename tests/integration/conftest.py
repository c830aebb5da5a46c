"""Integration fixtures: the real test-bed Asterisk and an in-process controller.

A missing or broken test bed FAILS these tests (never skips): CI must prove real calls work.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from ari_offload.ari.call import ActiveCall
from ari_offload.config import Settings
from ari_offload.flows.builtin import BUILTIN_FLOWS
from ari_offload.flows.dispatch import FlowDispatcher, FlowRunner
from ari_offload.service import AriService
from ari_offload.testbed.asterisk import TESTBED_ARI, TESTBED_SCRIPT, Testbed

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def _asterisk_running() -> Iterator[None]:
    result = subprocess.run(
        [str(TESTBED_SCRIPT), "start"], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            "the test-bed Asterisk did not start (run scripts/install-testbed):\n"
            + result.stdout + result.stderr
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


@pytest.fixture
async def start_service(testbed: Testbed) -> AsyncIterator[ServiceFactory]:
    """Start controllers with given test flows (plus the built-ins); all stopped at the end."""
    started: list[AriService] = []

    async def factory(flows: dict[str, FlowRunner] | None = None) -> AriService:
        dispatcher = FlowDispatcher({**BUILTIN_FLOWS, **(flows or {})})
        service = AriService(Settings(ari=TESTBED_ARI), dispatcher)
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
        self.payloads: list[bytes] = []
        self.calls: list[ActiveCall] = []
        self.started = asyncio.Event()

    async def __call__(self, call: ActiveCall) -> None:
        assert call.media is not None
        self.calls.append(call)
        self.started.set()
        async for frame in call.media.frames():
            self.payloads.append(frame.payload)

    @property
    def audio(self) -> bytes:
        return b"".join(self.payloads)
