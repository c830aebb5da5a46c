"""One priority scheduler for the speech work of every call (STT and TTS share its workers).

Why: on 2 cores, whisper and piper runs from several calls compete. First come first served
(today's two thread pools) lets a speculative transcription, or a reply's third sentence,
hold a core while another caller waits for the words that end their silence. Here each job
has a kind and an owner (the call id); the next job is the most urgent kind's, and within a
kind the calls take turns (round robin), so one call's burst cannot starve another.

Ranks (lower runs first; ``DEFAULT_RANKS`` says why in this order):

- the FIRST chunk of a reply (rank 0): a clause (~40 ms of piper), the last step before a
  caller hears anything;
- final STT and later chunks (rank 1): the transcript a caller's turn waits for, and the
  chunks synthesized while the caller hears the one before (a reply must not stall);
- speculative STT (rank 2): a guess made at a pause. It is refused, not queued, when the
  pool is saturated (every worker has a job, running or queued for it): a guess that waits
  is worth nothing, and it would hold a worker once started (whisper cannot be stopped).

Measured (bench/bench_scheduler.py: N calls end their utterances in the same instant, each
with a stale speculative run, a final run and a two-sentence reply; utterance end -> first
reply audio, p50/p95 in ms, 3 rounds each of two runs, 2-core Xeon shared with other work):

    layout                              3 calls              8 calls         CPU s/turn, 8
    FIFO, STT 2 + TTS 2 (before)   2655/3907  1607/1718   5312/8450  3846/5068   1.26
    scheduler, STT 2 + TTS 2       2160/3318  1130/1583   2889/5282  2262/3695   0.93
    ONE scheduler, first = final   1659/2407  1014/1574   3469/3997  2257/2628   0.85
    ONE scheduler, first below     1588/2647   955/1428   3557/4357  2173/2448   0.89
    ONE scheduler, first above     1420/2544  1060/1643   2690/4647  1824/3177   0.93

One scheduler for both stages keeps the tail lowest (two pools run 4 jobs on 2 cores, and a
final run shares them with another call's later sentence). The first sentence ranked just
below final STT measures the same as ranked with it (within the noise, either way in the two
runs); above it helps the median but not the tail. With it is kept: both are the critical
path, and the calls' turns decide between them. One call alone is unchanged (900-1250 ms in
every layout, within the noise). CPU per turn falls because refused speculation is never
computed.

CPU per job: whisper (ctranslate2) computes on its own threads, so ``time.thread_time()``
around a job sees almost none of it (measured: 0.007 s of 0.52 s process CPU for one run);
piper's onnxruntime splits its work between the calling thread and its pool (0.20 of
0.39 s). So ``CpuShares`` charges the process's CPU time while jobs run to the jobs running,
split equally between them in each interval between two job starts or ends. It includes the
event loop's own work in those intervals (a few percent beside whisper); it is exact when
one job runs at a time. ``Scheduler.cpu_seconds(owner)`` reads a call's totals.

Batching (final STT of K calls in ONE whisper call, encoder and decoder batched through
ctranslate2) was measured and rejected: on the 2-core Xeon, tiny.en int8, piper speech
after mu-law, the batch took 309/709/1884/3989 ms for K=1/2/4/8 against 324/625/1293/2842 ms
for the same K utterances on two workers (same words in all cases), and a batch hands every
caller their words at the end of the whole batch, where two workers hand the first two back
after one run. ctranslate2 on the CPU gains nothing from a batch at two threads.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, overload

T = TypeVar("T")
P = TypeVar("P")

DEFAULT_WORKERS = 2
# CPU counters kept for owners (calls) nobody ``forget``s: a bound, oldest dropped first.
MAX_COUNTERS = 4096


class JobKind(enum.Enum):
    FINAL_STT = "final"  # the transcript a caller's turn waits for
    FIRST_TTS = "first"  # the first sentence of a reply: the caller hears nothing before it
    LATER_TTS = "later"  # a sentence synthesized while the previous one plays
    SPECULATIVE_STT = "speculative"  # a guess at a pause; refused when saturated

    @property
    def stage(self) -> str:
        """ "stt" or "tts": what a call's CPU counter books it under."""
        return "stt" if self in (JobKind.FINAL_STT, JobKind.SPECULATIVE_STT) else "tts"


# Issue 10's wire bench (8 calls ending together) decided these, after the first chunk became
# a clause: with it ranked with final STT, a call whose words were ready waited for its ~40 ms
# clause behind other calls' ~300 ms whisper runs (tts p50 1.2 s of a 3.0 s turn). A clause
# first is shortest-job-first on the critical path. Later chunks share the finals' rank (the
# calls take turns): a reply already playing must not stall behind a wave of finals.
DEFAULT_RANKS: Mapping[JobKind, int] = {
    JobKind.FIRST_TTS: 0,
    JobKind.FINAL_STT: 1,
    JobKind.LATER_TTS: 1,
    JobKind.SPECULATIVE_STT: 2,
}


@dataclass(eq=False)
class Job(Generic[P]):
    """What the queue orders: a kind, an owner, and what the shell runs (opaque here)."""

    kind: JobKind
    owner: str
    payload: P


class JobQueue(Generic[P]):
    """The ordering policy, sans threads: which job a free worker takes next.

    ``busy`` counts jobs handed out by ``take`` and not yet ``finished``; with ``workers``
    it says when the pool is saturated, the only state speculation needs.
    """

    def __init__(self, workers: int, ranks: Mapping[JobKind, int] = DEFAULT_RANKS) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.ranks = dict(ranks)
        # per rank, owner -> their jobs in order; dict order is the round-robin turn
        self._classes: dict[int, dict[str, deque[Job[P]]]] = {
            rank: {} for rank in sorted(set(self.ranks.values()))
        }
        self.busy = 0
        self._queued = 0

    def __len__(self) -> int:
        return self._queued

    @property
    def saturated(self) -> bool:
        """Every worker has a job, running or queued for it."""
        return self.busy + self._queued >= self.workers

    def offer(self, job: Job[P]) -> bool:
        """Queue ``job``; False (not queued) for speculative work while saturated."""
        if job.kind is JobKind.SPECULATIVE_STT and self.saturated:
            return False
        self._classes[self.ranks[job.kind]].setdefault(job.owner, deque()).append(job)
        self._queued += 1
        return True

    def take(self) -> Job[P] | None:
        """The next job for a free worker (now counted busy), or None when nothing waits."""
        for owners in self._classes.values():
            if owners:
                owner = next(iter(owners))
                jobs = owners.pop(owner)
                job = jobs.popleft()
                if jobs:
                    owners[owner] = jobs  # back of the turn: the other calls go first
                self._queued -= 1
                self.busy += 1
                return job
        return None

    def finished(self) -> None:
        """A job ``take`` handed out is done."""
        self.busy -= 1

    def remove(self, job: Job[P]) -> bool:
        """Take a queued job out (it will never run); False if it is not queued."""
        owners = self._classes[self.ranks[job.kind]]
        jobs = owners.get(job.owner)
        if jobs is None or job not in jobs:
            return False
        jobs.remove(job)
        if not jobs:
            del owners[job.owner]
        self._queued -= 1
        return True

    def waiting(self) -> dict[str, int]:
        """Jobs queued, not yet taken, by stage ("stt", "tts"): the queue depth metric."""
        counts = {"stt": 0, "tts": 0}
        for owners in self._classes.values():
            for jobs in owners.values():
                for job in jobs:
                    counts[job.kind.stage] += 1
        return counts

    def drain(self) -> Iterator[Job[P]]:
        """Every queued job, removed (shutdown cancels them)."""
        for owners in self._classes.values():
            for jobs in owners.values():
                yield from jobs
            owners.clear()
        self._queued = 0


class CpuShares:
    """Process CPU seconds charged to the jobs running, equally in each interval (sans-IO).

    ``now`` is a process CPU clock reading (``time.process_time()``); the caller serialises.
    """

    def __init__(self) -> None:
        self._charged: dict[int, float] = {}  # running job id -> seconds so far
        self._last = 0.0

    def _settle(self, now: float) -> None:
        if self._charged:
            share = (now - self._last) / len(self._charged)
            for key in self._charged:
                self._charged[key] += share
        self._last = now

    def start(self, key: int, now: float) -> None:
        self._settle(now)
        self._charged[key] = 0.0

    def stop(self, key: int, now: float) -> float:
        """The job's share, from its start to now."""
        self._settle(now)
        return self._charged.pop(key)


class CpuMeter:
    """``CpuShares`` over a clock, thread-safe. Process CPU is one quantity, so every
    scheduler of the process shares ``PROCESS_CPU``: two meters would each charge their own
    jobs with the other's work."""

    def __init__(self, clock: Callable[[], float] = time.process_time) -> None:
        self._clock = clock
        self._shares = CpuShares()
        self._lock = threading.Lock()

    def start(self, key: int) -> None:
        with self._lock:
            self._shares.start(key, self._clock())

    def stop(self, key: int) -> float:
        with self._lock:
            return self._shares.stop(key, self._clock())


PROCESS_CPU = CpuMeter()


@dataclass
class CpuSeconds:
    """One owner's (call's) CPU time in speech jobs so far."""

    stt: float = 0.0
    tts: float = 0.0
    jobs: int = 0

    @property
    def total(self) -> float:
        return self.stt + self.tts


@dataclass(eq=False)
class _Work:
    fn: Callable[[], Any]
    future: Future[Any] = field(default_factory=Future)


class Scheduler:
    """``workers`` threads running ``JobQueue``'s choice; jobs return concurrent Futures."""

    def __init__(
        self,
        workers: int = DEFAULT_WORKERS,
        ranks: Mapping[JobKind, int] = DEFAULT_RANKS,
        name: str = "speech",
        cpu: CpuMeter = PROCESS_CPU,
    ) -> None:
        self._queue: JobQueue[_Work] = JobQueue(workers, ranks)
        self._name = name
        self._cpu = cpu
        self._counters: dict[str, CpuSeconds] = {}
        self._lock = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._closed = False

    @property
    def workers(self) -> int:
        return self._queue.workers

    @overload
    def submit(
        self, kind: Literal[JobKind.SPECULATIVE_STT], owner: str, fn: Callable[..., T], *args: Any
    ) -> Future[T] | None: ...

    @overload
    def submit(
        self,
        kind: Literal[JobKind.FINAL_STT, JobKind.FIRST_TTS, JobKind.LATER_TTS],
        owner: str,
        fn: Callable[..., T],
        *args: Any,
    ) -> Future[T]: ...

    @overload
    def submit(
        self, kind: JobKind, owner: str, fn: Callable[..., T], *args: Any
    ) -> Future[T] | None: ...

    def submit(
        self, kind: JobKind, owner: str, fn: Callable[..., T], *args: Any
    ) -> Future[T] | None:
        """Queue ``fn(*args)``; None when speculative work is refused (the pool is saturated).

        RuntimeError after ``shutdown``.
        """
        work = _Work(lambda: fn(*args))
        job = Job(kind, owner, work)
        with self._lock:
            if self._closed:
                raise RuntimeError("the speech scheduler is shut down")
            if not self._queue.offer(job):
                return None
            thread = None
            if self._idle == 0 and len(self._threads) < self.workers:
                thread = self._new_thread()
            self._lock.notify()
        work.future.add_done_callback(lambda future: self._dropped(job, future))
        if thread is not None:
            thread.start()  # unlocked: it takes the job as it starts, as a pool's thread does
        return work.future

    def _dropped(self, job: Job[_Work], future: Future[Any]) -> None:
        if future.cancelled():
            with self._lock:
                self._queue.remove(job)  # no-op if a worker already took it

    def _new_thread(self) -> threading.Thread:
        thread = threading.Thread(
            target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        return thread

    def _work(self) -> None:
        while True:
            with self._lock:
                job = self._queue.take()
                while job is None:
                    if self._closed:
                        return
                    self._idle += 1
                    self._lock.wait()
                    self._idle -= 1
                    job = self._queue.take()
            key = id(job)
            self._cpu.start(key)
            try:
                self._run(job.payload)
            finally:
                seconds = self._cpu.stop(key)
                with self._lock:
                    self._queue.finished()
                    self._charge(job, seconds)

    @staticmethod
    def _run(work: _Work) -> None:
        if not work.future.set_running_or_notify_cancel():
            return  # cancelled while a worker was on its way to it
        try:
            result = work.fn()
        except BaseException as exc:  # handed to whoever waits, as ThreadPoolExecutor does
            work.future.set_exception(exc)
        else:
            work.future.set_result(result)

    def _charge(self, job: Job[_Work], seconds: float) -> None:
        counter = self._counters.pop(job.owner, None) or CpuSeconds()
        self._counters[job.owner] = counter  # the most recent last
        if len(self._counters) > MAX_COUNTERS:
            del self._counters[next(iter(self._counters))]
        if job.kind.stage == "stt":
            counter.stt += seconds
        else:
            counter.tts += seconds
        counter.jobs += 1

    def cpu_seconds(self, owner: str) -> CpuSeconds:
        """A copy of ``owner``'s CPU counter (zeros for an owner never seen)."""
        with self._lock:
            counter = self._counters.get(owner, CpuSeconds())
            return CpuSeconds(counter.stt, counter.tts, counter.jobs)

    def waiting(self) -> dict[str, int]:
        """Jobs waiting for a worker, by stage (``JobQueue.waiting``)."""
        with self._lock:
            return self._queue.waiting()

    def forget(self, owner: str) -> CpuSeconds:
        """Drop ``owner``'s counter (the call ended) and return its last value."""
        with self._lock:
            return self._counters.pop(owner, CpuSeconds())

    def shutdown(self, wait: bool = False) -> None:
        """Cancel every queued job; running ones finish. ``wait``: join the workers."""
        with self._lock:
            self._closed = True
            dropped = list(self._queue.drain())
            self._lock.notify_all()
        for job in dropped:
            job.payload.future.cancel()
        if wait:
            for thread in list(self._threads):
                if thread.ident is not None:  # started (submit starts it after its lock)
                    thread.join()
