"""End-of-turn benchmark: smart-turn's CPU time per question and its verdicts on test speech.

    .venv/bin/python -m bench.bench_turn_end [--repeat 20]

Method: each phrase is spoken by piper (the bundled joe voice) and by espeak-ng, brought to
8 kHz through a G.711 mu-law round trip (as a caller's audio arrives), followed by 1.5 s of
digital silence, and fed to the product's VAD (the default engine and settings) frame by
frame. What TurnEndGate asks about (the audio of the first pause that lasts
turn_end_silence_ms, as in a call) goes to smart-turn
gets it (8 -> 16 kHz), whisper tiny.en transcribes it for the transcript cue. "finished"
sentences should end the turn at the short silence; phrases cut at a natural pause should
wait. CPU time: wall clock around SmartTurnModel.probability (features + inference), after
a warmup, 1 and 2 onnxruntime threads. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from ari_offload.audio import Pcm
from ari_offload.config import SpeechSettings
from ari_offload.media.g711 import ulaw_decode, ulaw_encode
from ari_offload.speech.engines import VAD_ENGINES
from ari_offload.speech.models import vad_params_from
from ari_offload.speech.piper import load_piper_voices
from ari_offload.speech.turn_end import SmartTurnModel, TurnEndGate, transcript_unfinished
from ari_offload.speech.vad import VadSegmenter
from ari_offload.speech.whisper import WhisperTranscriber
from bench.machine import describe
from testbed.audio import speech_file

os.environ.setdefault("HF_HUB_OFFLINE", "1")

FINISHED = [
    "Yes, that's right.",
    "I need to reset my password.",
    "Can you tell me when the store opens?",
    "Thank you, goodbye.",
    "My order number is four five six seven.",
    "I would like to book a table for two.",
    "The address is ten Main Street.",
    "No, I don't think so.",
]
CUT = [
    "My order number is",
    "I would like to",
    "The address is",
    "I need to reset my",
    "Can you tell me when the",
    "I was calling about the",
    "My name is John and",
    "I ordered a jacket but",
]


def telephone(pcm: Pcm) -> Pcm:
    return ulaw_decode(ulaw_encode(pcm))


def espeak_8k(text: str) -> Pcm:
    """The test bed's caller voice: espeak-ng at 8 kHz mu-law (testbed/audio.py), decoded."""
    return ulaw_decode(speech_file(text, lead_silence_s=0.0).read_bytes())


def machine() -> None:
    print(describe(("onnxruntime", "faster-whisper")) + "\n")


def asked_audio(pcm: Pcm) -> Pcm | None:
    """What the conversation's TurnEndGate asks about: the audio of the first pause that
    lasts turn_end_silence_ms (a shorter pause, at a comma, asks nothing)."""
    settings = SpeechSettings(turn_engine="smart-turn")
    params = vad_params_from(settings)
    segmenter = VadSegmenter(
        params, VAD_ENGINES.get(settings.vad_engine)(settings, params).new_classifier()
    )
    gate = TurnEndGate(settings.turn_end_silence_ms, settings.turn_threshold)
    line = np.concatenate([pcm, np.zeros(12_000, np.int16)])
    for frame in line[: line.size - line.size % 160].reshape(-1, 160):
        for event in segmenter.feed(frame):
            gate.vad(event)
        audio = gate.frame(segmenter.silence_ms)
        if audio is not None:
            return audio
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    machine()
    print(__doc__.split("Method: ", 1)[1].split("Prints")[0].strip(), "\n")
    voice = load_piper_voices(SpeechSettings())[0]
    whisper = WhisperTranscriber(workers=1)
    model = SmartTurnModel()
    print(f"model: {model.describe()['summary']}  {model.path}\n")
    voices = {
        "piper": lambda text: telephone(voice.synthesize_sentence(text)),
        "espeak": espeak_8k,
    }
    right = {"smart-turn": 0, "transcript": 0, "both": 0}
    total = 0
    samples: list[Pcm] = []
    print(f"{'want':8s} {'voice':6s} {'p':>5s}  {'smart':6s} {'text':6s} {'both':6s}  heard")
    for want, phrases in (("finished", FINISHED), ("wait", CUT)):
        for phrase in phrases:
            for name, speak in voices.items():
                audio = asked_audio(speak(phrase))
                if audio is None:
                    print(f"{want:8s} {name:6s} no pause found: {phrase!r}")
                    continue
                samples.append(audio)
                p = model.probability(audio)
                text = whisper.transcribe(audio)
                verdicts = {
                    "smart-turn": p >= 0.5,
                    "transcript": not transcript_unfinished(text),
                    "both": p >= 0.5 and not transcript_unfinished(text),
                }
                total += 1
                for key, done in verdicts.items():
                    right[key] += done == (want == "finished")
                shown = ["end" if verdicts[k] else "wait" for k in verdicts]
                print(f"{want:8s} {name:6s} {p:5.2f}  {shown[0]:6s} {shown[1]:6s} {shown[2]:6s}"
                      f"  {text!r}  ({phrase!r})")  # fmt: skip
    print("\naccuracy (right decisions / phrases):")
    for key, n in right.items():
        print(f"  {key:10s} {n}/{total}")
    print()
    for threads in (1, 2):
        timed = SmartTurnModel(threads=threads)
        timed.warmup()
        ms = []
        for i in range(args.repeat):
            audio = samples[i % len(samples)]
            started = time.perf_counter()
            timed.probability(audio)
            ms.append(1000 * (time.perf_counter() - started))
        ms.sort()
        p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
        mean, p50 = statistics.mean(ms), statistics.median(ms)
        print(f"smart-turn, {threads} thread(s), {args.repeat} questions:"
              f" mean {mean:.0f}  p50 {p50:.0f}  p95 {p95:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
