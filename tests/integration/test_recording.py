"""Call recording on real calls: a SIPp caller through the test-bed Asterisk to a flow with a
`record` action, the recording fetched through the SDK and each channel transcribed by the
session's whisper; another tenant gets 404; a flow without `record` leaves no file; a SIGKILL
of a real `serve` mid-call leaves a file that plays, and the restarted app records on in it."""

from __future__ import annotations

import asyncio
import io
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ari_offload.agent.contract import WebhookRequest
from ari_offload.agent.sample import RESET_REPLY
from ari_offload.app import App
from ari_offload.audio import SAMPLE_RATE, Pcm
from ari_offload.media.g711 import ULAW
from ari_offload.sdk.client import ApiError, Client
from ari_offload.speech.models import SpeechModels
from testbed.asterisk import TESTBED_POLICY_FILE, Testbed
from testbed.dialogue import Say, Silence, Step, espeak_voice, run_dialogue, script_audio
from testbed.serve import ServeProcess
from testbed.sipp import SippCall
from tests.integration.conftest import free_port
from tests.integration.helpers import sounds_like, words

pytestmark = [pytest.mark.integration, pytest.mark.models]

WELCOME = "Hello! How can I help you today?"
SENTENCE = "I need to reset my password."
RECORDED_ON_S = 3.0  # how long the restarted app records the adopted call before the hangup
SPEECH_DBFS = -45.0  # a 20 ms frame this loud is speech (as testbed/dialogue.py counts it)


@dataclass
class Sides:
    """A recording as any player reads it (the standard library's reader): its channels."""

    caller: Pcm
    agent: Pcm
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.caller) / self.rate

    def spans(self, pcm: Pcm, gap_s: float = 0.7) -> list[tuple[float, float]]:
        """(start, end) seconds of speech, frames joined across pauses shorter than gap_s."""
        size = self.rate // 50  # 20 ms
        frames = pcm[: len(pcm) - len(pcm) % size].reshape(-1, size)
        rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
        loud = np.nonzero(20 * np.log10(np.maximum(rms, 1e-9) / 32768) >= SPEECH_DBFS)[0]
        spans: list[tuple[float, float]] = []
        for i in loud:
            start, end = i * 0.02, (i + 1) * 0.02
            if spans and start - spans[-1][1] <= gap_s:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
        return spans

    def cut(self, pcm: Pcm, span: tuple[float, float], pad_s: float = 0.2) -> Pcm:
        start, end = (round(max(0.0, t) * self.rate) for t in (span[0] - pad_s, span[1] + pad_s))
        return pcm[start:end]

    async def heard(self, models: SpeechModels, pcm: Pcm) -> str:
        """Whisper's words for ``pcm`` (in a thread: the loop must not block)."""
        text = await asyncio.to_thread(models.transcriber.transcribe, pcm, None, self.rate)
        return words(text)


def match(haystack: Pcm, needle: Pcm) -> float:
    """The best normalized cross-correlation of ``needle`` at any offset in ``haystack``:
    1.0 where it is found exactly, near 0 for unrelated audio."""
    h, n = haystack.astype(np.float64), needle.astype(np.float64)
    size = 1 << (len(h) + len(n)).bit_length()
    corr = np.fft.irfft(np.fft.rfft(h, size) * np.conj(np.fft.rfft(n, size)), size)
    corr = corr[: len(h) - len(n) + 1]  # corr[k]: sum of h[k + i] * n[i]
    energy = np.concatenate([[0.0], np.cumsum(h * h)])
    windows = energy[len(n) :] - energy[: len(h) - len(n) + 1]
    return float(np.max(corr / (np.sqrt(np.maximum(windows, 1e-9)) * np.linalg.norm(n))))


def stereo(data: bytes) -> Sides:
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (2, 2)
        both = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
        return Sides(both[:, 0].copy(), both[:, 1].copy(), wav.getframerate())


# Both formats a recording can have (8 kHz, and 16 kHz over slin16); websocket/ulaw records
# the same taps as RTP, at the same rate.
@pytest.mark.parametrize("media_transport", ["rtp", "websocket/slin16"])
async def test_the_caller_is_on_the_left_the_agent_on_the_right_in_step(
    app: App,
    sample_agent: tuple[str, list[WebhookRequest]],
    speech_models: SpeechModels,
    media_transport: str,
) -> None:
    webhook, requests = sample_agent
    async with await Client.signup(app.api_url, "recorded", "recorded-password") as client:
        agent = await client.agents.create("support", webhook=webhook)
        flow = await client.flows.create(
            "support",
            [
                {"type": "record"},
                {"type": "ai_talk", "agent_id": agent.id, "welcome_message": WELCOME},
            ],
        )
        script: list[Step] = [Silence(3.5), Say(SENTENCE), Silence(5.0)]
        result = await run_dialogue(f"8{flow.id}", script)
        assert result.sipp.ok, result.sipp.output + result.sipp.errors
        async with asyncio.timeout(10):
            while (call := (await client.calls.list())[0]).status != "ended":
                await asyncio.sleep(0.2)
        recording = await client.calls.recording(call.id)
    async with await Client.signup(app.api_url, "other", "other-password") as other:
        with pytest.raises(ApiError) as refused:
            await other.calls.recording(call.id)

    assert (refused.value.status, refused.value.code) == (404, "not_found")
    assert call.recording_started_at is not None
    sides = stereo(recording)
    assert sides.rate == (16000 if media_transport.endswith("slin16") else 8000)
    (said,) = sides.spans(sides.caller)
    welcome, reply = sides.spans(sides.agent)
    heard_caller = await sides.heard(speech_models, sides.cut(sides.caller, said))
    heard_welcome = await sides.heard(speech_models, sides.cut(sides.agent, welcome))
    heard_reply = await sides.heard(speech_models, sides.cut(sides.agent, reply))
    # Whisper tiny often hears espeak's words as others ("reset my password" as "reflect my
    # path work"), live and from the recording alike: most of the sentence must be there.
    assert sounds_like(heard_caller, SENTENCE), heard_caller
    assert words(WELCOME) == heard_welcome, heard_welcome
    assert words(RESET_REPLY) == heard_reply, heard_reply
    # Each side alone: nothing of the other leaks in (the reply's time on the caller's side
    # is silent, the caller's on the agent's).
    assert sides.spans(sides.cut(sides.caller, reply)) == []
    assert sides.spans(sides.cut(sides.agent, said)) == []
    assert len(requests) == 1

    # In step: the same order and the same reply gap as the caller measured on the wire.
    assert welcome[1] < said[0] < said[1] < reply[0]
    wire_gap = result.agent[1].start - result.caller[0].end
    recorded_gap = reply[0] - said[1]
    assert abs(recorded_gap - wire_gap) < 0.1, (recorded_gap, wire_gap)
    script_s = len(script_audio(script)) / SAMPLE_RATE + 1.0  # run_dialogue hangs up 1 s after
    # (a frame's worth of slack: the two sides' sample clocks are lined up to the frame)
    assert script_s - 1.0 < sides.seconds <= script_s + 0.05, "the whole call, from its start"


async def test_a_flow_without_record_leaves_no_recording(
    app: App, sample_agent: tuple[str, list[WebhookRequest]], tmp_path: Path
) -> None:
    webhook, _ = sample_agent
    async with await Client.signup(app.api_url, "unrecorded", "unrecorded-password") as client:
        agent = await client.agents.create("support", webhook=webhook)
        flow = await client.flows.create(
            "support", [{"type": "ai_talk", "agent_id": agent.id, "welcome_message": WELCOME}]
        )
        result = await run_dialogue(f"8{flow.id}", [Silence(4.0)])
        assert result.sipp.ok, result.sipp.output + result.sipp.errors
        async with asyncio.timeout(10):
            while (call := (await client.calls.list())[0]).status != "ended":
                await asyncio.sleep(0.2)
        with pytest.raises(ApiError) as err:
            await client.calls.recording(call.id)

    assert (err.value.status, err.value.code) == (404, "not_recorded")
    assert call.recording_started_at is None
    assert result.agent, "the call ran: the caller heard the welcome"
    assert wav_files(tmp_path) == []


def wav_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.wav"))


async def sentence_answered(requests: list[WebhookRequest]) -> None:
    async with asyncio.timeout(60):
        while not requests:
            await asyncio.sleep(0.1)


def playable(path: Path) -> Sides:
    """The file as a player reads it: its header says how much there is."""
    return stereo(path.read_bytes())


async def test_a_sigkill_mid_call_leaves_a_playable_recording_that_goes_on_after_restart(
    testbed: Testbed,
    sample_agent: tuple[str, list[WebhookRequest]],
    speech_models: SpeechModels,
    tmp_path: Path,
) -> None:
    webhook, requests = sample_agent
    recordings = tmp_path / "recordings-elsewhere"
    serve = ServeProcess(
        tmp_path, free_port(), TESTBED_POLICY_FILE,
        extra_env={"ARI_OFFLOAD_RECORDING_DIR": str(recordings)},
    )  # fmt: skip
    # Long enough after the sentence for the reply, the kill, and the second serve to load its
    # models and adopt the caller (then the API hangs the call up: no waiting for the end).
    script: list[Step] = [Silence(3.0), Say(SENTENCE), Silence(45.0)]
    audio = tmp_path / "caller.ulaw"
    audio.write_bytes(script_audio(script))
    try:
        await serve.start()
        await testbed.wait_app()
        async with await Client.signup(serve.api_url, "crash", "crash-password") as client:
            agent = await client.agents.create("support", webhook=webhook)
            flow = await client.flows.create(
                "support",
                [
                    {"type": "record"},
                    {"type": "ai_talk", "agent_id": agent.id, "welcome_message": WELCOME},
                ],
            )
        caller = SippCall(f"8{flow.id}", audio, hangup_after_s=len(audio.read_bytes()) / 8000)
        await caller.start()
        await sentence_answered(requests)
        await asyncio.sleep(5.0)  # the reply (about 2.5 s) has played
        await serve.kill()

        (path,) = wav_files(recordings)
        killed = playable(path)
        caller_spans = killed.spans(killed.caller)
        heard_agent = [
            await killed.heard(speech_models, killed.cut(killed.agent, span))
            for span in killed.spans(killed.agent)
        ]
        sox = await asyncio.create_subprocess_exec(
            "sox", str(path), "-n", "stat", stderr=asyncio.subprocess.PIPE
        )
        _, sox_said = await sox.communicate()

        await serve.start()
        await testbed.wait_app()
        async with await Client.login(serve.api_url, "crash", "crash-password") as client:
            async with asyncio.timeout(30):  # adopted, and recording on in the same file
                while not serve.lines_with("recording going on in"):
                    await asyncio.sleep(0.2)
            await asyncio.sleep(RECORDED_ON_S)
            call = (await client.calls.list())[0]
            await client.calls.hangup(call.id)
            result = await caller.wait()
            assert result.ok, result.output + result.errors
            async with asyncio.timeout(20):
                while (await client.calls.get(call.id)).status != "ended":
                    await asyncio.sleep(0.2)
            whole = await client.calls.recording(call.id)
    finally:
        exit_code = await serve.stop()

    assert sox.returncode == 0, sox_said.decode()
    # The caller's sentence is on the caller's side as the caller sent it (G.711 passes
    # through Asterisk unchanged): found sample for sample, not left to whisper's ear.
    assert len(caller_spans) == 1, caller_spans  # one sentence, nothing else
    sent = ULAW.decode(espeak_voice()(SENTENCE))
    assert match(killed.caller, sent) > 0.95
    # What was played a few seconds before the kill is there, whole.
    assert heard_agent == [words(WELCOME), words(RESET_REPLY)]
    assert call.id == path.stem
    resumed = stereo(whole)
    # The adopted call recorded on in the same file: the killed run's audio, then more.
    assert resumed.seconds > killed.seconds + RECORDED_ON_S / 2, (resumed.seconds, killed.seconds)
    assert np.array_equal(resumed.caller[: len(killed.caller)], killed.caller)
    assert serve.error_lines() == []
    assert exit_code == 0
    assert await testbed.wait_idle() == ([], [])
