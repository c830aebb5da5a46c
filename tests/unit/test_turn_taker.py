"""The turn-taker's rules, event by event: no sockets, no models, no clock."""

from __future__ import annotations

import numpy as np
import pytest

from ari_offload.errors import TalkQueueFull
from ari_offload.speech.vad import SpeechPaused, SpeechResumed, SpeechStarted, UtteranceEnded
from ari_offload.voice.interruption import MAX_RESUMES, RESUME_WITHIN_S, SOUND_WITHIN_S
from ari_offload.voice.turn_taker import (
    BargeIn,
    BargeInEnded,
    CancelSpeculation,
    EndTurn,
    Floor,
    Resume,
    Speak,
    Speculate,
    TurnTaker,
)

MS = 8  # samples per millisecond at 8 kHz
AUDIO = np.ones(4000, dtype=np.int16)


def speech(samples: int) -> np.ndarray:
    """A sentence's audio: steady sound (no quiet gap for a resume point to snap to)."""
    return np.full(samples, 1000, dtype=np.int16)


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
    t.reply_queued("Hello there, how are you today?", speech(16000), 16000)
    t.vad(SpeechStarted(1000 * MS), 1100 * MS, now=0.0)
    assert t.frame(1100 * MS) == [], "100 ms of speech: a cough, not a barge-in"
    assert t.frame(1280 * MS) == [], "280 ms: still under the minimum"
    assert t.frame(1300 * MS) == [BargeIn()], "300 ms of speech over the reply: barge in"

    t.barged_in(8000, now=2.0)  # the shell flushed playback at position 8000 (half the reply)
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
    t.reply_queued("One two three four.", speech(8000), 8000)
    t.barged_in(4000, now=1.0)
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
    t.reply_queued("First sentence here.", speech(1600), 1600)
    # The call ended (or synthesis failed) after the first sentence played in full, before
    # the second was ever queued: the caller heard the first sentence and nothing more.
    assert t.reply_finished(abandoned_at=1600, complete=False) == "First sentence here."

    t.reply_started()
    t.reply_queued("All of it.", speech(800), 800)
    assert t.reply_finished(abandoned_at=800, complete=True) is None, "all said and played"


# --- false interruptions: a barge-in that held no words ------------------------------------

FIRST = "One two three four."  # 2000 samples (250 ms) a word
SECOND = "Five six seven eight."


def long_reply(t: TurnTaker) -> None:
    """A reply of two sentences, queued at [0, 8000) and [8000, 16000)."""
    assert t.greet(f"{FIRST} {SECOND}") != [], "out at once: the agent has the floor"
    t.reply_started()
    t.reply_queued(FIRST, speech(8000), 8000)
    t.reply_queued(SECOND, speech(8000), 16000)


def barge_in(t: TurnTaker, at_ms: int, cut_at: int, now: float) -> BargeInEnded:
    """The caller makes a sound at caller position at_ms for 300 ms: barge-in at +200 ms
    (playback cut at ``cut_at``), the endpoint 500 ms later; returns the verdict request."""
    t.vad(SpeechStarted(at_ms * MS), (at_ms + 100) * MS, now=now)
    assert t.frame((at_ms + 200) * MS) == [BargeIn()]
    t.barged_in(cut_at, now)
    ended = UtteranceEnded(AUDIO, at_ms * MS, (at_ms + 300) * MS)
    actions = t.vad(ended, (at_ms + 700) * MS, now=now + 0.5)
    assert len(actions) == 1
    assert isinstance(actions[0], BargeInEnded)
    return actions[0]


def requeue(t: TurnTaker, resume: Resume, at: int) -> int:
    """The shell queues the resumed pieces from playout position ``at``; returns the end."""
    for text, pcm in resume.pieces:
        at += len(pcm)
        t.reply_queued(text, pcm, at)
    return at


def test_a_barge_in_without_words_resumes_the_reply_a_little_before_the_cut() -> None:
    t = taker(barge_in_ms=200)
    long_reply(t)
    barge_in(t, at_ms=1000, cut_at=6000, now=10.0)  # in "four" (6000..8000)
    assert t.interrupted
    assert t.heard_so_far == "One two three", "on record at once: the verdict may never come"

    resume = t.barge_in_heard("(coughing)", now=11.0)

    assert isinstance(resume, Resume)
    assert resume.silent_s == pytest.approx(1.0)
    # 400 ms (3200 samples) before the cut is in "two": the reply picks up at its start.
    texts = [text for text, _ in resume.pieces]
    assert texts == ["two three four.", SECOND]
    assert [len(pcm) for _, pcm in resume.pieces] == [6000, 8000], "from 'two' to the end"
    assert not t.interrupted, "playing again"
    assert t.turn_done() == [], "the cough is no turn: nothing for the agent"
    end = requeue(t, resume, at=6000)
    assert t.reply_finished(abandoned_at=end) is None, "played to its end: all was heard"
    assert t.heard is None


def test_backchannels_and_annotations_are_no_words_over_a_reply() -> None:
    for said in ["", "  ", "[Music]", "*cough*", "Mm-hmm.", "Hmm...", "uh-huh", "Um, uh"]:
        t = taker(barge_in_ms=200)
        long_reply(t)
        barge_in(t, at_ms=1000, cut_at=6000, now=10.0)
        assert t.barge_in_heard(said, now=10.8) is not None, said


def test_a_barge_in_with_words_abandons_the_reply_and_is_the_next_turn() -> None:
    t = taker(barge_in_ms=200)
    long_reply(t)
    ended = barge_in(t, at_ms=1000, cut_at=6000, now=10.0)

    assert t.barge_in_heard("Okay.", now=10.8) is None, "'okay' may answer: it takes the floor"

    assert t.interrupted
    assert t.reply_finished() == "One two three"
    assert t.turn_done() == [EndTurn(ended.utterance)], "the caller's words are the next turn"
    assert t.transcribed("Okay.") == 1


def test_a_second_barge_in_during_the_resumed_part_is_judged_again() -> None:
    t = taker(barge_in_ms=200)
    long_reply(t)
    barge_in(t, at_ms=1000, cut_at=6000, now=10.0)
    resume = t.barge_in_heard("", now=10.8)
    assert resume is not None
    requeue(t, resume, at=6000)  # "two three four." at [6000, 12000), SECOND at [12000, 20000)

    # Real words this time, cut in "six" (SECOND plays from 12000: "six" is 14000..16000).
    second = barge_in(t, at_ms=5000, cut_at=14500, now=14.0)
    assert t.heard_so_far == "One two three four. Five"
    assert t.barge_in_heard("Wait, the basic plan please", now=14.9) is None

    assert t.reply_finished() == "One two three four. Five", "the words heard, each once"
    assert t.turn_done() == [EndTurn(second.utterance)]


def test_a_call_ended_during_the_resumed_part_keeps_what_was_heard() -> None:
    t = taker(barge_in_ms=200)
    long_reply(t)
    barge_in(t, at_ms=1000, cut_at=6000, now=10.0)
    resume = t.barge_in_heard("hm", now=10.8)
    assert resume is not None
    end = requeue(t, resume, at=6000)
    # The caller hung up 2000 samples into the resumed audio: "two" was heard again, and
    # "three" before the cut.
    assert t.reply_finished(abandoned_at=8000) == "One two three"
    assert end == 20000


def test_a_stale_or_missing_verdict_does_not_resume() -> None:
    t = taker(barge_in_ms=200)
    long_reply(t)
    ended = barge_in(t, at_ms=1000, cut_at=6000, now=10.0)
    # the caller went quiet at 10.1 (the endpoint's 400 ms before the end at 10.5)
    assert t.resume_deadline == pytest.approx(10.1 + RESUME_WITHIN_S)
    too_late = 10.1 + RESUME_WITHIN_S + 0.1
    assert t.barge_in_heard("(coughing)", now=too_late) is None, "a long silence: too late"
    assert t.resume_deadline is None, "judged: nothing more is due"
    assert t.reply_finished() == "One two three"
    assert t.turn_done() == [EndTurn(ended.utterance)], "a turn; STT will find no words in it"
    assert t.transcribed("(coughing)") is None

    t = taker(barge_in_ms=200)
    long_reply(t)
    barge_in(t, at_ms=1000, cut_at=6000, now=10.0)
    assert t.barge_in_heard(None, now=12.0) is None, "no transcript by the deadline"
    assert t.reply_finished() == "One two three"


def test_a_slow_verdict_within_the_window_still_resumes() -> None:
    # CI's loaded box: "Um, um." transcribed 2.4 s after the endpoint (2.8 s of quiet)
    t = taker(barge_in_ms=200)
    long_reply(t)
    barge_in(t, at_ms=1000, cut_at=6000, now=10.0)
    resume = t.barge_in_heard("Um, um.", now=10.1 + 2.8)
    assert resume is not None
    assert resume.silent_s == pytest.approx(2.9), "the reply was silent from the cut"


def test_the_window_waits_for_the_sound_to_end_but_not_forever() -> None:
    t = taker(barge_in_ms=200)
    long_reply(t)
    t.vad(SpeechStarted(1000 * MS), 1100 * MS, now=10.0)
    assert t.frame(1200 * MS) == [BargeIn()]
    t.barged_in(6000, now=10.0)
    assert t.resume_deadline == pytest.approx(10.0 + SOUND_WITHIN_S), "the sound goes on"
    # it never ended in time: the shell gives up at that deadline with no transcript
    assert t.barge_in_heard(None, now=10.0 + SOUND_WITHIN_S) is None
    assert t.interrupted, "cut for good"


def test_a_caller_talking_again_keeps_the_reply_cut() -> None:
    t = taker(barge_in_ms=200)
    long_reply(t)
    ended = barge_in(t, at_ms=1000, cut_at=6000, now=10.0)
    t.vad(SpeechStarted(1900 * MS), 2000 * MS, now=10.9)  # "um ... what about premium?"
    assert t.barge_in_heard("Um.", now=11.0) is None, "it would talk over the caller"
    assert t.reply_finished() == "One two three"
    assert t.turn_done() == [EndTurn(ended.utterance)]


def test_line_noise_cannot_resume_a_reply_forever() -> None:
    t = taker(barge_in_ms=200)
    long_reply(t)
    at, position, now = 1000, 6000, 10.0
    for _ in range(MAX_RESUMES):
        barge_in(t, at_ms=at, cut_at=position, now=now)
        resume = t.barge_in_heard("", now=now + 0.8)
        assert resume is not None
        position = requeue(t, resume, at=position) - 4000
        at, now = at + 2000, now + 2.0
    barge_in(t, at_ms=at, cut_at=position, now=now)
    assert t.barge_in_heard("", now=now + 0.8) is None, "cut for good"
    assert t.turn_done() != [], "the noise goes on as a turn (STT drops it)"


def test_a_cut_within_the_first_words_resumes_from_the_start() -> None:
    t = taker(barge_in_ms=200)
    long_reply(t)
    barge_in(t, at_ms=1000, cut_at=2500, now=10.0)  # in "two"; 400 ms back is "One"
    resume = t.barge_in_heard("*cough*", now=10.7)
    assert resume is not None
    assert [text for text, _ in resume.pieces] == [FIRST, SECOND]
    end = requeue(t, resume, at=2500)
    assert t.reply_finished(abandoned_at=end - 1) == f"{FIRST} Five six seven", "no 'eight'"
