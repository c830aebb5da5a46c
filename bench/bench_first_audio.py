"""First reply audio: the first clause vs the whole first sentence, and how the cut sounds.

    .venv/bin/python -m bench.bench_first_audio [--repeat 5]

Method: realistic agent replies (a long first sentence, like an LLM's) are synthesized with
the bundled piper voice two ways: as today's chunk plan (``reply_text.plan_chunks``: the
first clause alone, then the rest) and whole sentence by whole sentence (the plan before
issue 10). "First audio" is the wall time of the first piece's synthesis (min and median of
``--repeat`` runs, after a warmup, nothing else running in the process). To check the cut
does not hurt: the chunked audio, joined with its pauses exactly as a call plays it, and the
sentence-by-sentence audio are both sent through a mu-law round trip and transcribed by
whisper tiny.en; the word error rate of each against the reply text is printed, with the
length of the silence at each cut. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import time

import numpy as np

from ari_offload.audio import Pcm
from ari_offload.media.g711 import codec_for
from ari_offload.speech.piper import PiperSynthesizer
from ari_offload.speech.reply_text import SENTENCE_PAUSE_MS, plan_chunks, split_sentences
from ari_offload.speech.tts import TtsRunner
from ari_offload.speech.whisper import WhisperTranscriber
from bench.machine import describe

REPLIES = [
    "You said: I need to reset my password. How else can I help?",
    "Sure, I can help you with resetting your password, it only takes a minute.",
    "I can definitely help you with resetting the password on your account right now.",
    "Thanks for calling, your order number four five six seven shipped yesterday and "
    "should arrive on Friday.",
    "Of course! Your appointment is booked for Tuesday at three in the afternoon.",
]


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def wer(reference: str, heard: str) -> float:
    ref, hyp = words(reference), words(heard)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))


def telephone(pcm: Pcm) -> Pcm:
    codec = codec_for("ulaw")
    return codec.decode(codec.encode(pcm))


async def joined(runner: TtsRunner, text: str) -> Pcm:
    return np.concatenate([pcm async for _text, pcm in runner.stream(text)])


def sentence_by_sentence(voice: PiperSynthesizer, text: str) -> Pcm:
    pause = np.zeros(8 * SENTENCE_PAUSE_MS, dtype=np.int16)
    pieces = [voice.synthesize_sentence(s) for s in split_sentences(text)]
    return np.concatenate([x for p in pieces for x in (p, pause)][:-1])


def first_times(voice: PiperSynthesizer, text: str, repeat: int) -> tuple[list[float], ...]:
    first_chunk = plan_chunks(text)[0].speak
    first_sentence = split_sentences(text)[0]
    out: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for times, piece in zip(out, (first_chunk, first_sentence), strict=True):
            started = time.perf_counter()
            voice.synthesize_sentence(piece)
            times.append(time.perf_counter() - started)
    return out


def ms(values: list[float]) -> str:
    return f"min {min(values) * 1000:4.0f} / median {statistics.median(values) * 1000:4.0f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(describe(("piper-tts", "onnxruntime")))
    print("method: piper joe-medium (bundled), whisper tiny.en int8; see the module docstring")
    voice = PiperSynthesizer()
    voice.warmup()
    whisper = WhisperTranscriber()
    runner = TtsRunner(voice, workers=1)
    chunk_first: list[float] = []
    sentence_first: list[float] = []
    for text in REPLIES:
        plan = plan_chunks(text)
        chunk_times, sentence_times = first_times(voice, text, args.repeat)
        chunk_first += chunk_times
        sentence_first += sentence_times
        cut_pauses = ", ".join(f"{c.pause_ms} ms" for c in plan[:-1])
        chunked = telephone(await joined(runner, text))
        whole = telephone(sentence_by_sentence(voice, text))
        heard_chunked = whisper.transcribe(chunked)
        heard_whole = whisper.transcribe(whole)
        print(f"\nreply: {text!r}")
        print(f"  chunks: {[c.text for c in plan]} (pauses after: {cut_pauses or 'none'})")
        print(f"  first chunk  {ms(chunk_times)}   first sentence {ms(sentence_times)}")
        print(f"  chunked  heard {heard_chunked!r}  WER {wer(text, heard_chunked):.2f}")
        print(f"  sentence heard {heard_whole!r}  WER {wer(text, heard_whole):.2f}")
    print(
        f"\nall replies: first audio by chunk {ms(chunk_first)}; "
        f"by whole first sentence {ms(sentence_first)}"
    )
    runner.close()


if __name__ == "__main__":
    asyncio.run(main())
