"""MachineListener over an in-memory port: frames to the detector, silence for a gap."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from ari_offload.audio import FRAME_SAMPLES, Pcm, resample
from ari_offload.media.g711 import SLIN16
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


class SlowWhisper:
    """A transcriber that answers ``text`` after ``seconds``, and notes each run."""

    def __init__(self, text: str, seconds: float = 0.5, fail: bool = False) -> None:
        self.text = text
        self.seconds = seconds
        self.fail = fail
        self.runs: list[float] = []  # seconds of audio per run

    async def __call__(self, pcm: Pcm) -> str:
        self.runs.append(len(pcm) / 8000)
        await asyncio.sleep(self.seconds)
        if self.fail:
            raise RuntimeError("whisper is gone")
        return self.text


async def test_a_short_voicemail_greeting_is_caught_by_its_words() -> None:
    port = FakeMediaPort()
    whisper = SlowWhisper("Hi, it's Alex. Leave a message.")
    detector = MachineDetector(loud)
    async with MachineListener(port, detector, transcribe=whisper) as listener:
        port.say(frames(voice(2.2)))  # then nothing: no beep, the machine records
        verdict = await asyncio.wait_for(listener.verdict(), 5)
        cue = await asyncio.wait_for(listener.cue(), 5)
    assert verdict is not None
    assert verdict.answered_by == AnsweredBy.MACHINE
    assert verdict.cause == 'the words "leave a message"'
    assert cue is not None
    assert cue.cause == "silence"


async def test_whisper_runs_during_the_silence_that_decides_a_person() -> None:
    port = FakeMediaPort()
    whisper = SlowWhisper("Yes, this is Sam speaking.", seconds=0.5)
    detector = MachineDetector(loud)
    async with MachineListener(port, detector, transcribe=whisper) as listener:
        port.say(frames(voice(1.8)))
        started = time.monotonic()
        verdict = await asyncio.wait_for(listener.verdict(), 5)
        waited = time.monotonic() - started
    assert verdict is not None
    assert verdict.answered_by == AnsweredBy.HUMAN
    assert len(whisper.runs) == 1  # started at the pause, used at the verdict
    assert 1.8 <= whisper.runs[0] <= 2.2
    silence_s = detector.params.after_greeting_silence_ms / 1000
    # Without the early start: the silence, then the run (1.4 s); with it, the silence.
    assert waited < silence_s + whisper.seconds - 0.2, waited


async def test_a_greeting_that_goes_on_after_a_pause_is_transcribed_again_whole() -> None:
    port = FakeMediaPort()
    whisper = SlowWhisper("Hi, it's Alex. Leave a message.", seconds=0.05)
    async with MachineListener(port, MachineDetector(loud), transcribe=whisper) as listener:
        port.say(frames(np.concatenate([voice(1.4), quiet(0.5), voice(0.9)])))
        verdict = await asyncio.wait_for(listener.verdict(), 5)
    assert verdict is not None
    assert verdict.answered_by == AnsweredBy.MACHINE
    assert len(whisper.runs) == 2
    assert whisper.runs[1] > whisper.runs[0] + 1.0  # the second run heard all of it


async def test_a_person_decided_by_words_mid_sentence_is_let_finish() -> None:
    port = FakeMediaPort()
    whisper = SlowWhisper("Good morning, Acme Dental, Sarah speaking, how can I", seconds=0.1)
    detector = MachineDetector(loud)
    async with MachineListener(port, detector, transcribe=whisper) as listener:
        port.say(frames(voice(4.5)))  # longer than a person's greeting: timing says machine
        verdict = await asyncio.wait_for(listener.verdict(), 10)
    assert verdict is not None
    assert verdict.answered_by == AnsweredBy.HUMAN
    assert verdict.cause == 'the words "<name> speaking"'
    assert detector.quiet_ms >= 400  # she finished her sentence before the flow speaks
    assert detector.heard_ms >= 4500


async def test_without_words_the_timing_stands(caplog: pytest.LogCaptureFixture) -> None:
    port = FakeMediaPort()
    whisper = SlowWhisper("", seconds=0.05, fail=True)
    async with MachineListener(port, MachineDetector(loud), transcribe=whisper) as listener:
        port.say(frames(voice(2.0)))
        verdict = await asyncio.wait_for(listener.verdict(), 5)
    assert verdict is not None
    assert verdict.answered_by == AnsweredBy.HUMAN
    assert "going by its timing" in caplog.text


async def test_a_wideband_port_is_heard_in_the_detectors_telephone_band() -> None:
    port = FakeMediaPort(codec=SLIN16)
    greeting = np.concatenate([voice(4.0), quiet(0.3), tone(1000, 0.5), quiet(1.0)])
    wide = resample(greeting, 8000, 16000)
    wide = np.concatenate([wide, np.zeros(-wide.size % 320, np.int16)])
    async with MachineListener(port, MachineDetector(loud)) as listener:
        port.say(list(wide.reshape(-1, 320)))  # 20 ms frames at 16 kHz
        verdict = await asyncio.wait_for(listener.verdict(), 5)
        cue = await asyncio.wait_for(listener.cue(), 5)
    assert verdict is not None
    assert verdict.answered_by == AnsweredBy.MACHINE
    assert cue is not None
    assert cue.cause == "beep"  # the 1 kHz beep, found in the halved frames
