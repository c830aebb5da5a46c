"""At most one speculative transcription per call, however the caller pauses (no sockets).

The conversation's own VAD/pause logic is driven frame by frame; STT is the real SttRunner
(its scheduler's threads) around a fake whisper that blocks until the test lets a run finish, and
records how many runs started and how many computed at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, cast

import numpy as np

from ari_offload.audio import SAMPLE_RATE, Pcm
from ari_offload.media.g711 import ULAW
from ari_offload.speech.streaming import SegmentedStt, SpeculativeStt
from ari_offload.speech.stt import SttRunner
from ari_offload.speech.vad import VadParams, VadSegmenter
from ari_offload.voice.conversation import AgentBinding, Conversation
from ari_offload.voice.turn_taker import EndTurn, Utterance

FRAME = 160  # 20 ms at 8 kHz
SPEECH = np.full(FRAME, 1000, dtype=np.int16)
SILENCE = np.zeros(FRAME, dtype=np.int16)
# Whisper's time for one run, counted in caller audio fed meanwhile (no clock).
COMPUTE_FRAMES = 25  # 500 ms: longer than one speech/pause burst


class BlockingWhisper:
    """Blocks like whisper (in the worker thread) until ``release``; counts runs and overlap."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._go = threading.Semaphore(0)
        self.open = threading.Event()  # once set, every run finishes at once
        self.heard: list[int] = []  # audio length of every run started
        self.running = 0
        self.max_running = 0
        self.finished = 0

    def transcribe(
        self, pcm8k: Pcm, language: str | None = None, sample_rate: int = SAMPLE_RATE
    ) -> str:
        with self._lock:
            self.heard.append(len(pcm8k))
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        while not self.open.is_set() and not self._go.acquire(timeout=0.01):
            pass
        with self._lock:
            self.running -= 1
            self.finished += 1
        return "hello"

    def release(self) -> None:
        self._go.release()


def voiced(frame: Pcm) -> bool:
    return bool(frame.any())


def conversation(runner: SttRunner) -> Conversation:
    models = SimpleNamespace(
        stt=runner,
        new_segmenter=lambda rate: VadSegmenter(VadParams(sample_rate=rate), classifier=voiced),
        release_call=runner.scheduler.forget,
        new_turn_gate=lambda: None,
    )
    call = SimpleNamespace(media=SimpleNamespace(codec=ULAW), call_id="call-1", turns=0)
    return Conversation(
        cast(Any, call),
        cast(Any, models),
        cast(Any, None),
        AgentBinding("agent", "http://127.0.0.1:9/"),
        cast(Any, SimpleNamespace(barge_in_min_speech_ms=300)),
        cast(Any, SimpleNamespace(fallback_text="sorry")),
    )


def bursts(times: int, speech_ms: int = 200, pause_ms: int = 200) -> Iterator[Pcm]:
    for _ in range(times):
        yield from [SPEECH] * (speech_ms // 20)
        yield from [SILENCE] * (pause_ms // 20)


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.002)


def utterance(conv: Conversation) -> Utterance:
    item = conv._turns.get_nowait()
    assert isinstance(item, EndTurn)
    return item.utterance


def speculative(conv: Conversation) -> SpeculativeStt:
    stt = conv._stt
    assert isinstance(stt, SegmentedStt), "whisper is a batch engine: it gets the adapter"
    return stt.runs


async def test_bursts_of_speech_keep_one_speculative_run_at_most() -> None:
    whisper = BlockingWhisper()
    runner = SttRunner(whisper, workers=2)
    conv = conversation(runner)
    runs = speculative(conv)
    started_at = 0
    try:
        for index, frame in enumerate(bursts(20)):
            before = runs.started
            conv._hear(frame)
            if runs.started > before:
                started_at = index
                # A free worker takes a run within microseconds, long before the next frame.
                await until(lambda: whisper.running == 1)
            if runs.busy and index - started_at >= COMPUTE_FRAMES:
                done = whisper.finished
                whisper.release()  # this run is done computing now
                await until(lambda done=done: whisper.finished > done)  # type: ignore[misc]
                await asyncio.sleep(0.01)  # a pause deferred meanwhile starts its run now
                started_at = index
        assert whisper.max_running == 1, "never two speculative runs of one call at once"
        # A run outlasts a burst: pauses while it computes start nothing of their own.
        frames = 20 * 20
        assert 2 <= runs.started <= frames // COMPUTE_FRAMES + 1, runs.started
        assert len(whisper.heard) == runs.started

        whisper.open.set()
        await until(lambda: not runs.busy)
        for frame in [SILENCE] * 25:  # the endpoint
            conv._hear(frame)
        utterance(conv)
        final = await conv._transcripts.popleft()
    finally:
        runner.close()
    assert final.text == "hello"
    # 20 pauses, yet at most one run per compute time, and the final one, reached whisper.
    assert len(whisper.heard) <= 20 * 20 // COMPUTE_FRAMES + 2


async def test_a_stale_run_still_computing_does_not_hold_up_the_final_one() -> None:
    whisper = BlockingWhisper()
    runner = SttRunner(whisper, workers=2)
    conv = conversation(runner)
    try:
        for frame in bursts(1):  # pause: run 1 starts on this audio, then speech resumes
            conv._hear(frame)
        for frame in [SPEECH] * 10 + [SILENCE] * 25:  # pause (run 1 busy: none), endpoint
            conv._hear(frame)
        assert speculative(conv).started == 1
        utterance(conv)
        final = conv._transcripts.popleft()
        # Run 1 heard less than the utterance: not waited for; the final one runs beside it.
        await until(lambda: whisper.running == 2)
        whisper.open.set()
        assert (await final).text == "hello"
    finally:
        runner.close()
    assert whisper.heard[1] > whisper.heard[0]


async def test_the_run_at_the_last_pause_is_the_final_transcription() -> None:
    whisper = BlockingWhisper()
    whisper.open.set()
    runner = SttRunner(whisper, workers=2)
    conv = conversation(runner)
    try:
        for frame in [SPEECH] * 10 + [SILENCE] * 25:
            conv._hear(frame)
        utterance(conv)
        assert (await conv._transcripts.popleft()).text == "hello"
    finally:
        runner.close()
    assert len(whisper.heard) == 1, "the speculative run was reused, not repeated"


async def test_a_pause_while_every_worker_is_taken_starts_no_speculative_run() -> None:
    whisper = BlockingWhisper()
    runner = SttRunner(whisper, workers=1)
    conv = conversation(runner)
    try:
        other_call = runner.submit(np.zeros(8000, dtype=np.int16), owner="call-2")
        await until(lambda: whisper.running == 1)  # it holds the only worker
        for frame in bursts(1):
            conv._hear(frame)  # a pause: a guess now would only wait behind other work
        assert not speculative(conv).busy
        assert speculative(conv).started == 0
        for frame in [SPEECH] * 10 + [SILENCE] * 25:  # more speech, then the endpoint
            conv._hear(frame)
        utterance(conv)
        final = conv._transcripts.popleft()
        whisper.open.set()
        other_call.result(timeout=10)
        assert (await final).text == "hello"
    finally:
        runner.close()
    assert whisper.heard[0] == 8000, "the other call's run went first"
    assert len(whisper.heard) == 2, "no speculative run reached whisper: only the final one"


async def test_a_pause_while_a_stale_run_computes_is_transcribed_when_it_ends() -> None:
    whisper = BlockingWhisper()
    runner = SttRunner(whisper, workers=2)
    conv = conversation(runner)
    runs = speculative(conv)
    try:
        for frame in bursts(1):  # pause: run 1 starts, then speech resumes (run 1 stale)
            conv._hear(frame)
        await until(lambda: whisper.running == 1)
        for frame in [SPEECH] * 10 + [SILENCE] * 5:  # the last pause, run 1 still busy
            conv._hear(frame)
        assert runs.started == 1, "one run of a call computing at a time"
        whisper.release()  # run 1 ends: the deferred pause's run starts at once
        await until(lambda: runs.started == 2)
        for frame in [SILENCE] * 20:  # only silence followed: the endpoint
            conv._hear(frame)
        utterance(conv)
        final = conv._transcripts.popleft()
        whisper.release()
        assert (await final).text == "hello"
    finally:
        runner.close()
    assert len(whisper.heard) == 2, "the deferred run was the final one, not repeated"
    assert whisper.heard[1] > whisper.heard[0]
