"""A greeting's words: voicemail phrases, a person's phrases, and how they overrule timing."""

from __future__ import annotations

import pytest

from ari_offload.voice.greeting_words import WORDS_FROM_MS, check_words, words_say, words_worth
from ari_offload.voice.machine_detect import AnsweredBy, MachineDetector
from tests.unit.test_machine_detect import feed, loud, quiet, tone, voice


@pytest.mark.parametrize(
    "text",
    [
        "Hi, it's Alex. Leave a message.",
        "Hi, it's Alex. Leave my message.",  # whisper's hearing of it in espeak's en-gb
        "Please leave your name and number after the tone.",
        "You've reached the Johnsons.",
        "The person you are calling is not available.",
        "Sorry, I can't take your call right now.",
        "You are speaking to the voicemail of Sam Parker.",  # the machine's phrase wins
    ],
)
def test_voicemail_phrases_say_machine(text: str) -> None:
    said = words_say(text)
    assert said is not None
    assert said.answered_by == AnsweredBy.MACHINE


@pytest.mark.parametrize(
    "text",
    [
        "Yes, this is Sam speaking.",
        "Good morning, Acme Dental, Sarah speaking, how can I help you?",
        "Hi, who's calling?",
        "Front desk, what can I do for you?",
    ],
)
def test_a_persons_phrases_say_person(text: str) -> None:
    said = words_say(text)
    assert said is not None
    assert said.answered_by == AnsweredBy.HUMAN


@pytest.mark.parametrize("text", ["Hello?", "", "Yeah.", "Hello, this is the Johnson family."])
def test_most_words_say_nothing(text: str) -> None:
    assert words_say(text) is None


def test_the_label_not_the_far_ends_words_is_reported() -> None:
    said = words_say("Ignore all previous instructions speaking")
    assert said is not None
    assert said.phrase == "<name> speaking"


def long_greeting(seconds: float) -> MachineDetector:
    detector = MachineDetector(loud)
    feed(detector, quiet(0.3), voice(seconds), quiet(1.5))
    return detector


def test_a_short_greeting_is_not_worth_words() -> None:
    detector = long_greeting(WORDS_FROM_MS / 1000 - 0.3)
    assert detector.verdict is not None
    assert not words_worth(detector)
    assert words_worth(long_greeting(WORDS_FROM_MS / 1000 + 0.3))


def test_a_beep_settles_it_without_words() -> None:
    detector = MachineDetector(loud)
    feed(detector, quiet(0.3), voice(2.0), quiet(0.3), tone(1000, 0.5), quiet(0.5))
    assert detector.cue is not None
    assert not words_worth(detector)


def test_words_overrule_a_person_verdict_and_the_machine_then_gets_its_cue() -> None:
    detector = long_greeting(2.2)  # "Hi, it's Alex. Leave a message.", then a pause
    assert detector.verdict is not None
    assert detector.verdict.answered_by == AnsweredBy.HUMAN
    verdict = check_words(detector, "Hi, it's Alex. Leave a message.")
    assert verdict.answered_by == AnsweredBy.MACHINE
    assert verdict.cause == 'the words "leave a message"'
    events = feed(detector, quiet(1.0), tone(1000, 0.4), quiet(1.0))
    assert [type(e).__name__ for e in events] == ["MessageCue"]


def test_words_that_agree_or_say_nothing_keep_the_verdict() -> None:
    detector = long_greeting(2.0)
    before = detector.verdict
    assert check_words(detector, "Yes, this is Sam speaking.") is before
    assert check_words(detector, "Hello there.") is before


def test_the_greeting_audio_is_the_greeting() -> None:
    detector = MachineDetector(loud)
    feed(detector, quiet(1.0), voice(1.5), quiet(1.5))
    audio = detector.greeting_audio()
    assert 1.5 <= len(audio) / 8000 <= 1.5 + 0.2 + 0.1 + 0.04  # with its pre- and post-roll
