"""The conversation over an in-memory MediaPort: no sockets, no models, the real shell.

The caller "says" a word by its loudness (the fake whisper names the peak amplitude); the fake
voice gives each word 100 ms of audio; the agent echoes the words back. The same
``Conversation`` runs over the RTP port in tests/integration/test_conversation.py.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest

from ari_offload.agent.contract import WebhookRequest
from ari_offload.agent.llm_chat import LlmConfig
from ari_offload.agent.reply_stream import ReplyPiece
from ari_offload.audio import FRAME_SAMPLES, SAMPLE_RATE, Pcm
from ari_offload.media.g711 import SLIN16, ULAW, Codec
from ari_offload.speech.stt import SttRunner, Transcript
from ari_offload.speech.tts import TtsRunner
from ari_offload.speech.vad import VadParams, VadSegmenter
from ari_offload.voice.conversation import AgentBinding, Conversation
from ari_offload.voice.turns import TranscriptEntry, TurnTiming
from tests.unit.fake_media import FakeMediaPort

WORDS = {1000: "hello", 2000: "goodbye", 3000: "again"}
WORD_SAMPLES = 800  # 100 ms per spoken word


class LoudnessWhisper:
    def __init__(self) -> None:
        self.rates: set[int] = set()  # of the audio it was given

    def transcribe(
        self, pcm8k: Pcm, language: str | None = None, sample_rate: int = SAMPLE_RATE
    ) -> str:
        self.rates.add(sample_rate)
        return WORDS.get(int(np.abs(pcm8k).max()) if len(pcm8k) else 0, "")


class CountingVoice:
    def synthesize_sentence(self, text: str, sample_rate: int = SAMPLE_RATE) -> Pcm:
        words = WORD_SAMPLES * sample_rate // SAMPLE_RATE * len(text.split())
        return np.full(words, 500, dtype=np.int16)


class EchoAgent:
    def __init__(self) -> None:
        self.requests: list[WebhookRequest] = []

    async def stream(
        self, url: str, request: WebhookRequest, secret: str | None
    ) -> AsyncIterator[ReplyPiece]:
        self.requests.append(request)
        yield ReplyPiece(f"You said {request.text}.", done=True)


def utterance(
    amplitude: int, speech_ms: int = 600, silence_ms: int = 700, frame: int = FRAME_SAMPLES
) -> Iterator[Pcm]:
    yield from [np.full(frame, amplitude, dtype=np.int16)] * (speech_ms // 20)
    yield from [np.zeros(frame, dtype=np.int16)] * (silence_ms // 20)


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.002)


class FrameCountingStream:
    """A streaming engine's per-call stream: it hears every frame, answers at the endpoint."""

    def __init__(self) -> None:
        self.frames = 0

    def feed(self, pcm: Pcm) -> None:
        self.frames += 1

    def speculate(self, audio: Pcm) -> None:
        pass

    def cancel_speculation(self) -> None:
        pass

    def speculation(self, audio: Pcm) -> None:
        return None

    def utterance_ended(self, audio: Pcm) -> asyncio.Task[Transcript]:
        heard = self.frames  # up to the endpoint

        async def text() -> Transcript:
            return Transcript(f"{heard} frames", 0.0, 0.0)

        return asyncio.create_task(text())

    def close(self) -> None:
        pass


class StreamingEngine:
    streaming = True

    def __init__(self) -> None:
        self.streams: list[tuple[FrameCountingStream, str | None]] = []

    def transcribe(
        self, pcm8k: Pcm, language: str | None = None, sample_rate: int = SAMPLE_RATE
    ) -> str:
        raise AssertionError("a streaming engine is never asked for a batch transcription")

    def open_stream(
        self, runner: SttRunner, language: str | None, sample_rate: int
    ) -> FrameCountingStream:
        stream = FrameCountingStream()
        self.streams.append((stream, language))
        return stream


class StoreLike:
    """A ConversationObserver that keeps what the recorder would store, as it is told:
    lines (corrected in place) and turn rows by number (each update replaces the row)."""

    def __init__(self) -> None:
        self.lines: list[TranscriptEntry] = []
        self.turns: dict[int, dict[str, Any]] = {}
        self.finished: list[int] = []

    def transcript_added(self, call: object, entry: TranscriptEntry) -> None:
        self.lines.append(entry)

    def transcript_corrected(
        self, call: object, entry: TranscriptEntry, corrected: TranscriptEntry
    ) -> None:
        self.lines[next(i for i, e in enumerate(self.lines) if e is entry)] = corrected

    def turn_updated(self, call: object, timing: TurnTiming) -> None:
        self.turns[timing.turn] = timing.stored()  # a copy: what the store holds now

    async def caught_up(self, call: object) -> None:
        pass  # written at once: never behind

    def turn_finished(self, call: object, timing: TurnTiming) -> None:
        self.finished.append(timing.turn)

    def rows(self) -> list[tuple[str, str, str | None]]:
        return [(e.role, e.text, e.heard) for e in self.lines]


class Rig:
    def __init__(
        self,
        hold: bool = False,
        engine: Any = None,
        agent: Any = None,
        turns_before: int = 0,
        llm: LlmConfig | None = None,
        codec: Codec = ULAW,
    ) -> None:
        self.port = FakeMediaPort(hold=hold, codec=codec)
        self.agent = EchoAgent()
        self.stt = SttRunner(engine or LoudnessWhisper(), workers=1)
        rate = codec.sample_rate
        self.tts = TtsRunner(CountingVoice(), workers=1, sentence_pause_ms=0, sample_rate=rate)
        models = SimpleNamespace(
            stt=self.stt,
            release_call=self.stt.scheduler.forget,
            tts_for=self._voice,
            new_segmenter=lambda rate: VadSegmenter(
                VadParams(sample_rate=rate), classifier=lambda f: bool(f.any())
            ),
            new_turn_gate=lambda: None,
        )
        self.states: list[str] = []
        self.voices: list[str | None] = []  # asked of tts_for, per reply
        self.rates: list[float | None] = []
        self.call = SimpleNamespace(
            call_id="call-1", media=self.port, set_state=self.states.append, turns=turns_before
        )
        self.record = StoreLike()
        self.conversation = Conversation(
            cast(Any, self.call), cast(Any, models), cast(Any, agent or self.agent),
            AgentBinding(
                "agent-1", None if llm else "http://agent.invalid/", voice="slow",
                language="en-GB", speaking_rate=1.5, llm=llm,
            ),
            cast(Any, SimpleNamespace(barge_in_min_speech_ms=300)),
            cast(Any, SimpleNamespace(fallback_text="Sorry.")),
            self.record,
        )  # fmt: skip

    def _voice(self, voice: str | None, rate: float | None, sample_rate: int) -> TtsRunner:
        assert sample_rate == self.port.codec.sample_rate
        self.voices.append(voice)
        self.rates.append(rate)
        return self.tts

    def lines(self) -> list[tuple[str, str, str | None]]:
        return [(e.role, e.text, e.heard) for e in self.conversation.transcript]

    def close(self) -> None:
        self.stt.close()
        self.tts.close()


async def test_welcome_then_a_turn_over_the_port() -> None:
    rig = Rig()
    task = asyncio.create_task(rig.conversation.run("Welcome to the shop."))
    try:
        await until(lambda: len(rig.conversation.transcript) == 1)
        assert rig.port.heard_samples() == 4 * WORD_SAMPLES, "the welcome was played whole"
        rig.port.say(utterance(1000))
        # The reply's line is written at its first audio: wait for its end too, or the
        # hangup below can land before it (the line then says what was heard: all of it).
        await until(
            lambda: len(rig.conversation.transcript) == 3 and rig.states[-1:] == ["listening"]
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        rig.close()
    assert rig.voices == ["slow", "slow"], "the agent's voice speaks the welcome and the reply"
    assert rig.rates == [1.5, 1.5], "at the agent's rate"
    assert asyncio.all_tasks() == {asyncio.current_task()}, "the conversation left no task"
    assert rig.lines() == [
        ("agent", "Welcome to the shop.", None),
        ("caller", "hello", None),
        ("agent", "You said hello.", None),
    ]
    assert [r.text for r in rig.agent.requests] == ["hello"]
    (timing,) = rig.conversation.timings
    assert timing.turn == 1
    assert not timing.interrupted
    assert 380 <= timing.endpoint_ms <= 460, "the VAD's 400 ms of endpoint silence"
    assert rig.port.heard_samples() == (4 + 3) * WORD_SAMPLES
    assert "thinking" in rig.states
    # thinking while the agent is asked, speaking from its first words, then listening
    turn_states = rig.states[rig.states.index("thinking") :]
    assert turn_states[:2] == ["thinking", "speaking"]
    assert rig.states[-1] == "listening"


async def test_barge_in_over_the_port_flushes_and_the_agent_is_told_what_was_heard() -> None:
    rig = Rig(hold=True)  # nothing plays until the test advances the playout
    task = asyncio.create_task(rig.conversation.run("One two three four five six seven eight."))
    try:
        await until(lambda: rig.port.queued == 8 * WORD_SAMPLES)
        rig.port.advance(3 * WORD_SAMPLES)  # the caller has heard "One two three"
        rig.port.say(utterance(2000, speech_ms=200, silence_ms=0))
        await until(lambda: rig.port.unread == 0)  # the listener has read those frames
        assert rig.port.flushes == 0, "200 ms of speech is under the 300 ms barge-in minimum"
        rig.port.say(utterance(2000, speech_ms=400))
        await until(lambda: rig.port.queued == 3 * WORD_SAMPLES)  # "You said goodbye."
        rig.port.advance()
        await until(lambda: len(rig.conversation.transcript) == 3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        rig.close()
    assert rig.port.flushes == 1
    assert rig.lines()[0] == (
        "agent", "One two three four five six seven eight.", "One two three",
    )  # fmt: skip
    assert rig.agent.requests[0].text == "goodbye"
    assert rig.agent.requests[0].heard == "One two three"


async def test_a_wideband_port_is_heard_and_spoken_to_at_16_khz() -> None:
    engine = LoudnessWhisper()
    rig = Rig(hold=True, engine=engine, codec=SLIN16)
    word = 2 * WORD_SAMPLES  # 100 ms at 16 kHz
    task = asyncio.create_task(rig.conversation.run("One two three four five six seven eight."))
    try:
        await until(lambda: rig.port.queued == 8 * word)  # the voice spoke at 16 kHz
        rig.port.advance(3 * word)  # the caller has heard "One two three"
        rig.port.say(utterance(2000, speech_ms=200, silence_ms=0, frame=320))
        await until(lambda: rig.port.unread == 0)
        assert rig.port.flushes == 0, "200 ms is under the 300 ms barge-in minimum at 16 kHz too"
        rig.port.say(utterance(2000, speech_ms=400, frame=320))
        await until(lambda: rig.port.queued == 3 * word)  # "You said goodbye."
        rig.port.advance()
        await until(lambda: len(rig.conversation.transcript) == 3)
    finally:
        await hang_up(task)
        rig.close()
    assert engine.rates == {16000}, "whisper got the caller's 16 kHz"
    assert rig.agent.requests[0].text == "goodbye"
    assert rig.agent.requests[0].heard == "One two three"
    (timing,) = rig.conversation.timings
    assert 380 <= timing.endpoint_ms <= 460, "the VAD's 400 ms of endpoint silence"


async def test_a_barge_in_without_words_resumes_the_reply_with_one_line() -> None:
    rig = Rig(hold=True)
    welcome = "One two three four five six seven eight."
    task = asyncio.create_task(rig.conversation.run(welcome))
    try:
        await until(lambda: rig.port.queued == 8 * WORD_SAMPLES)
        rig.port.advance(6 * WORD_SAMPLES)  # "One" .. "six" heard
        rig.port.say(utterance(4000, speech_ms=400))  # the fake whisper hears no words in it
        await until(lambda: rig.port.flushes == 1)
        await until(lambda: rig.port.queued > 0)  # resumed
        assert rig.record.rows() == [("agent", welcome, "One two three four five six")]
        rig.port.advance()
        await until(lambda: rig.states[-1:] == ["listening"])
    finally:
        await hang_up(task)
        rig.close()
    # 400 ms before the cut is in "three": the caller heard it again, then the rest.
    assert rig.port.heard_samples() == (6 + 6) * WORD_SAMPLES
    assert rig.record.rows() == [("agent", welcome, None)], "one line, heard in full after all"
    assert rig.lines() == rig.record.rows()
    assert rig.agent.requests == [], "the cough was no turn"


class LongAgent(EchoAgent):
    async def stream(
        self, url: str, request: WebhookRequest, secret: str | None
    ) -> AsyncIterator[ReplyPiece]:
        self.requests.append(request)
        yield ReplyPiece("One two three four five six seven eight.", done=True)


async def test_a_turn_whose_reply_resumed_to_its_end_was_not_interrupted() -> None:
    agent = LongAgent()
    rig = Rig(hold=True, agent=agent)
    task = asyncio.create_task(rig.conversation.run())
    try:
        await until(lambda: rig.port.tap_count == 1)
        rig.port.say(utterance(1000))
        await until(lambda: rig.port.queued == 8 * WORD_SAMPLES)
        rig.port.advance(6 * WORD_SAMPLES)
        rig.port.say(utterance(4000, speech_ms=400))  # no words
        await until(lambda: rig.port.flushes == 1 and rig.port.queued > 0)
        rig.port.advance()
        await until(lambda: rig.record.finished == [1])
    finally:
        await hang_up(task)
        rig.close()
    assert rig.record.rows() == [
        ("caller", "hello", None), ("agent", "One two three four five six seven eight.", None),
    ]  # fmt: skip
    assert not rig.conversation.timings[0].interrupted
    assert len(agent.requests) == 1


async def test_a_barge_in_with_words_after_a_resume_is_the_next_turn() -> None:
    rig = Rig(hold=True)
    welcome = "One two three four five six seven eight."
    task = asyncio.create_task(rig.conversation.run(welcome))
    try:
        await until(lambda: rig.port.queued == 8 * WORD_SAMPLES)
        rig.port.advance(6 * WORD_SAMPLES)
        rig.port.say(utterance(4000, speech_ms=400))
        await until(lambda: rig.port.flushes == 1)
        await until(lambda: rig.port.queued == 6 * WORD_SAMPLES)  # from "three" again
        rig.port.advance(2 * WORD_SAMPLES)  # "three four" again
        rig.port.say(utterance(2000, speech_ms=400))  # "goodbye": real words
        await until(lambda: len(rig.agent.requests) == 1)
    finally:
        await hang_up(task)
        rig.close()
    assert rig.port.flushes == 2
    assert rig.record.rows()[:2] == [
        ("agent", welcome, "One two three four five six"),  # each word once
        ("caller", "goodbye", None),
    ]
    assert rig.agent.requests[0].heard == "One two three four five six"


async def test_audio_from_before_the_conversation_is_not_heard() -> None:
    rig = Rig()
    rig.port.say(utterance(2000))  # e.g. during a `talk` action: nobody listens yet
    assert rig.port.unread == 0, "no tap was open: those frames are gone"
    task = asyncio.create_task(rig.conversation.run())
    try:
        await until(lambda: rig.port.tap_count == 1)
        rig.port.say(utterance(3000))
        await until(lambda: len(rig.agent.requests) == 1)
        await until(lambda: len(rig.conversation.transcript) == 2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        rig.close()
    assert [r.text for r in rig.agent.requests] == ["again"]


async def test_api_text_waits_for_the_reply_then_is_spoken() -> None:
    rig = Rig(hold=True)
    task = asyncio.create_task(rig.conversation.run("Welcome."))
    try:
        await until(lambda: rig.port.queued == WORD_SAMPLES)
        rig.conversation.inject("Your parcel is here.")
        await asyncio.sleep(0.05)  # time enough to synthesize and queue it, were it not held
        assert rig.port.queued == WORD_SAMPLES, "the API text waits for the welcome to end"
        rig.port.advance()
        await until(lambda: rig.port.queued == 4 * WORD_SAMPLES)
        rig.port.advance()
        await until(lambda: len(rig.conversation.transcript) == 2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        rig.close()
    assert [line[1] for line in rig.lines()] == ["Welcome.", "Your parcel is here."]
    assert rig.agent.requests == [], "an API text is spoken, never sent to the agent"


async def test_a_streaming_engine_gets_every_frame_and_no_adapter() -> None:
    engine = StreamingEngine()
    rig = Rig(engine=engine)
    task = asyncio.create_task(rig.conversation.run())
    try:
        await until(lambda: rig.port.tap_count == 1)
        rig.port.say(utterance(1000, speech_ms=600, silence_ms=700))
        await until(lambda: len(rig.agent.requests) == 1)
        await until(lambda: engine.streams[0][0].frames == 65)  # every frame, to the last
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        rig.close()
    ((_, language),) = engine.streams
    assert language == "en-GB", "the agent's language reaches the engine"
    # 30 speech frames, then silence up to the 400 ms endpoint (20 frames): all were fed,
    # the speech ones before the endpoint, every one of them by the end.
    assert rig.agent.requests[0].text == "50 frames"


class BrokenStream(FrameCountingStream):
    def feed(self, pcm: Pcm) -> None:
        raise ValueError("a bug in an engine")


class BrokenEngine(StreamingEngine):
    def open_stream(
        self, runner: SttRunner, language: str | None, sample_rate: int
    ) -> FrameCountingStream:
        return BrokenStream()


async def test_a_listener_that_fails_ends_the_conversation_with_the_error() -> None:
    rig = Rig(engine=BrokenEngine())
    task = asyncio.create_task(rig.conversation.run())
    try:
        await until(lambda: rig.port.tap_count == 1)
        rig.port.say(utterance(1000))
        async with asyncio.timeout(10):
            with pytest.raises(RuntimeError, match="listener failed") as failed:
                await task  # not deaf and silent: the flow fails, the controller hangs up
    finally:
        rig.close()
    assert isinstance(failed.value.__cause__, ValueError)
    assert asyncio.all_tasks() == {asyncio.current_task()}


class ThinkingAgent(EchoAgent):
    """Answers only when released: the call can end while the webhook thinks."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def stream(
        self, url: str, request: WebhookRequest, secret: str | None
    ) -> AsyncIterator[ReplyPiece]:
        self.requests.append(request)
        await self.release.wait()
        yield ReplyPiece(f"You said {request.text}.", done=True)


async def hang_up(task: asyncio.Task[None]) -> None:
    """The caller hangs up: the controller cancels the flow and waits for it."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_call_ended_while_the_webhook_thinks_keeps_its_turn() -> None:
    agent = ThinkingAgent()
    rig = Rig(agent=agent)
    task = asyncio.create_task(rig.conversation.run())
    try:
        await until(lambda: rig.port.tap_count == 1)
        rig.port.say(utterance(1000))
        await until(lambda: len(agent.requests) == 1)
        assert rig.record.rows() == [("caller", "hello", None)], "on record before the agent"
        await asyncio.sleep(0.05)
        assert rig.states[-1] == "thinking", "nothing is said until the agent's first words"
        await hang_up(task)
    finally:
        rig.close()
    assert rig.record.rows() == [("caller", "hello", None)]
    assert list(rig.record.turns) == [1], "the turn is stored though it never got a reply"
    turn = rig.record.turns[1]
    assert 380 <= turn["endpoint_ms"] <= 460
    assert turn["stt_ms"] >= 0
    assert [turn[name] for name in ("webhook_ms", "tts_first_audio_ms", "total_ms")] == [
        None, None, None,
    ], "what was never measured is stored as not measured, not as 0 ms"  # fmt: skip
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_a_call_ended_mid_reply_keeps_the_agent_line_with_what_was_heard() -> None:
    rig = Rig(hold=True)
    task = asyncio.create_task(rig.conversation.run())
    try:
        await until(lambda: rig.port.tap_count == 1)
        rig.port.say(utterance(1000))
        await until(lambda: rig.port.queued == 3 * WORD_SAMPLES)  # "You said hello."
        # On record from its first audio, before it has played (a crash now keeps it).
        assert rig.record.rows() == [("caller", "hello", None), ("agent", "You said hello.", None)]
        measured = rig.record.turns[1]
        assert measured["webhook_ms"] >= 0
        # the parts are the times between the turn's moments: they add up to the total
        parts = ("endpoint_ms", "stt_ms", "webhook_ms", "tts_first_audio_ms")
        assert sum(measured[name] for name in parts) == pytest.approx(measured["total_ms"])
        assert measured["tts_first_audio_ms"] > 0
        assert measured["total_ms"] > measured["endpoint_ms"]
        rig.port.advance(WORD_SAMPLES * 3 // 2)  # half of it: "You" and half of "said"
        await hang_up(task)
    finally:
        rig.close()
    assert rig.record.rows() == [("caller", "hello", None), ("agent", "You said hello.", "You")]
    assert rig.lines() == rig.record.rows(), "the conversation's transcript says the same"
    assert rig.record.turns[1] == measured, "the turn keeps its timing"
    assert rig.record.finished == [1]
    assert rig.conversation.timings[0].interrupted
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_an_adopted_call_numbers_its_turns_after_the_stored_ones() -> None:
    rig = Rig(turns_before=2)  # an earlier run of the app stored turns 1 and 2
    task = asyncio.create_task(rig.conversation.run())
    try:
        await until(lambda: rig.port.tap_count == 1)
        rig.port.say(utterance(1000))
        await until(lambda: rig.record.finished == [3])
    finally:
        await hang_up(task)
        rig.close()
    assert [r.turn for r in rig.agent.requests] == [3], "the webhook's turn is the stored one"
    assert list(rig.record.turns) == [3]
    assert rig.call.turns == 3, "a later conversation of the call goes on from here"


async def hang_up_mid_playback() -> None:
    rig = Rig(hold=True)
    task = asyncio.create_task(rig.conversation.run("One two three four."))
    try:
        await until(lambda: rig.port.queued == 4 * WORD_SAMPLES)
        rig.port.advance(WORD_SAMPLES)
        await asyncio.sleep(0.05)  # the talker now waits for the playback (or a barge-in)
        assert rig.port.queued == 3 * WORD_SAMPLES, "still playing"
        await hang_up(task)
    finally:
        rig.close()


async def test_a_reply_cancelled_mid_playback_leaves_no_task_pending(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 9: `Task was destroyed but it is pending!` for tasks of `Event.wait()`."""
    caplog.set_level(logging.ERROR, logger="asyncio")
    await hang_up_mid_playback()
    await asyncio.sleep(0.01)  # the loop runs what the cancellation scheduled
    pending = [repr(t) for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    gc.collect()  # the conversation is gone: a task left pending is destroyed (and logged)
    destroyed = caplog.text.count("Task was destroyed but it is pending")
    assert (pending, destroyed) == ([], 0), "every task was cancelled and awaited"
