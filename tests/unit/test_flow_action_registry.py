"""A new flow action is one module plus one registry line.

A throwaway action, declared and registered here without touching the package, parses with
exact error paths, serialises back, appears in the JSON Schema and in the MCP instructions,
and runs through the executor, whose handler decides whether the flow goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, cast

import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev extras
import pytest

from ari_offload.ari.call import ActiveCall
from ari_offload.ari.events import Channel
from ari_offload.ari.rest import AriRest
from ari_offload.errors import ValidationError
from ari_offload.flows.actions import KINDS, Action, ActionKind, Hangup, register
from ari_offload.flows.executor import FlowContext, run_actions
from ari_offload.flows.model import action_json_schema, action_to_json, parse_actions
from ari_offload.schema import Int, Str
from ari_offload.sdk.mcp_server import instructions
from tests.unit.fake_media import FakeMediaPort

# --- what a new action module would hold ------------------------------------------------------


@dataclass(frozen=True)
class Beep(Action):
    """Beep a few times (the tone is decoration)."""

    times: int
    tone: str | None = None
    type: ClassVar[str] = "beep"


BEEPED: list[tuple[str, int]] = []


async def run_beep(call: ActiveCall, action: Beep, ctx: FlowContext) -> bool:
    BEEPED.append((call.call_id, action.times))
    return action.times < 3  # three beeps end the flow


KIND = ActionKind(
    Beep,
    "Beep a few times.",
    run_beep,
    {"times": Int(1, 5), "tone": Str(8, 1, nullable=True, description="a tone's name")},
    required=("times",),
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
        ({"type": "boop"}, "actions[0].type", "transfer, beep"),
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
    assert "- beep {times, tone?}: Beep a few times." in instructions()


@pytest.mark.usefixtures("beep")
async def test_the_executor_runs_it_until_its_handler_ends_the_flow() -> None:
    call = make_call()
    # Hangup would need ARI: it must not be reached, since the 3-beep ends the flow first.
    flow = [Beep(1), Beep(3), Hangup()]
    await run_actions(call, flow, cast(FlowContext, object()))
    assert BEEPED == [("call-1", 1), ("call-1", 3)]


def test_the_registry_refuses_a_taken_type_and_is_restored() -> None:
    assert "beep" not in KINDS
    assert "beep" not in instructions()
    with pytest.raises(ValueError, match="already registered"):
        register(KINDS["talk"])
