"""The whole application: ARI service + flows (+ speech, store and API as they are wired)."""

from __future__ import annotations

import asyncio
import logging

from ari_offload.config import Settings
from ari_offload.flows.builtin import BUILTIN_FLOWS
from ari_offload.flows.dispatch import FlowDispatcher
from ari_offload.service import AriService

log = logging.getLogger("ari_offload")


async def run_app(settings: Settings) -> None:
    dispatcher = FlowDispatcher(BUILTIN_FLOWS)
    service = AriService(settings, dispatcher)
    await service.start()
    log.info("ari-offload serving Stasis app %r via %s", settings.ari.app, settings.ari.url)
    try:
        await asyncio.Event().wait()
    finally:
        await service.stop()
