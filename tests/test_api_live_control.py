"""`POST /calls/{id}/dtmf` and `/transfer` on a live call, and `POST /calls` with a message:
status codes, the field or policy rule named, tenant isolation (a real API and store, the
fake telephony of api_support; tests/integration/test_live_control.py has the real calls)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ari_offload.flows.actions import Hangup, SayMessage, Talk
from ari_offload.flows.actions.base import MAX_TEXT_LENGTH
from ari_offload.sdk.client import Client
from ari_offload.store import Call, CallStatus, Direction
from tests.api_support import ApiEnv, running_api


@dataclass
class Tenant:
    token: str
    customer_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def _tenant(env: ApiEnv, name: str) -> Tenant:
    token = await env.signup(name, "password1")
    key = await env.store.keys.authenticate(token)
    assert key is not None
    return Tenant(token, key.customer_id)


async def _call(env: ApiEnv, tenant: Tenant, status: CallStatus = CallStatus.ACTIVE) -> Call:
    call = await env.store.calls.create(tenant.customer_id, direction=Direction.OUT, flow_id=None)
    if status != CallStatus.RINGING:
        await env.store.calls.set_status(call.id, status)
    return call


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with running_api(tmp_path) as e:
        yield e


async def _post(env: ApiEnv, path: str, body: Any, tenant: Tenant) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(env.url(f"/v1.0{path}"), json=body, headers=tenant.auth) as r,
    ):
        return r.status, await r.json()


async def test_dtmf_reaches_the_live_call(env: ApiEnv) -> None:
    alice = await _tenant(env, "alice")
    call = await _call(env, alice)

    status, body = await _post(env, f"/calls/{call.id}/dtmf", {"digits": "1w2#*9"}, alice)

    assert status == 202, body
    assert body["id"] == call.id
    assert env.telephony.dtmf == [(call.id, "1w2#*9")]


@pytest.mark.parametrize(
    "body",
    [{}, {"digits": ""}, {"digits": "12x"}, {"digits": "1" * 33}, {"digits": 12}],
    ids=["missing", "empty", "not-a-key", "too-long", "not-a-string"],
)
async def test_dtmf_refuses_bad_digits_naming_the_field(env: ApiEnv, body: Any) -> None:
    alice = await _tenant(env, "alice")
    call = await _call(env, alice)

    status, answer = await _post(env, f"/calls/{call.id}/dtmf", body, alice)

    assert status == 422, answer
    assert answer["error"]["field"] == "digits"
    assert env.telephony.dtmf == []


async def test_transfer_to_a_policy_target(env: ApiEnv) -> None:
    alice = await _tenant(env, "alice")
    call = await _call(env, alice)

    status, body = await _post(env, f"/calls/{call.id}/transfer", {"target": "desk"}, alice)

    assert status == 202, body
    assert body["id"] == call.id
    assert env.telephony.transfers == [(call.id, "desk")]


async def test_transfer_refuses_a_target_the_policy_does_not_name(env: ApiEnv) -> None:
    alice = await _tenant(env, "alice")
    call = await _call(env, alice)

    status, body = await _post(env, f"/calls/{call.id}/transfer", {"target": "sales"}, alice)

    assert status == 403, body
    assert body["error"]["code"] == "policy_refused"
    assert body["error"]["field"] == "target"
    assert "policy rule transfer" in body["error"]["message"]
    assert env.telephony.transfers == []


@pytest.mark.parametrize(
    "target", ["PJSIP/sipp-uas", "1000@from-internal", "Local/100@x", "+15551234567", ""]
)
async def test_transfer_refuses_dial_strings_and_numbers(env: ApiEnv, target: str) -> None:
    alice = await _tenant(env, "alice")
    call = await _call(env, alice)

    status, body = await _post(env, f"/calls/{call.id}/transfer", {"target": target}, alice)

    assert status == 422, body
    assert body["error"]["field"] == "target"
    assert env.telephony.transfers == []


@pytest.mark.parametrize(
    ("action", "body"), [("dtmf", {"digits": "1"}), ("transfer", {"target": "desk"})]
)
async def test_another_tenants_call_is_not_found(env: ApiEnv, action: str, body: Any) -> None:
    alice, mallory = await _tenant(env, "alice"), await _tenant(env, "mallory")
    call = await _call(env, alice)

    status, answer = await _post(env, f"/calls/{call.id}/{action}", body, mallory)

    assert status == 404, answer
    assert answer["error"]["code"] == "not_found"
    assert (env.telephony.dtmf, env.telephony.transfers) == ([], [])


@pytest.mark.parametrize(
    ("action", "body"), [("dtmf", {"digits": "1"}), ("transfer", {"target": "desk"})]
)
@pytest.mark.parametrize("status", [CallStatus.RINGING, CallStatus.ENDED, CallStatus.FAILED])
async def test_a_call_not_active_is_409(
    env: ApiEnv, action: str, body: Any, status: CallStatus
) -> None:
    alice = await _tenant(env, "alice")
    call = await _call(env, alice, status)

    code, answer = await _post(env, f"/calls/{call.id}/{action}", body, alice)

    assert code == 409, answer
    assert answer["error"]["code"] == "call_not_active"
    assert status.value in answer["error"]["message"]
    assert (env.telephony.dtmf, env.telephony.transfers) == ([], [])


@pytest.mark.parametrize(
    ("action", "body"), [("dtmf", {"digits": "1"}), ("transfer", {"target": "desk"})]
)
async def test_a_call_active_in_the_store_but_not_here_is_409(
    env: ApiEnv, action: str, body: Any
) -> None:
    alice = await _tenant(env, "alice")
    call = await _call(env, alice)
    env.telephony.gone.add(call.id)  # e.g. its caller left a moment ago

    status, answer = await _post(env, f"/calls/{call.id}/{action}", body, alice)

    assert status == 409, answer
    assert answer["error"]["code"] == "call_not_active"


async def test_one_flow_says_each_calls_own_message(env: ApiEnv) -> None:
    alice = await _tenant(env, "alice")
    async with Client(env.base_url, alice.token) as client:
        flow = await client.flows.create("say", [SayMessage(), Hangup()])
        first = await client.calls.create("1001", flow.id, message="Your parcel arrives Monday")
        second = await client.calls.create("1002", flow.id, message="Your table is booked")
        plain = await client.calls.create("1003", flow.id)
        again = await client.calls.get(first.id)

    assert [o["flow_id"] for o in env.telephony.originated] == [flow.id] * 3
    assert (first.message, second.message, plain.message) == (
        "Your parcel arrives Monday",
        "Your table is booked",
        None,
    )
    assert again.message == "Your parcel arrives Monday", "the second call changed the first's"
    stored = await env.store.calls.get(first.id, customer_id=None)
    assert stored is not None
    assert stored.message == "Your parcel arrives Monday"


@pytest.mark.parametrize(
    ("message", "problem"),
    [("", "must not be empty"), ("x" * (MAX_TEXT_LENGTH + 1), "at most"), (7, "string")],
)
async def test_a_bad_message_is_refused_naming_the_field(
    env: ApiEnv, message: Any, problem: str
) -> None:
    alice = await _tenant(env, "alice")
    async with Client(env.base_url, alice.token) as client:
        flow = await client.flows.create("say", [SayMessage(), Hangup()])
    body = {"destination": "1001", "flow_id": flow.id, "message": message}

    status, answer = await _post(env, "/calls", body, alice)

    assert status == 422, answer
    assert answer["error"]["field"] == "message"
    assert problem in answer["error"]["message"]
    assert env.telephony.originated == []


async def test_a_message_for_a_flow_that_cannot_say_it_is_refused(env: ApiEnv) -> None:
    alice = await _tenant(env, "alice")
    async with Client(env.base_url, alice.token) as client:
        flow = await client.flows.create("fixed", [Talk("Hello"), Hangup()])
    body = {"destination": "1001", "flow_id": flow.id, "message": "Hello there"}

    status, answer = await _post(env, "/calls", body, alice)

    assert status == 422, answer
    assert answer["error"]["field"] == "message"
    assert "say_message" in answer["error"]["message"]
    assert env.telephony.originated == []
    assert await env.store.calls.list(alice.customer_id) == [], "no call was recorded"


async def test_the_sdk_sends_dtmf_and_transfers(env: ApiEnv) -> None:
    alice = await _tenant(env, "alice")
    call = await _call(env, alice)
    async with Client(env.base_url, alice.token) as client:
        sent = await client.calls.send_dtmf(call.id, "42#")
        moved = await client.calls.transfer(call.id, "operator")

    assert (sent.id, moved.id) == (call.id, call.id)
    assert env.telephony.dtmf == [(call.id, "42#")]
    assert env.telephony.transfers == [(call.id, "operator")]
