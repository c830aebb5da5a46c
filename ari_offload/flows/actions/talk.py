"""talk: speak a fixed text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ari_offload.flows.actions.base import MAX_TEXT_LENGTH, Action, ActionKind
from ari_offload.schema import Str

if TYPE_CHECKING:
    from ari_offload.ari.call import ActiveCall
    from ari_offload.flows.executor import FlowContext


@dataclass(frozen=True)
class Talk(Action):
    """Speak a fixed text."""

    text: str
    type: ClassVar[str] = "talk"


async def run_talk(call: ActiveCall, action: Talk, ctx: FlowContext) -> bool:
    call.set_state("talk")
    await ctx.speak(call, action.text)
    return True


KIND = ActionKind(
    Talk,
    "Speak a fixed text.",
    run_talk,
    {"text": Str(MAX_TEXT_LENGTH, 1)},
    required=("text",),
)
