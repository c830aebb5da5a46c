"""MachineListener over an in-memory port: frames to the detector, silence for a gap."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from ari_offload.audio import FRAME_SAMPLES, Pcm
from ari_offload.speech.vad import frame_level_dbfs
from ari_offload.voice.machine import MachineListener
from ari_offload.voice.machine_detect import AnsweredBy, MachineDetector
from tests.unit.fake_media import FakeMediaPort
from tests.unit.test_machine_detect import quiet, tone, voice


def loud(frame: Pcm) -> bool:
    return frame_level_dbfs(frame) > -50


def frames(pcm: Pcm) -> list[Pcm]:
    pcm = np.concatenate([pcm, np.zeros(-pcm.size % FRAME_SAMPLES, np.int16)])
    return list(pcm.reshape(-1, FRAME_SAMPLES))


async def test_a_person_who_then_sends_nothing_is_decided_on_the_clock() -> None:
    # "Hello?" and then no RTP at all (silence suppression; a bridge forwards only what comes).
    port = FakeMediaPort()
    detector = MachineDetector(loud)
    async with MachineListener(port, detector) as listener:
        port.say(frames(voice(0.5)))
        started = time.monotonic()
        verdict = await asyncio.wait_for(listener.verdict(), 5)
        waited = time.monotonic() - started
    assert verdict is not None
    assert verdict.answered_by == AnsweredBy.HUMAN
    silence_s = detector.params.after_greeting_silence_ms / 1000
    assert silence_s <= waited < silence_s + 1.0  # the gap counted as the silence it is


async def test_a_machine_verdict_then_the_cue_after_its_beep() -> None:
    port = FakeMediaPort()
    async with MachineListener(port, MachineDetector(loud)) as listener:
        port.say(frames(np.concatenate([voice(4.0), quiet(0.3), tone(1000, 0.5), quiet(1.0)])))
        verdict = await asyncio.wait_for(listener.verdict(), 5)
        cue = await asyncio.wait_for(listener.cue(), 5)
    assert verdict is not None
    assert verdict.answered_by == AnsweredBy.MACHINE
    assert cue is not None
    assert cue.cause == "beep"


async def test_no_verdict_when_the_call_audio_ends_first() -> None:
    port = FakeMediaPort()
    async with MachineListener(port, MachineDetector(loud)) as listener:
        port.say(frames(voice(1.0)))
        await port.close()  # the far end hung up mid-greeting
        assert await asyncio.wait_for(listener.verdict(), 5) is None
        assert await listener.cue() is None


async def test_closing_leaves_no_task_and_no_tap() -> None:
    port = FakeMediaPort()
    listener = MachineListener(port, MachineDetector(loud))
    waiting = asyncio.ensure_future(listener.verdict())
    await asyncio.sleep(0.05)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    await listener.close()
    port.say(frames(voice(0.2)))
    assert port.unread == 0  # the tap is gone: nobody holds frames for it
    before = asyncio.all_tasks()
    await asyncio.sleep(0)
    assert asyncio.all_tasks() <= before
