"""Voice activity segmentation: 20 ms frames in, speech events out (sans-IO).

A VAD engine (silero_vad.py, webrtc_vad.py, chosen by name in engines.py) labels each frame
voiced or not; the state machine here, the same for every engine, turns labels into events::

    IDLE --min_speech_ms voiced--> SPEECH   emits SpeechStarted (also the barge-in trigger)
    SPEECH --pause_ms silence-->   paused   emits SpeechPaused (start STT speculatively)
    paused --voiced again-->       SPEECH   emits SpeechResumed (drop the speculative STT)
    SPEECH/paused --endpoint_silence_ms silence or max_utterance_ms--> IDLE  UtteranceEnded

Time is counted in samples of the stream fed so far; there is no clock. A label only flips
the state after ``flip_frames`` consecutive frames agree, so one noisy frame changes nothing.

Where speech ended is where the caller's voice did, not where the engine's label flipped: an
engine keeps labelling frames voiced after the last word (webrtcvad 60-140 ms, silero
100-160 ms), so inside an utterance a voiced frame counts as speech only if it is also loud
enough (``speech_level_dbfs``, or ``level_range_db`` below the utterance's loudest frame for
a quiet line, whichever is lower); on a line whose noise is louder than that, the label's
fall is the end. Pauses, the endpoint and every timing derived from them start at the
caller's last audible frame: what a caller waits for is counted from there. If no
SpeechResumed comes between a SpeechPaused and the UtteranceEnded that follows, both carry
the very same audio: a transcript started at the pause is the final one. Speech that goes on
past max_utterance_ms is cut there and continues as a new utterance (with a new
SpeechStarted).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ari_offload.audio import SAMPLE_RATE, Halver, Pcm
from ari_offload.config import (
    DEFAULT_ENDPOINT_SILENCE_MS,
    DEFAULT_MIN_SPEECH_MS,
    DEFAULT_PAUSE_MS,
    DEFAULT_VAD_AGGRESSIVENESS,
)

DEFAULT_FRAME_MS = 20
DEFAULT_PRE_ROLL_MS = 200
# Trailing audio kept after the last audible frame (the fading end of a word is below the
# gate). 40-200 ms give whisper the same words on 16 test sentences (espeak and piper); at
# most pause_ms, so the audio a speculative run hears at the pause is the final audio.
DEFAULT_POST_ROLL_MS = 80
# A voiced frame quieter than this (or than the loudest frame minus the range) is the label's
# hangover, not speech. -45 dBFS is also the speech gate of the wire measurement (bench/).
DEFAULT_SPEECH_LEVEL_DBFS = -45.0
DEFAULT_LEVEL_RANGE_DB = 25.0
_LEVEL_FLOOR = 1.0  # int16 RMS of digital silence, so its level is finite (-90 dBFS)
# Whisper sees at most 30 s; an utterance this long is cut and handed over anyway.
DEFAULT_MAX_UTTERANCE_MS = 15_000
DEFAULT_FLIP_FRAMES = 2

FrameClassifier = Callable[[Pcm], bool]


@dataclass(frozen=True)
class VadParams:
    aggressiveness: int = DEFAULT_VAD_AGGRESSIVENESS
    frame_ms: int = DEFAULT_FRAME_MS
    sample_rate: int = SAMPLE_RATE
    min_speech_ms: int = DEFAULT_MIN_SPEECH_MS
    endpoint_silence_ms: int = DEFAULT_ENDPOINT_SILENCE_MS
    pause_ms: int = DEFAULT_PAUSE_MS
    pre_roll_ms: int = DEFAULT_PRE_ROLL_MS
    post_roll_ms: int = DEFAULT_POST_ROLL_MS
    max_utterance_ms: int = DEFAULT_MAX_UTTERANCE_MS
    flip_frames: int = DEFAULT_FLIP_FRAMES
    speech_level_dbfs: float = DEFAULT_SPEECH_LEVEL_DBFS
    level_range_db: float = DEFAULT_LEVEL_RANGE_DB

    def __post_init__(self) -> None:
        if not 0 <= self.aggressiveness <= 3:
            raise ValueError(f"aggressiveness must be 0..3, got {self.aggressiveness}")
        if self.sample_rate not in (8000, 16000, 32000, 48000):
            raise ValueError(f"sample_rate must be 8000/16000/32000/48000, got {self.sample_rate}")
        if self.frame_ms not in (10, 20, 30):
            raise ValueError(f"frame_ms must be 10, 20 or 30, got {self.frame_ms}")
        if not 0 < self.pause_ms <= self.endpoint_silence_ms:
            raise ValueError(
                f"pause_ms must be > 0 and <= endpoint_silence_ms "
                f"({self.pause_ms} > {self.endpoint_silence_ms})"
            )
        if self.post_roll_ms > self.pause_ms:
            raise ValueError(f"post_roll_ms must be <= pause_ms ({self.post_roll_ms})")
        if self.flip_frames < 1 or self.min_speech_ms <= 0 or self.max_utterance_ms <= 0:
            raise ValueError("flip_frames, min_speech_ms and max_utterance_ms must be positive")
        if self.level_range_db <= 0:
            raise ValueError(f"level_range_db must be positive, got {self.level_range_db}")

    @property
    def frame_samples(self) -> int:
        return self.sample_rate * self.frame_ms // 1000

    def frames(self, ms: int) -> int:
        """How many whole frames cover ``ms`` milliseconds (at least one)."""
        return max(1, -(-ms // self.frame_ms))


@dataclass(frozen=True)
class SpeechStarted:
    start_sample: int  # first voiced sample of the speech


@dataclass(frozen=True, eq=False)
class SpeechPaused:
    audio_so_far: Pcm  # int16, pre-roll + speech + post-roll, as UtteranceEnded would
    at_sample: int  # where the silence began


@dataclass(frozen=True)
class SpeechResumed:
    at_sample: int  # first voiced sample after the pause


@dataclass(frozen=True, eq=False)
class UtteranceEnded:
    audio: Pcm  # int16: exactly the stream's samples [start_sample, end_sample)
    start_sample: int
    end_sample: int


VadEvent = SpeechStarted | SpeechPaused | SpeechResumed | UtteranceEnded


class VadEngine(Protocol):
    """A frame classifier factory: what engines.py builds by name and doctor describes."""

    def new_classifier(self) -> FrameClassifier:
        """One per audio stream: a classifier may keep state between frames."""
        ...

    def describe(self) -> dict[str, Any]:
        """``engine`` (its registry name), ``summary`` (one line for doctor), and details."""
        ...


def telephone_band(
    classifier: FrameClassifier, stream_rate: int, engine_rate: int
) -> FrameClassifier:
    """``classifier`` (made for ``engine_rate`` frames) labelling frames of a stream at twice
    that rate (a 16 kHz wideband port) by their lower half band; one per stream."""
    if stream_rate != 2 * engine_rate:
        raise ValueError(f"no VAD for {stream_rate} Hz frames from one for {engine_rate} Hz")
    halver = Halver()

    def is_speech(frame: Pcm) -> bool:
        return classifier(halver.process(frame))

    return is_speech


class VadSegmenter:
    """Feed frames, get events; ``classifier`` labels each frame (a VadEngine's, or a test's)."""

    def __init__(self, params: VadParams, classifier: FrameClassifier) -> None:
        self.params = params
        self._is_speech = classifier
        self._frame = params.frame_samples
        self._pre_roll = params.frames(params.pre_roll_ms)
        self._peak_level: float = -math.inf  # the loudest voiced frame since idle (dBFS)
        self.reset()

    @property
    def in_speech(self) -> bool:
        return self._speaking

    @property
    def samples_fed(self) -> int:
        return self._samples

    @property
    def silence_ms(self) -> int:
        """How long the caller has been quiet in the current utterance (0 outside speech or
        while voiced): what a turn-end model's gate counts (speech/turn_end.py)."""
        if not self._speaking or self._voiced_run:
            return 0
        return self._silence_run * self.params.frame_ms

    def end_now(self) -> UtteranceEnded | None:
        """End the utterance here, before the endpoint silence, if the caller is quiet now
        (a turn-end model judged it finished); None, changing nothing, if not.

        The audio is what the endpoint would have cut (speech plus post-roll), so a
        speculative transcript of the pause is the final one here too.
        """
        if self.silence_ms == 0:
            return None
        return self._end_utterance()

    def reset(self) -> None:
        """Forget everything, as if no audio had been fed (sample count restarts at 0)."""
        self._samples = 0
        self._go_idle()

    def feed(self, frame: Pcm) -> list[VadEvent]:
        if frame.dtype != np.int16 or frame.shape != (self._frame,):
            raise ValueError(
                f"expected an int16 frame of {self._frame} samples, "
                f"got {frame.dtype} with shape {frame.shape}"
            )
        start = self._samples
        self._samples += self._frame
        self._frames.append(frame.copy())
        voiced = self._is_speech(frame)
        level = frame_level_dbfs(frame)
        self._peak_level = max(self._peak_level, level) if voiced else self._peak_level
        if self._speaking:
            return self._feed_speech(voiced and self._audible(level), start)
        return self._feed_idle(voiced, start)

    def _audible(self, level: float) -> bool:
        """Loud enough to be the caller's voice rather than the engine's hangover."""
        p = self.params
        return bool(level >= min(p.speech_level_dbfs, self._peak_level - p.level_range_db))

    # -- idle: look for min_speech_ms of voiced frames ------------------------------------

    def _go_idle(self) -> None:
        self._speaking = False
        self._frames: collections.deque[Pcm] = collections.deque()
        self._first_sample = self._samples  # stream position of self._frames[0]
        self._candidate: int | None = None  # start sample of a possible speech start
        self._voiced = 0  # voiced frames since the candidate start
        self._unvoiced_run = 0
        self._paused = False
        self._silence_run = 0  # frames since the last voiced run (isolated blips included)
        self._voiced_run = 0  # consecutive voiced frames while in silence
        self._speech_end = 0  # sample where the last voiced run ended
        self._peak_level = -math.inf

    def _feed_idle(self, voiced: bool, start: int) -> list[VadEvent]:
        p = self.params
        if voiced:
            if self._candidate is None:
                self._candidate = start
            self._voiced += 1
            self._unvoiced_run = 0
        elif self._candidate is not None:
            self._unvoiced_run += 1
            if self._unvoiced_run >= p.flip_frames:  # a real gap, not one noisy frame
                self._candidate, self._voiced = None, 0
        if self._candidate is not None and self._voiced * p.frame_ms >= p.min_speech_ms:
            return self._start_speech(self._candidate)
        self._trim_idle_buffer()
        return []

    def _trim_idle_buffer(self) -> None:
        keep_from = self._samples - self._pre_roll * self._frame
        if self._candidate is not None:
            keep_from = min(keep_from, self._candidate - self._pre_roll * self._frame)
        while self._first_sample < keep_from:
            self._frames.popleft()
            self._first_sample += self._frame

    def _start_speech(self, speech_start: int) -> list[VadEvent]:
        self._speaking = True
        self._speech_end = self._samples
        self._trim_idle_buffer()
        return [SpeechStarted(speech_start)]

    # -- speech: count silence, report pauses and the endpoint ----------------------------

    def _feed_speech(self, voiced: bool, start: int) -> list[VadEvent]:
        p = self.params
        events: list[VadEvent] = []
        if voiced and self._silence_run == 0:
            self._speech_end = self._samples
        elif voiced:
            self._voiced_run += 1
            self._silence_run += 1
            if self._voiced_run >= p.flip_frames:  # speech is back, not a blip
                resumed_at = start - (self._voiced_run - 1) * self._frame
                self._silence_run = self._voiced_run = 0
                self._speech_end = self._samples
                if self._paused:
                    self._paused = False
                    events.append(SpeechResumed(resumed_at))
        else:
            self._voiced_run = 0
            self._silence_run += 1
        silence_ms = self._silence_run * p.frame_ms
        if silence_ms >= p.endpoint_silence_ms or self._utterance_ms() >= p.max_utterance_ms:
            events.append(self._end_utterance())
        elif silence_ms >= p.pause_ms and not self._paused:
            self._paused = True
            audio, _ = self._utterance_audio()
            events.append(SpeechPaused(audio, self._speech_end))
        return events

    def _utterance_ms(self) -> int:
        return (self._samples - self._first_sample) * 1000 // self.params.sample_rate

    def _utterance_audio(self) -> tuple[Pcm, int]:
        """Buffered audio up to the end of speech plus post-roll, and its end sample."""
        post = self.params.post_roll_ms * self.params.sample_rate // 1000
        end = min(self._speech_end + post, self._samples)
        audio: Pcm = np.concatenate(self._frames)[: end - self._first_sample]
        return audio, end

    def _end_utterance(self) -> UtteranceEnded:
        audio, end = self._utterance_audio()
        event = UtteranceEnded(audio, self._first_sample, end)
        self._go_idle()
        return event


def frame_level_dbfs(frame: Pcm) -> float:
    """A frame's RMS level in dBFS (digital silence: about -90)."""
    rms = float(np.sqrt(np.mean(np.square(frame, dtype=np.float64))))
    return 20.0 * math.log10(max(rms, _LEVEL_FLOOR) / 32768.0)
