"""Scripted test calls and what the caller heard, measured on the wire.

A caller script alternates speech (espeak-ng) and silence. The call's RTP is captured on the
caller's media port; the agent's replies are cut out of the captured audio by level, and turn
latency is measured there: the first agent speech packet after the caller's last speech packet
of an utterance (20 ms packets at >= -45 dBFS count as speech).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ari_offload.audio import SAMPLE_RATE
from ari_offload.media.g711 import codec_for
from testbed.audio import CACHE_DIR, speech_file
from testbed.capture import CapturedPacket, RtpCapture
from testbed.noise import LineNoise, active_rms, with_noise
from testbed.sipp import SippCall, SippResult

SPEECH_DBFS = -45.0
REPLY_GAP_S = 0.7
TAIL_S = 0.3  # agent speech separated by more silence than this is a new reply


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class Silence:
    seconds: float


Step = Say | Silence


@dataclass
class Burst:
    """A stretch of speech on the wire (one direction)."""

    start: float
    end: float
    pcm: np.ndarray = field(repr=False)

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class DialogueResult:
    sipp: SippResult
    caller: list[Burst]  # what the caller said, as seen on the wire
    agent: list[Burst]  # what the caller heard (agent speech), split into replies
    packets: list[CapturedPacket]
    received: list[CapturedPacket] = field(default_factory=list)  # to the caller (keys too)

    def latencies(self) -> list[float | None]:
        """Per caller utterance: seconds from its end to the next agent speech, or None if
        the caller spoke again first (a missed reply is a failure, not a latency)."""
        out: list[float | None] = []
        for i, said in enumerate(self.caller):
            next_said = self.caller[i + 1].start if i + 1 < len(self.caller) else float("inf")
            reply = next((b for b in self.agent if b.start >= said.end), None)
            out.append(reply.start - said.end if reply and reply.start < next_said else None)
        return out


Voice = Callable[[str], bytes]  # text -> raw G.711 speech


def espeak_voice(codec: str = "ulaw") -> Voice:
    return lambda text: speech_file(text, codec, lead_silence_s=0.0).read_bytes()


def script_audio(
    steps: list[Step], codec: str = "ulaw", voice: Voice | None = None,
    noise: LineNoise | None = None,
) -> bytes:  # fmt: skip
    """The caller's whole audio, as raw G.711 (espeak-ng speaks unless `voice` is given);
    with `noise` under all of it, at its SNR below the level of what the caller says."""
    speak = voice or espeak_voice(codec)
    silence_byte = b"\xff" if codec == "ulaw" else b"\xd5"
    parts: list[bytes] = []
    for step in steps:
        if isinstance(step, Say):
            parts.append(speak(step.text))
        else:
            parts.append(silence_byte * int(step.seconds * SAMPLE_RATE))
    if noise is None:
        return b"".join(parts)
    g711 = codec_for(codec)
    said = [
        g711.decode(part) for part, step in zip(parts, steps, strict=True) if isinstance(step, Say)
    ]
    level = active_rms(np.concatenate(said))
    return g711.encode(with_noise(g711.decode(b"".join(parts)), noise, level))


async def run_dialogue(
    service: str,
    steps: list[Step],
    codec: str = "ulaw",
    tail_s: float = 1.0,
    voice: Voice | None = None,
    dtmf: Sequence[tuple[float, str]] = (),
    telephone_event: bool = False,
    noise: LineNoise | None = None,
) -> DialogueResult:
    """Call `service`, play the script, hang up `tail_s` after it; return the wire view.
    `dtmf`: keys pressed (seconds into the script, keys), see SippCall; `noise`: a noisy
    line (script_audio)."""
    audio = script_audio(steps, codec, voice, noise)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / f"dialogue-{hashlib.sha256(audio).hexdigest()[:16]}.{codec}"
    path.write_bytes(audio)
    call = SippCall(
        service, path, hangup_after_s=len(audio) / SAMPLE_RATE + tail_s, codec=codec, dtmf=dtmf,
        telephone_event=telephone_event,
    )  # fmt: skip
    capture = RtpCapture(call.media_port)
    await capture.start()
    try:
        result = await call.run()
    finally:
        packets = await capture.stop()
    decode = codec_for(codec).decode
    caller = bursts(capture.sent(), decode, gap_s=0.3)
    agent = bursts(capture.received(), decode, gap_s=REPLY_GAP_S)
    return DialogueResult(result, caller, agent, packets, capture.received())


def bursts(
    packets: list[CapturedPacket], decode: Callable[[bytes], np.ndarray], gap_s: float
) -> list[Burst]:
    """Group speech packets into bursts split by more than `gap_s` of non-speech; a burst
    keeps the quiet packets inside it (pauses between words and sentences). RFC 4733 key
    events are no audio (decoded as G.711, their 4 bytes would be loud "speech")."""
    ordered = sorted((p for p in packets if not is_key_event(p)), key=lambda p: p.time)
    pcms = [decode(p.packet.payload) for p in ordered]
    speech = [i for i, pcm in enumerate(pcms) if _dbfs(pcm) >= SPEECH_DBFS]
    groups: list[list[int]] = []
    for i in speech:
        if groups and ordered[i].time - ordered[groups[-1][-1]].time <= gap_s:
            groups[-1].append(i)
        else:
            groups.append([i])
    out = []
    for n, g in enumerate(groups):
        # Keep the quiet tail of the last word (a final "t" or "d" is below the speech gate).
        limit = groups[n + 1][0] if n + 1 < len(groups) else len(ordered)
        end = g[-1] + 1
        while end < limit and ordered[end].time - ordered[g[-1]].time <= TAIL_S:
            end += 1
        pcm = np.concatenate(pcms[g[0] : end])
        out.append(Burst(ordered[g[0]].time, ordered[g[-1]].time + 0.02, pcm))
    return out


def is_key_event(captured: CapturedPacket) -> bool:
    """An RFC 4733 event: a dynamic payload type carrying 4 bytes (no audio frame is)."""
    return captured.packet.payload_type >= 96 and len(captured.packet.payload) == 4


def speech_seconds(pcm: np.ndarray) -> float:
    """How long ``pcm`` (8 kHz) is speech by the wire's rule, as a Burst would measure it:
    from its first 20 ms frame at >= SPEECH_DBFS to the end of its last."""
    frame = SAMPLE_RATE // 50
    loud = [
        i
        for i in range(len(pcm) // frame)
        if _dbfs(pcm[i * frame : (i + 1) * frame]) >= SPEECH_DBFS
    ]
    return (loud[-1] - loud[0] + 1) * frame / SAMPLE_RATE if loud else 0.0


def _dbfs(pcm: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0
    return 20 * float(np.log10(max(rms, 1e-6) / 32768))
