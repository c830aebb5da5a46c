"""End of turn: is the caller done, or only pausing mid-sentence? A model on top of the VAD.

The VAD alone ends an utterance after a fixed silence: short enough to answer quickly, it
cuts a caller who pauses to read out a number ("my order number is ... four five six
seven") in two; long enough not to, every reply waits for it. With a turn-end engine the
VAD endpoint is the long silence (``turn_max_silence_ms``), and after a short one
(``turn_end_silence_ms``) the model is asked; "finished" ends the utterance right there::

    caller quiet turn_end_silence_ms  -> ask the model about the utterance so far (off-loop)
    model: finished, caller still quiet -> VadSegmenter.end_now(): an UtteranceEnded as usual
    model: not finished                 -> wait: speech resumes, or the long endpoint ends it
    speech resumes while it runs        -> its answer is dropped

A second, free vote comes from the speculative transcript of the same audio (STT starts at
the pause anyway, and the reply cannot start before it): a transcript that trails off
("My order number is...") or ends on a word no sentence ends on ("I would like to") is not
finished, whatever the audio model says. The synthetic voices of the test bed end every
fragment with a sentence's falling pitch, where smart-turn hears "finished" (see
bench/bench_turn_end.py); real callers' prosody is what it was trained on.

``TurnEndGate`` holds that decision (sans-IO, fed VAD events, the silence per frame and the
answers); ``SmartTurnModel`` is the "smart-turn" engine: smart-turn v3.2 (pipecat, BSD-2),
an ONNX Whisper-encoder classifier of the last 8 s at 16 kHz.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ari_offload.audio import SAMPLE_RATE, Pcm, resample_float, to_float32
from ari_offload.config import SpeechSettings
from ari_offload.errors import ModelError
from ari_offload.speech.vad import SpeechPaused, VadEvent

SMART_TURN_FILE = "smart-turn-v3.2-cpu.onnx"
SMART_TURN_SOURCE = "pipecat-ai==1.14.0"  # scripts/install-turn-model takes it from this wheel
SMART_TURN_RATE = 16_000
SMART_TURN_SECONDS = 8  # the model's window: the end of the audio, zero-padded at the start
# onnxruntime threads per inference: one, as pipecat runs it; the call's STT has the others.
SMART_TURN_THREADS = 1

# Words an English sentence seldom ends on: a transcript ending on one was cut mid-thought.
# Conservative (no "you", "for", "with": "thank you", "what is it for?"): a wrong "not yet"
# only makes the caller wait the long silence, a wrong "done" cuts them off.
_DANGLING = frozenset(
    ("a", "an", "the", "my", "your", "our", "their", "its", "to", "of", "is", "are", "was",
     "were", "and", "or", "but", "because", "if", "than", "um", "uh", "er", "i'm", "it's")
)  # fmt: skip
_LAST_WORD = re.compile(r"([\w']+)\W*$")


class TurnEndModel(Protocol):
    """An end-of-turn classifier, loaded once and shared by every call (one thread at a time
    runs it: models.py's turn pool)."""

    def probability(self, pcm: Pcm, sample_rate: int = SAMPLE_RATE) -> float:
        """Blocking: how likely the caller is done after ``pcm`` (int16 at ``sample_rate``:
        the utterance so far, speech and a little silence). 0..1."""
        ...

    def warmup(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        """``engine`` (its registry name), ``summary`` (one line for doctor), and details."""
        ...


def transcript_unfinished(text: str) -> bool:
    """The words trail off ("...") or end on one no sentence ends on ("I would like to")."""
    stripped = text.strip()
    if not stripped:
        return False  # no words: nothing to wait for
    if stripped.endswith(("...", "…", ",", "-")):
        return True
    match = _LAST_WORD.search(stripped.lower())
    return match is not None and match.group(1) in _DANGLING


class TurnEndGate:
    """When to ask the turn-end model, and whether its answer may still end the utterance.

    One question per pause: the first frame with ``ask_after_ms`` of silence asks, about the
    audio of the last SpeechPaused. Any voiced frame (or the end of the utterance) starts a
    new pause, which makes an answer to the old one stale.
    """

    def __init__(self, ask_after_ms: int, threshold: float) -> None:
        self.ask_after_ms = ask_after_ms
        self.threshold = threshold
        self.pause = 0  # which pause a question is about
        self._asked = False
        self._audio: Pcm | None = None

    def vad(self, event: VadEvent) -> None:
        if isinstance(event, SpeechPaused):
            self._audio = event.audio_so_far

    def frame(self, silence_ms: int) -> Pcm | None:
        """After each caller frame: the audio to ask about now, or None."""
        if silence_ms == 0:
            if self._asked:
                self.pause += 1
                self._asked = False
            return None
        if self._asked or silence_ms < self.ask_after_ms or self._audio is None:
            return None
        self._asked = True
        return self._audio

    def finished(self, pause: int, probability: float, transcript: str | None = None) -> bool:
        """The answer about ``pause``: True if the utterance should end now. ``transcript``:
        the speculative STT of the same audio, if there is one."""
        if pause != self.pause or not self._asked or probability < self.threshold:
            return False
        return transcript is None or not transcript_unfinished(transcript)


class SmartTurnModel:
    """smart-turn v3.2 on onnxruntime's CPU provider. Loads in the constructor (ModelError).

    Preprocessing as pipecat's LocalSmartTurnAnalyzerV3: 16 kHz, the last 8 s zero-padded
    at the start, waveform normalized to zero mean and unit variance, Whisper log-mel (80
    mels, 25 ms window, 10 ms hop: 80 x 800); one sigmoid output, "finished" above 0.5.
    The telephone's 8 kHz is upsampled first: smart-turn misjudges audio it sees at 8 kHz.
    """

    def __init__(self, path: Path | None = None, threads: int = SMART_TURN_THREADS) -> None:
        import onnxruntime
        from faster_whisper.feature_extractor import FeatureExtractor

        self.path = path or default_turn_model_path()
        if not self.path.is_file():
            raise ModelError(
                f"smart-turn model {self.path} not found: run scripts/install-turn-model, set"
                " ARI_OFFLOAD_SPEECH_TURN_MODEL, or ARI_OFFLOAD_SPEECH_TURN_ENGINE=silence"
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        try:
            self._session = onnxruntime.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load smart-turn model {self.path}: {exc}") from exc
        self._input = self._session.get_inputs()[0].name  # "input_features"
        self._features = FeatureExtractor(chunk_length=SMART_TURN_SECONDS)
        self.threads = threads

    def features(self, pcm: Pcm, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        audio = resample_float(to_float32(pcm), sample_rate, SMART_TURN_RATE)
        window = SMART_TURN_RATE * SMART_TURN_SECONDS
        audio = audio[-window:] if audio.size > window else np.pad(audio, (window - audio.size, 0))
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
        mel = self._features(audio.astype(np.float32), padding=0)
        return np.asarray(mel, dtype=np.float32)[np.newaxis]

    def probability(self, pcm: Pcm, sample_rate: int = SAMPLE_RATE) -> float:
        (logits,) = self._session.run(None, {self._input: self.features(pcm, sample_rate)})
        return float(np.asarray(logits).reshape(-1)[0])

    def warmup(self) -> None:
        self.probability(np.zeros(SAMPLE_RATE, dtype=np.int16))

    def describe(self) -> dict[str, Any]:
        return {
            "engine": "smart-turn",
            "summary": f"{self.path.name} ({self.path.stat().st_size / 1e6:.1f} MB,"
            f" {self.threads} thread)",
            "model_path": str(self.path),
            "threads": self.threads,
        }


def default_turn_model_path() -> Path:
    """Where scripts/install-turn-model puts the model: beside the running venv."""
    return Path(sys.prefix) / "share" / "ari-offload" / SMART_TURN_FILE


def load_smart_turn(settings: SpeechSettings) -> SmartTurnModel:
    return SmartTurnModel(settings.turn_model)


def load_silence(settings: SpeechSettings) -> None:
    """The "silence" engine: no model; endpoint_silence_ms of silence ends a turn."""
    return None
