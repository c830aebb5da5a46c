"""Sentence splitting, silence trimming and sentence streaming, without loading a voice."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from ari_offload.audio import SAMPLE_RATE, Pcm
from ari_offload.speech.reply_text import (
    CLAUSE_PAUSE_MS,
    MAX_SENTENCE_CHARS,
    SECOND_MAX_WORDS,
    SENTENCE_PAUSE_MS,
    WORD_CUT_PAUSE_MS,
    plan_chunks,
    speakable,
    split_sentences,
)
from ari_offload.speech.tts import TtsRunner, trim_silence


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Sure! Can you confirm your email address?",
            ["Sure!", "Can you confirm your email address?"],
        ),
        (
            "Dr. Smith will call you. It costs 3.5 dollars, i.e. less than before.",
            ["Dr. Smith will call you.", "It costs 3.5 dollars, i.e. less than before."],
        ),
        ("Really?! Yes... I think so.", ["Really?!", "Yes...", "I think so."]),
        ('He said "fine." Then he left', ['He said "fine."', "Then he left"]),
        ("First line\nSecond line.\n\n  Third? ", ["First line", "Second line.", "Third?"]),
        ("Version 2.0 is out.", ["Version 2.0 is out."]),
        ("   \n ", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_long_sentence_is_cut_at_commas() -> None:
    clause = "we checked the account, the address and the phone number on file"
    text = ", ".join([clause] * 6) + "."
    pieces = split_sentences(text)

    assert len(pieces) > 1
    assert all(len(piece) <= MAX_SENTENCE_CHARS for piece in pieces)
    assert all(piece.endswith(",") for piece in pieces[:-1])
    assert " ".join(pieces) == text


def test_long_sentence_without_commas_is_cut_at_spaces() -> None:
    text = " ".join(["word"] * 120)
    pieces = split_sentences(text)

    assert all(len(piece) <= MAX_SENTENCE_CHARS for piece in pieces)
    assert " ".join(pieces) == text


def test_no_piece_is_longer_than_the_bound_whatever_the_commas() -> None:
    # The only comma comes after the bound; one "word" is longer than the bound by itself.
    text = " ".join(["word"] * 40) + ", and then some." + " x" + "y" * 300
    pieces = split_sentences(text)

    assert all(len(piece) <= MAX_SENTENCE_CHARS for piece in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")


def test_speakable_keeps_titles_in_the_sentence() -> None:
    assert speakable("Dr. Smith and Mrs. Jones paid 3.5 dollars.") == (
        "Dr Smith and Mrs Jones paid 3.5 dollars."
    )


def test_trim_silence_keeps_a_few_ms() -> None:
    voice = np.full(800, 5000, dtype=np.int16)
    pcm = np.concatenate([np.zeros(4000, np.int16), voice, np.zeros(4000, np.int16)])
    trimmed = trim_silence(pcm, rate=8000, keep_ms=20)

    assert trimmed.size == 800 + 2 * 160
    assert trim_silence(np.zeros(800, np.int16)).size == 0


class FakeSynthesizer:
    """0.1 s per sentence; 'silent' sentences give no audio; records when each began."""

    def __init__(self, seconds: float = 0.1) -> None:
        self.seconds = seconds
        self.started: list[tuple[str, float]] = []
        self.lock = threading.Lock()

    def synthesize_sentence(self, text: str, sample_rate: int = SAMPLE_RATE) -> Pcm:
        with self.lock:
            self.started.append((text, time.perf_counter()))
        time.sleep(self.seconds)
        if "silent" in text:
            return np.zeros(0, dtype=np.int16)
        return np.full(800, len(text), dtype=np.int16)


async def test_stream_yields_sentences_in_order_with_pauses() -> None:
    runner = TtsRunner(FakeSynthesizer(0.01), sentence_pause_ms=100)
    out = [item async for item in runner.stream("One. A silent one. Three? Four!")]
    runner.close()

    assert [sentence for sentence, _ in out] == ["One.", "Three?", "Four!"]
    assert [pcm.size for _, pcm in out] == [800 + 800, 800 + 800, 800]
    assert all(pcm.dtype == np.int16 for _, pcm in out)


async def test_stream_prepares_the_next_sentence_while_this_one_plays() -> None:
    fake = FakeSynthesizer(0.1)
    runner = TtsRunner(fake)
    yielded_at: list[float] = []
    started_at_first_yield = 0
    async for _sentence, _pcm in runner.stream("First sentence. Second sentence. Third."):
        yielded_at.append(time.perf_counter())
        started_at_first_yield = started_at_first_yield or len(fake.started)
        await asyncio.sleep(0.15)  # "playing" the sentence
    runner.close()

    # First audio after one synthesis, not after the whole reply.
    assert started_at_first_yield <= 2
    # Sentence k+1 began when sentence k was handed over, not when its playback ended.
    for k in range(2):
        assert fake.started[k + 1][1] < yielded_at[k] + 0.1


async def test_closing_the_stream_early_stops_synthesis() -> None:
    fake = FakeSynthesizer(0.05)
    runner = TtsRunner(fake)
    stream = runner.stream("One. Two. Three. Four. Five.")
    async for _ in stream:
        break  # barge-in after the first sentence
    await stream.aclose()
    await asyncio.sleep(0.2)
    runner.close()

    # "Two." was being prepared (it may not have reached a worker yet); nothing after it.
    assert [text for text, _ in fake.started] in (["One."], ["One.", "Two."])


# -- the chunk plan: the first clause alone --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("You said: I need to reset my password. How else can I help?", "You said:"),
        ("Sure, I can help you with resetting your password today.", "Sure,"),
        ("Well; that depends on the plan you are on right now.", "Well;"),
        # no clause mark: a cut after a few words, before a phrase start
        (
            "I can definitely help you with resetting the password right now.",
            "I can definitely help you",
        ),
    ],
)
def test_the_first_chunk_is_the_first_clause(text: str, first: str) -> None:
    assert plan_chunks(text)[0].text == first


@pytest.mark.parametrize(
    "text",
    [
        "You said: I need to reset my password. How else can I help?",
        "Thanks for calling the support line of the Acme corporation where every call "
        "matters to us and we are happy to help with anything you need today. Bye!",
        "Yes. No. Maybe, if you like, we could try again tomorrow morning at nine.",
        "Sure, I can.",
    ],
)
def test_chunks_cover_the_reply_word_for_word(text: str) -> None:
    chunks = plan_chunks(text)
    assert " ".join(c.text for c in chunks).split() == text.split()  # never mid-word
    assert all(len(c.text) <= MAX_SENTENCE_CHARS for c in chunks)
    assert all(c.text.strip() for c in chunks)


def test_short_sentences_are_not_cut() -> None:
    assert [c.text for c in plan_chunks("Hello there. Sure, I can.")] == [
        "Hello there.",
        "Sure, I can.",
    ]


def test_a_cut_between_words_is_spoken_as_a_clause_with_a_short_pause() -> None:
    first, rest = plan_chunks("I can definitely help you with resetting the password right now.")
    assert first.speak == "I can definitely help you,"  # continuing intonation, not a full stop
    assert first.pause_ms == WORD_CUT_PAUSE_MS
    assert rest.text == "with resetting the password right now."
    assert rest.speak == rest.text


def test_the_second_chunk_is_bounded_and_later_ones_are_sentences() -> None:
    text = (
        "Sure, your order of the blue jacket left our warehouse on Monday and the courier "
        "says it will arrive on Friday. Anything else?"
    )
    chunks = plan_chunks(text)
    assert chunks[0].text == "Sure,"
    assert len(chunks[1].text.split()) <= SECOND_MAX_WORDS
    assert chunks[-1].text == "Anything else?"
    assert chunks[-1].pause_ms == SENTENCE_PAUSE_MS


async def test_stream_yields_chunks_with_the_plan_pauses() -> None:
    runner = TtsRunner(FakeSynthesizer(0.01))
    out = [item async for item in runner.stream("You said: I need help. Bye!")]
    runner.close()
    assert [text for text, _ in out] == ["You said:", "I need help.", "Bye!"]
    pauses = [pcm.size - 800 for _, pcm in out]
    assert pauses == [8 * CLAUSE_PAUSE_MS, 8 * SENTENCE_PAUSE_MS, 0]
