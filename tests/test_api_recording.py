"""GET /v1.0/calls/{id}/recording through the SDK against a real API and store: the owner gets a
playable WAV (also of a file whose writer was killed), anyone else a 404, a call that was not
recorded a 404 that says so, and the file goes with the call."""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from ari_offload.observe.recording import FORMAT, WavWriter
from ari_offload.observe.wav import HEADER_BYTES, wav_header
from ari_offload.sdk.client import ApiError, Client
from ari_offload.store import CallStatus, Direction
from tests.api_support import ApiEnv, running_api


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with running_api(tmp_path) as e:
        yield e


async def ended_call(env: ApiEnv, token: str) -> str:
    """One of the token's customer's calls, ended, started two minutes ago (deletable)."""
    async with Client(env.base_url, token) as client:
        flow = await client.flows.create(f"f{len(await client.flows.list())}", [{"type": "hangup"}])
    stored = await env.store.flows.get(flow.id, customer_id=None)
    assert stored is not None
    customer = stored.customer_id
    started = datetime.now(UTC) - timedelta(minutes=2)
    call = await env.store.calls.create(
        customer, direction=Direction.IN, flow_id=flow.id, started_at=started
    )
    await env.store.calls.set_status(call.id, CallStatus.ACTIVE, at=started)
    await env.store.calls.set_status(call.id, CallStatus.ENDED)
    return call.id


def killed_recording(path: Path) -> np.ndarray:
    """A recording as a SIGKILL leaves it: 2 s on disk, the header counting 1 s of it."""
    audio = np.arange(-16000, 16000, dtype="<i2").reshape(-1, 2)
    path.write_bytes(wav_header(FORMAT, len(audio.tobytes()) // 2) + audio.tobytes())
    return audio


async def test_the_owner_downloads_the_whole_recording_others_get_404(
    env: ApiEnv, tmp_path: Path
) -> None:
    alice, bob = await env.signup("alice", "password1"), await env.signup("bob", "password1")
    call_id = await ended_call(env, alice)
    path = tmp_path / f"{call_id}.wav"
    audio = killed_recording(path)
    at = datetime.now(UTC)
    await env.store.calls.set_recording(call_id, str(path), at)

    async with Client(env.base_url, alice) as client:
        data = await client.calls.recording(call_id)
        call = await client.calls.get(call_id)
    assert call.recording_started_at == at
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert np.array_equal(frames, audio.reshape(-1)), "all of it, not what the stale header said"
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            env.url(f"/v1.0/calls/{call_id}/recording"),
            headers={"Authorization": f"Bearer {alice}"},
        ) as resp,
    ):
        assert resp.status == 200
        assert resp.content_type == "audio/wav"
        assert resp.content_length == HEADER_BYTES + audio.nbytes

    async with Client(env.base_url, bob) as client:
        with pytest.raises(ApiError) as err:
            await client.calls.recording(call_id)
    assert (err.value.status, err.value.code) == (404, "not_found")


async def test_a_call_not_recorded_is_a_404_saying_so(env: ApiEnv, tmp_path: Path) -> None:
    alice = await env.signup("alice", "password1")
    plain, lost = await ended_call(env, alice), await ended_call(env, alice)
    await env.store.calls.set_recording(lost, str(tmp_path / "gone.wav"), datetime.now(UTC))
    async with Client(env.base_url, alice) as client:
        with pytest.raises(ApiError) as not_recorded:
            await client.calls.recording(plain)
        with pytest.raises(ApiError) as missing:
            await client.calls.recording(lost)
        assert (await client.calls.get(plain)).recording_started_at is None
    assert (not_recorded.value.status, not_recorded.value.code) == (404, "not_recorded")
    assert "no record action" in not_recorded.value.message
    assert (missing.value.status, missing.value.code) == (404, "recording_missing")


async def test_deleting_the_call_deletes_its_recording(env: ApiEnv, tmp_path: Path) -> None:
    alice = await env.signup("alice", "password1")
    call_id = await ended_call(env, alice)
    path = tmp_path / f"{call_id}.wav"
    writer = WavWriter.open(path, FORMAT)
    writer.finish(b"\x00" * 3200)
    await env.store.calls.set_recording(call_id, str(path), datetime.now(UTC))
    async with Client(env.base_url, alice) as client:
        assert len(await client.calls.recording(call_id)) == HEADER_BYTES + 3200
        await client.calls.delete(call_id)
        with pytest.raises(ApiError) as err:
            await client.calls.recording(call_id)
    assert err.value.status == 404
    assert not path.exists()
