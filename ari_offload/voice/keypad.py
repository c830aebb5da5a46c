"""The caller's keys (DTMF), sans-IO: held while the agent has the floor, or collected.

A key pressed while the agent speaks or thinks is held; when the turn is done the held keys
go to the agent together as one turn (``Keys`` with ``ended_by`` None), unless the reply
asked to ``collect`` them: then they are the collection's first keys. A collection ends on
its terminator (left out of the digits), at ``max_digits``, or after ``timeout_s`` without a
key (counted from the start, then from each key); its ``Keys`` say which. Words instead of
keys cancel it: the utterance is the turn. A caller who types a whole PIN and then its
terminator ("1234#" for four digits and ``#``) ended the collection at the fourth key: the
terminator right after it (within the collection's timeout) is swallowed, not a new turn.
"""

from __future__ import annotations

from dataclasses import dataclass

from ari_offload.agent.reply_actions import Collect


@dataclass(frozen=True)
class Keys:
    """Keys for the agent, as one turn."""

    digits: str
    ended_by: str | None  # contract.COLLECT_ENDINGS; None: pressed unasked
    at: float  # the shell's clock at the last key (or at the timeout)


class Keypad:
    def __init__(self) -> None:
        self._held = ""
        self._held_at = 0.0
        self._collect: Collect | None = None
        self._digits = ""
        self.deadline: float | None = None  # a collection times out then (the shell's clock)
        # the terminator of a collection that ended full, and until when it is swallowed
        self._trailing: tuple[str, float] | None = None

    @property
    def collecting(self) -> bool:
        return self._collect is not None

    def swallows(self, key: str, now: float) -> bool:
        """True for the terminator pressed right after a collection ended full: it belongs
        to the input just taken. Any key ends the chance."""
        trailing, self._trailing = self._trailing, None
        return trailing is not None and key == trailing[0] and now <= trailing[1]

    def hold(self, key: str, now: float) -> None:
        self._held += key
        self._held_at = now

    def held(self) -> Keys | None:
        """The keys held (not collecting), as one unasked turn; None if there are none."""
        held, self._held = self._held, ""
        return Keys(held, None, self._held_at) if held else None

    def start(self, collect: Collect, now: float) -> Keys | None:
        """Collect keys, the held ones first (they may already complete it)."""
        self._collect, self._digits = collect, ""
        self.deadline = now + collect.timeout_s
        held, self._held = self._held, ""
        for key in held:
            keys = self.press(key, now)
            if keys is not None:
                return keys  # keys after the end are dropped: they answered nothing
        return None

    def press(self, key: str, now: float) -> Keys | None:
        """A key while collecting: the collection's ``Keys`` if this key ended it."""
        collect = self._collect
        if collect is None:
            raise RuntimeError("press() while not collecting: hold() the key")
        if key == collect.terminator:
            return self._end("terminator", now)
        self._digits += key
        if len(self._digits) >= collect.max_digits:
            if collect.terminator is not None:
                self._trailing = (collect.terminator, now + collect.timeout_s)
            return self._end("max_digits", now)
        self.deadline = now + collect.timeout_s
        return None

    def expired(self, now: float) -> Keys | None:
        """The clock passed ``deadline``: the keys so far (maybe none), ended by timeout."""
        if self.deadline is None or now < self.deadline:
            return None
        return self._end("timeout", now)

    def cancel(self) -> bool:
        """The caller spoke instead: the collection is dropped. True if one was running."""
        running = self._collect is not None
        self._collect, self._digits, self.deadline = None, "", None
        return running

    def _end(self, why: str, now: float) -> Keys:
        keys = Keys(self._digits, why, now)
        self.cancel()
        return keys
