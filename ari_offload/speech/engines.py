"""Speech engines by name: one registry per family (stt, tts, vad, turn), chosen from settings.

A new engine is one new file under speech/ (a factory returning an object that meets the
family's protocol) plus one ``register`` line below. Each entry is a factory; models.py calls
the chosen one once at startup and shares what it returns with every call:

- stt: ``(settings, workers) -> SttEngine`` (stt.py); it says whether it ``streaming``.
- tts: ``(settings) -> Sequence[TtsVoice]`` (tts.py): the named voices, the default first.
- vad: ``(settings, params) -> VadEngine`` (vad.py): a frame classifier per call.
- turn: ``(settings) -> TurnEndModel | None`` (turn_end.py): None for "silence" (no model).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from ari_offload.config import SpeechSettings
from ari_offload.errors import ConfigError
from ari_offload.speech.piper import load_piper_voices
from ari_offload.speech.silero_vad import load_silero_vad
from ari_offload.speech.stt import SttEngine
from ari_offload.speech.tts import TtsVoice
from ari_offload.speech.turn_end import TurnEndModel, load_silence, load_smart_turn
from ari_offload.speech.vad import VadEngine, VadParams
from ari_offload.speech.webrtc_vad import load_webrtc_vad
from ari_offload.speech.whisper import load_whisper

SttFactory = Callable[[SpeechSettings, int], SttEngine]
TtsFactory = Callable[[SpeechSettings], Sequence[TtsVoice]]
VadFactory = Callable[[SpeechSettings, VadParams], VadEngine]
TurnFactory = Callable[[SpeechSettings], TurnEndModel | None]
F = TypeVar("F")


class Registry(Generic[F]):
    """Engine factories of one family by name; ``setting`` is the variable that picks one."""

    def __init__(self, family: str, setting: str) -> None:
        self.family = family
        self.setting = setting
        self._factories: dict[str, F] = {}

    def register(self, name: str, factory: F) -> None:
        if name in self._factories:
            raise ValueError(f"{self.family} engine {name!r} is registered already")
        self._factories[name] = factory

    def unregister(self, name: str) -> None:
        del self._factories[name]

    def names(self) -> list[str]:
        return sorted(self._factories)

    def get(self, name: str) -> F:
        """The factory registered as ``name``; ConfigError names the setting and the choices."""
        factory = self._factories.get(name)
        if factory is None:
            raise ConfigError(
                f"{self.setting}={name!r}: no such {self.family} engine; "
                f"known: {', '.join(self.names())}"
            )
        return factory


STT_ENGINES: Registry[SttFactory] = Registry("stt", "ARI_OFFLOAD_SPEECH_STT_ENGINE")
TTS_ENGINES: Registry[TtsFactory] = Registry("tts", "ARI_OFFLOAD_SPEECH_TTS_ENGINE")
VAD_ENGINES: Registry[VadFactory] = Registry("vad", "ARI_OFFLOAD_SPEECH_VAD_ENGINE")
TURN_ENGINES: Registry[TurnFactory] = Registry("turn", "ARI_OFFLOAD_SPEECH_TURN_ENGINE")

STT_ENGINES.register("whisper", load_whisper)
TTS_ENGINES.register("piper", load_piper_voices)
VAD_ENGINES.register("webrtcvad", load_webrtc_vad)
VAD_ENGINES.register("silero", load_silero_vad)
TURN_ENGINES.register("smart-turn", load_smart_turn)
TURN_ENGINES.register("silence", load_silence)
