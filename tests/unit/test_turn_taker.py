"""The turn-taker's rules, event by event: no sockets, no models, no clock."""

from __future__ import annotations

import numpy as np
import pytest

from ari_offload.errors import TalkQueueFull
from ari_offload.speech.vad import SpeechPaused, SpeechResumed, SpeechStarted, UtteranceEnded
from ari_offload.voice.turn_taker import (
    BargeIn,
    CancelSpeculation,
    EndTurn,
    Floor,
    Speak,
    Speculate,
    TurnTaker,
)

MS = 8  # samples per millisecond at 8 kHz
AUDIO = np.ones(4000, dtype=np.int16)


def taker(barge_in_ms: int = 300, max_talks: int = 8) -> TurnTaker:
    return TurnTaker(barge_in_min_speech_ms=barge_in_ms, max_queued_talks=max_talks)


def floor(t: TurnTaker) -> Floor:
    return t.floor  # read through a call: mypy would keep an earlier assert's narrowing


def speak_until_endpoint(t: TurnTaker, start_ms: int = 0) -> list[object]:
    """Speech from start_ms for 500 ms, a pause at +500, the endpoint 400 ms later."""
    actions: list[object] = []
    actions += t.vad(SpeechStarted(start_ms * MS), (start_ms + 200) * MS, now=1.0)
    actions += t.vad(SpeechPaused(AUDIO, (start_ms + 500) * MS), (start_ms + 700) * MS, now=1.2)
    ended = UtteranceEnded(AUDIO, start_ms * MS, (start_ms + 660) * MS)
    actions += t.vad(ended, (start_ms + 900) * MS, now=1.4)
    return actions


def test_a_pause_starts_speculation_and_speech_resuming_cancels_it() -> None:
    t = taker()
    assert t.vad(SpeechStarted(0), 200 * MS, now=0.0) == []
    paused = t.vad(SpeechPaused(AUDIO, 500 * MS), 700 * MS, now=0.0)
    assert len(paused) == 1
    assert isinstance(paused[0], Speculate)
    assert paused[0].audio is AUDIO, "STT starts on exactly the audio heard so far"
    assert t.vad(SpeechResumed(760 * MS), 800 * MS, now=0.0) == [CancelSpeculation()]


def test_the_turn_ends_only_at_the_endpoint() -> None:
    t = taker()
    actions = t.vad(SpeechStarted(0), 200 * MS, now=1.0)
    actions += t.vad(SpeechPaused(AUDIO, 500 * MS), 700 * MS, now=1.2)
    assert not any(isinstance(a, EndTurn) for a in actions), "a pause is not the end of a turn"
    assert floor(t) is Floor.CALLER

    (end,) = t.vad(UtteranceEnded(AUDIO, 0, 660 * MS), 900 * MS, now=1.4)
    assert isinstance(end, EndTurn)
    assert end.utterance.audio is AUDIO
    assert end.utterance.ended_at == 1.4
    # Silence counted from where the caller stopped (the pause), not from the post-roll.
    assert end.utterance.endpoint_ms == 400
    assert floor(t) is Floor.AGENT


def test_an_utterance_while_the_agent_has_the_floor_waits_its_turn() -> None:
    t = taker()
    (first,) = [a for a in speak_until_endpoint(t) if isinstance(a, EndTurn)]
    second = speak_until_endpoint(t, start_ms=2000)
    assert not any(isinstance(a, EndTurn) for a in second), "queued behind the first turn"
    (next_turn,) = t.turn_done()
    assert isinstance(next_turn, EndTurn)
    assert next_turn.utterance is not first.utterance
    assert t.turn_done() == []
    assert floor(t) is Floor.CALLER


def test_barge_in_needs_the_minimum_speech_while_a_reply_plays() -> None:
    t = taker(barge_in_ms=300)
    t.reply_started()
    t.reply_queued("Hello there, how are you today?", 0, 16000)
    t.vad(SpeechStarted(1000 * MS), 1100 * MS, now=0.0)
    assert t.frame(1100 * MS) == [], "100 ms of speech: a cough, not a barge-in"
    assert t.frame(1280 * MS) == [], "280 ms: still under the minimum"
    assert t.frame(1300 * MS) == [BargeIn()], "300 ms of speech over the reply: barge in"

    t.barged_in(8000)  # the shell flushed playback at position 8000 (half the reply)
    assert t.frame(1320 * MS) == [], "one barge-in per reply"
    assert t.reply_finished() == "Hello there, how", "the words of the half that was played"
    assert t.heard == "Hello there, how"


def test_no_barge_in_when_nothing_plays_or_the_caller_paused() -> None:
    t = taker(barge_in_ms=300)
    t.vad(SpeechStarted(0), 100 * MS, now=0.0)
    assert t.frame(1000 * MS) == [], "nothing is playing"
    t.reply_started()
    t.vad(SpeechPaused(AUDIO, 900 * MS), 1100 * MS, now=0.0)
    assert t.frame(1200 * MS) == [], "the caller has gone quiet"
    assert t.reply_finished() is None, "played to the end: nothing cut"


def test_injected_text_is_queued_behind_a_reply() -> None:
    t = taker()
    (_turn,) = [a for a in speak_until_endpoint(t) if isinstance(a, EndTurn)]
    assert t.inject("Your order has shipped.") == [], "the agent is answering: it waits"
    assert t.queued_talks == 1
    assert t.turn_done() == [Speak("Your order has shipped.")]
    assert t.queued_talks == 0
    assert t.inject("Anything else?") == [], "the text before it is still being spoken"
    assert t.turn_done() == [Speak("Anything else?")]


def test_injected_text_goes_out_at_once_when_the_floor_is_free() -> None:
    t = taker()
    assert t.inject("Hello from the API.") == [Speak("Hello from the API.")]


def test_the_welcome_comes_before_any_caller_turn_and_is_not_counted() -> None:
    t = taker(max_talks=1)
    assert t.greet("Welcome!") == [Speak("Welcome!", from_api=False)]
    assert not any(isinstance(a, EndTurn) for a in speak_until_endpoint(t))
    t.inject("From the API.")  # one API text may wait; the welcome does not use the bound
    (turn,) = t.turn_done()
    assert isinstance(turn, EndTurn), "the caller's turn, in the order it came"
    assert t.greet(None) == []


def test_api_texts_are_bounded() -> None:
    t = taker(max_talks=2)
    t.greet("Welcome!")
    t.inject("one")
    t.inject("two")
    with pytest.raises(TalkQueueFull):
        t.inject("three")
    t.turn_done()  # "one" goes out: room for one more
    t.inject("three")


def test_heard_is_forgotten_when_the_next_reply_starts() -> None:
    t = taker()
    t.reply_started()
    t.reply_queued("One two three four.", 0, 8000)
    t.barged_in(4000)
    assert t.reply_finished() == "One two"
    t.reply_started()
    assert t.heard is None


def test_an_utterance_without_words_is_no_turn() -> None:
    t = taker()
    speak_until_endpoint(t)
    assert t.transcribed("  ") is None, "a cough or a click: nothing goes to the agent"
    assert t.turn_done() == []
    speak_until_endpoint(t, start_ms=2000)
    assert t.transcribed("I need help") == 1, "the first turn with words is turn 1"
    assert t.transcribed("and more") == 2


def test_a_reply_stopped_between_two_sentences_was_heard_only_up_to_the_last_one_played() -> None:
    t = taker()
    t.reply_started()
    t.reply_queued("First sentence here.", 0, 1600)
    # The call ended (or synthesis failed) after the first sentence played in full, before
    # the second was ever queued: the caller heard the first sentence and nothing more.
    assert t.reply_finished(abandoned_at=1600, complete=False) == "First sentence here."

    t.reply_started()
    t.reply_queued("All of it.", 0, 800)
    assert t.reply_finished(abandoned_at=800, complete=True) is None, "all said and played"
