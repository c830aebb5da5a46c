"""Pick the flow a call runs from its Stasis args: a built-in (``flow=echo``), else the
resolver's answer (the store: ``number=`` the operator assigned, or ``flow=ID``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from ari_offload.ari.call import ActiveCall, FlowRunner

log = logging.getLogger("ari_offload.flows")

# Resolves a call the built-ins don't take (e.g. from the store); None: unknown.
FlowResolver = Callable[[ActiveCall], Awaitable[FlowRunner | None]]


class FlowDispatcher:
    def __init__(
        self,
        builtins: Mapping[str, FlowRunner],
        resolve: FlowResolver | None = None,
        on_unknown: FlowRunner | None = None,
    ) -> None:
        self._builtins = dict(builtins)
        self._resolve = resolve
        self._on_unknown = on_unknown

    async def __call__(self, call: ActiveCall) -> None:
        ref = call.flow_ref
        runner = self._builtins.get(ref) if ref else None
        if runner is None and self._resolve is not None and (ref or call.dialled_number):
            runner = await self._resolve(call)
        if runner is None:
            log.warning(
                "call %s: no flow for number %r / flow %r (assign the number to a flow: "
                "ari-offload admin API; or check the dialplan's flow=ID)",
                call.call_id, call.dialled_number, ref,
            )  # fmt: skip
            call.hangup_reason = "unknown-flow"
            if self._on_unknown is not None:
                await self._on_unknown(call)
            return
        log.info("call %s: running flow %r", call.call_id, ref or call.dialled_number)
        await runner(call)
