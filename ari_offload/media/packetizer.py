"""Outbound framing: cut PCM into 20 ms frames and wrap encoded frames in RTP headers.

Sans-IO: ``FrameSplitter`` keeps the partial tail between ``feed()`` calls so a stream cut at
any length plays without gaps; ``RtpPacketizer`` owns the SSRC, sequence number and timestamp
of one outbound stream and sets the marker bit at the start of each talkspurt.
"""

from __future__ import annotations

import random

import numpy as np

from ari_offload.audio import FRAME_SAMPLES, Pcm, as_pcm
from ari_offload.media.rtp import RtpPacket, seq_add

_U32 = 0xFFFFFFFF


class FrameSplitter:
    def __init__(self, frame_samples: int = FRAME_SAMPLES) -> None:
        if frame_samples < 1:
            raise ValueError(f"frame_samples must be at least 1, got {frame_samples}")
        self.frame_samples = frame_samples
        self._tail: Pcm = np.zeros(0, dtype=np.int16)

    @property
    def pending(self) -> int:
        """Samples held back until a whole frame is available."""
        return len(self._tail)

    def feed(self, pcm: Pcm) -> list[Pcm]:
        """Return the whole frames now available; each is a separate array."""
        samples = as_pcm(pcm)
        if len(self._tail):
            samples = np.concatenate((self._tail, samples))
        whole = len(samples) - len(samples) % self.frame_samples
        self._tail = samples[whole:].copy()
        size = self.frame_samples
        return [samples[i : i + size].copy() for i in range(0, whole, size)]

    def flush(self, pad: bool = True) -> list[Pcm]:
        """Return the tail as a last frame, padded with silence to full length if ``pad``."""
        tail, self._tail = self._tail, np.zeros(0, dtype=np.int16)
        if not len(tail):
            return []
        if pad:
            tail = np.concatenate((tail, np.zeros(self.frame_samples - len(tail), np.int16)))
        return [tail]


class RtpPacketizer:
    """Numbers the frames of one outbound RTP stream.

    Start values default to random ones (RFC 3550 section 5.1), drawn from ``rng``:
    inject a seeded ``random.Random`` for reproducible tests.
    """

    def __init__(
        self,
        payload_type: int,
        ssrc: int | None = None,
        seq: int | None = None,
        timestamp: int | None = None,
        samples_per_frame: int = FRAME_SAMPLES,
        rng: random.Random | None = None,
    ) -> None:
        # SystemRandom: RTP start values should be unpredictable to off-path attackers.
        rng = rng if rng is not None else random.SystemRandom()
        self.payload_type = payload_type
        self.samples_per_frame = samples_per_frame
        self.ssrc = rng.getrandbits(32) if ssrc is None else ssrc
        self.sequence_number = rng.getrandbits(16) if seq is None else seq
        self.timestamp = rng.getrandbits(32) if timestamp is None else timestamp
        self._marker = True
        self.packets = 0

    def new_talkspurt(self, idle_samples: int = 0) -> None:
        """Mark the next packet; ``idle_samples`` of silence moves the timestamp on."""
        self._marker = True
        self.timestamp = (self.timestamp + idle_samples) & _U32

    def packet(self, payload: bytes) -> RtpPacket:
        """Wrap one frame's payload and advance to the next frame."""
        packet = RtpPacket(
            payload_type=self.payload_type,
            sequence_number=self.sequence_number,
            timestamp=self.timestamp,
            ssrc=self.ssrc,
            payload=payload,
            marker=self._marker,
        )
        self._marker = False
        self.sequence_number = seq_add(self.sequence_number, 1)
        self.timestamp = (self.timestamp + self.samples_per_frame) & _U32
        self.packets += 1
        return packet
