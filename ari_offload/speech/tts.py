"""Text to speech, engine-independent: sentence splitting (sans-IO), the voice protocols, and
sentence streaming off the loop. Engines live in their own files (piper.py).

The reply is spoken sentence by sentence: the first sentence is synthesized alone so its
audio is ready as early as possible, and each next sentence is synthesized while the caller
hears the current one.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncGenerator
from typing import Any, Literal, Protocol

import numpy as np

from ari_offload.audio import SAMPLE_RATE, Pcm
from ari_offload.speech.scheduler import JobKind, Scheduler

logger = logging.getLogger("ari_offload.speech")

# Piper's working memory grows with the longest piece it has ever been given and is kept
# (onnxruntime's arena): with two workers, pieces of up to 10/20/30/40 words reached
# 414/635/913/998 MB RSS (bench/bench_tts_memory.py). A bound on the piece bounds the process.
MAX_SENTENCE_CHARS = 140
DEFAULT_TTS_WORKERS = 2
# Piper's silence floor is about -80 dBFS and word ends fade through -40..-60 dBFS.
SILENCE_THRESHOLD = 100  # int16, about -50 dBFS
KEEP_SILENCE_MS = 20
# Edges are trimmed, so the pause between two sentences is put back explicitly.
SENTENCE_PAUSE_MS = 250

# A period after these is not a sentence end ("Dr. Smith", "e.g. this").
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "etc", "e.g", "i.e", "a.m", "p.m"}
    | {"inc", "ltd", "approx", "dept"}
)
# espeak-ng (inside piper) would end a sentence at "Dr."; without the dot it still says
# "Doctor" and the sentence stays whole.
_TITLE_DOT = re.compile(r"\b(Mr|Mrs|Ms|Dr|Prof|St|Sr|Jr|vs|etc)\.(?=\s)", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)")


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Sentences to speak one at a time; lines are sentences; long ones cut at commas."""
    sentences: list[str] = []
    for line in text.splitlines():
        for sentence in _split_line(line.strip()):
            sentences.extend(_split_long(sentence, max_chars))
    return sentences


def _split_line(line: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(line):
        if match.group().startswith(".") and _is_abbreviation(line[start : match.start()]):
            continue
        pieces.append(line[start : match.end()].strip())
        start = match.end()
    pieces.append(line[start:].strip())
    return [piece for piece in pieces if piece]


def _is_abbreviation(before_dot: str) -> bool:
    words = before_dot.split()
    return bool(words) and words[-1].lower().lstrip("(\"'") in _ABBREVIATIONS


def _split_long(sentence: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    while len(sentence) > max_chars:
        cut = _cut_point(sentence, max_chars)
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    return [*pieces, sentence] if sentence else pieces


def _cut_point(sentence: str, max_chars: int) -> int:
    """After the last comma (or ; :) that fits, else at the last space that fits, else
    (one word longer than the bound) at the bound: no piece is ever longer."""
    before = max(sentence.rfind(mark, 0, max_chars) for mark in (",", ";", ":"))
    if before >= max_chars // 3:  # not a first piece of two words
        return before + 1
    space = sentence.rfind(" ", 0, max_chars + 1)
    return space if space > 0 else max_chars


def speakable(sentence: str) -> str:
    """The sentence as piper should read it (title abbreviations lose their dot)."""
    return _TITLE_DOT.sub(r"\1", sentence)


def trim_silence(pcm: Pcm, rate: int = SAMPLE_RATE, keep_ms: int = KEEP_SILENCE_MS) -> Pcm:
    """Cut leading and trailing silence, keeping ``keep_ms`` on each side."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > SILENCE_THRESHOLD)
    if loud.size == 0:
        return pcm[:0]
    keep = rate * keep_ms // 1000
    return pcm[max(0, int(loud[0]) - keep) : int(loud[-1]) + 1 + keep]


class Synthesizer(Protocol):
    def synthesize_sentence(self, text: str) -> Pcm:
        """Blocking: one sentence in, 8 kHz int16 speech out, edges trimmed."""
        ...


class TtsVoice(Synthesizer, Protocol):
    """One named voice of a loaded TTS engine: what engines.py builds and doctor describes."""

    @property
    def name(self) -> str:
        """What an agent's ``voice`` names."""
        ...

    def warmup(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        """``engine`` (its registry name), ``summary`` (one line for doctor), and details."""
        ...


TtsKind = Literal[JobKind.FIRST_TTS, JobKind.LATER_TTS]


class TtsRunner:
    """Runs a Synthesizer on a ``Scheduler``'s workers and streams a reply sentence by sentence.

    The first sentence of a reply is queued as ``FIRST_TTS`` (a caller hears nothing until
    it is ready), the others as ``LATER_TTS`` (scheduler.py ranks them).
    """

    def __init__(
        self,
        synthesizer: Synthesizer,
        workers: int = DEFAULT_TTS_WORKERS,
        sentence_pause_ms: int = SENTENCE_PAUSE_MS,
        scheduler: Scheduler | None = None,
    ) -> None:
        """``scheduler``: shared by every voice's runner and STT (its owner shuts it down);
        None: one of its own with ``workers`` workers."""
        self.synthesizer = synthesizer
        self._pause = np.zeros(SAMPLE_RATE * sentence_pause_ms // 1000, dtype=np.int16)
        self._own_scheduler = scheduler is None
        self.scheduler = scheduler or Scheduler(workers, name="tts")

    async def synthesize(self, sentence: str, owner: str = "") -> Pcm:
        return await self._submit(sentence, JobKind.FIRST_TTS, owner)

    def _submit(self, sentence: str, kind: TtsKind, owner: str) -> asyncio.Future[Pcm]:
        """Start now (not when a task gets scheduled): the next sentence must not wait."""
        job = self.scheduler.submit(kind, owner, self.synthesizer.synthesize_sentence, sentence)
        return asyncio.wrap_future(job)

    async def stream(self, text: str, owner: str = "") -> AsyncGenerator[tuple[str, Pcm], None]:
        """Yield (sentence, pcm) in order; the next sentence is synthesized meanwhile.

        Every sentence but the last ends with a short pause. Sentences that produce no
        audio are skipped. ``aclose()`` it on barge-in: the sentence being prepared is
        abandoned and no further one starts. ``owner``: the call id (scheduler fairness and
        its CPU counter).
        """
        sentences = split_sentences(text)
        if not sentences:
            return
        pending = self._submit(sentences[0], JobKind.FIRST_TTS, owner)
        try:
            for index, sentence in enumerate(sentences):
                pcm = await pending
                last = index + 1 == len(sentences)
                if not last:
                    pending = self._submit(sentences[index + 1], JobKind.LATER_TTS, owner)
                if pcm.size:
                    yield sentence, pcm if last else np.concatenate([pcm, self._pause])
        finally:
            pending.cancel()  # no-op once done
            if pending.done() and not pending.cancelled():
                pending.exception()  # retrieved, so an abandoned failure is not logged

    def close(self) -> None:
        if self._own_scheduler:
            self.scheduler.shutdown()
