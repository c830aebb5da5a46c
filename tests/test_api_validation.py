"""Every field of every body, wrong in every way: a 4xx naming the field, never a 500.

The cases are derived from the route table, so a new body field is covered automatically.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ari_offload.api.app import all_routes
from ari_offload.api.routing import Route
from ari_offload.schema import Custom, Int, Spec, Str
from tests.api_support import ApiEnv, running_api

# A valid body per operation; invalid variants are derived from it field by field.
VALID: dict[str, dict[str, Any]] = {
    "signup": {"name": "alice", "password": "password1"},
    "login": {"name": "alice", "password": "password1"},
    "createAccessKey": {"name": "ci", "expires_in_s": 60},
    "createAgent": {
        "name": "a",
        "detail": "d",
        "webhook": "http://127.0.0.1:9/x",
        "secret": "a-secret-of-16-chars",
        "voice": "joe",
        "language": "en",
    },
    "updateAgent": {
        "name": "a",
        "detail": "d",
        "webhook": "http://127.0.0.1:9/x",
        "secret": "a-secret-of-16-chars",
        "voice": "joe",
        "language": "en",
    },
    "createFlow": {"name": "f", "actions": [{"type": "hangup"}]},
    "updateFlow": {"name": "f", "actions": [{"type": "hangup"}]},
    "createCall": {
        "destination": "PJSIP/alice",
        "flow_id": "x",
        "caller_id": "1000",
        "message": "hello",
    },
    "talkCall": {"text": "hello"},
    "sendDtmf": {"digits": "1w2#"},
    "transferCall": {"target": "desk"},
    "adminCreateTenant": {"name": "tenant", "password": "password1"},
    "adminSetTenantRules": {
        "routes": ["testbed"],
        "caller_ids": ["_1XXX"],
        "concurrent_calls": 2,
        "calls_per_minute": 5,
        "max_call_duration_s": 60,
    },
    "adminAssignNumber": {"tenant_id": "t", "flow_id": "f"},
}
BODY_ROUTES = [r for r in all_routes() if r.body is not None]


def _wrong_type(spec: Spec) -> object:
    return 12345 if isinstance(spec, Str) else "not-a-number" if isinstance(spec, Int) else 7


def _cases(route: Route) -> list[tuple[str, dict[str, Any], str]]:
    """(what, body, field expected in the error)."""
    assert route.body is not None
    valid = VALID[route.operation_id]
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("unknown field", {**valid, "bogus": 1}, "bogus"),
    ]
    for name, spec in route.body.fields.items():
        cases.append((f"{name} wrong type", {**valid, name: _wrong_type(spec)}, name))
        if not isinstance(spec, Custom):  # actions is a list already
            cases.append((f"{name} list", {**valid, name: [valid.get(name)]}, name))
        if not spec.nullable:
            cases.append((f"{name} null", {**valid, name: None}, name))
        if name in route.body.required:
            cases.append((f"{name} missing", {k: v for k, v in valid.items() if k != name}, name))
        if isinstance(spec, Str):
            cases.append((f"{name} too long", {**valid, name: "a" * (spec.max_length + 1)}, name))
            cases.append((f"{name} NUL", {**valid, name: "a\x00b"}, name))
            if spec.min_length:
                cases.append((f"{name} empty", {**valid, name: ""}, name))
        if isinstance(spec, Int):
            cases.append((f"{name} too big", {**valid, name: spec.maximum + 1}, name))
            cases.append((f"{name} bool", {**valid, name: True}, name))
        if isinstance(spec, Custom):
            cases.append((f"{name} empty list", {**valid, name: []}, name))
    assert {c[2] for c in cases} >= set(route.body.fields)
    return cases


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with running_api(tmp_path) as e:
        yield e


@pytest.fixture
async def token(env: ApiEnv) -> str:
    return await env.signup("validator", "password1")


def _url(env: ApiEnv, route: Route) -> str:
    path = route.path
    for name in route.path_params:
        value = "9001" if name == "number" else "some-id"
        path = path.replace(f"{{{name}}}", value)  # bodies are checked before lookups
    return env.url(path)


@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: r.operation_id)
async def test_every_bad_field_is_a_4xx_naming_it(env: ApiEnv, token: str, route: Route) -> None:
    problems = []
    if route.admin:
        token = (await env.store.admin_keys.create("validator")).token
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        for what, body, field in _cases(route):
            async with http.request(route.method, _url(env, route), json=body) as r:
                data = await r.json()
                err = data.get("error", {})
                named = str(err.get("field"))
                # A list's bad item may be named exactly: routes[0] is part of routes.
                names_it = named == field or named.startswith(f"{field}[")
                if r.status != 422 or not names_it or field not in err["message"]:
                    problems.append((what, r.status, data))
    assert problems == []


@pytest.mark.parametrize(
    ("actions", "field"),
    [
        ([{"type": "hangup"}, {"type": "talk", "text": 5}], "actions[1].text"),
        ([{"type": "pause", "seconds": 61}], "actions[0].seconds"),
        ([{"type": "ai_talk"}], "actions[0].agent_id"),
        (
            [{"type": "ai_talk", "agent_id": "a", "welcome_message": "x" * 2001}],
            "actions[0].welcome_message",
        ),
        ([{"type": "transfer", "endpoint": "PJSIP/a", "extension": "1"}], "actions[0].target"),
        ([{"type": "transfer", "target": "x", "extension": "1"}], "actions[0].extension"),
        ([{"type": "talk", "text": "hi", "voice": "x"}], "actions[0].voice"),
        ([{"type": "hangup"}] * 51, "actions"),
        ({"type": "hangup"}, "actions"),
    ],
)
async def test_flow_action_errors_name_the_nested_field(
    env: ApiEnv, token: str, actions: object, field: str
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            env.url("/v1.0/flows"),
            json={"name": "f", "actions": actions},
            headers={"Authorization": f"Bearer {token}"},
        ) as r,
    ):
        assert r.status == 422
        assert (await r.json())["error"]["field"] == field


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b'{"name": "a",', {"Content-Type": "application/json"}, 400, "invalid_json"),
        (b'{"name": NaN}', {"Content-Type": "application/json"}, 400, "invalid_json"),
        (b"\xff\xfe{}", {"Content-Type": "application/json"}, 400, "invalid_json"),
        (
            b"[" * 100_000 + b"]" * 100_000,
            {"Content-Type": "application/json"},
            400,
            "invalid_json",
        ),
        (b"", {"Content-Type": "application/json"}, 400, "missing_body"),
        (b"[]", {"Content-Type": "application/json"}, 422, "validation_error"),
        (b'"text"', {"Content-Type": "application/json"}, 422, "validation_error"),
        (b'{"name": "a"}', {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        (b'{"name": "a"}', {}, 415, "unsupported_media_type"),
        (
            b'{"detail": "' + b"x" * 1_100_000 + b'"}',
            {"Content-Type": "application/json"},
            413,
            "payload_too_large",
        ),
    ],
)
async def test_malformed_bodies(
    env: ApiEnv, token: str, body: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            env.url("/v1.0/agents"),
            data=body,
            headers={**headers, "Authorization": f"Bearer {token}"},
        ) as r,
    ):
        assert r.status == status
        assert (await r.json())["error"]["code"] == code


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=bogus", "status"),
        ("status=active,bogus", "status"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=abc", "limit"),
        ("limit=%201", "limit"),
        ("limit=1&limit=2", "limit"),
        ("stauts=active", "stauts"),
        ("status=", "status"),
        ("status=active,", "status"),
    ],
)
async def test_bad_query_parameters(env: ApiEnv, token: str, query: str, field: str) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            env.url(f"/v1.0/calls?{query}"), headers={"Authorization": f"Bearer {token}"}
        ) as r,
    ):
        assert r.status == 422
        assert (await r.json())["error"]["field"].startswith(field)  # status[1] is exact


@pytest.mark.parametrize("bad_id", ["a" * 65, "%00", "%ED%A0%80", "x%20y", "..%2F..%2Fetc"])
async def test_malformed_path_ids_are_404(env: ApiEnv, token: str, bad_id: str) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            env.url(f"/v1.0/agents/{bad_id}"), headers={"Authorization": f"Bearer {token}"}
        ) as r,
    ):
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("webhook", "ok"),
    [
        ("http://127.0.0.1:9000/ai-webhook", True),
        ("https://agent.example/x?y=1", True),
        ("ftp://agent.example/x", False),
        ("http://", False),
        ("http://host:99999/", False),
        ("http://[::1/x", False),
        ("http://a b/", False),
        ("http://a/\n", False),
    ],
)
async def test_webhook_urls(env: ApiEnv, token: str, webhook: str, ok: bool) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            env.url("/v1.0/agents"),
            json={"name": "a", "webhook": webhook},
            headers={"Authorization": f"Bearer {token}"},
        ) as r,
    ):
        assert r.status == (201 if ok else 422)
        if not ok:
            assert (await r.json())["error"]["field"] == "webhook"
