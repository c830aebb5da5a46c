"""Agents of kind "llm" in the REST API: their fields in and out, the key never out, and every
bad value refused naming its field (the egress policy's refusals naming the rule too)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ari_offload.api import schemas as s
from tests.api_support import ApiEnv, running_api
from tests.test_api import call

KEY = "sk-proj-never-returned-0123456789"
AGENTS = "/v1.0/agents"
LLM = {
    "name": "concierge",
    "kind": "llm",
    "base_url": "https://llm.example/v1",
    "model": "gpt-4o-mini",
    "system_prompt": "You are Acme's concierge.\nKeep answers to one sentence.",
    "api_key": KEY,
}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with running_api(tmp_path) as e:
        yield e


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def token(env: ApiEnv) -> str:
    return await env.signup("alice", "password1")


async def test_an_llm_agent_is_created_read_changed_and_its_key_never_returned(
    env: ApiEnv, http: aiohttp.ClientSession, token: str
) -> None:
    status, agent = await call(
        http, "POST", env.url(AGENTS), token, {**LLM, "temperature": 0.4, "max_tokens": 200},
        s.AGENT,
    )  # fmt: skip
    assert status == 201, agent
    assert agent["kind"] == "llm"
    assert agent["webhook"] is None
    assert (agent["base_url"], agent["model"]) == (LLM["base_url"], LLM["model"])
    assert agent["system_prompt"] == LLM["system_prompt"]
    assert (agent["temperature"], agent["max_tokens"]) == (0.4, 200)
    assert agent["has_api_key"] is True
    assert "api_key" not in agent
    one = env.url(f"{AGENTS}/{agent['id']}")
    assert (await call(http, "GET", one, token, spec=s.AGENT))[1] == agent

    status, changed = await call(
        http, "PATCH", one, token,
        {"model": "llama3.1:8b", "temperature": None, "api_key": None, "kind": "llm"}, s.AGENT,
    )  # fmt: skip
    assert status == 200, changed
    assert (changed["model"], changed["temperature"], changed["max_tokens"]) == (
        "llama3.1:8b", None, 200
    )  # fmt: skip
    assert changed["has_api_key"] is False
    status, changed = await call(http, "PATCH", one, token, {"api_key": KEY + "2"}, s.AGENT)
    assert changed["has_api_key"] is True

    status, hook = await call(
        http, "POST", env.url(AGENTS), token, {"name": "hook", "webhook": "http://127.0.0.1:9/x"},
        s.AGENT,
    )  # fmt: skip
    assert status == 201
    assert (hook["kind"], hook["base_url"], hook["model"], hook["has_api_key"]) == (
        "webhook", None, None, False
    )  # fmt: skip
    status, listed = await call(http, "GET", env.url(AGENTS), token, spec=s.AGENT_LIST)
    assert [a["kind"] for a in listed["agents"]] == ["llm", "webhook"]
    async with http.get(env.url(AGENTS), headers={"Authorization": f"Bearer {token}"}) as r:
        assert KEY not in await r.text()


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"base_url": "not a url"}, "base_url", "must match"),
        ({"base_url": "https://user:pw@llm.example/v1"}, "base_url", "put the key in api_key"),
        ({"base_url": "https://llm.example:99999/v1"}, "base_url", "not a valid URL"),
        ({"model": ""}, "model", "must not be empty"),
        ({"model": " gpt-4o"}, "model", "must match"),
        ({"system_prompt": "x" * 8001}, "system_prompt", "at most 8000 characters"),
        ({"temperature": 2.5}, "temperature", "must be at most 2"),
        ({"temperature": -0.1}, "temperature", "must be at least 0"),
        ({"max_tokens": 0}, "max_tokens", "between 1 and 1000"),
        ({"max_tokens": 100_000}, "max_tokens", "between 1 and 1000"),
        ({"api_key": "sk-line\nbreak"}, "api_key", "must match"),
        ({"webhook": "http://127.0.0.1:9/x"}, "webhook", "an llm agent has no webhook"),
        ({"secret": "too-short"}, "secret", "at least 16 characters"),
        ({"kind": "gpt"}, "kind", "expected one of webhook, llm"),
    ],
)
async def test_bad_llm_fields_are_refused_naming_the_field(
    env: ApiEnv, http: aiohttp.ClientSession, token: str, change: dict[str, Any], field: str,
    says: str,
) -> None:  # fmt: skip
    status, err = await call(http, "POST", env.url(AGENTS), token, {**LLM, **change})
    assert (status, err["error"]["field"]) == (422, field), err
    assert says in err["error"]["message"]
    assert "sk-line" not in err["error"]["message"]  # a key is never echoed, even a bad one
    status, agent = await call(http, "POST", env.url(AGENTS), token, LLM)
    assert status == 201
    if field != "kind":  # a kind given in a change is the next test's
        one = env.url(f"{AGENTS}/{agent['id']}")
        status, err = await call(http, "PATCH", one, token, change)
        assert (status, err["error"]["field"]) == (422, field), err
    assert [a["name"] for a in (await call(http, "GET", env.url(AGENTS), token))[1]["agents"]] == [
        "concierge"
    ]  # nothing else was stored


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"kind": "llm", "model": "m"}, "base_url", "required for an llm agent"),
        ({"kind": "llm", "base_url": "https://llm.example/v1"}, "model", "required for an llm"),
        ({}, "webhook", "required for a webhook agent"),
        ({"webhook": "http://127.0.0.1:9/x", "model": "m"}, "model", "a webhook agent has no"),
        ({"webhook": "http://127.0.0.1:9/x", "api_key": KEY}, "api_key", "a webhook agent has"),
    ],
)
async def test_each_kind_takes_its_own_fields(
    env: ApiEnv, http: aiohttp.ClientSession, token: str, body: dict[str, Any], field: str,
    says: str,
) -> None:  # fmt: skip
    status, err = await call(http, "POST", env.url(AGENTS), token, {"name": "a", **body})
    assert (status, err["error"]["field"]) == (422, field), err
    assert says in err["error"]["message"]


async def test_a_kind_never_changes(env: ApiEnv, http: aiohttp.ClientSession, token: str) -> None:
    hook = {"name": "hook", "webhook": "http://127.0.0.1:9/x"}
    status, agent = await call(http, "POST", env.url(AGENTS), token, hook)
    one = env.url(f"{AGENTS}/{agent['id']}")
    for change, field in [
        ({"kind": "llm", "base_url": "https://llm.example/v1", "model": "m"}, "kind"),
        ({"base_url": "https://llm.example/v1"}, "base_url"),
    ]:
        status, err = await call(http, "PATCH", one, token, change)
        assert (status, err["error"]["field"]) == (422, field), err
    status, err = await call(http, "PATCH", one, token, {"kind": "llm"})
    assert "kind cannot change (this one is webhook)" in err["error"]["message"]
    status, same = await call(http, "PATCH", one, token, {"kind": "webhook", "name": "h2"})
    assert (status, same["name"], same["kind"]) == (200, "h2", "webhook")


@pytest.mark.parametrize(
    ("base_url", "rule"),
    [
        ("http://169.254.169.254/v1", "egress.allow"),  # the cloud metadata address
        ("http://10.0.0.7:8000/v1", "egress.allow"),
        ("http://127.0.0.1:8088/v1", "egress.deny_ports"),  # the test bed's ARI port
    ],
)
async def test_a_base_url_the_egress_policy_refuses_is_refused_naming_the_field_and_rule(
    env: ApiEnv, http: aiohttp.ClientSession, token: str, base_url: str, rule: str
) -> None:
    status, err = await call(http, "POST", env.url(AGENTS), token, {**LLM, "base_url": base_url})
    # As for a webhook URL: a policy refusal (403), naming the field and the rule.
    assert (status, err["error"]["code"], err["error"]["field"]) == (
        403, "policy_refused", "base_url"
    )  # fmt: skip
    assert rule in err["error"]["message"]
    status, agent = await call(http, "POST", env.url(AGENTS), token, LLM)
    status, err = await call(
        http, "PATCH", env.url(f"{AGENTS}/{agent['id']}"), token, {"base_url": base_url}
    )
    assert (status, err["error"]["field"]) == (403, "base_url")


async def test_the_openapi_document_shows_the_kind_and_hides_the_key(
    env: ApiEnv, http: aiohttp.ClientSession
) -> None:
    async with http.get(env.url("/v1.0/openapi.json")) as r:
        schemas = (await r.json())["components"]["schemas"]
    create = schemas["AgentCreate"]["properties"]
    assert create["kind"]["enum"] == ["webhook", "llm"]
    assert {"base_url", "model", "system_prompt", "api_key", "temperature", "max_tokens"} <= set(
        create
    )
    assert create["temperature"]["maximum"] == 2.0
    agent = schemas["Agent"]["properties"]
    assert "has_api_key" in agent
    assert "api_key" not in agent


def _curl_body(doc: str) -> str:
    """The JSON of the documented curl that creates an llm agent."""
    text = (Path(__file__).resolve().parents[1] / doc).read_text()
    found: list[str] = re.findall(r"-d '(\{[^']*\"kind\": \"llm\"[^']*\})'", text)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("doc", ["README.md", "docs/llm-agent.md"])
async def test_the_documented_curl_creates_an_llm_agent(
    env: ApiEnv, http: aiohttp.ClientSession, token: str, doc: str
) -> None:
    body = _curl_body(doc)
    status, agent = await call(http, "POST", env.url(AGENTS), token, json.loads(body), s.AGENT)
    assert status == 201, agent
    assert (agent["kind"], agent["model"], agent["has_api_key"]) == ("llm", "gpt-4o-mini", True)
