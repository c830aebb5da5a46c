"""What the caller heard of an interrupted reply, and turn summaries (sans-IO)."""

from __future__ import annotations

from ari_offload.turn_fields import WebhookFailure
from ari_offload.voice.turns import Segment, TurnTiming, heard_text

REPLY = [
    Segment("Sure!", 0, 4000),
    Segment("Can you confirm your email address?", 4000, 20000),
    Segment("I will wait.", 20000, 28000),
]


def test_nothing_played_means_nothing_heard() -> None:
    assert heard_text(REPLY, 0) == ""


def test_whole_sentences_played_are_heard() -> None:
    assert heard_text(REPLY, 4000) == "Sure!"
    assert heard_text(REPLY, 28000) == "Sure! Can you confirm your email address? I will wait."


def test_a_cut_sentence_contributes_the_share_of_words_played() -> None:
    # Half of the second sentence's audio: 3 of its 6 words.
    assert heard_text(REPLY, 12000) == "Sure! Can you confirm"


def test_a_sentence_barely_started_adds_no_words() -> None:
    assert heard_text(REPLY, 4100) == "Sure!"


def test_the_summary_names_every_part() -> None:
    timing = TurnTiming(2, endpoint_ms=400, stt_ms=61.4, webhook_ms=3, tts_first_audio_ms=40,
                        total_ms=504.4, webhook_error=WebhookFailure.TIMEOUT)  # fmt: skip
    assert timing.summary() == (
        "turn 2: total 504 ms = endpoint 400 + stt 61 + webhook 3 + tts 40 (webhook timeout)"
    )
