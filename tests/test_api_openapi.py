"""The served OpenAPI document matches the routes, and schemathesis finds no server error."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ari_offload.api.app import all_routes
from ari_offload.flows.actions import AiTalk
from ari_offload.store import CallStatus, Direction, Role
from tests.api_support import ApiEnv, running_api

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
FUZZ_EXAMPLES = 25  # per operation; the tenant run takes ~25 s on a 2-core box
FUZZ_TIMEOUT_S = 240


@pytest.fixture
def fuzz_examples() -> int:
    """Examples per operation (test_api_postgres.py fuzzes the same API on PostgreSQL with
    fewer: it is there for the store, the API layer is fuzzed here)."""
    return FUZZ_EXAMPLES


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with running_api(tmp_path) as e:
        yield e


async def _document(env: ApiEnv) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(env.url("/v1.0/openapi.json")) as r:
        assert r.status == 200
        assert r.content_type == "application/json"
        doc: dict[str, Any] = await r.json()
        return doc


async def test_every_route_is_documented_and_vice_versa(env: ApiEnv) -> None:
    doc = await _document(env)
    assert doc["openapi"] == "3.1.0"
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    served = {
        (r.method, r.resource.canonical) for r in env.app.router.routes() if r.resource is not None
    }
    # The console's files are pages, not API operations (api/routes_console.py).
    console = {(m, p) for m, p in served if p == "/console" or p.startswith("/console/")}
    assert console == {("GET", "/console"), ("GET", "/console/{name}"), ("HEAD", "/console"),
                       ("HEAD", "/console/{name}")}  # fmt: skip
    served -= console
    assert documented == served
    assert len(served) == len(all_routes())


async def test_document_is_self_consistent(env: ApiEnv) -> None:
    doc = await _document(env)
    text = json.dumps(doc)
    for ref in set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', text)):
        assert ref in doc["components"]["schemas"], ref
    op_ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(op_ids) == len(set(op_ids))
    for path, ops in doc["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for op in ops.values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (path, op["operationId"])
            assert "default" in op["responses"]
    signup = doc["paths"]["/v1.0/auth/signup"]["post"]
    assert signup["security"] == []
    assert doc["paths"]["/v1.0/agents"]["post"]["security"] == [{"bearer": []}, {"accesskey": []}]


async def test_document_bodies_reject_unknown_fields(env: ApiEnv) -> None:
    doc = await _document(env)
    schemas = doc["components"]["schemas"]
    for name in (
        "Credentials",
        "AgentCreate",
        "AgentUpdate",
        "FlowCreate",
        "FlowUpdate",
        "CallCreate",
        "TalkRequest",
        "DtmfRequest",
        "TransferRequest",
        "AccessKeyCreate",
    ):
        assert schemas[name]["additionalProperties"] is False, name


async def _seed(env: ApiEnv) -> tuple[str, dict[str, list[str]]]:
    """A fuzzing customer with real rows, so ids in paths also hit the found-branch."""
    token = await env.signup("fuzzer", "fuzz-password")
    key = await env.store.keys.authenticate(token)
    assert key is not None
    cid = key.customer_id
    agent = await env.store.agents.create(cid, name="a", webhook="http://127.0.0.1:9/x")
    flow = await env.store.flows.create(cid, name="f", actions=[AiTalk(agent.id, "Hi")])
    live = await env.store.calls.create(cid, direction=Direction.IN, flow_id=flow.id)
    await env.store.calls.set_status(live.id, CallStatus.ACTIVE)
    await env.store.calls.add_transcript(live.id, Role.CALLER, "hello")
    await env.store.calls.add_turn(live.id, turn=1, stt_ms=600.0, total_ms=1200.0)
    await env.store.numbers.assign("9001", customer_id=cid, flow_id=flow.id)
    return token, {
        "agent_id": [agent.id],
        "flow_id": [flow.id],
        "call_id": [live.id],
        "tenant_id": [cid],
        "number": ["9001"],
    }


def _config(ids: dict[str, list[str]]) -> str:
    lines = []
    for name, values in ids.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}' for name in ids]
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(FUZZ_TIMEOUT_S + 30)
@pytest.mark.parametrize("who", ["tenant", "operator"])
async def test_schemathesis_finds_no_server_error(
    env: ApiEnv, tmp_path: Path, caplog: pytest.LogCaptureFixture, who: str, fuzz_examples: int
) -> None:
    """A tenant's key on the tenant routes; the operator's admin key on the admin routes."""
    caplog.set_level(logging.ERROR, "ari_offload")
    token, ids = await _seed(env)
    admin_only = "--include-path-regex" if who == "operator" else "--exclude-path-regex"
    # The tenant run leaves out the event stream too: it never ends, by design (its own
    # tests in test_api_events.py cover its errors).
    admin_only_regex = "^/v1.0/admin/" if who == "operator" else "^/v1.0/(admin/|events$)"
    if who == "operator":
        token = (await env.store.admin_keys.create("fuzzer")).token
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(ids))
    proc = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        env.url("/v1.0/openapi.json"),
        "-H",
        f"Authorization: Bearer {token}",
        admin_only,
        admin_only_regex,
        # positive_data_acceptance is left out: a schema-valid id that names no agent or flow
        # is rightly a 422, which no schema can express.
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--phases",
        "coverage,fuzzing",
        "--max-examples",
        str(fuzz_examples),
        "--seed",
        "4",
        "--workers",
        "1",
        "--generation-database",
        "none",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), FUZZ_TIMEOUT_S)
    report = output.decode(errors="replace")
    assert proc.returncode == 0, report[-6000:]
    assert "unhandled error" not in caplog.text
    assert "store failure" not in caplog.text
    print(report)  # the summary is worth seeing with -s
