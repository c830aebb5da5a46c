"""Call recordings: a flow's `record` action records the call from there to its end.

Per flow, off by default: a flow records its calls by holding a `record` action. A flow is the
call's script, so the recording covers the whole call whichever agents it talks to, and the
action's place says where it starts (after a `talk` that tells the caller, or first).

What is written: a stereo 16-bit WAV at the port's rate (8 kHz; 16 kHz on a slin16 call), the
caller on the left channel and the agent on the right (``stereo.py`` says why stereo and how
the sides line up): the caller as the media port hears them (``tap()``), the agent as the port
plays (``tap_played()``), so a reply cut by barge-in is recorded up to the cut, as the caller
heard it. 32 KB per second of an 8 kHz call, 64 KB of a 16 kHz one.

Written while the call runs: every ``flush_s`` the settled audio is appended and the header's
sizes rewritten (``wav.py``); a SIGKILL loses at most the last ``flush_s`` plus the timeline's
hold, and leaves a playable file. The call record holds the file's path (written before the
file is created, so no file is left that nothing points to); the API serves it and deleting
the call deletes it. An adopted call (the app restarted mid-call) records on into its file.

Free-space guard: below ``min_free_mb`` on the recordings' disk a recording does not start, and
a running one stops, each with a WARNING; a disk error stops it the same way. The call never
notices. Files are ``<dir>/<call id>.wav``, 0600, in a 0700 directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ari_offload.ari.call import ActiveCall
from ari_offload.audio import SAMPLE_RATE
from ari_offload.config import RecordingSettings
from ari_offload.errors import AriOffloadError
from ari_offload.media.port import FrameTap
from ari_offload.observe.stereo import AGENT, CALLER, CHANNELS, StereoTimeline
from ari_offload.observe.wav import HEADER_BYTES, WavFormat, parse_header, repaired_header
from ari_offload.observe.wav import wav_header as header_for
from ari_offload.store.calls import Calls
from ari_offload.tasks import cancel_and_wait

log = logging.getLogger("ari_offload.recording")

FORMAT = WavFormat(CHANNELS, SAMPLE_RATE)  # a narrowband call's
RECORDINGS_SUBDIR = "recordings"  # in the store's data dir when no directory is set
STOP_TIMEOUT_S = 5.0  # at shutdown, the time running recordings get to write their end
_MB = 1024 * 1024

FreeBytes = Callable[[Path], int]


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on ``path``'s file system."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def recordings_dir(settings: RecordingSettings, data_dir: Path) -> Path:
    return settings.dir if settings.dir is not None else data_dir / RECORDINGS_SUBDIR


class Recordings:
    """Starts calls' recordings (``FlowContext.start_recording``) and waits for their ends."""

    def __init__(
        self,
        settings: RecordingSettings,
        directory: Path,
        calls: Calls,
        *,
        free: FreeBytes = free_bytes,
    ) -> None:
        self._settings = settings
        self._dir = directory
        self._calls = calls
        self._free = free
        self._running: dict[str, asyncio.Task[None]] = {}

    @property
    def _min_free(self) -> int:
        return self._settings.min_free_mb * _MB

    async def start(self, call: ActiveCall) -> None:
        """Record ``call`` from now to its end; a second start of the same call is a no-op."""
        if call.call_id in self._running or call.ended.is_set():
            return
        # Taps first: what is said while the file opens is recorded too.
        caller, agent = call.media.tap(), call.media.tap_played()
        began = time.monotonic()
        try:
            writer = await self._open(call)
        except (OSError, ValueError, AriOffloadError) as exc:
            log.warning("call %s: not recorded: %s", call.call_id, exc)
            writer = None
        if writer is None:
            caller.close()
            agent.close()
            return
        task = asyncio.create_task(
            self._record(call.call_id, caller, agent, writer, began),
            name=f"recording-{call.call_id}",
        )
        self._running[call.call_id] = task
        task.add_done_callback(lambda done: self._ended(call.call_id, done))

    def _ended(self, call_id: str, task: asyncio.Task[None]) -> None:
        self._running.pop(call_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("call %s: recording failed", call_id, exc_info=task.exception())

    async def close(self) -> None:
        """Shutdown (after the calls ended): let recordings write their ends, then stop."""
        tasks = list(self._running.values())
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
            await cancel_and_wait(*tasks)

    async def _open(self, call: ActiveCall) -> WavWriter | None:
        free = await asyncio.to_thread(self._free_here)
        if free < self._min_free:
            log.warning(
                "call %s: not recorded: %d MB free in %s, below ARI_OFFLOAD_RECORDING_MIN_FREE_MB"
                "=%d", call.call_id, free // _MB, self._dir, self._settings.min_free_mb,
            )  # fmt: skip
            return None
        path = self._dir / f"{call.call_id}.wav"
        started = datetime.now(UTC)
        stored = await self._calls.set_recording(call.call_id, str(path), started)
        if stored is None:
            log.warning("call %s: not recorded: it has no call record", call.call_id)
            return None
        fmt = WavFormat(CHANNELS, call.media.codec.sample_rate)
        writer = await asyncio.to_thread(WavWriter.open, Path(stored), fmt)
        how = "going on in" if writer.resumed else "to"
        log.info("call %s: recording %s %s", call.call_id, how, stored)
        return writer

    def _free_here(self) -> int:
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self._free(self._dir)

    async def _record(
        self, call_id: str, caller: FrameTap, agent: FrameTap, writer: WavWriter, began: float
    ) -> None:
        timeline = StereoTimeline(writer.fmt.rate)
        readers = [
            asyncio.create_task(feed_timeline(tap, side, timeline, began))
            for tap, side in ((caller, CALLER), (agent, AGENT))
        ]
        why = "the call ended"
        try:
            while not all(reader.done() for reader in readers):
                await asyncio.wait(readers, timeout=self._settings.flush_s)
                audio = timeline.take(time.monotonic() - began)
                free = await asyncio.to_thread(writer.append, audio, self._free)
                if free < self._min_free:
                    why = (
                        f"{free // _MB} MB free, below ARI_OFFLOAD_RECORDING_MIN_FREE_MB="
                        f"{self._settings.min_free_mb}"
                    )
                    log.warning("call %s: recording stopped: %s", call_id, why)
                    break
        except (OSError, ValueError) as exc:  # a disk error; a WAV past its 4 GiB (37 h)
            why = f"it cannot be written: {exc}"
            log.warning("call %s: recording stopped: %s", call_id, why)
        finally:
            caller.close()
            agent.close()
            await cancel_and_wait(*readers)
            try:
                ended = time.monotonic() - began
                await asyncio.to_thread(writer.finish, timeline.finish(ended))
            except (OSError, ValueError) as exc:
                log.warning("call %s: the recording's end was not written: %s", call_id, exc)
        log.info(
            "call %s: recording closed (%s): %.1f s in %s", call_id, why,
            writer.data_bytes / writer.fmt.frame_bytes / writer.fmt.rate, writer.path,
        )  # fmt: skip


async def feed_timeline(tap: FrameTap, side: int, timeline: StereoTimeline, began: float) -> None:
    """One side's frames onto the timeline until its tap ends (``began``: time.monotonic())."""
    async for frame in tap:
        timeline.add(side, frame.pcm, frame.timestamp, frame.received_at - began)


@dataclass
class WavWriter:
    """A recording's open file: audio appended, the header kept in step. Blocking: run its
    methods in a thread."""

    path: Path
    fd: int
    fmt: WavFormat
    data_bytes: int
    resumed: bool

    @classmethod
    def open(cls, path: Path, fmt: WavFormat) -> WavWriter:
        """Create the file, or go on after the last whole frame of one written before."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            size = os.fstat(fd).st_size
            resumed = size >= HEADER_BYTES
            data = 0
            if resumed:
                header, data = repaired_header(os.pread(fd, HEADER_BYTES, 0), size)
                if parse_header(header)[0] != fmt:
                    raise ValueError(f"{path} holds a recording of another format")
            os.ftruncate(fd, HEADER_BYTES + data)  # a torn last frame, or a torn header
            os.pwrite(fd, header_for(fmt, data), 0)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, fmt, data, resumed)

    def append(self, audio: bytes, free: FreeBytes) -> int:
        """Append ``audio``, then update the header; return the bytes still free there."""
        if audio:
            os.pwrite(self.fd, audio, HEADER_BYTES + self.data_bytes)
            self.data_bytes += len(audio)
            os.pwrite(self.fd, header_for(self.fmt, self.data_bytes), 0)
        return free(self.path.parent)

    def finish(self, audio: bytes) -> None:
        """Append the last audio and close the file."""
        try:
            self.append(audio, lambda _: 0)
        finally:
            os.close(self.fd)
