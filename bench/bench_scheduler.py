"""Speech scheduling under simultaneous turns: today's FIFO pools vs the priority scheduler.

    .venv/bin/python -m bench.bench_scheduler [--calls 1,3,8] [--rounds 3] [--batching]

Method: real whisper tiny.en (int8, 2 threads, num_workers 2) and piper (bundled joe voice),
no network, no Asterisk. N calls' callers stop talking at the same instant. Each call then
runs its turn as conversation.py does: a final STT of its utterance (piper speech through a
mu-law round trip, a different sentence per call), an instant agent, and its two-sentence
reply through TtsRunner.stream (the first sentence, then the later one, queued as the first
is handed over). At the same instant every call's
caller is also at a pause: each submits a speculative STT of its audio (a stale one, so the
final does not reuse it), before its final. Per call: time from "utterance ended" to
"first TTS audio ready" (p50/p95/max over calls and rounds). Layouts:

- fifo 2+2: today: STT on a 2-worker ThreadPoolExecutor, TTS on another, first come first
  served, speculation always queued;
- sched 2+2: two schedulers (STT 2 workers, TTS 2 workers);
- sched 2 shared: one scheduler of 2 workers for STT and TTS, first TTS ranked with final
  STT; "first below" ranks it just under final STT; "first above" just over it.

CPU-seconds per turn: the scheduler's per-call counter (process CPU shared among the jobs
running, scheduler.py) next to the process CPU of the whole round divided by N. Layouts run
interleaved round by round, so a noisy neighbour on the machine hits them alike.
``--batching`` times one batched whisper call for K utterances against K runs on two
workers (scheduler.py's docstring has the numbers). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from ari_offload.audio import Pcm, resample_float, to_float32
from ari_offload.speech.piper import PiperSynthesizer
from ari_offload.speech.scheduler import DEFAULT_RANKS, JobKind, Scheduler
from ari_offload.speech.stt import SttRunner
from ari_offload.speech.tts import TtsRunner
from ari_offload.speech.whisper import WHISPER_RATE, WhisperTranscriber
from bench.bench_speech import telephone, words
from bench.machine import describe

os.environ.setdefault("HF_HUB_OFFLINE", "1")

UTTERANCES = [
    "I need to reset my password.",
    "Can you tell me what time the store opens on Saturday?",
    "My order has not arrived yet.",
    "I would like to speak to an agent please.",
    "What are your opening hours?",
    "Can you help me with my account?",
    "Please cancel my subscription.",
    "Yes, that's right.",
]
MISHEARD: set[tuple[str, str]] = set()
REPLY = "Sure, I can help you with that. Can you confirm the email address on your account?"


class FifoPool:
    """Today's pool, behind the scheduler's submit: one FIFO queue, nothing refused."""

    def __init__(self, workers: int) -> None:
        self._executor = ThreadPoolExecutor(workers)

    def submit(self, kind: JobKind, owner: str, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        return self._executor.submit(fn, *args)

    def cpu_seconds(self, owner: str) -> None:
        return None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)


@dataclass
class Layout:
    name: str
    stt: SttRunner
    tts: TtsRunner
    pools: list[Any]


def layouts(whisper: WhisperTranscriber, piper: PiperSynthesizer) -> list[Layout]:
    def sched(ranks: Mapping[JobKind, int]) -> Scheduler:
        return Scheduler(2, ranks=ranks)

    later = {JobKind.LATER_TTS: 2, JobKind.SPECULATIVE_STT: 3}
    first_below = {JobKind.FINAL_STT: 0, JobKind.FIRST_TTS: 1, **later}
    first_above = {JobKind.FIRST_TTS: 0, JobKind.FINAL_STT: 1, **later}
    out = []
    fifo_stt, fifo_tts = FifoPool(2), FifoPool(2)
    out.append(
        Layout(
            "fifo 2+2 (today)",
            SttRunner(whisper, scheduler=cast(Scheduler, fifo_stt)),
            TtsRunner(piper, scheduler=cast(Scheduler, fifo_tts)),
            [fifo_stt, fifo_tts],
        )
    )
    split_stt, split_tts = sched(DEFAULT_RANKS), sched(DEFAULT_RANKS)
    out.append(
        Layout(
            "sched 2+2",
            SttRunner(whisper, scheduler=split_stt),
            TtsRunner(piper, scheduler=split_tts),
            [split_stt, split_tts],
        )
    )
    for name, ranks in (
        ("sched 2 shared, first with final", DEFAULT_RANKS),
        ("sched 2 shared, first below final", first_below),
        ("sched 2 shared, first above final", first_above),
    ):
        shared = sched(ranks)
        out.append(
            Layout(
                name,
                SttRunner(whisper, scheduler=shared),
                TtsRunner(piper, scheduler=shared),
                [shared],
            )
        )
    return out


async def one_turn(layout: Layout, call: str, audio: Pcm, ended: float) -> tuple[float, str]:
    transcript = await layout.stt.transcribe(audio, owner=call)
    first: float | None = None
    async for _sentence, _pcm in layout.tts.stream(REPLY, owner=call):
        # the later sentence is queued as this one is handed over, as in a call (whose
        # playback of this one would only delay our reading of the later one)
        first = time.perf_counter() - ended if first is None else first
    assert first is not None
    return first, transcript.text


async def one_round(layout: Layout, audio: list[Pcm]) -> tuple[list[float], float, list[float]]:
    """Seconds to first audio per call, process CPU of the round, per-call counters."""
    calls = [f"r{time.monotonic_ns()}-{i}" for i in range(len(audio))]
    cpu0 = time.process_time()
    ended = time.perf_counter()
    stale: list[Future[Any] | None] = []
    turns = []
    for call, pcm in zip(calls, audio, strict=True):
        # the same caller's last pause: a speculative run that heard less than the utterance
        stale.append(
            layout.stt.submit(pcm[: pcm.size * 2 // 3], kind=JobKind.SPECULATIVE_STT, owner=call)
        )
        turns.append(asyncio.create_task(one_turn(layout, call, pcm, ended)))
    results = await asyncio.gather(*turns)
    for future in stale:
        if future is not None:
            await asyncio.wrap_future(future)  # the round's CPU includes them
    cpu = time.process_time() - cpu0
    for (_, text), expected in zip(results, UTTERANCES, strict=False):
        if words(text) != words(expected) and (expected, text) not in MISHEARD:
            MISHEARD.add((expected, text))  # tiny.en is deterministic: said once
            print(f"  (misheard {expected!r} as {text!r})")
    counters = []
    for pool in layout.pools:
        if isinstance(pool, Scheduler):
            counters = [pool.cpu_seconds(call).total for call in calls]
    if len(layout.pools) == 2 and isinstance(layout.pools[0], Scheduler):
        counters = [
            layout.pools[0].cpu_seconds(call).total + layout.pools[1].cpu_seconds(call).total
            for call in calls
        ]
    return [first for first, _ in results], cpu, counters


def quantiles(seconds: list[float]) -> str:
    ms = sorted(1000 * s for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"p50 {statistics.median(ms):5.0f}  p95 {p95:5.0f}  max {ms[-1]:5.0f} ms"


async def bench_turns(found: list[Layout], audio: list[Pcm], sizes: list[int], rounds: int) -> None:
    print(f"== utterance ended -> first TTS audio ready, per call ({rounds} rounds) ==")
    for n in sizes:
        print(f"-- {n} call(s) ending together --")
        firsts: dict[str, list[float]] = {layout.name: [] for layout in found}
        cpus: dict[str, list[float]] = {layout.name: [] for layout in found}
        counted: dict[str, list[float]] = {layout.name: [] for layout in found}
        for _ in range(rounds):
            for layout in found:
                times, cpu, counters = await one_round(layout, audio[:n])
                firsts[layout.name] += times
                cpus[layout.name].append(cpu / n)
                counted[layout.name] += counters
        for layout in found:
            counter = (
                f", counter {statistics.mean(counted[layout.name]):.2f}"
                if counted[layout.name]
                else ""
            )
            print(
                f"{layout.name:34s} {quantiles(firsts[layout.name])}"
                f"  CPU/turn {statistics.mean(cpus[layout.name]):.2f} s{counter}"
            )


def bench_batching(whisper: WhisperTranscriber, audio: list[Pcm], repeat: int) -> None:
    import ctranslate2
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer

    model: Any = whisper._model
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, "transcribe", "en")
    prompt = model.get_prompt(tokenizer, [], without_timestamps=True)

    def batched(pcms: list[Pcm]) -> list[str]:
        features = np.stack(
            [
                pad_or_trim(
                    model.feature_extractor(resample_float(to_float32(p), 8000, WHISPER_RATE))
                )
                for p in pcms
            ]
        ).astype(np.float32)
        encoded = model.model.encode(ctranslate2.StorageView.from_array(features))
        results = model.model.generate(
            encoded, [prompt] * len(pcms), beam_size=1, max_length=448, suppress_tokens=[-1]
        )
        return [
            tokenizer.decode([t for t in r.sequences_ids[0] if t < tokenizer.eot]).strip()
            for r in results
        ]

    print(f"== final STT batching: one batched whisper call vs K runs on 2 workers ({repeat}) ==")
    pool = ThreadPoolExecutor(2)
    for k in (1, 2, 4, 8):
        pcms = audio[:k]
        one, two = [], []
        for _ in range(repeat):
            started = time.perf_counter()
            in_batch = batched(pcms)
            one.append(time.perf_counter() - started)
            started = time.perf_counter()
            on_pool = list(pool.map(whisper.transcribe, pcms))
            two.append(time.perf_counter() - started)
        same = sum(words(a) == words(b) for a, b in zip(in_batch, on_pool, strict=True))
        print(
            f"K={k}: batch {statistics.median(one) * 1000:5.0f} ms, 2 workers"
            f" {statistics.median(two) * 1000:5.0f} ms, same words {same}/{k}"
        )
    pool.shutdown()
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="1,3,8")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batching", action="store_true")
    args = parser.parse_args()
    sizes = [int(n) for n in args.calls.split(",")]
    print(describe(("faster-whisper", "ctranslate2", "piper-tts")))
    print("method: see bench/bench_scheduler.py's docstring (whisper tiny.en int8, piper joe)\n")
    whisper = WhisperTranscriber(workers=2)
    whisper.warmup()
    piper = PiperSynthesizer()
    piper.warmup()
    audio = [telephone(piper.synthesize_sentence(text)) for text in UTTERANCES]
    if args.batching:
        bench_batching(whisper, audio, args.rounds)
    found = layouts(whisper, piper)
    try:
        asyncio.run(bench_turns(found, audio, sizes, args.rounds))
    finally:
        for layout in found:
            for pool in layout.pools:
                pool.shutdown()


if __name__ == "__main__":
    main()
