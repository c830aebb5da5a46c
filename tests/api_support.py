"""A real API server on 127.0.0.1:<free port> with a real SQLite store and a fake telephony.

The fake stands in for the ARI controller because these tests are about the API; the
integration tests drive the real controller against a real Asterisk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from argon2 import PasswordHasher

from ari_offload.agent.egress import own_endpoints
from ari_offload.api import RedactingAccessLogger, make_api_app
from ari_offload.api.speech import FixedSpeechOffer
from ari_offload.config import ApiSettings, StoreSettings
from ari_offload.errors import TalkQueueFull, TelephonyError
from ari_offload.observe.metrics import Metrics
from ari_offload.policy import Policy
from ari_offload.policy_file import load_policy
from ari_offload.store import Store
from ari_offload.voice.turn_taker import MAX_QUEUED_TALKS
from testbed.asterisk import TESTBED_ARI, TESTBED_POLICY_FILE

# What the test API offers agents, as the App would with tests/conftest.py's speech models.
TEST_SPEECH = FixedSpeechOffer(voices=("joe", "slow"), codes=("en",))

# Real argon2id, cheap parameters: tests create many customers on a shared 2-core box.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

CURL_SIGNUP = '{"name": "my-agent", "password": "yourpassword"}'
CURL_AGENT = (
    '{"name": "support-agent", "detail": "AI-powered customer support agent", '
    '"webhook": "http://127.0.0.1:9000/ai-webhook"}'
)
CURL_FLOW = (
    '{"name": "support-flow", "actions": [{"type": "ai_talk", "agent_id": "AGENT_ID", '
    '"welcome_message": "Hello! How can I help you today?"}]}'
)


@dataclass
class FakeTelephony:
    """Records every request; ``refuse`` makes originate fail, ``gone`` makes calls not live,
    ``full`` makes talk find the call's talk inbox full."""

    originated: list[dict[str, Any]] = field(default_factory=list)
    hangups: list[str] = field(default_factory=list)
    talks: list[tuple[str, str]] = field(default_factory=list)
    dtmf: list[tuple[str, str]] = field(default_factory=list)
    transfers: list[tuple[str, str]] = field(default_factory=list)
    refuse: str | None = None
    gone: set[str] = field(default_factory=set)
    full: set[str] = field(default_factory=set)

    async def originate(
        self, *, call_id: str, dial: str, flow_id: str, caller_id: str | None
    ) -> None:
        if self.refuse is not None:
            raise TelephonyError(self.refuse)
        self.originated.append(
            {
                "call_id": call_id,
                "dial": dial,
                "flow_id": flow_id,
                "caller_id": caller_id,
            }
        )

    async def hangup(self, call_id: str) -> bool:
        self.hangups.append(call_id)
        return call_id not in self.gone

    async def talk(self, call_id: str, text: str) -> bool:
        if call_id in self.full:
            raise TalkQueueFull(call_id, MAX_QUEUED_TALKS)
        self.talks.append((call_id, text))
        return call_id not in self.gone

    async def send_dtmf(self, call_id: str, digits: str) -> bool:
        if call_id in self.gone:
            return False
        self.dtmf.append((call_id, digits))
        return True

    async def transfer(self, call_id: str, target: str) -> bool:
        if call_id in self.gone:
            return False
        self.transfers.append((call_id, target))
        return True


@dataclass
class ApiEnv:
    base_url: str
    store: Store
    telephony: FakeTelephony
    metrics: Metrics
    app: web.Application

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def signup(self, name: str, password: str) -> str:
        """A new customer's access key token."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                self.url("/v1.0/auth/signup"), json={"name": name, "password": password}
            ) as r,
        ):
            assert r.status == 201, await r.text()
            token: str = (await r.json())["accesskey"]["token"]
            return token


@asynccontextmanager
async def running_api(
    tmp_path: Path,
    *,
    signup_enabled: bool = True,
    policy: Policy | None = None,
    settings: ApiSettings | None = None,
    password_hasher: PasswordHasher = FAST_HASHER,
) -> AsyncIterator[ApiEnv]:
    """The API with the test bed's policy unless the test brings its own.

    Webhooks may not name the test bed's ARI (127.0.0.1:8088) or this API, as in the App.
    """
    settings = settings or ApiSettings(host="127.0.0.1", port=0, signup_enabled=signup_enabled)
    store = await Store.open(
        StoreSettings(data_dir=tmp_path / "data"), password_hasher=password_hasher
    )
    telephony, metrics = FakeTelephony(), Metrics()
    policy = policy or load_policy(TESTBED_POLICY_FILE)
    refused = own_endpoints(TESTBED_ARI.url, settings.host, settings.port)
    app = make_api_app(settings, store, telephony, metrics, policy, refused, TEST_SPEECH)
    runner = web.AppRunner(app, access_log_class=RedactingAccessLogger)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        refused.add((host, port))
        yield ApiEnv(f"http://{host}:{port}", store, telephony, metrics, app)
    finally:
        await runner.cleanup()
        await store.close()
