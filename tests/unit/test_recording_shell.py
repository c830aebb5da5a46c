"""Recordings over an in-memory media port, a real SQLite store and real files: written while
the call runs, the free-space guard, a recording resumed after a crash."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import wave
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from ari_offload.ari.call import ActiveCall
from ari_offload.ari.events import Channel
from ari_offload.ari.rest import AriRest
from ari_offload.audio import FRAME_SAMPLES, Pcm
from ari_offload.config import RecordingSettings, StoreSettings
from ari_offload.observe.recording import FORMAT, Recordings, WavWriter
from ari_offload.observe.wav import HEADER_BYTES, parse_header, wav_header
from ari_offload.store import CallStatus, Direction, Store
from tests.api_support import FAST_HASHER
from tests.unit.fake_media import FakeMediaPort

PLENTY = 10**12
FAST = RecordingSettings(min_free_mb=100, flush_s=0.05)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(StoreSettings(data_dir=tmp_path), password_hasher=FAST_HASHER)
    yield s
    await s.close()


async def a_call(store: Store, with_record: bool = True) -> tuple[ActiveCall, FakeMediaPort]:
    port = FakeMediaPort()
    channel = Channel("1795476849.0", "PJSIP/test-1", "Up", caller_number="100")
    call_id = "call-without-record"
    if with_record:
        customer = await store.customers.create("alice", "password1")
        record = await store.calls.create(customer.id, direction=Direction.IN, flow_id=None)
        await store.calls.set_status(record.id, CallStatus.ACTIVE)
        call_id = record.id
    return ActiveCall(call_id, channel, {}, "in", cast(AriRest, None), port), port


def caller_frames(n: int, value: int = 1000) -> list[Pcm]:
    return [np.full(FRAME_SAMPLES, value + i, dtype=np.int16) for i in range(n)]


def read_wav(path: Path) -> tuple[Pcm, Pcm]:
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        both = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    return both[:, 0], both[:, 1]


def wav_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.wav"))


def header_size(path: Path) -> int:
    return parse_header(path.read_bytes()[:HEADER_BYTES])[1]


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


def audible(pcm: Pcm) -> Pcm:
    return pcm[np.nonzero(pcm)[0][0] : np.nonzero(pcm)[0][-1] + 1]


async def test_both_sides_are_on_disk_while_the_call_runs_and_whole_at_its_end(
    store: Store, tmp_path: Path
) -> None:
    recordings = Recordings(FAST, tmp_path / "rec", store.calls, free=lambda _: PLENTY)
    call, port = await a_call(store)
    await recordings.start(call)
    said = caller_frames(100)  # 2 s of the caller
    port.say(said)
    reply = np.full(4000, -700, dtype=np.int16)  # 0.5 s of the agent, played at once
    port.play(reply)
    path = tmp_path / "rec" / f"{call.call_id}.wav"

    # Mid-call the file is a valid WAV whose header counts what it holds.
    await until(lambda: path.exists() and header_size(path) > 0)
    assert header_size(path) == path.stat().st_size - HEADER_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    await port.close()  # the call ends: the recording writes its end
    await recordings.close()
    left, right = read_wav(path)
    assert np.array_equal(audible(left), np.concatenate(said))
    assert np.array_equal(audible(right), reply)
    record = await store.calls.get(call.call_id, customer_id=None)
    assert record is not None
    assert record.recording_path == str(path)
    assert record.recording_started_at is not None


async def test_a_second_record_action_keeps_the_one_recording(store: Store, tmp_path: Path) -> None:
    recordings = Recordings(FAST, tmp_path, store.calls, free=lambda _: PLENTY)
    call, port = await a_call(store)
    await recordings.start(call)
    await recordings.start(call)
    port.say(caller_frames(10))
    await port.close()
    await recordings.close()
    assert wav_files(tmp_path) == [f"{call.call_id}.wav"]
    assert len(audible(read_wav(tmp_path / f"{call.call_id}.wav")[0])) == 10 * FRAME_SAMPLES


async def test_too_little_free_space_records_nothing_and_says_so(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recordings = Recordings(FAST, tmp_path, store.calls, free=lambda _: 99 * 1024 * 1024)
    call, port = await a_call(store)
    with caplog.at_level(logging.WARNING):
        await recordings.start(call)
    port.say(caller_frames(10))  # the call goes on
    await port.close()
    assert wav_files(tmp_path) == []
    record = await store.calls.get(call.call_id, customer_id=None)
    assert record is not None
    assert record.recording_path is None, "nothing to serve, nothing claimed"
    assert "not recorded: 99 MB free" in caplog.text
    assert "ARI_OFFLOAD_RECORDING_MIN_FREE_MB=100" in caplog.text


async def test_the_disk_filling_up_mid_call_stops_the_recording_not_the_call(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    free = [PLENTY]
    recordings = Recordings(FAST, tmp_path, store.calls, free=lambda _: free[0])
    call, port = await a_call(store)
    await recordings.start(call)
    port.say(caller_frames(50))
    path = tmp_path / f"{call.call_id}.wav"
    await until(lambda: path.exists() and header_size(path) > 0)
    free[0] = 0
    with caplog.at_level(logging.WARNING):
        await until(lambda: "recording stopped: 0 MB free" in caplog.text)
        await until(lambda: not recordings._running)
    port.say(caller_frames(50, value=5000))  # not recorded; the call is unaffected
    assert port.unread == 0, "the recording's taps are closed: nothing piles up"
    await port.close()
    left, _ = read_wav(path)  # closed with a header that counts all it holds
    assert header_size(path) == path.stat().st_size - HEADER_BYTES
    assert not np.any(left >= 5000)


async def test_a_recording_cut_by_a_crash_goes_on_in_its_file(store: Store, tmp_path: Path) -> None:
    call, port = await a_call(store)
    path = tmp_path / f"{call.call_id}.wav"
    # What a SIGKILL left: the header one update behind, a frame torn in half at the end.
    before = np.full((8000, 2), 321, dtype="<i2").tobytes()
    path.write_bytes(wav_header(FORMAT, len(before) // 2) + before + b"\x01\x02\x03")
    await store.calls.set_recording(call.call_id, str(path), datetime.now(UTC))
    recordings = Recordings(FAST, tmp_path, store.calls, free=lambda _: PLENTY)

    await recordings.start(call)  # the adopted call's flow runs `record` again
    port.say(caller_frames(25, value=2000))
    await port.close()
    await recordings.close()
    left, _ = read_wav(path)
    assert header_size(path) == path.stat().st_size - HEADER_BYTES
    assert np.array_equal(left[:8000], np.full(8000, 321)), "the first run's audio, all of it"
    assert np.array_equal(audible(left[8000:]), np.concatenate(caller_frames(25, value=2000)))


async def test_a_call_without_a_record_is_not_recorded(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recordings = Recordings(FAST, tmp_path, store.calls, free=lambda _: PLENTY)
    call, port = await a_call(store, with_record=False)
    with caplog.at_level(logging.WARNING):
        await recordings.start(call)
    await port.close()
    assert wav_files(tmp_path) == []
    assert "not recorded: it has no call record" in caplog.text


def test_files_are_private_even_with_a_careless_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        writer = WavWriter.open(tmp_path / "x.wav", FORMAT)
        writer.finish(b"")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.wav").stat().st_mode) == 0o600
