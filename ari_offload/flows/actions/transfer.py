"""transfer: leave the flow for a transfer target the operator named in the policy file."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ari_offload.action_fields import TRANSFER_TARGET
from ari_offload.errors import PolicyRefused, ValidationError
from ari_offload.flows.actions.base import Action, ActionKind

if TYPE_CHECKING:
    from ari_offload.ari.call import ActiveCall
    from ari_offload.flows.executor import FlowContext
    from ari_offload.policy import Policy

log = logging.getLogger("ari_offload.flows")

TRANSFER_FAILED_TEXT = "Sorry, nobody is available to take your call. Goodbye."
# The transfer forms before the operator policy: dial strings a tenant could choose.
_RETIRED_KEYS = frozenset({"context", "extension", "priority", "endpoint"})


@dataclass(frozen=True)
class Transfer(Action):
    """Leave the flow for a transfer target the operator named in the policy file.

    Tenants name a target ("operator", "sales"); only the policy knows where it leads (a
    dialplan context/extension or an endpoint), so a flow can never dial what the operator
    did not list.
    """

    target: str
    type: ClassVar[str] = "transfer"


def _refuse_retired_form(raw: Mapping[str, object], path: str) -> None:
    if "target" not in raw and _RETIRED_KEYS & raw.keys():
        raise ValidationError(
            f"{path}.target",
            "required: transfers name a target of the operator's policy; context, extension "
            "and endpoint are no longer accepted",
        )


def _check_target(action: Transfer, policy: Policy) -> None:
    policy.transfer_target(action.target)  # raises PolicyRefused for a target not listed


async def run_transfer(call: ActiveCall, action: Transfer, ctx: FlowContext) -> bool:
    """Hand the call over; the flow ends here whether or not the target answered."""
    call.set_state("transfer")
    try:
        # Checked again here: the flow was stored under a policy that may have changed since.
        target = ctx.policy.transfer_target(action.target)
    except PolicyRefused as exc:
        log.warning("call %s: transfer refused: %s", call.call_id, exc)
        await ctx.speak(call, TRANSFER_FAILED_TEXT)
        return False
    if target.endpoint is None:
        assert target.context is not None
        assert target.extension is not None
        await call.transfer_to_dialplan(
            target.context, target.extension, target.priority, label=target.name
        )
        return False
    if await call.transfer_to_endpoint(target.endpoint):
        await call.ended.wait()  # the two legs talk until one hangs up
        return False
    log.info("call %s: transfer target %r did not answer", call.call_id, target.name)
    await ctx.speak(call, TRANSFER_FAILED_TEXT)
    return False


KIND = ActionKind(
    Transfer,
    "Hand the caller to a transfer target of the operator's policy.",
    run_transfer,
    {"target": TRANSFER_TARGET},
    required=("target",),
    precheck=_refuse_retired_form,
    policy_checks={"target": _check_target},
)
