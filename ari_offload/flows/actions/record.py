"""record: record the call, both parties, from here to its end."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ari_offload.flows.actions.base import Action, ActionKind

if TYPE_CHECKING:
    from ari_offload.ari.call import ActiveCall
    from ari_offload.flows.executor import FlowContext

log = logging.getLogger("ari_offload.flows")


@dataclass(frozen=True)
class Record(Action):
    """Record the call from this point to its end (observe/recording.py)."""

    type: ClassVar[str] = "record"


async def run_record(call: ActiveCall, action: Record, ctx: FlowContext) -> bool:
    # Never ends the flow: a call that cannot be recorded (no space, no recorder) still runs.
    if ctx.start_recording is None:
        log.warning("call %s: this server records no calls; going on unrecorded", call.call_id)
    else:
        await ctx.start_recording(call)
    return True


KIND = ActionKind(
    Record,
    "Record the call from here to its end: a stereo WAV, the caller on the left channel and "
    "the agent on the right, fetched with GET /v1.0/calls/{id}/recording and deleted with the "
    "call. Put it after a talk that tells the caller, or first to record everything.",
    run_record,
)
