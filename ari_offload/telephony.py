"""The API's Telephony protocol, on the ARI call controller."""

from __future__ import annotations

import asyncio
import logging

from ari_offload.api.telephony import TelephonyError
from ari_offload.ari.controller import CallController
from ari_offload.errors import AriError, AriHttpError
from ari_offload.flows.speak import speak
from ari_offload.speech.tts import TtsRunner

log = logging.getLogger("ari_offload.ari")


class AriTelephony:
    def __init__(self, controller: CallController, tts: TtsRunner) -> None:
        self._controller = controller
        self._tts = tts
        self._tasks: set[asyncio.Task[None]] = set()

    async def originate(
        self, *, call_id: str, dial: str, flow_id: str, caller_id: str | None
    ) -> None:
        endpoint = dial  # built by the operator's policy from a route or a named endpoint
        try:
            await self._controller.originate(call_id, endpoint, {"flow": flow_id}, caller_id)
        except AriHttpError as exc:
            raise TelephonyError(f"Asterisk refused to call {endpoint}: {exc.body[:200]}") from exc
        except AriError as exc:
            raise TelephonyError(f"cannot reach Asterisk to call {endpoint}: {exc}") from exc
        log.info("call %s: originating to %s (flow %s)", call_id, endpoint, flow_id)

    async def hangup(self, call_id: str) -> bool:
        call = self._controller.find(call_id)
        if call is None:
            return False
        call.hangup_reason = "api"
        await call.hangup()
        return True

    async def talk(self, call_id: str, text: str) -> bool:
        call = self._controller.find(call_id)
        if call is None or call.media is None:
            return False
        if call.conversation is not None:
            call.conversation.inject(text)  # spoken after the current reply, with barge-in
        else:
            task = asyncio.create_task(speak(call.media, self._tts, text))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return True
