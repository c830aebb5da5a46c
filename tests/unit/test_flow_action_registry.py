"""A new flow action is one module plus one registry line.

A throwaway action, declared and registered here without touching the package, parses with
exact error paths, serialises back, appears in the JSON Schema and in the MCP instructions,
and runs through the executor, whose handler decides whether the flow goes on. The agent it
names is held to the same ownership rules as ai_talk's, and its policy check runs in the API.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import aiohttp
import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev extras
import pytest

from ari_offload.ari.call import ActiveCall
from ari_offload.ari.events import Channel
from ari_offload.ari.rest import AriRest
from ari_offload.errors import PolicyRefused, ValidationError
from ari_offload.flows.actions import KINDS, Action, ActionKind, Hangup, register
from ari_offload.flows.executor import FlowContext, run_actions
from ari_offload.flows.model import action_json_schema, action_to_json, parse_actions
from ari_offload.policy import Policy
from ari_offload.schema import Int, Str
from ari_offload.sdk.mcp_server import instructions
from tests.api_support import running_api
from tests.unit.fake_media import FakeMediaPort

# --- what a new action module would hold ------------------------------------------------------


@dataclass(frozen=True)
class Beep(Action):
    """Beep a few times (the tone is decoration)."""

    times: int
    tone: str | None = None
    agent_id: str | None = None  # the agent told of the beeps (decoration too)
    type: ClassVar[str] = "beep"


BEEPED: list[tuple[str, int]] = []


async def run_beep(call: ActiveCall, action: Beep, ctx: FlowContext) -> bool:
    BEEPED.append((call.call_id, action.times))
    return action.times < 3  # three beeps end the flow


def refuse_sirens(action: Beep, policy: Policy) -> None:
    if action.tone == "siren":
        raise PolicyRefused("beep.tones", "sirens are not allowed")


KIND = ActionKind(
    Beep,
    "Beep a few times.",
    run_beep,
    {
        "times": Int(1, 5),
        "tone": Str(8, 1, nullable=True, description="a tone's name"),
        "agent_id": Str(64, 1, nullable=True, description="an agent's id"),
    },
    required=("times",),
    agent_fields=("agent_id",),
    policy_checks={"tone": refuse_sirens},
)

# ----------------------------------------------------------------------------------------------


@pytest.fixture
def beep() -> Iterator[None]:
    register(KIND)  # the "one registry line"
    BEEPED.clear()
    yield
    del KINDS["beep"]


def make_call() -> ActiveCall:
    # No ARI behind it and in-memory media: the beep handler only reads call_id.
    channel = Channel(id="1795476849.0", name="PJSIP/test-caller-00000000", state="Up")
    return ActiveCall("call-1", channel, {}, "in", cast(AriRest, None), FakeMediaPort())


@pytest.mark.usefixtures("beep")
def test_a_registered_action_parses_and_round_trips() -> None:
    raw = [{"type": "beep", "times": 2}, {"type": "beep", "times": 1, "tone": "a4"}]
    actions = parse_actions(raw)
    assert actions == [Beep(2), Beep(1, "a4")]
    assert [action_to_json(a) for a in actions] == raw


@pytest.mark.usefixtures("beep")
@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ({"type": "beep"}, "actions[0].times", "required"),
        ({"type": "beep", "times": 9}, "actions[0].times", "must be between 1 and 5"),
        ({"type": "beep", "times": 1, "tone": ""}, "actions[0].tone", "must not be empty"),
        ({"type": "beep", "times": 1, "loud": 1}, "actions[0].loud", "unknown field for action"),
        ({"type": "boop"}, "actions[0].type", "say_message, record, beep"),
    ],
)
def test_its_errors_name_the_field(raw: object, field: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_actions([raw])
    assert err.value.field == field
    assert message in err.value.message


@pytest.mark.usefixtures("beep")
def test_it_is_in_the_json_schema_and_the_mcp_text() -> None:
    validator = jsonschema.Draft202012Validator(action_json_schema())
    assert validator.is_valid({"type": "beep", "times": 2, "tone": None})
    assert not validator.is_valid({"type": "beep", "times": 6})
    assert not validator.is_valid({"type": "beep"})
    assert "- beep {times, tone?, agent_id?}: Beep a few times." in instructions()


@pytest.mark.usefixtures("beep")
async def test_the_executor_runs_it_until_its_handler_ends_the_flow() -> None:
    call = make_call()
    # Hangup would need ARI: it must not be reached, since the 3-beep ends the flow first.
    flow = [Beep(1), Beep(3), Hangup()]
    await run_actions(call, flow, cast(FlowContext, object()))
    assert BEEPED == [("call-1", 1), ("call-1", 3)]


@pytest.mark.usefixtures("beep")
async def test_the_api_holds_its_agent_and_its_policy_check_to_the_rules_of_ai_talk(
    tmp_path: Path,
) -> None:
    async with running_api(tmp_path) as env, aiohttp.ClientSession() as http:
        alice, bob = await env.signup("alice", "password1"), await env.signup("bob", "password1")

        async def post(token: str, path: str, body: object) -> tuple[int, Any]:
            headers = {"Authorization": f"Bearer {token}"}
            async with http.post(env.url(path), json=body, headers=headers) as r:
                return r.status, await r.json()

        async def flow(token: str, *actions: Mapping[str, object]) -> tuple[int, Any]:
            return await post(token, "/v1.0/flows", {"name": "f", "actions": list(actions)})

        _, agent = await post(
            alice, "/v1.0/agents", {"name": "a", "webhook": "http://127.0.0.1:9/x"}
        )
        hangup = {"type": "hangup"}
        # Bob may not name Alice's agent, through a beep exactly as through an ai_talk.
        for action in ({"type": "ai_talk"}, {"type": "beep", "times": 1}):
            status, err = await flow(bob, hangup, {**action, "agent_id": agent["id"]})
            assert (status, err["error"]["field"]) == (422, "actions[1].agent_id"), action
            assert err["error"]["message"].endswith("no such agent")
        status, _ = await flow(alice, {"type": "beep", "times": 1, "agent_id": agent["id"]})
        assert status == 201
        headers = {"Authorization": f"Bearer {alice}"}
        async with http.delete(env.url(f"/v1.0/agents/{agent['id']}"), headers=headers) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (409, "agent_in_use")
        status, err = await flow(alice, hangup, {"type": "beep", "times": 1, "tone": "siren"})
        assert (status, err["error"]["code"], err["error"]["field"]) == (
            403,
            "policy_refused",
            "actions[1].tone",
        )


def test_the_registry_refuses_a_taken_type_and_is_restored() -> None:
    assert "beep" not in KINDS
    assert "beep" not in instructions()
    with pytest.raises(ValueError, match="already registered"):
        register(KINDS["talk"])
