"""Flows that need no configuration: ``echo`` proves both media directions end to end."""

from __future__ import annotations

import logging

from ari_offload.ari.call import ActiveCall

log = logging.getLogger("ari_offload.flows")

ECHO_DELAY_MS = 500


async def echo_flow(call: ActiveCall) -> None:
    """Play the caller's own audio back, ECHO_DELAY_MS late, byte for byte.

    The payload is passed through untouched (no decode/encode), so what the caller hears is
    exactly what they sent: operators use it to check a trunk's audio in both directions.
    """
    media = call.media
    codec = media.codec
    delay_bytes = codec.sample_rate * ECHO_DELAY_MS // 1000 * codec.sample_width
    with media.tap() as heard:  # open before the delay: the echo starts with the first word
        media.play_payload(bytes([codec.silence]) * delay_bytes)
        call.set_state("echo")
        async for frame in heard:
            media.play_payload(frame.payload)


BUILTIN_FLOWS = {"echo": echo_flow}
