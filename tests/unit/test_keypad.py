"""The caller's keys, sans-IO: held while the agent has the floor, collected when a reply asks,
and how they reach the turn-taker's actions. No sockets, no clock: time is passed in."""

from __future__ import annotations

import numpy as np

from ari_offload.agent.reply_actions import Collect
from ari_offload.voice.keypad import Keypad, Keys
from ari_offload.voice.turn_taker import BargeIn, Floor, Speak, TurnTaker

PIN = Collect(max_digits=4, terminator="#", timeout_s=10)


def pressed(pad: Keypad, keys: str, now: float = 0.0) -> list[Keys]:
    out = []
    for key in keys:
        if pad.swallows(key, now):
            continue
        keys_out = pad.press(key, now) if pad.collecting else None
        if keys_out is not None:
            out.append(keys_out)
    return out


def test_a_collection_ends_on_its_terminator_which_is_not_a_digit() -> None:
    pad = Keypad()
    pad.start(Collect(max_digits=8, terminator="#"), now=0.0)
    assert pressed(pad, "12#") == [Keys("12", "terminator", 0.0)]
    assert not pad.collecting


def test_a_collection_ends_at_max_digits_and_the_trailing_terminator_is_swallowed() -> None:
    pad = Keypad()
    pad.start(PIN, now=0.0)
    assert pressed(pad, "1234", now=1.0) == [Keys("1234", "max_digits", 1.0)]
    # "1234#": the caller finished the PIN with its terminator: no key of its own.
    assert pad.swallows("#", now=1.3)
    assert not pad.swallows("#", now=1.4), "only the one right after"


def test_only_the_terminator_right_after_within_the_timeout_is_swallowed() -> None:
    pad = Keypad()
    pad.start(PIN, now=0.0)
    pressed(pad, "1234", now=1.0)
    assert not pad.swallows("5", now=1.2)  # another key first: the chance is gone
    assert not pad.swallows("#", now=1.3)
    pad.start(PIN, now=2.0)
    pressed(pad, "1234", now=2.0)
    assert not pad.swallows("#", now=2.0 + PIN.timeout_s + 0.1)  # long after: a new key


def test_a_collection_times_out_from_the_start_then_from_each_key() -> None:
    pad = Keypad()
    pad.start(PIN, now=0.0)
    assert pad.deadline == 10.0
    assert pad.expired(9.9) is None
    pad.press("7", now=5.0)
    assert pad.deadline == 15.0
    assert pad.expired(12.0) is None
    assert pad.expired(15.0) == Keys("7", "timeout", 15.0)
    assert pad.deadline is None
    assert not pad.collecting


def test_keys_held_before_a_collection_count_as_its_first_keys() -> None:
    pad = Keypad()
    pad.hold("1", now=0.5)
    pad.hold("2", now=0.6)
    assert pad.start(PIN, now=1.0) is None  # two of four so far
    assert pressed(pad, "34", now=2.0) == [Keys("1234", "max_digits", 2.0)]


def test_keys_held_may_complete_a_collection_and_what_follows_is_dropped() -> None:
    pad = Keypad()
    for key in "12#9":
        pad.hold(key, now=0.5)
    assert pad.start(PIN, now=1.0) == Keys("12", "terminator", 1.0)
    assert pad.held() is None  # "9" answered nothing


def test_held_keys_go_out_together_and_once() -> None:
    pad = Keypad()
    assert pad.held() is None
    pad.hold("4", now=1.0)
    pad.hold("2", now=1.5)
    assert pad.held() == Keys("42", None, 1.5)
    assert pad.held() is None


def test_speech_cancels_a_collection() -> None:
    pad = Keypad()
    pad.start(PIN, now=0.0)
    assert pad.cancel()
    assert not pad.collecting
    assert not pad.cancel()


# --- through the turn-taker -------------------------------------------------------------------


def playing(t: TurnTaker) -> None:
    """A reply is playing (the agent has the floor)."""
    assert t.greet("Hello there.") == [Speak("Hello there.", from_api=False)]
    t.reply_started()
    t.reply_queued("Hello there.", np.ones(800, dtype=np.int16), 800)


def test_a_key_during_a_reply_stops_it_for_good_and_waits_for_the_turn_to_end() -> None:
    t = TurnTaker(barge_in_min_speech_ms=200)
    playing(t)
    assert t.digit("5", now=1.0) == [BargeIn(final=True)]
    t.barged_in(400, now=1.0, final=True)
    t.digit("6", now=1.1)  # already cut: held too
    t.reply_finished(400, complete=True)
    assert t.turn_done() == [Keys("56", None, 1.1)]
    assert t.keys_taken() == 1
    assert floor(t) is Floor.AGENT


def floor(t: TurnTaker) -> Floor:
    return t.floor


def test_a_key_while_the_caller_has_the_floor_is_a_turn_at_once() -> None:
    t = TurnTaker(barge_in_min_speech_ms=200)
    assert t.digit("9", now=2.0) == [Keys("9", None, 2.0)]


def test_a_collect_gathers_keys_then_offers_them_as_one_turn() -> None:
    t = TurnTaker(barge_in_min_speech_ms=200)
    assert t.collect(PIN, now=0.0) == []
    for key in "123":
        assert t.digit(key, now=1.0) == []
    assert t.digit("4", now=1.2) == [Keys("1234", "max_digits", 1.2)]
    t.keys_taken()
    assert t.digit("#", now=1.4) == [], "the PIN's terminator is not a turn of its own"
    t.turn_done()
    assert t.turn_done() == []


def test_words_instead_of_keys_end_the_collection_and_are_the_turn() -> None:
    t = TurnTaker(barge_in_min_speech_ms=200)
    t.collect(PIN, now=0.0)
    t.digit("1", now=0.5)
    assert t.transcribed("I don't have a PIN") == 1
    assert not t.keypad.collecting
    # A key after that is one pressed unasked, not the rest of a PIN.
    assert t.digit("2", now=3.0) == [Keys("2", None, 3.0)]
