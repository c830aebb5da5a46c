"""What one conversation said and measured, kept in order and told to its observer.

The conversation (conversation.py) decides what happened; this room keeps the record: the
transcript lines (an agent line is corrected in place when the caller turns out to have heard
less of it, or when more of a streamed reply arrived after its first words), the turn
timings, and the observer (the recorder that writes them to the store) told at once.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Protocol

from ari_offload.ari.call import ActiveCall
from ari_offload.audio import samples_to_ms
from ari_offload.voice.turns import TranscriptEntry, TurnTiming

log = logging.getLogger("ari_offload.conversation")


class ConversationObserver(Protocol):
    """Told each fact the moment it is known, without waiting: what it does with them (the
    recorder queues store writes) cannot delay audio, and a hangup cannot undo a fact told.
    Only ``caught_up`` is awaited, briefly, at the two points a crash must not cross."""

    def transcript_added(self, call: ActiveCall, entry: TranscriptEntry) -> None: ...

    def transcript_corrected(
        self, call: ActiveCall, entry: TranscriptEntry, corrected: TranscriptEntry
    ) -> None:
        """``entry`` (added or corrected before) says a new thing: what the caller heard
        of it (``corrected.heard``, or None when a reply cut by a false interruption resumed
        and played to its end after all), or more of a streamed reply's text."""

    def turn_updated(self, call: ActiveCall, timing: TurnTiming) -> None:
        """The turn was numbered (first call) or more of it was measured (later ones)."""

    def turn_finished(self, call: ActiveCall, timing: TurnTiming) -> None:
        """Its reply ended: played out, cut by barge-in, or by the call's end."""

    async def caught_up(self, call: ActiveCall) -> None:
        """Every fact told so far is on record (a short, bounded wait): awaited before the
        agent is asked and before the caller hears the reply, so a crash after either loses
        none of the turn."""


class CallBook:
    """One call's transcript and turn timings; each change told to ``observer`` (if any)."""

    def __init__(self, call: ActiveCall, observer: ConversationObserver | None) -> None:
        self._call = call
        self._observer = observer
        self.transcript: list[TranscriptEntry] = []
        self.timings: list[TurnTiming] = []

    def record(self, entry: TranscriptEntry) -> TranscriptEntry:
        self.transcript.append(entry)
        if self._observer is not None:
            self._observer.transcript_added(self._call, entry)
        return entry

    def correct(
        self, entry: TranscriptEntry, heard: str | None, text: str | None = None
    ) -> TranscriptEntry:
        """``entry`` with what the caller heard of it (and, for a streamed reply, all of
        its ``text``), in its place."""
        text = entry.text if text is None else text
        corrected = dataclasses.replace(entry, heard=heard, text=text)
        at = next(i for i, line in enumerate(self.transcript) if line is entry)
        self.transcript[at] = corrected
        if self._observer is not None:
            self._observer.transcript_corrected(self._call, entry, corrected)
        return corrected

    def measured(self, timing: TurnTiming) -> None:
        if self._observer is not None:
            self._observer.turn_updated(self._call, timing)

    def turn_finished(self, timing: TurnTiming) -> None:
        if self._observer is not None:
            self._observer.turn_finished(self._call, timing)

    async def caught_up(self) -> None:
        if self._observer is not None:
            await self._observer.caught_up(self._call)

    # --- a reply's two moments: its first audio, and its end ----------------------------

    def first_audio(
        self, text: str, timing: TurnTiming | None, replied_at: float, since: float, ahead: int
    ) -> TranscriptEntry:
        """The reply's first audio is queued (``ahead`` samples play before it): the turn's
        total is measured, and the agent line goes on record."""
        if timing is not None:
            # The first frame goes on the wire at once, unless audio is still queued ahead.
            rate = self._call.media.codec.sample_rate
            on_wire = time.monotonic() + samples_to_ms(ahead, rate) / 1000
            timing.tts_first_audio_ms = (on_wire - replied_at) * 1000
            timing.total_ms = (on_wire - since) * 1000 + timing.endpoint_ms
            self.measured(timing)
        return self.record(TranscriptEntry("agent", text))

    def reply_ended(
        self, text: str, line: TranscriptEntry | None, heard: str | None, timing: TurnTiming | None
    ) -> None:
        """The reply is over: its line says all it said and what was heard of it."""
        if line is None:  # no audio was queued: the text is on record, with what was heard
            if text:
                self.record(TranscriptEntry("agent", text, heard=heard))
        elif heard != line.heard or text != line.text:  # cut short, (resumed) no longer, or
            self.correct(line, heard, text)  # more of a streamed reply came after its start
        self._call.set_state("listening")
        if timing is not None:
            timing.interrupted = heard is not None
            log.info("call %s: %s", self._call.call_id, timing.summary())
            self.turn_finished(timing)
