"""What holds no words, and where a resumed sentence picks up: text and samples, no clock."""

from __future__ import annotations

import numpy as np
import pytest

from ari_offload.voice.interruption import holds_no_words, is_false_interruption, resume_point


@pytest.mark.parametrize(
    "text", ["", "   ", ".", "(coughing)", "[Music]", "[BLANK_AUDIO]", "*cough*", "♪", "( sighs )"]
)
def test_annotations_and_punctuation_hold_no_words(text: str) -> None:
    assert holds_no_words(text)
    assert is_false_interruption(text)


@pytest.mark.parametrize("text", ["Mm-hmm.", "mhm", "Hmm...", "Uh-huh.", "Um, uh.", "Oh.", "Mmm"])
def test_backchannels_do_not_take_the_floor_but_are_words(text: str) -> None:
    assert is_false_interruption(text), "over a reply: 'go on'"
    assert not holds_no_words(text), "when the caller has the floor it is an answer"


@pytest.mark.parametrize(
    "text", ["Okay.", "Yes", "yeah", "No.", "Right.", "Mm-mm.", "Hmm, wait", "(coughing) stop"]
)
def test_words_that_may_answer_take_the_floor(text: str) -> None:
    assert not is_false_interruption(text)


def test_resume_point_is_a_word_start_snapped_to_the_gap_before_it() -> None:
    # Four words of 2000 samples: "three" is estimated to start at 4000; the real gap
    # before it (20 ms of silence) is at 3700.
    pcm = np.full(8000, 3000, dtype=np.int16)
    pcm[3700:3860] = 0
    assert resume_point("one two three four", pcm, target=5000) == (2, 3700)
    # Without a gap near it, the estimate itself.
    steady = np.full(8000, 3000, dtype=np.int16)
    assert resume_point("one two three four", steady, target=5000) == (2, 4000)


def test_resume_point_never_passes_the_target_and_keeps_a_first_word_whole() -> None:
    pcm = np.full(8000, 3000, dtype=np.int16)
    pcm[4400:4560] = 0  # quiet, but after the target
    assert resume_point("one two three four", pcm, target=4100) == (2, 4000)
    assert resume_point("one two three four", pcm, target=1500) == (0, 0)
    assert resume_point("one two three four", pcm, target=-10) == (0, 0)
    assert resume_point("", pcm, target=5000) == (0, 0)
