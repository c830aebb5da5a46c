"""Answering-machine detection (AMD) on the first seconds of an answered call (sans-IO).

Frames in (20 ms, 8 kHz, counted from the moment we start listening), at most two events out:
a ``Verdict`` (a person or a machine answered) and, after a machine verdict, a ``MessageCue``
(the machine now records: the beep has ended, or it went quiet without one)::

    silence --speech (min_word_ms)--> greeting
    greeting --after_greeting_silence_ms of silence--> HUMAN   ("Hello?", then they wait)
    greeting --longer than max_greeting_ms--> MACHINE          (a recorded greeting goes on)
    silence for initial_silence_ms, nothing said --> HUMAN     (someone listening, silent)
    a beep at any point before the verdict --> MACHINE, and the cue at once
    MACHINE --beep ends / message_silence_ms quiet / max_wait_ms--> MessageCue

Why this and not Asterisk's AMD() (app_amd, which the test-bed root has): AMD() runs in the
dialplan, before Stasis, so an originated call would have to pass through a context the
operator adds; it returns at its verdict and does not wait for the beep, so the beep needs a
detector here anyway; and with its defaults (greeting 1.5 s, at most 2 words) it calls a
person who says "Yes, this is Sam speaking." a machine. bench/bench_amd.py measures both on
the same 17 generated greetings: AMD() 13 right (4 of 9 people taken for machines), decided
1.8 s after the answer (median); this detector 14 right by timing alone (3.4 s), 16 with the
greeting's words (greeting_words.py, voice/machine.py). It runs on the audio the call
already streams to us, costs ~20-30 us of CPU per 20 ms frame, and its thresholds are ours.

Its limits are those of every timing detector, which the words only narrow: a person who
answers with a long sentence and no telling phrase ("Hello, this is Maria from the front
desk, what can I do for you today?") is heard as a machine; a short greeting without a
voicemail phrase or a beep, then a pause, as a person.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from ari_offload.audio import FRAME_SAMPLES, SAMPLE_RATE, Pcm
from ari_offload.speech.vad import DEFAULT_SPEECH_LEVEL_DBFS, FrameClassifier, frame_level_dbfs
from ari_offload.voice.tone import Beep, ToneParams, ToneTracker

FRAME_MS = FRAME_SAMPLES * 1000 // SAMPLE_RATE
# On bench/bench_amd.py's greetings people's openings are 0.3-1.8 s but for two long business
# ones (3.7-3.8 s); machines' greetings 1.8-10 s, those under 3 s with a beep or a voicemail
# phrase. Its sweep (timing alone): 2 s decides 1 s sooner, right as often there, but leaves
# a person's "Hello, this is Sam Parker speaking." (~2 s) no margin; 4 s misses a machine and
# decides later. 3 s, with the words to settle what the length gets wrong.
DEFAULT_MAX_GREETING_MS = 3000
# Longer than the pauses between a recorded greeting's sentences (0.3-0.7 s), short enough
# that a person who said "Hello?" is not left waiting long.
DEFAULT_AFTER_GREETING_SILENCE_MS = 900
DEFAULT_INITIAL_SILENCE_MS = 4000
DEFAULT_MIN_WORD_MS = 100  # a click or a breath is not a greeting
# After a machine verdict: no beep, but this much quiet after the greeting: it records.
DEFAULT_MESSAGE_SILENCE_MS = 2000
# ... and whatever it does, the message is left this long after we started listening.
DEFAULT_MAX_WAIT_MS = 30_000
# The greeting's audio as a transcriber gets it: from a little before its first word (the
# onset is below the VAD) to a little after the last one heard.
GREETING_PRE_ROLL_MS, GREETING_POST_ROLL_MS = 200, 100


class AnsweredBy(StrEnum):
    HUMAN = "human"
    MACHINE = "machine"


@dataclass(frozen=True)
class AmdParams:
    max_greeting_ms: int = DEFAULT_MAX_GREETING_MS
    after_greeting_silence_ms: int = DEFAULT_AFTER_GREETING_SILENCE_MS
    initial_silence_ms: int = DEFAULT_INITIAL_SILENCE_MS
    min_word_ms: int = DEFAULT_MIN_WORD_MS
    message_silence_ms: int = DEFAULT_MESSAGE_SILENCE_MS
    max_wait_ms: int = DEFAULT_MAX_WAIT_MS
    speech_level_dbfs: float = DEFAULT_SPEECH_LEVEL_DBFS
    tone: ToneParams = field(default_factory=ToneParams)

    def __post_init__(self) -> None:
        if min(self.max_greeting_ms, self.after_greeting_silence_ms, self.min_word_ms) <= 0:
            raise ValueError("max_greeting_ms, after_greeting_silence_ms, min_word_ms: > 0")
        if self.max_wait_ms < self.max_greeting_ms:
            raise ValueError("max_wait_ms must be at least max_greeting_ms")


@dataclass(frozen=True)
class Verdict:
    answered_by: AnsweredBy
    cause: str  # for people: "greeting of 0.6 s, then silence"
    at_ms: int  # audio time of the decision, from the first frame fed
    greeting_ms: int  # from the first word to the last heard so far (0: none)


@dataclass(frozen=True)
class MessageCue:
    """Leave the message now: the machine records."""

    cause: str  # "beep" (its end), "silence" (no beep came), "timeout"
    at_ms: int
    beep: Beep | None = None


AmdEvent = Verdict | MessageCue


class MachineDetector:
    """Feed frames; ``classifier`` labels a frame voiced (a VAD engine's, or a test's)."""

    def __init__(self, classifier: FrameClassifier, params: AmdParams | None = None) -> None:
        self.params = params or AmdParams()
        self._is_speech = classifier
        self._tones = ToneTracker(self.params.tone)
        self._samples = 0
        self._word_start: int | None = None  # a voiced run not yet long enough to be a word
        self._greeting_start: int | None = None
        self._last_voice = 0  # sample where the last voiced frame ended
        # (start sample, frame): enough to hand a transcriber the greeting at the verdict
        keep = (self.params.max_greeting_ms + 3000) // FRAME_MS
        self._recent: collections.deque[tuple[int, Pcm]] = collections.deque(maxlen=keep)
        self.verdict: Verdict | None = None
        self.cue: MessageCue | None = None

    @property
    def heard_ms(self) -> int:
        return self._ms(self._samples)

    @property
    def greeting_ms(self) -> int:
        """From the greeting's first word to its last heard so far (0: nobody spoke)."""
        return self._greeting_ms()

    @property
    def greeting_end(self) -> int:
        """The sample where the greeting heard so far ends (grows while it goes on)."""
        return self._last_voice

    @property
    def quiet_ms(self) -> int:
        """Silence since the last voiced frame (all of it, if nobody spoke)."""
        return self._ms(self._samples - self._last_voice)

    def feed(self, frame: Pcm) -> list[AmdEvent]:
        """One 20 ms frame (silence for a gap in the stream); the events it completes.

        After a person's verdict it still follows their voice (``quiet_ms``), silently."""
        if self.cue is not None:
            return []  # the machine records: nothing more to say
        start = self._samples
        self._samples += len(frame)
        self._recent.append((start, frame))
        beep = self._tones.feed(frame)
        voiced = (
            not self._tones.tonal
            and frame_level_dbfs(frame) >= self.params.speech_level_dbfs
            and self._is_speech(frame)
        )
        if voiced:
            self._voice(start)
        else:
            self._word_start = None
        if self.verdict is not None and self.verdict.answered_by == AnsweredBy.HUMAN:
            return []
        if beep is not None:
            return self._beep(beep)
        if self.verdict is None:
            return self._decide()
        return self._wait_for_recording()

    def _voice(self, start: int) -> None:
        self._last_voice = self._samples
        if self._greeting_start is not None:
            return
        if self._word_start is None:
            self._word_start = start
        if self._ms(self._samples - self._word_start) >= self.params.min_word_ms:
            self._greeting_start = self._word_start

    def _beep(self, beep: Beep) -> list[AmdEvent]:
        events: list[AmdEvent] = []
        if self.verdict is None:
            events.append(self._set_verdict(AnsweredBy.MACHINE, f"a {beep.hz:.0f} Hz beep"))
        events.append(self._set_cue("beep", beep))
        return events

    def _decide(self) -> list[AmdEvent]:
        p = self.params
        if self._tones.tonal:
            return []  # a beep is no silence: its end decides
        if self._greeting_start is None:
            if self.heard_ms >= p.initial_silence_ms:
                return [self._set_verdict(AnsweredBy.HUMAN, "silence, no greeting")]
            return []
        greeting = self._greeting_ms()
        if greeting > p.max_greeting_ms:
            cause = f"a greeting longer than {p.max_greeting_ms / 1000:g} s"
            return [self._set_verdict(AnsweredBy.MACHINE, cause)]
        if self._ms(self._samples - self._last_voice) >= p.after_greeting_silence_ms:
            cause = f"a greeting of {greeting / 1000:.1f} s, then silence"
            return [self._set_verdict(AnsweredBy.HUMAN, cause)]
        return []

    def _wait_for_recording(self) -> list[AmdEvent]:
        p = self.params
        if self.heard_ms >= p.max_wait_ms:
            return [self._set_cue("timeout")]
        if self._tones.tonal:
            return []  # a beep: its end is the cue
        if self._ms(self._samples - self._last_voice) >= p.message_silence_ms:
            return [self._set_cue("silence")]
        return []

    def greeting_audio(self) -> Pcm:
        """The greeting heard so far (empty if nobody spoke), for a transcriber."""
        if self._greeting_start is None:
            return np.zeros(0, dtype=np.int16)
        first = self._greeting_start - GREETING_PRE_ROLL_MS * SAMPLE_RATE // 1000
        last = self._last_voice + GREETING_POST_ROLL_MS * SAMPLE_RATE // 1000
        frames = [frame for start, frame in self._recent if first <= start < last]
        return np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)

    def overrule(self, answered_by: AnsweredBy, cause: str) -> Verdict:
        """Replace the verdict (the greeting's words said otherwise), as of now; a machine
        verdict then waits for the machine to record as usual."""
        if self.verdict is None or self.cue is not None:
            raise RuntimeError("overrule a verdict before the cue, not before the verdict")
        return self._set_verdict(answered_by, cause)

    def _greeting_ms(self) -> int:
        if self._greeting_start is None:
            return 0
        return self._ms(self._last_voice - self._greeting_start)

    def _set_verdict(self, answered_by: AnsweredBy, cause: str) -> Verdict:
        self.verdict = Verdict(answered_by, cause, self.heard_ms, self._greeting_ms())
        return self.verdict

    def _set_cue(self, cause: str, beep: Beep | None = None) -> MessageCue:
        self.cue = MessageCue(cause, self.heard_ms, beep)
        return self.cue

    @staticmethod
    def _ms(samples: int) -> int:
        return samples * 1000 // SAMPLE_RATE
