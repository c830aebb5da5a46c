"""What the API needs from the speech side: which voices and languages an agent may choose.

app.py gives the loaded models' lists (speech.models.SpeechModels has both methods); the API
refuses an agent naming anything else, so a typo is a 422 now, not a default voice later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ari_offload.api.errors import ApiError
from ari_offload.schema import (
    MAX_SPEAKING_RATE,
    MIN_SPEAKING_RATE,
    Arr,
    Bool,
    Num,
    Obj,
    Str,
    primary_language,
)


class SpeechOffer(Protocol):
    def voice_names(self) -> Sequence[str]: ...

    def languages(self) -> Sequence[str]:
        """Language codes ("en"); an agent's "en-US" counts as its "en"."""
        ...


@dataclass(frozen=True)
class FixedSpeechOffer:
    """A fixed offer (an API without speech engines, tests); empty: only the defaults."""

    voices: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()

    def voice_names(self) -> Sequence[str]:
        return self.voices

    def languages(self) -> Sequence[str]:
        return self.codes


def check_agent_speech(body: Mapping[str, object], offer: SpeechOffer) -> None:
    """422 naming ``voice`` or ``language`` when the server has no such one (null: default)."""
    voice = body.get("voice")
    if isinstance(voice, str) and voice not in offer.voice_names():
        raise ApiError(
            422, "unknown_voice",
            f"voice: {voice!r} is not a voice of this server; voices:"
            f" {_listed(offer.voice_names())}",
            "voice",
        )  # fmt: skip
    language = body.get("language")
    if isinstance(language, str) and primary_language(language) not in offer.languages():
        raise ApiError(
            422, "unknown_language",
            f"language: {language!r} is not one this server transcribes; languages:"
            f" {_listed(offer.languages())}",
            "language",
        )  # fmt: skip


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "(none: use null for the server default)"


VOICE_ENTRY = Obj(
    "Voice",
    {"name": Str(64), "default": Bool()},
    required=("name", "default"),
    description="a TTS voice an agent may name in its voice field",
)
RATE_RANGE = Obj(
    "SpeakingRates",
    {"min": Num(), "max": Num(), "default": Num()},
    required=("min", "max", "default"),
    description="the speaking_rate an agent may set, times its voice's normal pace",
)
SPEECH_OFFER = Obj(
    "Voices",
    {
        "voices": Arr(VOICE_ENTRY, 1000),
        "speaking_rate": RATE_RANGE,
        "languages": Arr(Str(16), 1000),
    },
    required=("voices", "speaking_rate", "languages"),
    description="what an agent may choose: its voice (null: the default one), how fast it"
    " speaks, and the language its callers speak (null: the server's; only these are"
    " transcribed)",
)


def offer_json(offer: SpeechOffer) -> dict[str, Any]:
    """GET /v1.0/voices: the voices (the default first), the rates, and the STT languages."""
    names = list(offer.voice_names())
    return {
        "voices": [{"name": name, "default": index == 0} for index, name in enumerate(names)],
        "speaking_rate": {"min": MIN_SPEAKING_RATE, "max": MAX_SPEAKING_RATE, "default": 1.0},
        "languages": list(offer.languages()),
    }
