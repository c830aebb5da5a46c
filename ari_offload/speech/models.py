"""Load the speech engines once at startup, warm them up, and say what was loaded."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ari_offload.config import SpeechSettings
from ari_offload.errors import ConfigError
from ari_offload.speech.stt import DEFAULT_STT_WORKERS, SttRunner, Transcriber, WhisperTranscriber
from ari_offload.speech.tts import DEFAULT_TTS_WORKERS, PiperSynthesizer, Synthesizer, TtsRunner
from ari_offload.speech.vad import VadParams, VadSegmenter

logger = logging.getLogger("ari_offload.speech")


@dataclass
class SpeechModels:
    """The loaded engines, their off-loop runners, and the VAD parameters for each call."""

    transcriber: Transcriber
    synthesizer: Synthesizer
    vad_params: VadParams
    stt: SttRunner
    tts: TtsRunner
    seconds: dict[str, float] = field(default_factory=dict)  # stt_load, stt_warmup, ...

    def new_segmenter(self) -> VadSegmenter:
        """One per call: a segmenter holds the state of one audio stream."""
        return VadSegmenter(self.vad_params)

    def describe(self) -> dict[str, Any]:
        """What `ari-offload doctor` prints: engines, paths, sizes, load and warmup times."""
        return {
            "stt": {
                "engine": "faster-whisper",
                **_paths(self.transcriber, "model_dir"),
                "threads": getattr(self.transcriber, "threads", None),
                "language": getattr(self.transcriber, "language", None),
                "options": getattr(self.transcriber, "decode_options", None),
                "load_s": self.seconds.get("stt_load"),
                "warmup_s": self.seconds.get("stt_warmup"),
            },
            "tts": {
                "engine": "piper",
                **_paths(self.synthesizer, "voice_path", "config_path"),
                "sample_rate": getattr(self.synthesizer, "sample_rate", None),
                "load_s": self.seconds.get("tts_load"),
                "warmup_s": self.seconds.get("tts_warmup"),
            },
            "vad": {"engine": "webrtcvad", **asdict(self.vad_params)},
        }

    def close(self) -> None:
        self.stt.close()
        self.tts.close()


def describe_models(settings: SpeechSettings) -> list[str]:
    """Load the models as `serve` would and describe them, one line per engine (doctor)."""
    models = load_speech_models(settings)
    try:
        return describe_lines(models.describe())
    finally:
        models.close()


def describe_lines(info: dict[str, Any]) -> list[str]:
    stt, tts, vad = info["stt"], info["tts"], info["vad"]
    return [
        f"stt  {stt['engine']} {stt.get('model_dir')} ({stt.get('model_bytes', 0) / 1e6:.0f} MB)"
        f" load {stt['load_s']:.2f} s, warmup {stt['warmup_s']:.2f} s,"
        f" {stt['threads']} threads, language {stt['language']}",
        f"tts  {tts['engine']} {tts.get('voice_path')} ({tts.get('voice_bytes', 0) / 1e6:.0f} MB,"
        f" {tts['sample_rate']} Hz) load {tts['load_s']:.2f} s, warmup {tts['warmup_s']:.2f} s",
        f"vad  {vad['engine']} aggressiveness {vad['aggressiveness']}, min speech"
        f" {vad['min_speech_ms']} ms, pause {vad['pause_ms']} ms,"
        f" endpoint {vad['endpoint_silence_ms']} ms",
    ]


def _paths(engine: object, *names: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        path = getattr(engine, name, None)
        if isinstance(path, Path):
            out[name] = str(path)
            out[f"{name.removesuffix('_path').removesuffix('_dir')}_bytes"] = _size(path)
    return out


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    return path.stat().st_size if path.exists() else 0


def vad_params_from(settings: SpeechSettings) -> VadParams:
    try:
        return VadParams(
            aggressiveness=settings.vad_aggressiveness,
            min_speech_ms=settings.min_speech_ms,
            endpoint_silence_ms=settings.endpoint_silence_ms,
            pause_ms=settings.pause_ms,
        )
    except ValueError as exc:
        raise ConfigError(f"ARI_OFFLOAD_SPEECH_* VAD settings: {exc}") from None


def load_speech_models(
    settings: SpeechSettings,
    stt_workers: int = DEFAULT_STT_WORKERS,
    tts_workers: int = DEFAULT_TTS_WORKERS,
) -> SpeechModels:
    """Load whisper and piper from local paths, warm both up; ModelError names a bad path."""
    vad_params = vad_params_from(settings)
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    transcriber = WhisperTranscriber(
        settings.whisper_model_dir, settings.stt_threads, settings.stt_language, stt_workers
    )
    seconds["stt_load"] = time.perf_counter() - started
    seconds["stt_warmup"] = _timed(transcriber.warmup)
    logger.info(
        "loaded Whisper %s in %.2f s (warmup %.2f s, %d threads, %d workers)",
        transcriber.model_dir,
        seconds["stt_load"],
        seconds["stt_warmup"],
        settings.stt_threads,
        stt_workers,
    )

    started = time.perf_counter()
    synthesizer = PiperSynthesizer(settings.piper_voice)
    seconds["tts_load"] = time.perf_counter() - started
    seconds["tts_warmup"] = _timed(synthesizer.warmup)
    logger.info(
        "loaded Piper voice %s in %.2f s (warmup %.2f s, %d Hz)",
        synthesizer.voice_path,
        seconds["tts_load"],
        seconds["tts_warmup"],
        synthesizer.sample_rate,
    )
    return SpeechModels(
        transcriber=transcriber,
        synthesizer=synthesizer,
        vad_params=vad_params,
        stt=SttRunner(transcriber, workers=stt_workers),
        tts=TtsRunner(synthesizer, workers=tts_workers),
        seconds=seconds,
    )


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started
