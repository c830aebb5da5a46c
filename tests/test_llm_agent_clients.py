"""An LLM agent made with the SDK and with the MCP tool, against the real API server."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_offload.sdk.client import ApiError, Client
from tests.api_support import running_api
from tests.mcp_support import mcp_session, tool_result

KEY = "sk-sdk-never-shown-0123456789"
BASE_URL = "https://llm.example/v1"


async def test_the_sdk_creates_changes_and_reads_an_llm_agent(tmp_path: Path) -> None:
    async with (
        running_api(tmp_path) as env,
        await Client.signup(env.base_url, "alice", "password1") as client,
    ):
        agent = await client.agents.create(
            "concierge", kind="llm", base_url=BASE_URL, model="gpt-4o-mini",
            system_prompt="Be brief.", api_key=KEY, temperature=0.3,
        )  # fmt: skip
        assert (agent.kind, agent.webhook, agent.base_url, agent.model) == (
            "llm", None, BASE_URL, "gpt-4o-mini"
        )  # fmt: skip
        assert (agent.has_api_key, agent.temperature, agent.max_tokens) == (True, 0.3, None)
        assert KEY not in repr(agent)
        changed = await client.agents.update(agent.id, model="gpt-4.1-mini", api_key=None)
        assert (changed.model, changed.has_api_key, changed.system_prompt) == (
            "gpt-4.1-mini", False, "Be brief."
        )  # fmt: skip
        assert await client.agents.get(agent.id) == changed
        hook = await client.agents.create("hook", webhook="http://127.0.0.1:9/x")
        assert (hook.kind, hook.model) == ("webhook", None)
        with pytest.raises(ApiError) as refused:
            await client.agents.create("no-model", kind="llm", base_url=BASE_URL)
        assert (refused.value.status, refused.value.field) == (422, "model")


@pytest.mark.timeout(120)
async def test_the_mcp_tool_creates_an_llm_agent(tmp_path: Path) -> None:
    async with running_api(tmp_path) as env:
        token = await env.signup("assistant", "password1")
        async with mcp_session(env.base_url, token, tmp_path / "mcp.log") as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            assert {"kind", "base_url", "model", "system_prompt", "api_key"} <= set(
                tools["create_agent"].input_schema["properties"]
            )
            agent = tool_result(
                await session.call_tool(
                    "create_agent",
                    {
                        "name": "concierge",
                        "kind": "llm",
                        "base_url": BASE_URL,
                        "model": "gpt-4o-mini",
                        "system_prompt": "You answer Acme's phone.",
                        "api_key": KEY,
                    },
                )
            )
        assert (agent["kind"], agent["has_api_key"], agent["webhook"]) == ("llm", True, None)
        assert KEY not in str(agent)
        stored = await env.store.agents.get(agent["id"], customer_id=None)
        assert stored is not None
        assert stored.llm is not None
        assert (stored.llm.base_url, stored.llm.model, stored.llm.api_key) == (
            BASE_URL, "gpt-4o-mini", KEY
        )  # fmt: skip
