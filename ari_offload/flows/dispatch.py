"""Pick the flow a call runs from its Stasis args (``flow=NAME_OR_ID``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from ari_offload.ari.call import ActiveCall

log = logging.getLogger("ari_offload.flows")

FlowRunner = Callable[[ActiveCall], Awaitable[None]]
# Resolves a flow reference the built-ins don't know (e.g. from the store); None: unknown.
FlowResolver = Callable[[str], Awaitable[FlowRunner | None]]


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
        runner = self._builtins.get(ref)
        if runner is None and self._resolve is not None and ref:
            runner = await self._resolve(ref)
        if runner is None:
            log.warning(
                "call %s: unknown flow %r (check the dialplan's flow=...)", call.call_id, ref
            )
            call.hangup_reason = "unknown-flow"
            if self._on_unknown is not None:
                await self._on_unknown(call)
            return
        log.info("call %s: running flow %r", call.call_id, ref)
        await runner(call)
