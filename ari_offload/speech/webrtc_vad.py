"""The "webrtcvad" VAD engine: Google's WebRTC voice activity detector, one per stream."""

from __future__ import annotations

from typing import Any

import webrtcvad

from ari_offload.audio import Pcm
from ari_offload.config import SpeechSettings
from ari_offload.speech.vad import FrameClassifier, VadParams


def webrtc_classifier(params: VadParams) -> FrameClassifier:
    vad = webrtcvad.Vad(params.aggressiveness)

    def is_speech(frame: Pcm) -> bool:
        return bool(vad.is_speech(frame.tobytes(), params.sample_rate))

    return is_speech


class WebrtcVad:
    def __init__(self, params: VadParams) -> None:
        self.params = params

    def new_classifier(self) -> FrameClassifier:
        return webrtc_classifier(self.params)

    def describe(self) -> dict[str, Any]:
        return {
            "engine": "webrtcvad",
            "summary": f"aggressiveness {self.params.aggressiveness}",
            "aggressiveness": self.params.aggressiveness,
        }


def load_webrtc_vad(settings: SpeechSettings, params: VadParams) -> WebrtcVad:
    """The registry's entry (aggressiveness is one of the VadParams)."""
    return WebrtcVad(params)
