"""How piper's memory grows with the longest piece of text it is given (why tts.py bounds a
piece at MAX_SENTENCE_CHARS), and that whisper's does not grow with utterance length.

    .venv/bin/python -m bench.bench_tts_memory

Method: one process per case (RSS is per process and never shrinks back for onnxruntime's
arena). Piper: 200 rounds of two pieces synthesized at once on two workers (the app's TTS
pool), piece lengths drawn from the case's word counts. Whisper: 120 rounds of two
utterances of 1-15 s at once. RSS (/proc/self/statm) printed after the models load and every
few rounds.
"""

from __future__ import annotations

import os
import platform
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

SAID = "our records show that your request was received and is being handled by the team"
WORDS = SAID.split(" ")
PIPER_CASES = ["2,5,10", "2,5,10,20", "2,5,10,20,30", "2,5,10,20,40"]


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def piper_case(lengths: list[int]) -> list[float]:
    from ari_offload.config import SpeechSettings
    from ari_offload.speech.piper import load_piper_voices

    voice = load_piper_voices(SpeechSettings())[0]
    rnd, pool, curve = random.Random(1), ThreadPoolExecutor(2), [rss_mb()]
    for round_ in range(1, 201):
        n = rnd.choice(lengths)
        texts = [" ".join(rnd.choice(WORDS) for _ in range(n)) + "." for _ in range(2)]
        list(pool.map(voice.synthesize_sentence, texts))
        if round_ % 50 == 0:
            curve.append(rss_mb())
    return curve


def whisper_case() -> list[float]:
    import numpy as np

    from ari_offload.config import SpeechSettings
    from ari_offload.media.g711 import codec_for
    from ari_offload.speech.whisper import load_whisper
    from testbed.audio import speech_file

    said = (
        "I would like to check the status of my order please, my account number is four five six."
    )
    pcm = codec_for("ulaw").decode(speech_file(said).read_bytes())
    pcm = np.concatenate([pcm, pcm, pcm])
    whisper = load_whisper(SpeechSettings(), 2)
    rnd, pool, curve = random.Random(1), ThreadPoolExecutor(2), [rss_mb()]
    for round_ in range(1, 121):
        pieces = [pcm[: int(rnd.uniform(1, 15) * 8000)] for _ in range(2)]
        list(pool.map(whisper.transcribe, pieces))
        if round_ % 30 == 0:
            curve.append(rss_mb())
    return curve


def main() -> int:
    if len(sys.argv) == 3:  # one case, in its own process
        kind, arg = sys.argv[1], sys.argv[2]
        curve = (
            whisper_case() if kind == "whisper" else piper_case([int(x) for x in arg.split(",")])
        )
        print(" -> ".join(f"{mb:.0f}" for mb in curve))
        return 0
    print(
        f"# memory per engine: {platform.node()}, {os.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}; RSS MB after load, then every 50 (piper) / 30 (whisper) "
        "rounds"
    )
    cases = [("piper", c) for c in PIPER_CASES] + [("whisper", "-")]
    for kind, arg in cases:
        out = subprocess.run(
            [sys.executable, "-m", "bench.bench_tts_memory", kind, arg],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        label = f"piper, pieces of {arg} words" if kind == "piper" else "whisper, 1-15 s utterances"
        print(f"{label:34s} {out.stdout.strip().splitlines()[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
