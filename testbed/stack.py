"""The whole product running locally, set up the way a new user would, for the demo and bench.

Test-bed Asterisk + the built-in sample agent on a free port + ari-offload (store in a temp dir,
speech models, ARI, REST API) + an access key, an agent and a flow created through the SDK.
A SIPp caller then dials ``8<flow id>`` (the test bed's dialplan runs a flow by id).
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ari_offload.agent.contract import WebhookRequest
from ari_offload.agent.sample import RECEIVED_KEY, make_sample_agent_app
from ari_offload.app import App
from ari_offload.config import ApiSettings, PolicySettings, Settings, StoreSettings
from ari_offload.sdk.client import Client
from testbed.asterisk import TESTBED_ARI, TESTBED_POLICY_FILE, Testbed

FLOW_NAME = "demo-flow"


@dataclass
class LocalProduct:
    app: App
    client: Client  # signed up, owns the agent and the flow
    agent_id: str
    flow_id: str
    webhook: str
    webhook_requests: list[WebhookRequest]

    @property
    def service(self) -> str:
        """What a caller dials on the test bed to reach the flow."""
        return f"8{self.flow_id}"


@contextlib.asynccontextmanager
async def local_product(welcome: str | None) -> AsyncIterator[LocalProduct]:
    await Testbed().start()
    agent_app = make_sample_agent_app()
    agent_runner = web.AppRunner(agent_app, access_log=None)
    await agent_runner.setup()
    await web.TCPSite(agent_runner, "127.0.0.1", 0).start()
    webhook = f"http://127.0.0.1:{agent_runner.addresses[0][1]}/ai-webhook"
    settings = Settings(
        ari=TESTBED_ARI,
        api=ApiSettings(port=_free_port()),
        store=StoreSettings(data_dir=Path(tempfile.mkdtemp(prefix="ari-offload-local-"))),
        policy=PolicySettings(file=TESTBED_POLICY_FILE),
    )
    app = await App.start(settings)
    try:
        await app.service.wait_connected()
        async with await Client.signup(app.api_url, "local", "local-password") as client:
            agent = await client.agents.create(
                name="sample-agent", detail="the built-in rule-based sample agent",
                webhook=webhook,
            )  # fmt: skip
            action: dict[str, object] = {"type": "ai_talk", "agent_id": agent.id}
            if welcome:
                action["welcome_message"] = welcome
            flow = await client.flows.create(FLOW_NAME, [action])
            yield LocalProduct(app, client, agent.id, flow.id, webhook, agent_app[RECEIVED_KEY])
    finally:
        await app.stop()
        await agent_runner.cleanup()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
