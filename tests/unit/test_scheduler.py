"""The speech scheduler: which job runs next (the pure JobQueue), and the thread shell around it.

Shell tests hold the only worker with a job that blocks until the test releases it, so what
queues behind it, and the order it then runs in, is decided by the scheduler alone.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, Final, cast

import numpy as np
import pytest

from ari_offload.audio import SAMPLE_RATE, Pcm
from ari_offload.speech.scheduler import (
    CpuMeter,
    CpuShares,
    Job,
    JobKind,
    JobQueue,
    Scheduler,
)
from ari_offload.speech.tts import TtsRunner

FINAL: Final = JobKind.FINAL_STT
FIRST: Final = JobKind.FIRST_TTS
LATER: Final = JobKind.LATER_TTS
SPEC: Final = JobKind.SPECULATIVE_STT


def job(kind: JobKind, owner: str, name: str = "") -> Job[str]:
    return Job(kind, owner, name or f"{owner}:{kind.value}")


def taken(queue: JobQueue[str]) -> list[str]:
    out = []
    while (next_job := queue.take()) is not None:
        out.append(next_job.payload)
    return out


# --- the ordering policy ------------------------------------------------------------------


def test_final_stt_runs_before_speculative_stt_queued_earlier() -> None:
    queue: JobQueue[str] = JobQueue(workers=4)
    assert queue.offer(job(SPEC, "a"))
    assert queue.offer(job(FINAL, "b"))
    assert taken(queue) == ["b:final", "a:speculative"]


def test_a_first_sentence_runs_before_later_sentences_queued_earlier() -> None:
    queue: JobQueue[str] = JobQueue(workers=1)
    queue.offer(job(LATER, "a"))
    queue.offer(job(FIRST, "b"))
    queue.offer(job(FINAL, "c"))
    # a reply's first clause goes first (the caller hears nothing before it); final STT and
    # later chunks are one class, the calls taking turns in the order they came
    assert taken(queue) == ["b:first", "a:later", "c:final"]


def test_speculation_is_refused_once_every_worker_has_work() -> None:
    queue: JobQueue[str] = JobQueue(workers=2)
    assert queue.offer(job(SPEC, "a"))  # two idle workers
    queue.take()
    assert queue.offer(job(FINAL, "b"))  # one running, one queued: saturated
    assert not queue.offer(job(SPEC, "c"))
    queue.take()
    assert not queue.offer(job(SPEC, "c")), "both workers busy"
    assert queue.offer(job(LATER, "c")), "only speculation is refused"
    queue.take()
    queue.finished()
    queue.finished()
    assert queue.offer(job(SPEC, "c")), "a worker is free again"
    assert len(queue) == 1


def test_calls_take_turns_within_a_class() -> None:
    queue: JobQueue[str] = JobQueue(workers=1)
    for index in range(3):
        queue.offer(job(LATER, "burst", f"burst-{index}"))
    queue.offer(job(LATER, "b"))
    queue.offer(job(LATER, "c"))
    assert taken(queue) == ["burst-0", "b:later", "c:later", "burst-1", "burst-2"]


def test_a_removed_job_is_never_taken() -> None:
    queue: JobQueue[str] = JobQueue(workers=1)
    dropped, kept = job(FINAL, "a", "dropped"), job(FINAL, "a", "kept")
    queue.offer(dropped)
    queue.offer(kept)
    assert queue.remove(dropped)
    assert not queue.remove(dropped)
    assert taken(queue) == ["kept"]
    assert not queue.remove(kept), "a job already taken is not in the queue"


def test_ranks_can_put_first_sentences_just_below_final_stt() -> None:
    ranks = {FINAL: 0, FIRST: 1, LATER: 2, SPEC: 3}
    queue: JobQueue[str] = JobQueue(workers=1, ranks=ranks)
    queue.offer(job(FIRST, "a"))
    queue.offer(job(FINAL, "b"))
    assert taken(queue) == ["b:final", "a:first"]


def test_cpu_shares_split_an_interval_between_the_jobs_running() -> None:
    shares = CpuShares()
    shares.start(1, now=10.0)
    shares.start(2, now=11.0)  # job 1 alone for 1 s
    assert shares.stop(1, now=13.0) == pytest.approx(2.0)  # + half of 2 s
    assert shares.stop(2, now=14.0) == pytest.approx(2.0)  # half of 2 s + 1 s alone


# --- the thread shell ---------------------------------------------------------------------


class Gate:
    """A job that holds its worker until ``release``; ``ran`` records every job's name."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.started = threading.Event()
        self.ran: list[str] = []

    def hold(self) -> str:
        self.started.set()
        assert self.open.wait(10)
        return "held"

    def record(self, name: str) -> Callable[[], str]:
        def work() -> str:
            self.ran.append(name)
            return name

        return work

    def release(self) -> None:
        self.open.set()


@pytest.fixture
def one_worker() -> Iterator[tuple[Scheduler, Gate, Future[str]]]:
    scheduler = Scheduler(workers=1)
    gate = Gate()
    blocker = scheduler.submit(FINAL, "other", gate.hold)
    assert gate.started.wait(10)
    try:
        yield scheduler, gate, blocker
    finally:
        gate.release()
        scheduler.shutdown(wait=True)


def test_queued_work_runs_by_rank_once_the_worker_is_free(
    one_worker: tuple[Scheduler, Gate, Future[str]],
) -> None:
    scheduler, gate, _ = one_worker
    assert scheduler.submit(SPEC, "a", gate.record("guess")) is None, "saturated: refused"
    jobs = [
        scheduler.submit(LATER, "a", gate.record("a later")),
        scheduler.submit(FINAL, "b", gate.record("b final")),
        scheduler.submit(FIRST, "c", gate.record("c first")),
    ]
    gate.release()
    assert [j.result(timeout=10) for j in jobs] == ["a later", "b final", "c first"]
    assert gate.ran == ["c first", "a later", "b final"]


def test_a_cancelled_queued_job_never_runs(
    one_worker: tuple[Scheduler, Gate, Future[str]],
) -> None:
    scheduler, gate, _ = one_worker
    dropped = scheduler.submit(FINAL, "a", gate.record("dropped"))
    after = scheduler.submit(FINAL, "a", gate.record("after"))
    assert dropped.cancel()
    gate.release()
    assert after.result(timeout=10) == "after"
    assert gate.ran == ["after"]


async def test_nobody_waits_for_a_running_job_that_was_cancelled(
    one_worker: tuple[Scheduler, Gate, Future[str]],
) -> None:
    _, gate, blocker = one_worker
    waiting = asyncio.ensure_future(asyncio.wrap_future(blocker))
    await asyncio.sleep(0)
    waiting.cancel()  # the job runs on (it cannot be stopped); its waiter does not
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 1.0)
    assert not blocker.done()
    gate.release()
    assert blocker.result(timeout=10) == "held"


def test_an_error_in_a_job_reaches_its_future() -> None:
    scheduler = Scheduler(workers=1)

    def fails() -> str:
        raise ValueError("piper cannot say this")

    try:
        failed = scheduler.submit(FIRST, "a", fails)
        with pytest.raises(ValueError, match="piper cannot say this"):
            failed.result(timeout=10)
        assert scheduler.submit(FIRST, "a", lambda: "next").result(timeout=10) == "next"
    finally:
        scheduler.shutdown(wait=True)


def test_shutdown_cancels_queued_work_and_lets_running_work_finish(
    one_worker: tuple[Scheduler, Gate, Future[str]],
) -> None:
    scheduler, gate, blocker = one_worker
    queued = scheduler.submit(FINAL, "a", gate.record("queued"))
    scheduler.shutdown()
    assert queued.cancelled()
    with pytest.raises(RuntimeError, match="shut down"):
        scheduler.submit(FINAL, "a", gate.record("late"))
    gate.release()
    assert blocker.result(timeout=10) == "held"
    scheduler.shutdown(wait=True)
    assert gate.ran == []


def test_cpu_time_is_counted_per_call_and_stage() -> None:
    readings = iter([0.0, 1.5, 2.0, 2.25])
    scheduler = Scheduler(workers=1, cpu=CpuMeter(clock=lambda: next(readings)))
    try:
        scheduler.submit(FINAL, "call-1", lambda: None).result(timeout=10)
        scheduler.submit(FIRST, "call-1", lambda: None).result(timeout=10)
        counted = scheduler.cpu_seconds("call-1")
    finally:
        scheduler.shutdown(wait=True)
    assert (counted.stt, counted.tts, counted.jobs) == (1.5, 0.25, 2)
    assert scheduler.cpu_seconds("call-2").total == 0.0
    assert scheduler.forget("call-1").total == 1.75
    assert scheduler.cpu_seconds("call-1").jobs == 0


class Recording:
    """A scheduler that notes each job's kind and owner before handing it on."""

    def __init__(self, inner: Scheduler) -> None:
        self.inner = inner
        self.kinds: list[tuple[JobKind, str]] = []

    def submit(self, kind: JobKind, owner: str, fn: Callable[..., Any], *args: Any) -> Any:
        self.kinds.append((kind, owner))
        return self.inner.submit(kind, owner, fn, *args)


class Voice:
    def synthesize_sentence(self, text: str, sample_rate: int = SAMPLE_RATE) -> Pcm:
        return np.ones(80, dtype=np.int16)


async def test_a_reply_queues_its_first_sentence_as_first_and_the_rest_as_later() -> None:
    inner = Scheduler(workers=1)
    recording = Recording(inner)
    runner = TtsRunner(Voice(), scheduler=cast(Scheduler, recording))
    try:
        heard = [s async for s, _ in runner.stream("One. Two. Three.", owner="call-1")]
    finally:
        inner.shutdown(wait=True)
    assert heard == ["One.", "Two.", "Three."]
    assert recording.kinds == [(FIRST, "call-1"), (LATER, "call-1"), (LATER, "call-1")]
