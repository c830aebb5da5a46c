"""Speech engine benchmark: model load, STT time per utterance, TTS first audio and RTF.

    .venv/bin/python bench/bench_speech.py [--repeat 5] [--compare]

Method: test utterances are spoken by piper (the bundled voice) and by espeak-ng, resampled
to 8 kHz and sent through a G.711 mu-law round trip, as a caller's audio would arrive. Each
utterance is transcribed ``--repeat`` times after a warmup; times are wall clock around the
blocking call. TTS is timed through TtsRunner.stream, as the call uses it: time to the first
sentence, and RTF = synthesis time / audio duration. ``--compare`` also times whisper
decoding settings against each other. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
import warnings
import wave
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ari_offload.audio import Pcm, resample_float, to_float32, to_int16
from ari_offload.config import SpeechSettings
from ari_offload.speech.models import SpeechModels, load_speech_models
from ari_offload.speech.stt import SttRunner
from ari_offload.speech.tts import TtsRunner
from ari_offload.speech.vad import UtteranceEnded, VadParams, VadSegmenter
from ari_offload.speech.webrtc_vad import webrtc_classifier
from ari_offload.speech.whisper import WhisperTranscriber
from bench.machine import describe

with warnings.catch_warnings():  # deprecated, still the reference G.711 on 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

os.environ.setdefault("HF_HUB_OFFLINE", "1")

UTTERANCES = {
    "short": "Yes, that's right.",
    "medium": "I need to reset my password.",
    "long": "Can you tell me what time the store opens on Saturday, and do I need an appointment?",
    "xlong": (
        "I ordered a blue jacket two weeks ago and it still has not arrived, the tracking "
        "page says it left the warehouse but nothing has changed since last Monday."
    ),
}
REPLIES = {
    "one sentence": "Sure, I can help you with that.",
    "two sentences": "Sure! Can you confirm your email address?",
    "paragraph": (
        "Thanks for waiting. I found your order from the twelfth. It left our warehouse on "
        "Monday and should arrive by Thursday. Would you like me to send the tracking link "
        "to your email address?"
    ),
}
COMPARE: dict[str, dict[str, Any]] = {
    "faster-whisper defaults": {
        "beam_size": 5,
        "temperature": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
        "without_timestamps": False,
        "condition_on_previous_text": True,
    },
    "beam 1, with fallback": {"temperature": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]},
    "chosen": {},
}


def telephone(pcm: Pcm) -> Pcm:
    return np.frombuffer(audioop.ulaw2lin(audioop.lin2ulaw(pcm.tobytes(), 2), 2), np.int16)


def espeak_8k(text: str) -> Pcm:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "speech.wav"
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
        with wave.open(str(path)) as wav:
            rate = wav.getframerate()
            raw = np.frombuffer(wav.readframes(wav.getnframes()), np.int16)
    return to_int16(resample_float(to_float32(raw), rate, 8000))


def stats(seconds: list[float]) -> str:
    ms = sorted(1000 * s for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"mean {statistics.mean(ms):4.0f}  p50 {statistics.median(ms):4.0f}  p95 {p95:4.0f} ms"


def timed(work: Callable[[], object], repeat: int) -> tuple[list[float], object]:
    seconds, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        seconds.append(time.perf_counter() - started)
    return seconds, result


def machine() -> None:
    packages = ("faster-whisper", "ctranslate2", "piper-tts", "onnxruntime", "webrtcvad-wheels")
    print(describe(packages) + "\n")


def bench_load() -> SpeechModels:
    started = time.perf_counter()
    models = load_speech_models(SpeechSettings())
    total = time.perf_counter() - started
    info = models.describe()
    print("== model load (bundled models, cpu, int8) ==")
    stt, tts = info["stt"], info["tts"]
    voice = tts["voices"][0]
    for role, path, size in (
        ("stt", stt["model_dir"], stt["model_bytes"]),
        ("tts", voice["voice_path"], voice["voice_bytes"]),
    ):
        print(
            f"{role}: load {info[role]['load_s']:.2f} s, warmup {info[role]['warmup_s']:.2f} s,"
            f" {size / 1e6:.0f} MB  {path}"
        )
    print(f"load_speech_models total: {total:.2f} s\n")
    return models


def test_audio(models: SpeechModels) -> dict[str, Pcm]:
    audio: dict[str, Pcm] = {}
    for name, text in UTTERANCES.items():
        audio[f"piper {name}"] = telephone(models.synthesizer.synthesize_sentence(text))
        audio[f"espeak {name}"] = telephone(espeak_8k(text))
    return audio


def words(text: str) -> list[str]:
    return "".join(c for c in text.lower() if c.isalnum() or c.isspace()).split()


def bench_stt(models: SpeechModels, audio: Mapping[str, Pcm], repeat: int) -> None:
    print(f"== STT per utterance (whisper tiny.en, {repeat} runs each) ==")
    everything: list[float] = []
    for name, pcm in audio.items():
        seconds, text = timed(partial(models.transcriber.transcribe, pcm), repeat)
        everything += seconds
        expected = words(UTTERANCES[name.split()[1]])
        ok = "exact" if words(str(text)) == expected else "differs"
        print(f"{name:14s} {pcm.size / 8000:4.1f} s audio  {stats(seconds)}  [{ok}] {text!r}")
    print(f"{'all':14s} {'':12s} {stats(everything)}\n")


async def bench_stt_concurrent(runner: SttRunner, pcm: Pcm, repeat: int) -> None:
    seconds: list[float] = []
    for _ in range(repeat):
        results = await asyncio.gather(runner.transcribe(pcm), runner.transcribe(pcm))
        seconds += [r.seconds for r in results]
    print(f"== STT, two calls at once (SttRunner, 2 workers) ==\neach: {stats(seconds)}\n")


async def bench_tts(runner: TtsRunner, repeat: int) -> None:
    print(f"== TTS through TtsRunner.stream (piper joe medium -> 8 kHz, {repeat} runs) ==")
    for name, text in REPLIES.items():
        first, rtf = [], []
        for _ in range(repeat):
            started = time.perf_counter()
            samples = 0
            async for _sentence, pcm in runner.stream(text):
                if samples == 0:
                    first.append(time.perf_counter() - started)
                samples += pcm.size
            rtf.append((time.perf_counter() - started) / (samples / 8000))
        print(
            f"{name:14s} {len(text):3d} chars  first sentence: {stats(first)}"
            f"  RTF {statistics.mean(rtf):.3f}"
        )
    print()


def bench_compare(audio: Mapping[str, Pcm], repeat: int) -> None:
    print(f"== whisper settings compared ({repeat} runs per utterance) ==")
    variants = [(name, options, 2) for name, options in COMPARE.items()]
    variants.append(("chosen, 1 thread", {}, 1))
    for name, options, threads in variants:
        variant = WhisperTranscriber(threads=threads, workers=1, decode_options=options)
        variant.warmup()
        seconds: list[float] = []
        exact = 0
        for utterance, pcm in audio.items():
            times, text = timed(partial(variant.transcribe, pcm), repeat)
            seconds += times
            exact += words(str(text)) == words(UTTERANCES[utterance.split()[1]])
        print(f"{name:24s} {stats(seconds)}  exact {exact}/{len(audio)}")
    print()


def bench_vad(audio: Mapping[str, Pcm]) -> None:
    pcm = np.concatenate([np.concatenate([a, np.zeros(8000, np.int16)]) for a in audio.values()])
    frames = pcm[: pcm.size - pcm.size % 160].reshape(-1, 160)
    segmenter = VadSegmenter(VadParams(), webrtc_classifier(VadParams()))
    started = time.perf_counter()
    ended = sum(isinstance(e, UtteranceEnded) for frame in frames for e in segmenter.feed(frame))
    seconds = time.perf_counter() - started
    print("== VAD (webrtcvad + VadSegmenter) ==")
    print(
        f"{frames.shape[0] * 0.02:.0f} s of audio in {seconds * 1000:.0f} ms: "
        f"{seconds * 1e6 / frames.shape[0]:.0f} us per 20 ms frame, "
        f"{ended} utterances found of {len(audio)}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--compare", action="store_true", help="also compare whisper settings")
    args = parser.parse_args()

    machine()
    models = bench_load()
    try:
        audio = test_audio(models)
        bench_vad(audio)
        bench_stt(models, audio, args.repeat)
        asyncio.run(bench_stt_concurrent(models.stt, audio["piper medium"], args.repeat))
        asyncio.run(bench_tts(models.tts, args.repeat))
        if args.compare:
            bench_compare(audio, max(1, args.repeat // 2))
    finally:
        models.close()


if __name__ == "__main__":
    main()
