"""Who answers an outbound call: recorded voicemail greetings and people, as 8 kHz audio.

Each ``Greeting`` is sentences in a voice (piper's joe at a pace, or an espeak-ng voice),
pauses between them, for a machine a beep, then silence: the machine recording, or the person
waiting for us to speak. ``render`` returns the audio after a G.711 round trip (what a call
carries) and where the speech and the beep are, for the tests and bench/bench_amd.py.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ari_offload.audio import SAMPLE_RATE, Pcm, resample, silence
from ari_offload.media.g711 import ULAW
from ari_offload.speech.tts import TtsVoice, trim_silence

BEEP_LEVEL = 0.3  # of full scale: about -13 dBFS, as loud as the speech


@dataclass(frozen=True)
class Greeting:
    name: str
    machine: bool
    sentences: tuple[str, ...]
    voice: str = "piper"  # "piper", "piper@<rate>", or an espeak-ng voice ("en-us+f3")
    pause_s: float = 0.5  # between sentences
    beep_hz: float | None = 1000.0  # machines only; None: no beep
    beep_s: float = 0.5
    lead_s: float = 0.4  # from the answer to the first word
    tail_s: float = 8.0  # silence after: recording, or waiting
    noise_dbfs: float | None = None  # white line noise under everything


@dataclass(frozen=True)
class Rendered:
    greeting: Greeting
    pcm: Pcm  # after a mu-law round trip
    speech_end_s: float  # where the last word ends
    beep_start_s: float | None
    beep_end_s: float | None

    @property
    def ulaw(self) -> bytes:
        return ULAW.encode(self.pcm)


def speak(text: str, voice: str, piper: TtsVoice | None) -> Pcm:
    """One sentence at 8 kHz, its silence trimmed."""
    if voice.startswith("piper"):
        if piper is None:
            raise ValueError(f"{voice}: a piper synthesizer is needed")
        rate = float(voice.partition("@")[2] or 1.0)
        synth = piper.at_rate(rate) if rate != 1.0 else piper
        return synth.synthesize_sentence(text)
    return trim_silence(_espeak(text, voice))


def _espeak(text: str, voice: str) -> Pcm:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng not found: run scripts/install-testbed")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-w", str(wav), text], check=True, capture_output=True
        )
        with wave.open(str(wav)) as w:
            rate = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return resample(pcm, rate, SAMPLE_RATE)


def beep(hz: float, seconds: float) -> Pcm:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    ramp = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.005)  # 5 ms edges: no clicks
    out: Pcm = (np.sin(2 * np.pi * hz * t) * ramp * BEEP_LEVEL * 32767).astype(np.int16)
    return out


def render(greeting: Greeting, piper: TtsVoice | None = None) -> Rendered:
    parts: list[Pcm] = [silence(int(greeting.lead_s * SAMPLE_RATE))]
    gap = silence(int(greeting.pause_s * SAMPLE_RATE))
    for i, sentence in enumerate(greeting.sentences):
        if i:
            parts.append(gap)
        parts.append(speak(sentence, greeting.voice, piper))
    speech_end = sum(len(p) for p in parts) / SAMPLE_RATE
    beep_start = beep_end = None
    if greeting.machine and greeting.beep_hz is not None:
        parts.append(silence(int(0.3 * SAMPLE_RATE)))  # machines beep a moment after
        beep_start = sum(len(p) for p in parts) / SAMPLE_RATE
        parts.append(beep(greeting.beep_hz, greeting.beep_s))
        beep_end = beep_start + greeting.beep_s
    parts.append(silence(int(greeting.tail_s * SAMPLE_RATE)))
    pcm = np.concatenate(parts)
    if greeting.noise_dbfs is not None:
        rng = np.random.default_rng(len(greeting.name))
        level = 32768 * 10 ** (greeting.noise_dbfs / 20)
        noisy = pcm.astype(np.float64) + rng.normal(0.0, level, len(pcm))
        pcm = np.clip(noisy, -32768, 32767).astype(np.int16)
    return Rendered(greeting, ULAW.decode(ULAW.encode(pcm)), speech_end, beep_start, beep_end)


def write_ulaw(rendered: Rendered, directory: Path) -> Path:
    """The rendered audio as a raw mu-law file (what SIPp's rtp_stream plays)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{rendered.greeting.name}.ulaw"
    path.write_bytes(rendered.ulaw)
    return path


VOICEMAIL = Greeting(
    "voicemail-joe",
    True,
    (
        "Hi, you have reached Sam Parker.",
        "I can't take your call right now.",
        "Please leave a message after the tone.",
    ),
)
HELLO = Greeting("hello-joe", False, ("Hello?",))

# bench/bench_amd.py's set: machines of several lengths, voices and beeps, and people.
GREETINGS: tuple[Greeting, ...] = (
    VOICEMAIL,
    Greeting(
        "carrier-espeak",
        True,
        (
            "The person you are calling is not available.",
            "Please leave your message after the tone.",
        ),
        voice="en-us",
        beep_hz=850.0,
    ),
    Greeting(
        "family-slow",
        True,
        (
            "Hello, this is the Johnson family.",
            "We are not home right now, but leave your name and number,",
            "and we will call you back as soon as we can. Thanks!",
        ),
        voice="piper@0.8",
        pause_s=0.7,
        beep_hz=1400.0,
        beep_s=0.3,
    ),
    Greeting(
        "office-female",
        True,
        ("You have reached the voicemail of extension two four one.", "Please leave a message."),
        voice="en-us+f3",
        beep_hz=440.0,
        noise_dbfs=-55.0,
    ),
    Greeting(
        "short-no-beep",
        True,
        ("Hi, it's Alex.", "Leave a message."),
        voice="en-gb",
        beep_hz=None,
    ),
    Greeting(
        "business-fast",
        True,
        (
            "Thank you for calling Acme Plumbing.",
            "Our office is closed.",
            "Please call again tomorrow.",
        ),
        voice="piper@1.3",
        pause_s=0.3,
        beep_hz=1000.0,
    ),
    HELLO,
    Greeting("hello-espeak", False, ("Hello?",), voice="en-us"),
    Greeting("sam-speaking", False, ("Yes, this is Sam speaking.",)),
    Greeting("whos-calling", False, ("Hi, who's calling?",), voice="en-gb+f2", noise_dbfs=-55.0),
    Greeting("hello-hello", False, ("Hello?", "Hello?"), pause_s=2.0),
    Greeting(
        "reception-long",
        False,
        ("Good morning, Acme Dental, Sarah speaking, how can I help you?",),
        voice="en-us+f3",
    ),
    # Added after the detector's phrases and thresholds were set, and not tuned for since.
    Greeting(
        "jordan-missed",
        True,
        ("Hey, this is Jordan.", "Sorry I missed you.", "I'll get back to you soon."),
        voice="piper@1.1",
        pause_s=0.4,
    ),
    Greeting("tone-only", True, ("Please leave a message after the tone.",), voice="en-us"),
    Greeting("jordan-speaking", False, ("Hello, Jordan speaking.",), voice="en-gb"),
    Greeting("yeah", False, ("Yeah?",)),
    Greeting(
        "front-desk",
        False,
        ("Hello, this is Maria from the front desk, what can I do for you today?",),
    ),
)
