"""Text to speech, engine-independent: the voice protocols, silence trimming, and a reply
streamed chunk by chunk off the loop. Engines live in their own files (piper.py); how a
reply is cut into chunks is reply_text.py.

The first chunk (a clause) is synthesized alone so its audio is ready as early as possible,
and each next chunk is synthesized while the caller hears the current one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from ari_offload.audio import SAMPLE_RATE, Pcm
from ari_offload.speech.reply_text import Chunk, plan_chunks

logger = logging.getLogger("ari_offload.speech")

DEFAULT_TTS_WORKERS = 2
# Piper's silence floor is about -80 dBFS and word ends fade through -40..-60 dBFS.
SILENCE_THRESHOLD = 100  # int16, about -50 dBFS
KEEP_SILENCE_MS = 20


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


class TtsRunner:
    """Runs a Synthesizer in its own thread pool and streams a reply chunk by chunk."""

    def __init__(
        self,
        synthesizer: Synthesizer,
        workers: int = DEFAULT_TTS_WORKERS,
        sentence_pause_ms: int | None = None,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        """``executor``: a pool shared by every voice's runner (its owner closes it);
        ``sentence_pause_ms``: one pause after every chunk instead of the plan's own."""
        self.synthesizer = synthesizer
        self._pause_ms = sentence_pause_ms
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="tts"
        )

    async def synthesize(self, sentence: str) -> Pcm:
        return await self._submit(sentence)

    def _submit(self, sentence: str) -> asyncio.Future[Pcm]:
        """Start now (not when a task gets scheduled): the next sentence must not wait."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, self.synthesizer.synthesize_sentence, sentence)

    async def stream(self, text: str) -> AsyncGenerator[tuple[str, Pcm], None]:
        """Yield (chunk text, pcm) in order (``reply_text.plan_chunks``); the next chunk is
        synthesized meanwhile.

        Every chunk but the last ends with its pause. Chunks that produce no audio are
        skipped. ``aclose()`` it on barge-in: the chunk being prepared is abandoned and no
        further one starts.
        """
        chunks = plan_chunks(text)
        if not chunks:
            return
        pending = self._submit(chunks[0].speak)
        try:
            for index, chunk in enumerate(chunks):
                pcm = await pending
                last = index + 1 == len(chunks)
                if not last:
                    pending = self._submit(chunks[index + 1].speak)
                if pcm.size:
                    yield chunk.text, pcm if last else np.concatenate([pcm, self._pause(chunk)])
        finally:
            pending.cancel()  # no-op once done
            if pending.done() and not pending.cancelled():
                pending.exception()  # retrieved, so an abandoned failure is not logged

    def _pause(self, chunk: Chunk) -> Pcm:
        ms = chunk.pause_ms if self._pause_ms is None else self._pause_ms
        return np.zeros(SAMPLE_RATE * ms // 1000, dtype=np.int16)

    def close(self) -> None:
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)
