"""One call's conversation: caller audio -> VAD -> STT -> webhook -> TTS -> caller, with barge-in.

Two tasks per call. The listener feeds every inbound frame to the VAD, starts STT
speculatively at a pause (stale if speech resumes; one such run per call at most), stops
playback the moment the caller talks over it, and queues finished utterances. The talker
takes utterances in order: transcript -> webhook -> reply spoken sentence by sentence (the
next sentence is synthesized while the current one plays). Latency: endpoint silence overlaps
STT, TTS overlaps playback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from ari_offload.agent.client import WebhookClient
from ari_offload.agent.contract import WebhookRequest
from ari_offload.ari.call import ActiveCall
from ari_offload.audio import SAMPLE_RATE, Pcm
from ari_offload.config import AgentSettings, SpeechSettings
from ari_offload.errors import TalkQueueFull
from ari_offload.media.udp import RtpEndpoint
from ari_offload.speech.models import SpeechModels
from ari_offload.speech.stt import SpeculativeStt, Transcript
from ari_offload.speech.vad import SpeechPaused, SpeechResumed, SpeechStarted, UtteranceEnded
from ari_offload.voice.turns import Segment, TranscriptEntry, TurnTiming, heard_text

log = logging.getLogger("ari_offload.conversation")

# API `talk` texts one call holds waiting to be spoken, besides the one being spoken: past it
# the API answers 429, so a tenant cannot queue speech (and TTS work) without bound.
MAX_QUEUED_TALKS = 8


@dataclass(frozen=True)
class AgentBinding:
    agent_id: str
    webhook: str
    secret: str | None = None
    voice: str | None = None  # a TTS voice name; None: the server's default
    language: str | None = None  # the caller's language for STT; None: the server's default


class ConversationObserver(Protocol):
    async def transcript_added(self, call: ActiveCall, entry: TranscriptEntry) -> None: ...

    async def turn_finished(self, call: ActiveCall, timing: TurnTiming) -> None: ...


@dataclass
class _Utterance:
    audio: Pcm
    ended_at: float  # wall clock when the VAD decided the utterance was over
    endpoint_ms: float
    speculative: asyncio.Future[Transcript] | None  # a run at the pause, on the same audio


@dataclass
class _Playback:
    segments: list[Segment] = field(default_factory=list)
    interrupted: asyncio.Event = field(default_factory=asyncio.Event)
    cut_at: int = 0


class Conversation:
    def __init__(
        self,
        call: ActiveCall,
        models: SpeechModels,
        webhook: WebhookClient,
        agent: AgentBinding,
        speech: SpeechSettings,
        agent_settings: AgentSettings,
        observer: ConversationObserver | None = None,
    ) -> None:
        assert call.media is not None, "a conversation runs on a set-up call"
        self.call = call
        self.media: RtpEndpoint = call.media
        self._models = models
        self._webhook = webhook
        self._agent = agent
        self._barge_in_samples = speech.barge_in_min_speech_ms * SAMPLE_RATE // 1000
        self._fallback = agent_settings.fallback_text
        self._observer = observer
        self._segmenter = models.new_segmenter()
        # finished caller utterances, and texts injected by the API (`talk` into a live call)
        self._inbox: asyncio.Queue[_Utterance | str] = asyncio.Queue()
        self._queued_talks = 0  # the texts in _inbox
        self._playback: _Playback | None = None
        self._speech_start: int | None = None
        self._pause_at: int | None = None
        self._speculative = SpeculativeStt(models.stt, agent.language)
        self._heard: str | None = None  # of the last reply, if the caller cut it short
        self.turn = 0
        self.transcript: list[TranscriptEntry] = []
        self.timings: list[TurnTiming] = []
        self.finished = False  # the agent asked to hang up

    async def run(self, welcome: str | None = None) -> None:
        """Talk until the agent hangs up (returns) or the call ends (cancelled)."""
        listener = asyncio.create_task(self._listen())
        try:
            if welcome:
                await self._say(welcome, timing=None)
            while not self.finished:
                item = await self._inbox.get()
                if isinstance(item, str):
                    self._queued_talks -= 1
                    await self._say(item, timing=None)
                else:
                    await self._take_turn(item)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            self._speculative.drop()

    def inject(self, text: str) -> None:
        """Speak `text` to the caller as soon as the current reply is done (API `talk`).

        Raises ``TalkQueueFull`` when MAX_QUEUED_TALKS texts are already waiting.
        """
        if self._queued_talks >= MAX_QUEUED_TALKS:
            raise TalkQueueFull(self.call.call_id, MAX_QUEUED_TALKS)
        self._queued_talks += 1
        self._inbox.put_nowait(text)

    # --- listening ------------------------------------------------------------------------

    async def _listen(self) -> None:
        async for frame in self.media.frames():
            self._hear(frame.pcm)

    def _hear(self, pcm: Pcm) -> None:
        for event in self._segmenter.feed(pcm):
            self._on_vad(event)
        self._check_barge_in()

    def _on_vad(self, event: object) -> None:
        if isinstance(event, SpeechStarted):
            self._speech_start = event.start_sample
        elif isinstance(event, SpeechPaused):
            self._pause_at = event.at_sample
            # Start STT now, while the endpoint silence is still being waited for.
            self._speculative.pause(event.audio_so_far)
        elif isinstance(event, SpeechResumed):
            self._pause_at = None
            self._speculative.resume()
        elif isinstance(event, UtteranceEnded):
            silence_from = self._pause_at if self._pause_at is not None else event.end_sample
            endpoint_ms = (self._segmenter.samples_fed - silence_from) * 1000 / SAMPLE_RATE
            speculative = self._speculative.take(event.audio)
            self._inbox.put_nowait(
                _Utterance(event.audio, time.monotonic(), endpoint_ms, speculative)
            )
            self._speech_start = self._pause_at = None

    def _check_barge_in(self) -> None:
        playback = self._playback
        if playback is None or self._speech_start is None or playback.interrupted.is_set():
            return
        if self._pause_at is not None:
            return  # the caller has gone quiet again
        if self._segmenter.samples_fed - self._speech_start < self._barge_in_samples:
            return
        self.media.flush()  # stops the audio within one frame
        playback.cut_at = self.media.sent_samples
        playback.interrupted.set()
        log.info("call %s: barge-in, playback stopped", self.call.call_id)

    # --- talking --------------------------------------------------------------------------

    async def _take_turn(self, utterance: _Utterance) -> None:
        try:
            transcript = await self._transcribe(utterance)
        except Exception:  # one bad inference costs one utterance, never the call
            log.exception("call %s: transcription failed; utterance dropped", self.call.call_id)
            return
        stt_ms = (time.monotonic() - utterance.ended_at) * 1000
        text = transcript.text.strip()
        if not text:
            log.debug("call %s: utterance with no words, ignored", self.call.call_id)
            return
        self.turn += 1
        timing = TurnTiming(self.turn, endpoint_ms=utterance.endpoint_ms, stt_ms=stt_ms)
        await self._record(TranscriptEntry("caller", text))
        log.info("call %s: caller said %r", self.call.call_id, text)
        request = WebhookRequest(
            call_id=self.call.call_id, agent_id=self._agent.agent_id, text=text,
            turn=self.turn, heard=self._heard,
        )  # fmt: skip
        self.call.set_state("thinking")
        answer = await self._webhook.ask_or_fallback(
            self._agent.webhook, request, self._agent.secret, self._fallback
        )
        timing.webhook_ms = answer.duration_s * 1000
        if answer.error is not None:
            timing.webhook_error = type(answer.error).__name__
        await self._say(answer.reply.text, timing, since=utterance.ended_at)
        if answer.error is None and answer.reply.hangup:
            self.finished = True

    async def _transcribe(self, utterance: _Utterance) -> Transcript:
        if utterance.speculative is not None:
            try:
                return await utterance.speculative
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the call is ending: never swallow our own cancellation
                # only the speculative run was cancelled: transcribe the utterance afresh
        return await self._models.stt.transcribe(utterance.audio, self._agent.language)

    async def _say(self, text: str, timing: TurnTiming | None, since: float = 0.0) -> None:
        """Speak `text`; returns when played to the end or cut by barge-in."""
        playback = _Playback()
        self._playback = playback
        self._heard = None
        replied_at = time.monotonic()
        stream = self._models.tts_for(self._agent.voice).stream(text)
        self.call.set_state("speaking")
        try:
            try:
                async for sentence, pcm in stream:
                    if playback.interrupted.is_set():
                        break
                    end = self.media.enqueue(pcm)
                    playback.segments.append(Segment(sentence, end - len(pcm), end))
                    if timing is not None and len(playback.segments) == 1:
                        now = time.monotonic()
                        timing.tts_first_audio_ms = (now - replied_at) * 1000
                        timing.total_ms = (now - since) * 1000 + timing.endpoint_ms
            except Exception:  # a sentence piper cannot say must not end the call
                log.exception("call %s: speech synthesis failed", self.call.call_id)
            if not playback.interrupted.is_set():
                drained = asyncio.create_task(self.media.drained())
                cut = asyncio.create_task(playback.interrupted.wait())
                await asyncio.wait({drained, cut}, return_when=asyncio.FIRST_COMPLETED)
                drained.cancel()
                cut.cancel()
        finally:
            await stream.aclose()
            self._playback = None
        await self._finish_reply(text, playback, timing)

    async def _finish_reply(
        self, text: str, playback: _Playback, timing: TurnTiming | None
    ) -> None:
        heard: str | None = None
        if playback.interrupted.is_set():
            heard = heard_text(playback.segments, playback.cut_at)
            self._heard = heard
        await self._record(TranscriptEntry("agent", text, heard=heard))
        self.call.set_state("listening")
        if timing is not None:
            timing.interrupted = heard is not None
            timing.tts_first_audio_ms = timing.tts_first_audio_ms or 0.0
            self.timings.append(timing)
            log.info("call %s: %s", self.call.call_id, timing.summary())
            if self._observer is not None:
                await self._observer.turn_finished(self.call, timing)

    async def _record(self, entry: TranscriptEntry) -> None:
        self.transcript.append(entry)
        if self._observer is not None:
            await self._observer.transcript_added(self.call, entry)
