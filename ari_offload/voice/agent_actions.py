"""What a reply asked for besides speech, done once the reply has been said.

The agent's actions (agent.reply_actions) run in order: ``send_dtmf`` plays keys to the far
end, ``collect`` has the turn-taker gather the caller's keys, ``transfer`` ends the
conversation with the flow's transfer (``handoff``, run by the ai_talk action under the
operator's policy), ``hangup`` ends it. A reply the caller cut off with words runs none of
them but ``hangup`` (the agent decided the call is over; the rest it may ask again, and it
learns from ``heard`` what was said): each action goes on the transcript as a system line,
done or not.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ari_offload.agent.answer import StreamedAnswer
from ari_offload.agent.reply_actions import Collect, SendDtmf, Transfer, describe
from ari_offload.ari.call import ActiveCall
from ari_offload.voice.call_book import CallBook
from ari_offload.voice.keypad import Keys
from ari_offload.voice.turn_taker import Action, TurnTaker
from ari_offload.voice.turns import TranscriptEntry

log = logging.getLogger("ari_offload.conversation")


def keys_line(keys: Keys) -> str:
    """The caller's keys as a transcript line: ``[keys 1234, ended by terminator]``."""
    shown = keys.digits or "none"
    return f"[keys {shown}]" if keys.ended_by is None else f"[keys {shown}, {keys.ended_by}]"


class AgentActions:
    def __init__(
        self,
        call: ActiveCall,
        book: CallBook,
        taker: TurnTaker,
        perform: Callable[[list[Action]], None],
    ) -> None:
        self._call, self._book, self._taker, self._perform = call, book, taker, perform
        self.handoff: Transfer | None = None  # the conversation ends in this transfer

    async def after(self, answer: StreamedAnswer) -> bool:
        """Run what ``answer`` asked for; True if the conversation is over (hang up or
        transfer). A failed answer asks for nothing (its actions were not whole)."""
        if answer.error is not None:
            return False
        cut = self._taker.cut_by_words
        for action in answer.actions:
            if cut:
                self._note(f"not done, the caller interrupted: {describe(action)}")
                continue
            self._note(describe(action))
            if isinstance(action, SendDtmf):
                await self._call.send_dtmf(action.digits)
            elif isinstance(action, Collect):
                self._perform(self._taker.collect(action, time.monotonic()))
            elif isinstance(action, Transfer):
                self.handoff = action
                return True
        return answer.hangup

    def _note(self, text: str) -> None:
        log.info("call %s: agent action: %s", self._call.call_id, text)
        self._book.record(TranscriptEntry("system", f"agent: {text}"))


class KeysTimer:
    """The shell's timer for a collect's timeout: armed whenever ``keypad.deadline`` moves
    (``check`` after each batch of turn-taker actions), it tells the turn-taker when due."""

    def __init__(self, taker: TurnTaker, perform: Callable[[list[Action]], None]) -> None:
        self._taker, self._perform = taker, perform
        self._handle: asyncio.TimerHandle | None = None
        self._deadline: float | None = None

    def check(self) -> None:
        deadline = self._taker.keypad.deadline
        if deadline == self._deadline:
            return
        self.cancel()
        self._deadline = deadline
        if deadline is not None:
            delay = max(0.0, deadline - time.monotonic())
            self._handle = asyncio.get_running_loop().call_later(delay, self._due)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._deadline = None

    def _due(self) -> None:
        self._handle = self._deadline = None  # fired: re-armed by check() if not yet due
        self._perform(self._taker.keys_expired(time.monotonic()))
