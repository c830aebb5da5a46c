"""send_dtmf: play touch-tone digits to the far end (an IVR on an outbound call).

Asterisk sends them as the channel negotiated (RFC 4733 events on our SIP test bed). ``w``
is a half-second wait, as in Asterisk's own DTMF strings, for menus that need a moment
between choices ("1w2").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ari_offload.action_fields import DTMF_DIGITS
from ari_offload.flows.actions.base import Action, ActionKind

if TYPE_CHECKING:
    from ari_offload.ari.call import ActiveCall
    from ari_offload.flows.executor import FlowContext


@dataclass(frozen=True)
class SendDtmf(Action):
    """Play DTMF digits to the far end."""

    digits: str
    type: ClassVar[str] = "send_dtmf"


async def run_send_dtmf(call: ActiveCall, action: SendDtmf, ctx: FlowContext) -> bool:
    await call.send_dtmf(action.digits)
    return True


KIND = ActionKind(
    SendDtmf,
    "Play DTMF digits to the far end (0-9 * # A-D; w waits 0.5 s).",
    run_send_dtmf,
    {"digits": DTMF_DIGITS},
    required=("digits",),
)
