"""hangup: end the call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ari_offload.flows.actions.base import Action, ActionKind

if TYPE_CHECKING:
    from ari_offload.ari.call import ActiveCall
    from ari_offload.flows.executor import FlowContext


@dataclass(frozen=True)
class Hangup(Action):
    """End the call."""

    type: ClassVar[str] = "hangup"


async def run_hangup(call: ActiveCall, action: Hangup, ctx: FlowContext) -> bool:
    await call.hangup()
    return False


KIND = ActionKind(Hangup, "End the call.", run_hangup)
