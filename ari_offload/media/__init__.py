"""The media plane: call audio in and out over RTP, as sans-IO cores and one asyncio shell.

    inbound   UDP -> rtp.RtpPacket.parse -> jitter.JitterBuffer -> g711 decode -> frames()
    outbound  enqueue(pcm) -> packetizer.FrameSplitter -> g711 encode -> RtpPacketizer
              -> pacer.Pacer (one packet per 20 ms) -> UDP

``endpoint.RtpEndpoint`` is the only module that touches the event loop or a socket;
``resample`` converts TTS/STT rates to and from 8 kHz.
"""

from ari_offload.audio import FRAME_SAMPLES, SAMPLE_RATE, Pcm
from ari_offload.media.g711 import Codec, codec_for
from ari_offload.media.udp import EndpointStats, MediaFrame, RtpEndpoint

__all__ = [
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "Codec",
    "EndpointStats",
    "MediaFrame",
    "Pcm",
    "RtpEndpoint",
    "codec_for",
]
