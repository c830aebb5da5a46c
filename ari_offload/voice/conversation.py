"""One call's conversation: the async shell that runs a ``TurnTaker`` over a ``MediaPort``.

Two tasks per call, plus one transcription per utterance. The listener reads a tap of the
caller's audio, feeds the VAD, and passes the VAD's events to the turn-taker and STT; what
must happen at once (speculate, cancel, barge in) it does on the spot. The talker performs
the turn actions one at a time: an utterance -> its transcript -> the agent (agent.lines) -> the
reply spoken sentence by sentence (the next sentence is synthesized while the current one
plays); a welcome or API text -> spoken. Latency: endpoint silence overlaps STT, TTS overlaps
playback. The rules of who has the floor live in ``turn_taker``; this module only moves audio,
text and time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from ari_offload.agent.answer import StreamedAnswer
from ari_offload.agent.client import WebhookClient
from ari_offload.agent.contract import WebhookRequest
from ari_offload.agent.lines import open_line
from ari_offload.agent.llm_chat import LlmConfig
from ari_offload.agent.reply_actions import Transfer
from ari_offload.ari.call import ActiveCall
from ari_offload.audio import Pcm
from ari_offload.config import AgentSettings, SpeechSettings
from ari_offload.media.port import FrameTap, MediaPort
from ari_offload.speech.models import SpeechModels
from ari_offload.speech.streaming import UtteranceStt, utterance_stt
from ari_offload.speech.stt import Transcript
from ari_offload.speech.vad import UtteranceEnded, VadEvent
from ari_offload.tasks import cancel_and_wait, first_of
from ari_offload.voice.agent_actions import AgentActions, KeysTimer, keys_line
from ari_offload.voice.call_book import CallBook, ConversationObserver
from ari_offload.voice.keypad import Keys
from ari_offload.voice.turn_end_watch import TurnEndWatch
from ari_offload.voice.turn_taker import (
    Action,
    BargeIn,
    BargeInEnded,
    CancelSpeculation,
    EndTurn,
    Speak,
    Speculate,
    TurnTaker,
    Utterance,
)
from ari_offload.voice.turns import TranscriptEntry, TurnTiming

log = logging.getLogger("ari_offload.conversation")


@dataclass(frozen=True)
class AgentBinding:
    agent_id: str
    webhook: str | None  # None: an agent of kind "llm" (``llm``)
    secret: str | None = field(default=None, repr=False)
    voice: str | None = None  # a TTS voice name; None: the server's default
    language: str | None = None  # the caller's language for STT; None: the server's default
    events_url: str | None = None  # where call events go (observe.call_events); None: nowhere
    speaking_rate: float | None = None  # times the voice's normal pace; None: its own
    llm: LlmConfig | None = None  # kind "llm": its endpoint and model, instead of a webhook


class _Cut:
    """The caller cut the reply before its next chunk was ready."""


_CUT = _Cut()


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
        self.call = call
        self.media: MediaPort = call.media
        self._models = models
        self._line = open_line(webhook, webhook=agent.webhook, secret=agent.secret, llm=agent.llm)
        self._agent = agent
        self._fallback = agent_settings.fallback_text
        # Everything hears and speaks at the port's rate: 16 kHz from a wideband line.
        self._rate = rate = call.media.codec.sample_rate
        self._taker = TurnTaker(
            speech.barge_in_min_speech_ms, sample_rate=rate, turns_before=call.turns
        )
        self._segmenter = models.new_segmenter(rate)
        self._stt: UtteranceStt = utterance_stt(models.stt, agent.language, call.call_id, rate)
        gate = models.new_turn_gate()  # None: the VAD endpoint alone ends a turn
        self._turn_end = None if gate is None else TurnEndWatch(
            gate, self._segmenter, self._stt, models, call.call_id, self._vad_event
        )  # fmt: skip
        # one at a time; None: the listener stopped (the port closed, or it failed)
        self._turns: asyncio.Queue[EndTurn | Speak | Keys | None] = asyncio.Queue()
        self._transcripts: deque[asyncio.Task[Transcript]] = deque()  # per utterance, in order
        self._cut = asyncio.Event()  # the caller barged in on what is playing
        # the transcription of the utterance that cut it, once that utterance has ended
        self._barged: asyncio.Future[asyncio.Task[Transcript]] | None = None
        self.turn = 0
        self.book = CallBook(call, observer)
        self.transcript, self.timings = self.book.transcript, self.book.timings
        self.finished = False  # the agent asked to hang up (or to transfer: ``handoff``)
        self._actions = AgentActions(call, self.book, self._taker, self._perform)
        self._keys_timer = KeysTimer(self._taker, self._perform)  # a collect's timeout

    @property
    def handoff(self) -> Transfer | None:
        """The transfer the agent asked for; the flow runs it once the conversation ends."""
        return self._actions.handoff

    async def run(self, welcome: str | None = None) -> None:
        """Talk until the agent hangs up (returns) or the call ends (cancelled)."""
        tap = self.media.tap()  # opened now: audio from before this conversation is not heard
        listener = asyncio.create_task(self._listen(tap), name=f"listen-{self.call.call_id}")
        listener.add_done_callback(lambda _: self._turns.put_nowait(None))
        try:
            self._perform(self._taker.greet(welcome))
            while not self.finished:
                action = await self._turns.get()
                if action is None:
                    self._listener_stopped(listener)
                    return
                if isinstance(action, Speak):
                    await self._say(action.text, timing=None)
                elif isinstance(action, Keys):
                    await self._take_keys(action)
                else:
                    await self._take_turn(action.utterance)
                self._perform(self._taker.turn_done())
        finally:
            self._keys_timer.cancel()
            tap.close()
            self._stt.close()  # first: a second cancel may interrupt the wait below
            cpu = self._models.release_call(self.call.call_id)
            log.info(
                "call %s: conversation over after %d turns; speech CPU %.2f s (stt %.2f, tts"
                " %.2f, %d jobs)", self.call.call_id, len(self.timings), cpu.stt + cpu.tts,
                cpu.stt, cpu.tts, cpu.jobs,
            )  # fmt: skip
            judging = self._turn_end.judging if self._turn_end is not None else ()
            await cancel_and_wait(listener, *self._transcripts, *judging)

    def _listener_stopped(self, listener: asyncio.Task[None]) -> None:
        """Nothing more is heard: end the conversation (and with a failure, the flow)."""
        error = None if listener.cancelled() else listener.exception()
        if error is not None:
            raise RuntimeError(f"call {self.call.call_id}: the listener failed") from error
        log.info("call %s: the call's audio ended; conversation over", self.call.call_id)

    def inject(self, text: str) -> None:
        """Speak `text` to the caller as soon as the current reply is done (API `talk`).

        Raises ``TalkQueueFull`` when MAX_QUEUED_TALKS texts are already waiting.
        """
        self._perform(self._taker.inject(text, self.call.call_id))

    def digit(self, key: str) -> None:
        """The caller pressed ``key``: it stops the reply, and goes to the agent."""
        self._perform(self._taker.digit(key, time.monotonic()))

    # --- listening ------------------------------------------------------------------------

    async def _listen(self, tap: FrameTap) -> None:
        async for frame in tap:
            self._hear(frame.pcm, frame.received_at)

    def _hear(self, pcm: Pcm, received_at: float | None = None) -> None:
        """One caller frame; a turn's time runs from when the frame that ended it came in,
        however late the loop gets to it."""
        now = time.monotonic() if received_at is None else received_at
        self._stt.feed(pcm)
        for event in self._segmenter.feed(pcm):
            self._vad_event(event, now)
        if self._turn_end is not None:
            self._turn_end.frame()
        self._perform(self._taker.frame(self._segmenter.samples_fed))

    def _vad_event(self, event: VadEvent, now: float) -> None:
        if isinstance(event, UtteranceEnded):
            self._transcripts.append(self._stt.utterance_ended(event.audio))
        if self._turn_end is not None:
            self._turn_end.vad(event)
        self._perform(self._taker.vad(event, self._segmenter.samples_fed, now))

    def _perform(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Speculate):
                self._stt.speculate(action.audio)  # STT runs while the endpoint is waited for
            elif isinstance(action, CancelSpeculation):
                self._stt.cancel_speculation()
            elif isinstance(action, BargeIn):
                # flush() stops the audio within one frame
                self._taker.barged_in(self.media.flush(), time.monotonic(), action.final)
                if not action.final:  # a key needs no verdict: the reply stays cut
                    self._barged = asyncio.get_running_loop().create_future()
                self._cut.set()
                log.info("call %s: barge-in, playback stopped", self.call.call_id)
            elif isinstance(action, BargeInEnded):
                # _hear queued this utterance's transcription just before its end reached
                # the turn-taker: it is the last one.
                if self._barged is not None and not self._barged.done():
                    self._barged.set_result(self._transcripts[-1])
            else:
                self._turns.put_nowait(action)
        self._keys_timer.check()

    # --- talking --------------------------------------------------------------------------

    async def _take_turn(self, utterance: Utterance) -> None:
        transcribing = self._transcripts.popleft()
        try:
            transcript = await transcribing
        except Exception:  # one bad inference costs one utterance, never the call
            log.exception("call %s: transcription failed; utterance dropped", self.call.call_id)
            return
        text = transcript.text.strip()
        turn = self._taker.transcribed(text)
        if turn is None:
            log.debug("call %s: utterance with no words, ignored", self.call.call_id)
            return
        self.turn = self.call.turns = turn
        self.book.record(TranscriptEntry("caller", text))
        log.info("call %s: caller said %r", self.call.call_id, text)
        timing = TurnTiming(turn, endpoint_ms=utterance.endpoint_ms)
        request = WebhookRequest(
            call_id=self.call.call_id, agent_id=self._agent.agent_id, text=text,
            turn=self.turn, heard=self._taker.heard,
        )  # fmt: skip
        await self._ask(request, timing, since=utterance.ended_at)

    async def _take_keys(self, keys: Keys) -> None:
        """Keys the caller pressed (or a collect's end) go to the agent as a turn."""
        turn = self.turn = self.call.turns = self._taker.keys_taken()
        self.book.record(TranscriptEntry("caller", keys_line(keys)))
        log.info("call %s: caller keys %r (%s)", self.call.call_id, keys.digits,
                 keys.ended_by or "pressed")  # fmt: skip
        request = WebhookRequest(
            call_id=self.call.call_id, agent_id=self._agent.agent_id, text="", turn=turn,
            heard=self._taker.heard, type="dtmf", digits=keys.digits, ended_by=keys.ended_by,
        )  # fmt: skip
        await self._ask(request, TurnTiming(turn), since=keys.at)

    async def _ask(self, request: WebhookRequest, timing: TurnTiming, since: float) -> None:
        """Ask the agent, say its answer, then do what it asked for."""
        self.timings.append(timing)
        self.book.measured(timing)
        await self.book.caught_up()  # on record before the agent is asked
        asked_at = time.monotonic()
        # The parts add up to the total by construction: each is the time between two of
        # the turn's moments (ended -> asked -> answered -> first audio).
        timing.stt_ms = (asked_at - since) * 1000
        self.call.set_state("thinking")
        answer = StreamedAnswer(self._line, request, self._fallback)
        await self._say(answer, timing, since=since, asked_at=asked_at)
        self.finished = await self._actions.after(answer)

    async def _say(
        self,
        reply: str | StreamedAnswer,
        timing: TurnTiming | None,
        since: float = 0.0,
        asked_at: float = 0.0,
    ) -> None:
        """Speak ``reply`` (a text, or the agent's answer as it streams in); returns when
        played to the end or cut by barge-in for good (which cancels a streaming answer).

        The agent line is recorded when its first audio is queued, and corrected with what
        the caller heard if barge-in or the call's end (a cancel) cuts it short. A cut reply
        waits (RESUME_WITHIN_S at most) for the verdict on what the caller said: no words,
        and it resumes (``_resumed``); the TTS stream stays open meanwhile, so the sentences
        not synthesized yet need no new start. One reply, one line, one final correction.
        """
        self._taker.reply_started()
        self._cut.clear()
        tts = self._models.tts_for(self._agent.voice, self._agent.speaking_rate, self._rate)
        owner = self.call.call_id
        if isinstance(reply, str):
            text, replied_at = reply, time.monotonic()
            stream = tts.stream(reply, owner=owner)
        else:
            text, replied_at = "", asked_at
            stream = tts.stream_pieces(reply.pieces(), owner=owner)
        line: TranscriptEntry | None = None
        abandoned_at: int | None = None
        complete = False  # every sentence was queued (a hangup between two may stop it)
        cut = False  # cut for good: no resume
        pending: asyncio.Future[tuple[str, Pcm] | None] | None = None  # the next chunk
        try:
            try:
                while True:
                    # A cut must not wait for the next chunk: a streamed reply's may be
                    # seconds away (the agent still writing), and the caller is talking.
                    pending = pending or asyncio.ensure_future(anext(stream, None))
                    await first_of(asyncio.shield(pending), self._cut.wait())
                    item, pending = (pending.result(), None) if pending.done() else (_CUT, pending)
                    if self._taker.interrupted:
                        line = self._cut_short(line)
                        if cut := not await self._resumed():
                            break
                    if item is None:
                        complete = True
                        break
                    if isinstance(item, _Cut):
                        self._cut.clear()  # seen (and, if resumed, the reply goes on)
                        continue
                    sentence, pcm = item
                    if line is None:
                        await self.book.caught_up()  # nothing heard unrecorded
                        self.call.set_state("speaking")  # "thinking" until the agent's first words
                    ahead = self.media.queued  # what plays before this (none after a turn)
                    self._queue(sentence, pcm)
                    if line is None:
                        if not isinstance(reply, str):
                            text, replied_at = (
                                reply.text.strip(),
                                self._answered(reply, timing, asked_at),
                            )
                        line = self.book.first_audio(text, timing, replied_at, since, ahead)
            except Exception:  # a sentence piper cannot say must not end the call
                log.exception("call %s: speech synthesis failed", self.call.call_id)
            while not cut:
                if not self._taker.interrupted:
                    await first_of(self.media.drained(), self._cut.wait())
                if not self._taker.interrupted:
                    break
                line = self._cut_short(line)
                cut = not await self._resumed()
            if not complete:
                abandoned_at = self.media.played  # synthesis failed: the rest was never said
        except asyncio.CancelledError:
            abandoned_at = self.media.played  # the call ended mid-reply: this much was heard
            raise
        finally:
            # Recorded before any await: a cancelled conversation runs no further than this.
            heard = self._taker.reply_finished(abandoned_at, complete)
            if not isinstance(reply, str):
                text = reply.text.strip()  # all that came (a cut stream: up to the cut)
                if timing is not None:
                    timing.webhook_error = reply.failure
                    if timing.webhook_ms is None and reply.answered_at is not None:
                        self._answered(reply, timing, asked_at)  # no audio, but it answered
            self._line.said(text if heard is None else heard)  # an LLM's history: as heard
            self.book.reply_ended(text, line, heard, timing)
            if pending is not None:
                await cancel_and_wait(pending)  # it runs the stream: closed only once stopped
            await stream.aclose()

    def _queue(self, sentence: str, pcm: Pcm) -> None:
        self._taker.reply_queued(sentence, pcm, self.media.play(pcm))

    def _cut_short(self, line: TranscriptEntry | None) -> TranscriptEntry | None:
        """On record at once, before the verdict: what was heard up to the cut."""
        heard = self._taker.heard_so_far
        return line if line is None or heard == line.heard else self.book.correct(line, heard)

    async def _resumed(self) -> bool:
        """The reply was cut: wait (until the resume deadline) for the transcript of what
        the caller said; if it held no words, queue the reply again from before the cut."""
        heard = await self._barge_in_transcript()
        text = heard[1] if heard is not None else None
        resume = self._taker.barge_in_heard(text, time.monotonic())
        if resume is None:
            return False
        if heard is not None:
            self._transcripts.remove(heard[0])  # the utterance is no turn
        log.info(
            "call %s: false interruption: resuming reply (%r heard, %.0f ms silent)",
            self.call.call_id, text, resume.silent_s * 1000,
        )  # fmt: skip
        self._cut.clear()
        for piece, pcm in resume.pieces:
            self._queue(piece, pcm)
        return True

    async def _barge_in_transcript(self) -> tuple[asyncio.Task[Transcript], str] | None:
        """The transcription of the utterance that cut the reply and its text; None if not
        done by the deadline (it is not cancelled: the turn may still need it) or failed
        (logged where the turn takes it)."""
        deadline, barged = self._taker.resume_deadline, self._barged
        if deadline is None or barged is None:
            return None
        ended, _ = await asyncio.wait({barged}, timeout=max(0.0, deadline - time.monotonic()))
        deadline = self._taker.resume_deadline  # once it ended: counted from the quiet
        if not ended or deadline is None:
            return None
        transcribing = barged.result()
        timeout = max(0.0, deadline - time.monotonic())
        done, _ = await asyncio.wait({transcribing}, timeout=timeout)
        if not done or transcribing.cancelled() or transcribing.exception() is not None:
            return None
        return transcribing, transcribing.result().text

    def _answered(
        self, answer: StreamedAnswer, timing: TurnTiming | None, asked_at: float
    ) -> float:
        """The answer's first text came: the webhook part of the turn ends there."""
        answered_at = answer.answered_at or time.monotonic()
        if timing is not None:
            timing.webhook_ms = (answered_at - asked_at) * 1000
        return answered_at
