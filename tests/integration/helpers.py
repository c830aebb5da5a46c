"""Small helpers the integration tests share."""

from __future__ import annotations

import re


def words(text: str) -> str:
    """Whisper's text as plain lower-case words, for robust `in` checks."""
    return " ".join(re.findall(r"[a-z]+", text.lower()))
