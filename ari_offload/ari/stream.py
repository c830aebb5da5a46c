"""The ARI events websocket, reconnecting with exponential backoff when Asterisk goes away."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable

import aiohttp

from ari_offload.ari.events import AriEvent, parse_event
from ari_offload.ari.rest import basic_auth_headers
from ari_offload.config import AriSettings

log = logging.getLogger("ari_offload.ari")

HEARTBEAT_S = 5.0
MAX_DOUBLINGS = 60  # 2**60 times any sane minimum is past any sane maximum


class Backoff:
    """Exponential backoff with full jitter (sans-IO: the caller sleeps)."""

    def __init__(self, min_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.min_s = min_s
        self.max_s = max_s
        self._attempt = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

    def next_delay(self) -> float:
        # Cap the exponent: 2.0**1024 overflows, and Asterisk can stay down for that many
        # attempts (about an hour and a half at the default 10 s cap).
        doublings = min(self._attempt, MAX_DOUBLINGS)
        ceiling = min(self.max_s, self.min_s * 2.0**doublings)
        self._attempt += 1
        return self.min_s + self._rng.random() * max(0.0, ceiling - self.min_s)

    def reset(self) -> None:
        self._attempt = 0


class EventStream:
    """Connects to ``/ari/events`` and hands every event to ``on_event``, forever.

    ``on_connected`` runs after each (re)connect, before events flow, so the controller can
    reconcile what changed while it was away.
    """

    def __init__(self, session: aiohttp.ClientSession, settings: AriSettings) -> None:
        self._session = session
        base = (
            settings.url.rstrip("/").replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        )
        self._url = f"{base}/ari/events"
        self._params = {"app": settings.app, "subscribeAll": "false"}
        self._headers = basic_auth_headers(settings)
        self._backoff = Backoff(settings.reconnect_min_s, settings.reconnect_max_s)
        self.connected = asyncio.Event()
        self.connections = 0

    async def run(
        self,
        on_event: Callable[[AriEvent], None],
        on_connected: Callable[[], Awaitable[None]],
    ) -> None:
        while True:
            try:
                await self._run_once(on_event, on_connected)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.warning("ARI events: cannot connect to %s: %s", self._url, _short(exc))
            self.connected.clear()
            delay = self._backoff.next_delay()
            log.info("ARI events: reconnecting in %.1f s", delay)
            await asyncio.sleep(delay)

    async def _run_once(
        self,
        on_event: Callable[[AriEvent], None],
        on_connected: Callable[[], Awaitable[None]],
    ) -> None:
        async with self._session.ws_connect(
            self._url, params=self._params, headers=self._headers, heartbeat=HEARTBEAT_S
        ) as ws:
            self.connections += 1
            self._backoff.reset()
            log.info("ARI events: connected to %s (app %s)", self._url, self._params["app"])
            await on_connected()
            self.connected.set()
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    _dispatch(msg.data, on_event)
                elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                    break
            log.warning("ARI events: connection closed (Asterisk stopped or restarted?)")


def _dispatch(text: str, on_event: Callable[[AriEvent], None]) -> None:
    try:
        event = parse_event(json.loads(text))
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        log.debug("ARI events: dropped a malformed event: %s", exc)
        return
    try:
        on_event(event)
    except Exception:
        # One bad handler must not kill the stream every other call depends on.
        log.exception("ARI events: handler failed on %s", event.type)


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]
