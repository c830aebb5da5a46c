"""The API's Telephony protocol, on the ARI call controller."""

from __future__ import annotations

import asyncio
import collections
import logging

from ari_offload.agent.reply_actions import ReplyAction, SendDtmf, Transfer, describe
from ari_offload.ari.call import ActiveCall
from ari_offload.ari.controller import CallController
from ari_offload.errors import AriError, AriHttpError, TalkQueueFull, TelephonyError
from ari_offload.flows.speak import speak
from ari_offload.speech.tts import TtsRunner
from ari_offload.tasks import cancel_and_wait, first_of
from ari_offload.voice.call_book import ConversationObserver
from ari_offload.voice.turn_taker import MAX_QUEUED_TALKS
from ari_offload.voice.turns import TranscriptEntry

log = logging.getLogger("ari_offload.ari")


class AriTelephony:
    def __init__(
        self,
        controller: CallController,
        tts: TtsRunner,
        observer: ConversationObserver | None = None,
    ) -> None:
        self._controller = controller
        self._tts = tts
        self._observer = observer  # where the API's actions go on the transcript
        self._tasks: set[asyncio.Task[None]] = set()
        # Calls with no conversation: the text being spoken first, then those waiting.
        self._talks: dict[str, collections.deque[str]] = {}

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
        try:
            await call.hangup()
        except AriError as exc:
            raise TelephonyError(f"cannot reach Asterisk to hang up call {call_id}: {exc}") from exc
        return True

    async def talk(self, call_id: str, text: str) -> bool:
        """Queue ``text`` for the call; raises ``TalkQueueFull`` past MAX_QUEUED_TALKS waiting."""
        call = self._live(call_id)
        if call is None:  # nothing to say it on before it is up
            return False
        if call.conversation is not None:
            call.conversation.inject(text)  # spoken after the current reply, with barge-in
            return True
        waiting = self._talks.get(call_id)
        if waiting is None:  # one speaker per call, whatever the number of requests
            waiting = self._talks[call_id] = collections.deque([text])
            task = asyncio.create_task(self._speak_in_turn(call_id, waiting))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif len(waiting) > MAX_QUEUED_TALKS:  # waiting[0] is being spoken
            raise TalkQueueFull(call_id, MAX_QUEUED_TALKS)
        else:
            waiting.append(text)
        return True

    async def send_dtmf(self, call_id: str, digits: str) -> bool:
        call = self._live(call_id)
        if call is None:
            return False
        self._note(call, SendDtmf(digits))
        try:
            await call.send_dtmf(digits)
        except AriError as exc:
            raise TelephonyError(f"cannot reach Asterisk to send DTMF on {call_id}: {exc}") from exc
        return True

    async def transfer(self, call_id: str, target: str) -> bool:
        call = self._live(call_id)
        if call is None or call.flow is None or not call.flow.transfer(target):
            return False
        self._note(call, Transfer(target))
        return True

    def _live(self, call_id: str) -> ActiveCall | None:
        call = self._controller.find(call_id)
        return None if call is None or call.state == "setup" or call.ended.is_set() else call

    def _note(self, call: ActiveCall, action: ReplyAction) -> None:
        """The API's action as a transcript line, as an agent's are (``agent: ...``)."""
        log.info("call %s: API action: %s", call.call_id, describe(action))
        if self._observer is not None:
            self._observer.transcript_added(
                call, TranscriptEntry("system", f"api: {describe(action)}")
            )

    async def close(self) -> None:
        """Shutdown: stop every API text still being spoken."""
        await cancel_and_wait(*self._tasks)

    async def _speak_in_turn(self, call_id: str, waiting: collections.deque[str]) -> None:
        try:
            while waiting:
                call = self._controller.find(call_id)
                if call is None:
                    return  # the call ended: nobody to say the rest to
                # The caller may leave mid-text: the speaker ends with the call, not after it.
                await first_of(speak(call.media, self._tts, waiting[0]), call.ended.wait())
                if call.ended.is_set():
                    return
                waiting.popleft()
        except Exception as exc:  # synthesis failed: the call goes on, its texts are dropped
            log.warning("call %s: API talk stopped: %s", call_id, exc)
        finally:
            del self._talks[call_id]
