"""Who has the floor: the turn-taking rules of a conversation, as a sans-IO state machine.

Events in, actions out. The shell (``voice.conversation``) feeds it what happened — VAD events
and a position after each caller frame, replies queued and finished, API texts — and performs
what it returns::

    caller pauses          -> Speculate(audio)      start STT early, while the endpoint waits
    caller speaks again    -> CancelSpeculation     that audio is no longer the utterance
    endpoint reached       -> EndTurn(utterance)    transcribe and ask the agent (or queue it);
                                                    ``transcribed(text)`` numbers the turn, or
                                                    drops it when STT heard no words
    caller talks over us   -> BargeIn               stop playback now (past the minimum speech)
    caller presses a key   -> BargeIn(final)        stop it for good; the keys are a turn
                                                    (``Keys``, keypad.py) once it is done
    ... and stops          -> BargeInEnded          its transcript decides: ``barge_in_heard``
                                                    resumes the reply if it held no words
    welcome / API text     -> Speak(text)           say it; queued behind a reply otherwise

One turn action (EndTurn or Speak) is outstanding at a time: the next one comes out of
``turn_done()``. No loop, no clock, no socket: caller positions are samples of the inbound
stream, playout positions samples of the outbound one, and ``now`` is passed in.

A false interruption (``interruption.py``): the reply keeps its queued audio; cut, it waits
for the verdict on the utterance that cut it. No words (a cough, "mm-hm"), a sound over
within SOUND_WITHIN_S of the cut, a verdict within RESUME_WITHIN_S of the caller going quiet,
and the caller not talking again by then: that utterance is no turn, and the reply picks up a
little before the cut (``Resume``). Words, or no verdict in time, or the caller talking again:
the reply stays cut, the utterance is the next turn, and ``heard`` is what was played.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from ari_offload.agent.reply_actions import Collect
from ari_offload.audio import SAMPLE_RATE, Pcm, samples_to_ms
from ari_offload.errors import TalkQueueFull
from ari_offload.speech.vad import (
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    UtteranceEnded,
    VadEvent,
)
from ari_offload.voice.interruption import (
    MAX_RESUMES,
    RESUME_WITHIN_S,
    SOUND_WITHIN_S,
    holds_no_words,
    is_false_interruption,
    rewind,
)
from ari_offload.voice.keypad import Keypad, Keys
from ari_offload.voice.turns import Segment, heard_text

# API `talk` texts one call holds waiting to be spoken, besides the one being spoken: past it
# the API answers 429, so a tenant cannot queue speech (and TTS work) without bound.
MAX_QUEUED_TALKS = 8


@dataclass(frozen=True, eq=False)
class Utterance:
    """A finished caller utterance, waiting for (or going to) STT and the agent."""

    audio: Pcm
    ended_at: float  # the shell's clock when the endpoint was reached
    endpoint_ms: float  # silence waited for before deciding the caller was done


@dataclass(frozen=True, eq=False)
class Speculate:
    audio: Pcm


@dataclass(frozen=True)
class CancelSpeculation:
    pass


@dataclass(frozen=True)
class EndTurn:
    utterance: Utterance


@dataclass(frozen=True)
class BargeIn:
    final: bool = False  # a key, not a voice: no verdict, the reply does not resume


@dataclass(frozen=True)
class BargeInEnded:
    """The utterance that cut the reply has ended (and is queued as a turn): its transcript,
    given to ``barge_in_heard``, decides whether the reply resumes."""

    utterance: Utterance


@dataclass(frozen=True)
class Speak:
    """Say a text that is no reply: the welcome, or an API `talk` (no turn, no webhook)."""

    text: str
    from_api: bool = True  # counted against MAX_QUEUED_TALKS while it waits


Action = Speculate | CancelSpeculation | EndTurn | BargeIn | BargeInEnded | Speak | Keys


@dataclass(frozen=True, eq=False)
class Resume:
    """The cut reply goes on: queue these (text, audio) pieces, in order, then its sentences
    not queued yet. The first piece is the cut sentence from a word before the cut."""

    pieces: tuple[tuple[str, Pcm], ...]
    silent_s: float  # how long the caller heard nothing of the reply (cut to verdict)


class Floor(Enum):
    CALLER = "listening"  # nothing outstanding: the next utterance or text goes right out
    AGENT = "busy"  # a turn action is outstanding (STT, webhook or playback)


@dataclass(frozen=True, eq=False)
class _Queued:
    segment: Segment
    pcm: Pcm  # kept until the reply ends: a false interruption plays it again


@dataclass
class _Reply:
    queued: list[_Queued] = field(default_factory=list)
    cut_at: int | None = None  # playout position where barge-in stopped it
    keyed: bool = False  # a key stopped it, not the caller's voice
    cut_time: float = 0.0  # the shell's clock then
    verdict_due: bool = False  # cut, and what the caller said not judged yet
    barged: Utterance | None = None  # the utterance that cut it, once ended (queued)
    resumes: int = 0
    heard_before: str = ""  # at the last cut: the words played again after it were heard once

    @property
    def segments(self) -> list[Segment]:
        return [q.segment for q in self.queued]

    def heard(self, played_until: int) -> str:
        """What the caller heard, with playback stopped at ``played_until``: as far as the
        reply got, this time or before a resume (both are the reply's first words)."""
        now = heard_text(self.segments, played_until)
        return now if len(now.split()) >= len(self.heard_before.split()) else self.heard_before


class TurnTaker:
    def __init__(
        self,
        barge_in_min_speech_ms: int,
        max_queued_talks: int = MAX_QUEUED_TALKS,
        sample_rate: int = SAMPLE_RATE,
        turns_before: int = 0,
        resume_within_s: float = RESUME_WITHIN_S,
        sound_within_s: float = SOUND_WITHIN_S,
    ) -> None:
        self._rate = sample_rate
        self._resume_within_s = resume_within_s
        self._sound_within_s = sound_within_s
        self._barge_in_samples = barge_in_min_speech_ms * sample_rate // 1000
        self._max_queued_talks = max_queued_talks
        self.floor = Floor.CALLER
        self._waiting: deque[Utterance | Speak | Keys] = deque()
        self._queued_talks = 0  # the texts in _waiting
        self._speech_start: int | None = None
        self._pause_at: int | None = None
        self._reply: _Reply | None = None  # being played
        self.heard: str | None = None  # of the last reply, if the caller cut it short
        self.cut_by_words = False  # the caller's voice (not a key) cut the last reply
        self.keypad = Keypad()
        # caller turns with words so far (of an earlier run too: numbering goes on)
        self.turn = turns_before

    # --- the caller ------------------------------------------------------------------------

    def vad(self, event: VadEvent, samples_fed: int, now: float) -> list[Action]:
        """One VAD event of the caller's stream; ``samples_fed`` is the stream position now."""
        if isinstance(event, SpeechStarted):
            self._speech_start = event.start_sample
        elif isinstance(event, SpeechPaused):
            self._pause_at = event.at_sample
            return [Speculate(event.audio_so_far)]
        elif isinstance(event, SpeechResumed):
            self._pause_at = None
            return [CancelSpeculation()]
        elif isinstance(event, UtteranceEnded):
            silence_from = self._pause_at if self._pause_at is not None else event.end_sample
            endpoint_ms = samples_to_ms(samples_fed - silence_from, self._rate)
            self._speech_start = self._pause_at = None
            utterance = Utterance(event.audio, now, endpoint_ms)
            actions = self._offer(utterance)
            reply = self._reply
            if reply is not None and reply.verdict_due and reply.barged is None:
                reply.barged = utterance
                actions.append(BargeInEnded(utterance))
            return actions
        return []

    def frame(self, samples_fed: int) -> list[Action]:
        """After each caller frame (and its VAD events): barge in if the caller talks over us."""
        reply = self._reply
        if reply is None or reply.cut_at is not None or self._speech_start is None:
            return []
        if self._pause_at is not None:
            return []  # the caller has gone quiet again
        if samples_fed - self._speech_start < self._barge_in_samples:
            return []
        return [BargeIn()]

    def digit(self, key: str, now: float) -> list[Action]:
        """A key the caller pressed: it stops the reply playing, and goes to the agent as
        a turn: now if the caller has the floor, else once the turn is done (``turn_done``)
        or into the collection the reply asked for (``collect``)."""
        if self.keypad.swallows(key, now):
            return []  # the terminator of the input just taken: not a key of its own
        actions: list[Action] = []
        reply = self._reply
        if reply is not None and reply.cut_at is None:
            actions.append(BargeIn(final=True))
        elif reply is not None:
            reply.verdict_due, reply.keyed = False, True  # cut by a voice, then a key
        if self.keypad.collecting:
            keys = self.keypad.press(key, now)
            return actions + (self._offer(keys) if keys is not None else [])
        if self.floor is Floor.AGENT:
            self.keypad.hold(key, now)
            return actions
        return actions + self._offer(Keys(key, None, now))

    def collect(self, collect: Collect, now: float) -> list[Action]:
        """The reply asked for keys (it has been said): collect them, held ones first."""
        keys = self.keypad.start(collect, now)
        return self._offer(keys) if keys is not None else []

    def keys_expired(self, now: float) -> list[Action]:
        """The shell's timer for ``keypad.deadline`` fired."""
        keys = self.keypad.expired(now)
        return self._offer(keys) if keys is not None else []

    def keys_taken(self) -> int:
        """The outstanding ``Keys`` go to the agent: their turn number."""
        self.turn += 1
        return self.turn

    # --- texts that are not replies ---------------------------------------------------------

    def greet(self, welcome: str | None) -> list[Action]:
        """The conversation starts: the welcome message, if any, before any caller turn."""
        return self._offer(Speak(welcome, from_api=False)) if welcome else []

    def inject(self, text: str, call_id: str = "") -> list[Action]:
        """An API `talk` text; raises ``TalkQueueFull`` past the bound."""
        if self._queued_talks >= self._max_queued_talks:
            raise TalkQueueFull(call_id, self._max_queued_talks)
        self._queued_talks += 1
        return self._offer(Speak(text))

    @property
    def queued_talks(self) -> int:
        return self._queued_talks

    # --- STT ---------------------------------------------------------------------------------

    def transcribed(self, text: str) -> int | None:
        """The outstanding EndTurn's transcript: its turn number, or None if it had no words
        (a cough, a click, "(coughing)": no turn, nothing sent to the agent)."""
        if holds_no_words(text):
            return None
        self.keypad.cancel()  # words instead of the keys asked for: the words are the turn
        self.turn += 1
        return self.turn

    # --- the agent's side ------------------------------------------------------------------

    def reply_started(self) -> None:
        """A reply (or API text) starts playing: from now on the caller can barge in."""
        self._reply = _Reply()
        self.heard = None

    def reply_queued(self, text: str, pcm: Pcm, end: int) -> None:
        """One sentence (or piece) of the reply is queued, up to playout position ``end``."""
        if self._reply is not None:
            self._reply.queued.append(_Queued(Segment(text, end - len(pcm), end), pcm))

    def barged_in(self, cut_at: int, now: float, final: bool = False) -> None:
        """The shell stopped playback at playout position ``cut_at`` (``final``: for a key)."""
        reply = self._reply
        if reply is not None and reply.cut_at is None:
            reply.cut_at, reply.cut_time = cut_at, now
            reply.verdict_due, reply.barged, reply.keyed = not final, None, final

    @property
    def interrupted(self) -> bool:
        return self._reply is not None and self._reply.cut_at is not None

    @property
    def heard_so_far(self) -> str | None:
        """What the caller heard of the reply playing now, if it is cut (for the record,
        before the verdict: it may yet resume)."""
        reply = self._reply
        if reply is None or reply.cut_at is None:
            return None
        return reply.heard(reply.cut_at)

    @property
    def resume_deadline(self) -> float | None:
        """The shell's clock past which a cut reply no longer resumes (None: nothing due)."""
        reply = self._reply
        if reply is None or not reply.verdict_due:
            return None
        if reply.barged is None:  # the sound goes on: it must end soon to be judged
            return reply.cut_time + self._sound_within_s
        barged = reply.barged
        return barged.ended_at - barged.endpoint_ms / 1000 + self._resume_within_s

    def barge_in_heard(self, text: str | None, now: float) -> Resume | None:
        """The verdict on the utterance that cut the reply: its transcript, or None if none
        came by ``resume_deadline`` (or STT failed). A Resume if the reply goes on; then
        that utterance is no turn (it leaves the queue: its transcript is the shell's to drop).
        """
        reply = self._reply
        if reply is None or reply.cut_at is None or not reply.verdict_due:
            return None
        deadline = self.resume_deadline
        reply.verdict_due = False
        if (
            text is None
            or not is_false_interruption(text)
            or reply.barged is None  # it never ended (the shell waits for its end first)
            or deadline is None
            or now > deadline
            or self._speech_start is not None  # talking again: the caller has the floor
            or reply.resumes >= MAX_RESUMES
        ):
            return None
        if reply.barged is not None and reply.barged in self._waiting:
            self._waiting.remove(reply.barged)
        reply.heard_before = reply.heard(reply.cut_at)
        pieces = self._rewind(reply, reply.cut_at)
        reply.cut_at, reply.barged = None, None
        reply.resumes += 1
        return Resume(pieces, now - reply.cut_time)

    def _rewind(self, reply: _Reply, cut_at: int) -> tuple[tuple[str, Pcm], ...]:
        """Keep what was heard up to the resume point; return what plays again from there."""
        kept, pieces = rewind([(q.segment, q.pcm) for q in reply.queued], cut_at, self._rate)
        reply.queued = [_Queued(segment, pcm) for segment, pcm in kept]
        return tuple(pieces)

    def reply_finished(self, abandoned_at: int | None = None, complete: bool = True) -> str | None:
        """Playback ended (to its end or cut); returns what the caller heard if it was cut.

        ``abandoned_at``: the reply stopped short, when the port had played up to there (the
        call ended, or synthesis failed); what was queued past it was never heard (all of it,
        if nothing was queued yet). ``complete``: every sentence of the reply was queued; if
        not, the sentences never synthesized were not heard even when all queued ones were.
        """
        reply, self._reply = self._reply, None
        self.cut_by_words = False
        if reply is None:
            return None
        self.cut_by_words = reply.cut_at is not None and not reply.keyed
        cut_at = reply.cut_at
        segments = reply.segments
        unplayed = not complete or not segments or (abandoned_at or 0) < segments[-1].end
        if cut_at is None and abandoned_at is not None and unplayed:
            cut_at = abandoned_at
        if cut_at is None:
            return None
        self.heard = reply.heard(cut_at)
        return self.heard

    def turn_done(self) -> list[Action]:
        """The outstanding turn action is finished: the next waiting one, if any, goes out."""
        self.floor = Floor.CALLER
        held = None if self.keypad.collecting else self.keypad.held()
        if held is not None:
            return self._offer(held)  # pressed during the turn: they come first
        if not self._waiting:
            return []
        return self._offer(self._waiting.popleft())

    # ---------------------------------------------------------------------------------------

    def _offer(self, item: Utterance | Speak | Keys) -> list[Action]:
        if self.floor is Floor.AGENT:
            self._waiting.append(item)
            return []
        self.floor = Floor.AGENT
        if isinstance(item, Speak):
            self._queued_talks -= item.from_api
            return [item]
        if isinstance(item, Keys):
            return [item]
        return [EndTurn(item)]
