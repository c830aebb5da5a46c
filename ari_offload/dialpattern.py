"""Asterisk dialplan patterns (``_00.``, ``_NXXNXXXXXX``, ``_1[2-9]XX!``) matched in Python.

Operators already write number rules this way in extensions.conf, so the policy file uses the
same language instead of regular expressions. Sans-IO: compile once, match many.

    X  any digit        Z  1-9        N  2-9        [15-7]  one of the set
    .  one or more more characters  !  zero or more more characters
    anything else (digits, +, *, #) matches itself; without the leading ``_`` the whole
    pattern is a literal number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CLASSES = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]"}
_LITERAL = re.compile(r"^[0-9+*#]{1,32}$")


@dataclass(frozen=True)
class DialPattern:
    text: str
    _regex: re.Pattern[str]

    @classmethod
    def compile(cls, text: str) -> DialPattern:
        """Raises ``ValueError`` with the reason for a malformed pattern."""
        if not text.startswith("_"):
            if not _LITERAL.match(text):
                raise ValueError(
                    f"{text!r} is neither a number (digits, +, *, #) nor a pattern starting '_'"
                )
            return cls(text, re.compile(re.escape(text) + r"\Z"))
        return cls(text, re.compile(_translate(text[1:], text) + r"\Z"))

    def matches(self, number: str) -> bool:
        return self._regex.match(number) is not None

    def __str__(self) -> str:
        return self.text


def _translate(body: str, whole: str) -> str:
    if not body:
        raise ValueError(f"{whole!r}: empty pattern")
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i].upper()
        if ch in _CLASSES:
            out.append(_CLASSES[ch])
        elif ch == ".":
            out.append(".+")
        elif ch == "!":
            out.append(".*")
        elif ch == "[":
            end = body.find("]", i)
            if end < 0:
                raise ValueError(f"{whole!r}: '[' without ']'")
            members = body[i + 1 : end]
            if not members or not re.fullmatch(r"[0-9](-[0-9])?([0-9](-[0-9])?)*", members):
                raise ValueError(f"{whole!r}: a set holds digits and ranges, like [2-57]")
            out.append(f"[{members}]")
            i = end
        elif ch.isdigit() or ch in "+*#":
            out.append(re.escape(ch))
        else:
            raise ValueError(f"{whole!r}: {body[i]!r} has no meaning in a dialplan pattern")
        i += 1
    return "".join(out)


def first_match(patterns: tuple[DialPattern, ...], number: str) -> DialPattern | None:
    return next((p for p in patterns if p.matches(number)), None)
