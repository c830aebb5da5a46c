"""What the call controller tells the rest of the app: a call started, ended, was refused."""

from __future__ import annotations

from typing import Protocol

from ari_offload.ari.call import ActiveCall


class CallObserver(Protocol):
    """Hooks for persistence and metrics; the controller itself stores nothing."""

    async def call_started(self, call: ActiveCall) -> None: ...

    async def call_ended(self, call: ActiveCall) -> None: ...

    async def outbound_failed(self, call_id: str, reason: str) -> None: ...

    async def call_refused(self, call: ActiveCall) -> None:
        """Hung up before set-up (`call.hangup_reason` says why, e.g. "loop-guard")."""


class NullObserver:
    async def call_started(self, call: ActiveCall) -> None:
        return None

    async def call_ended(self, call: ActiveCall) -> None:
        return None

    async def outbound_failed(self, call_id: str, reason: str) -> None:
        return None

    async def call_refused(self, call: ActiveCall) -> None:
        return None
