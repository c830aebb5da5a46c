"""pause: wait in silence."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ari_offload.flows.actions.base import Action, ActionKind
from ari_offload.schema import Num

if TYPE_CHECKING:
    from ari_offload.ari.call import ActiveCall
    from ari_offload.flows.executor import FlowContext

MAX_PAUSE_S = 60.0


@dataclass(frozen=True)
class Pause(Action):
    """Wait in silence."""

    seconds: float
    type: ClassVar[str] = "pause"


async def run_pause(call: ActiveCall, action: Pause, ctx: FlowContext) -> bool:
    call.set_state("pause")
    await asyncio.sleep(action.seconds)
    return True


KIND = ActionKind(
    Pause,
    "Wait in silence (0 < seconds <= 60).",
    run_pause,
    {"seconds": Num(exclusive_minimum=0, maximum=MAX_PAUSE_S)},
    required=("seconds",),
)
