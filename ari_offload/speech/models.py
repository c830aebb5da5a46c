"""Load the chosen speech engines once at startup, warm them up, and say what was loaded."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from typing import Any

from ari_offload.audio import SAMPLE_RATE, Pcm
from ari_offload.config import DEFAULT_TURN_END_SILENCE_MS, DEFAULT_TURN_THRESHOLD, SpeechSettings
from ari_offload.errors import ConfigError
from ari_offload.schema import MAX_SPEAKING_RATE, MIN_SPEAKING_RATE
from ari_offload.speech.engines import STT_ENGINES, TTS_ENGINES, TURN_ENGINES, VAD_ENGINES
from ari_offload.speech.scheduler import DEFAULT_WORKERS, CpuSeconds, Scheduler
from ari_offload.speech.stt import SttEngine, SttRunner
from ari_offload.speech.tts import TtsRunner, TtsVoice
from ari_offload.speech.turn_end import TurnEndGate, TurnEndModel
from ari_offload.speech.vad import VadEngine, VadParams, VadSegmenter, telephone_band

logger = logging.getLogger("ari_offload.speech")

MAX_PACED_RUNNERS = 64  # tts_for's kept (voice, rate) runners


class SpeechModels:
    """The loaded engines and their off-loop runners, shared by every call.

    ``voices``: the TTS engine's named voices, the default first. STT and every voice share
    ONE ``Scheduler`` of ``workers`` workers (scheduler.py): on 2 cores, a pool per stage
    runs 4 jobs at once and a final transcription shares the cores with a later sentence;
    one pool ranks them (bench/bench_scheduler.py measured both). ``cpu_seconds(call_id)``
    is a call's CPU time in speech work so far.
    ``turn_end``: the end-of-turn model (None: the VAD's silence alone ends a turn); every
    call's questions go through one thread of its own, so it costs one core at most.
    """

    def __init__(
        self,
        transcriber: SttEngine,
        voices: Sequence[TtsVoice],
        vad: VadEngine,
        vad_params: VadParams,
        workers: int = DEFAULT_WORKERS,
        seconds: dict[str, float] | None = None,
        turn_end: TurnEndModel | None = None,
        turn_end_silence_ms: int = DEFAULT_TURN_END_SILENCE_MS,
        turn_threshold: float = DEFAULT_TURN_THRESHOLD,
    ) -> None:
        if not voices:
            raise ConfigError("the TTS engine loaded no voice")
        self.transcriber = transcriber
        self.voices = {voice.name: voice for voice in voices}
        self.default_voice = voices[0].name
        self.vad = vad
        self.vad_params = vad_params
        self.seconds = seconds or {}  # stt_load, stt_warmup, tts_load, tts_warmup
        self.scheduler = Scheduler(workers)
        self.stt = SttRunner(transcriber, scheduler=self.scheduler)
        self._runners = {
            name: TtsRunner(voice, scheduler=self.scheduler) for name, voice in self.voices.items()
        }
        self._unknown_voices: set[str] = set()
        # tts_for's runners beyond the voices' own: (voice, speaking rate, sample rate)
        self._paced: dict[tuple[str, float, int], TtsRunner] = {}
        self.turn_end = turn_end
        self._turn_end_silence_ms = turn_end_silence_ms
        self._turn_threshold = turn_threshold
        # The one place turn-end inference leaves the loop (a scheduler may take it over).
        self._turn_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="turn-end")

    @property
    def synthesizer(self) -> TtsVoice:
        """The default voice."""
        return self.voices[self.default_voice]

    @property
    def tts(self) -> TtsRunner:
        """The default voice's runner (fixed texts outside a conversation, apologies)."""
        return self._runners[self.default_voice]

    def tts_for(
        self, voice: str | None, rate: float | None = None, sample_rate: int = SAMPLE_RATE
    ) -> TtsRunner:
        """An agent's voice (None: the default) at its speaking rate (None: the voice's own
        pace), speaking at ``sample_rate`` (the call's media port's). One the server lost
        since the API accepted it (a voice removed from the settings) speaks with the
        default, noted once.

        A rate is the voice's ``at_rate`` view over the same loaded model, made once per
        (voice, rate, sample rate) and kept; past ``MAX_PACED_RUNNERS`` of them the kept ones
        are dropped (each is small: stored agents name few rates, a flood of distinct ones
        costs no memory).
        """
        name = self._known_voice(voice)
        if rate is None or rate == 1.0:
            if sample_rate == SAMPLE_RATE:
                return self._runners[name]
            rate = 1.0
        rate = min(max(rate, MIN_SPEAKING_RATE), MAX_SPEAKING_RATE)  # the API's bounds
        runner = self._paced.get((name, rate, sample_rate))
        if runner is None:
            if len(self._paced) >= MAX_PACED_RUNNERS:
                self._paced.clear()
            paced = self.voices[name] if rate == 1.0 else self.voices[name].at_rate(rate)
            runner = TtsRunner(paced, scheduler=self.scheduler, sample_rate=sample_rate)
            self._paced[name, rate, sample_rate] = runner
        return runner

    def _known_voice(self, voice: str | None) -> str:
        if voice is None or voice in self._runners:
            return voice or self.default_voice
        if voice not in self._unknown_voices:
            self._unknown_voices.add(voice)
            logger.warning("no voice %r here; using %r", voice, self.default_voice)
        return self.default_voice

    def cpu_seconds(self, call_id: str) -> CpuSeconds:
        """CPU seconds a call's speech jobs took so far (``stt``, ``tts``; scheduler.py)."""
        return self.scheduler.cpu_seconds(call_id)

    def release_call(self, call_id: str) -> CpuSeconds:
        """The call's conversation is over: its CPU counter, dropped from the scheduler."""
        return self.scheduler.forget(call_id)

    def voice_names(self) -> list[str]:
        return list(self.voices)

    def languages(self) -> list[str]:
        return list(self.transcriber.languages)

    def new_segmenter(self, sample_rate: int = SAMPLE_RATE) -> VadSegmenter:
        """One per call: a segmenter holds the state of one audio stream, at ``sample_rate``
        (the call's media port's). The VAD engine labels its frames' telephone band: the
        engines and their settings were tuned and measured at 8 kHz."""
        classifier = self.vad.new_classifier()
        engine_rate = self.vad_params.sample_rate
        if sample_rate == engine_rate:
            return VadSegmenter(self.vad_params, classifier)
        params = replace(self.vad_params, sample_rate=sample_rate)
        return VadSegmenter(params, telephone_band(classifier, sample_rate, engine_rate))

    def new_turn_gate(self) -> TurnEndGate | None:
        """One per call, beside its segmenter; None without a turn-end model."""
        if self.turn_end is None:
            return None
        return TurnEndGate(self._turn_end_silence_ms, self._turn_threshold)

    async def turn_probability(self, audio: Pcm, sample_rate: int = SAMPLE_RATE) -> float:
        """The turn-end model's answer about ``audio``, computed off the event loop."""
        if self.turn_end is None:
            raise RuntimeError("no turn-end model is loaded")
        loop = asyncio.get_running_loop()
        model = self.turn_end
        return await loop.run_in_executor(self._turn_pool, model.probability, audio, sample_rate)

    def describe(self) -> dict[str, Any]:
        """What `ari-offload doctor` prints: each engine's own description, load and warmup."""
        return {
            "stt": {
                **self.transcriber.describe(),
                "load_s": self.seconds.get("stt_load"),
                "warmup_s": self.seconds.get("stt_warmup"),
            },
            "tts": {
                "engine": self.synthesizer.describe()["engine"],
                "default_voice": self.default_voice,
                "voices": [voice.describe() for voice in self.voices.values()],
                "load_s": self.seconds.get("tts_load"),
                "warmup_s": self.seconds.get("tts_warmup"),
            },
            "vad": {**self.vad.describe(), **asdict(self.vad_params)},
            "turn": self._describe_turn(),
        }

    def _describe_turn(self) -> dict[str, Any]:
        if self.turn_end is None:
            return {"engine": "silence", "summary": "the VAD endpoint alone"}
        return {
            **self.turn_end.describe(),
            "end_silence_ms": self._turn_end_silence_ms,
            "max_silence_ms": self.vad_params.endpoint_silence_ms,
            "threshold": self._turn_threshold,
            "warmup_s": self.seconds.get("turn_warmup"),
        }

    def close(self) -> None:
        # Joined, not left running: an inference still in a worker while the interpreter
        # exits can crash it in native code (seen as SIGSEGV on SIGTERM under load).
        self.scheduler.shutdown(wait=True)
        self._turn_pool.shutdown(wait=False, cancel_futures=True)


def describe_models(settings: SpeechSettings) -> list[str]:
    """Load the models as `serve` would and describe them, one line per engine and voice."""
    models = load_speech_models(settings)
    try:
        return describe_lines(models.describe())
    finally:
        models.close()


def describe_lines(info: dict[str, Any]) -> list[str]:
    stt, tts, vad, turn = info["stt"], info["tts"], info["vad"], info["turn"]
    lines = [
        f"stt  {stt['engine']}: {stt['summary']};"
        f" load {stt['load_s']:.2f} s, warmup {stt['warmup_s']:.2f} s",
        f"tts  {tts['engine']}: {len(tts['voices'])} voice(s), default {tts['default_voice']};"
        f" load {tts['load_s']:.2f} s, warmup {tts['warmup_s']:.2f} s",
    ]
    lines += [f"tts  {voice['engine']}: {voice['summary']}" for voice in tts["voices"]]
    lines.append(
        f"vad  {vad['engine']}: {vad['summary']}, min speech {vad['min_speech_ms']} ms,"
        f" pause {vad['pause_ms']} ms, endpoint {vad['endpoint_silence_ms']} ms"
    )
    if turn["engine"] == "silence":
        lines.append(f"turn silence: {turn['summary']}")
    else:
        lines.append(
            f"turn {turn['engine']}: {turn['summary']}, asked after {turn['end_silence_ms']} ms"
            f" of silence, finished at >= {turn['threshold']}, else the endpoint;"
            f" warmup {turn['warmup_s']:.2f} s"
        )
    return lines


def vad_params_from(settings: SpeechSettings) -> VadParams:
    """The VAD's; with a turn-end model, its endpoint is the long silence (the model ends a
    finished turn sooner)."""
    with_model = settings.turn_engine != "silence"
    endpoint = settings.turn_max_silence_ms if with_model else settings.endpoint_silence_ms
    if with_model and not settings.pause_ms <= settings.turn_end_silence_ms < endpoint:
        raise ConfigError(
            "ARI_OFFLOAD_SPEECH_TURN_END_SILENCE_MS must be >= ARI_OFFLOAD_SPEECH_PAUSE_MS and"
            f" < ARI_OFFLOAD_SPEECH_TURN_MAX_SILENCE_MS ({settings.turn_end_silence_ms},"
            f" {settings.pause_ms}, {endpoint})"
        )
    try:
        return VadParams(
            aggressiveness=settings.vad_aggressiveness,
            min_speech_ms=settings.min_speech_ms,
            endpoint_silence_ms=endpoint,
            pause_ms=settings.pause_ms,
        )
    except ValueError as exc:
        raise ConfigError(f"ARI_OFFLOAD_SPEECH_* VAD settings: {exc}") from None


def load_speech_models(
    settings: SpeechSettings,
    workers: int = DEFAULT_WORKERS,
) -> SpeechModels:
    """Load the engines settings name, warm them up; ConfigError for a bad setting (checked
    before anything loads), ModelError for a bad model path."""
    vad_params = vad_params_from(settings)
    load_stt = STT_ENGINES.get(settings.stt_engine)
    load_tts = TTS_ENGINES.get(settings.tts_engine)
    vad = VAD_ENGINES.get(settings.vad_engine)(settings, vad_params)
    load_turn = TURN_ENGINES.get(settings.turn_engine)
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    # every worker of the shared scheduler may be transcribing at once: whisper's num_workers
    transcriber = load_stt(settings, workers)
    seconds["stt_load"] = time.perf_counter() - started
    _check_streaming(settings.stt_engine, transcriber)
    seconds["stt_warmup"] = _timed(transcriber.warmup)
    logger.info(
        "loaded STT %s in %.2f s (warmup %.2f s, %d workers)",
        transcriber.describe()["summary"], seconds["stt_load"], seconds["stt_warmup"],
        workers,
    )  # fmt: skip

    started = time.perf_counter()
    voices = load_tts(settings)
    seconds["tts_load"] = time.perf_counter() - started
    seconds["tts_warmup"] = sum(_timed(voice.warmup) for voice in voices)
    for voice in voices:
        logger.info("loaded TTS %s", voice.describe()["summary"])
    logger.info("TTS voices loaded in %.2f s (warmup %.2f s)", seconds["tts_load"],
                seconds["tts_warmup"])  # fmt: skip

    turn_end = load_turn(settings)
    if turn_end is not None:
        seconds["turn_warmup"] = _timed(turn_end.warmup)
        logger.info("loaded turn-end %s (warmup %.2f s)", turn_end.describe()["summary"],
                    seconds["turn_warmup"])  # fmt: skip
    return SpeechModels(
        transcriber, voices, vad, vad_params, workers, seconds,
        turn_end, settings.turn_end_silence_ms, settings.turn_threshold,
    )  # fmt: skip


def _check_streaming(name: str, engine: SttEngine) -> None:
    """A streaming engine opens its own stream per call: refuse one that cannot, at startup
    rather than on the first call (streaming.StreamingSttEngine)."""
    if getattr(engine, "streaming", False) and not callable(getattr(engine, "open_stream", None)):
        raise ConfigError(
            f"ARI_OFFLOAD_SPEECH_STT_ENGINE={name!r}: the engine says it is streaming but has"
            " no open_stream(runner, language, sample_rate)"
        )


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started
