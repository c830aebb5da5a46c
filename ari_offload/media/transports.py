"""The media transports by name: which one carries a call's audio is a setting.

A transport's opener binds what one call needs and returns a ``port.MediaLink``: the call's
``MediaPort`` and the externalMedia request that makes Asterisk send the audio to it. A new
one is a module under ``media/`` with an opener, plus its line in ``TRANSPORTS`` (and in
``CODECS`` if it carries only some); ``MediaSettings.transport`` (env
ARI_OFFLOAD_MEDIA_TRANSPORT) picks it, ``MediaSettings.codec`` its format.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ari_offload.config import AriSettings, MediaSettings
from ari_offload.errors import ConfigError
from ari_offload.media.port import MediaLink
from ari_offload.media.udp import open_rtp
from ari_offload.media.websocket import open_websocket

TRANSPORT_SETTING = "ARI_OFFLOAD_MEDIA_TRANSPORT"
CODEC_SETTING = "ARI_OFFLOAD_MEDIA_CODEC"

# (the media settings, where Asterisk's ARI/HTTP server is) -> one call's opened transport
TransportOpener = Callable[[MediaSettings, AriSettings], Awaitable[MediaLink]]

TRANSPORTS: dict[str, TransportOpener] = {
    "rtp": open_rtp,
    "websocket": open_websocket,  # chan_websocket (Asterisk 22.8+): the app dials Asterisk
}

# The formats each transport carries both ways. chan_rtp sends slin16 with a dynamic payload
# type but drops it coming back (asterisk-conf/README.md), so RTP is G.711 only.
CODECS: dict[str, tuple[str, ...]] = {
    "rtp": ("ulaw", "alaw"),
    "websocket": ("ulaw", "alaw", "slin16"),
}


def transport_opener(name: str, codec: str | None = None) -> TransportOpener:
    """The opener of the transport called ``name``; raises ``ConfigError`` if there is none,
    or if it cannot carry ``codec`` (when given)."""
    try:
        opener = TRANSPORTS[name]
    except KeyError:
        known = ", ".join(sorted(TRANSPORTS))
        raise ConfigError(
            f"{TRANSPORT_SETTING}={name!r}: unknown media transport (known: {known})"
        ) from None
    carried = CODECS.get(name)
    if codec is not None and carried is not None and codec not in carried:
        raise ConfigError(
            f"{CODEC_SETTING}={codec!r}: the {name!r} transport carries {', '.join(carried)}"
            + (f"; {codec} needs {TRANSPORT_SETTING}=websocket" if codec == "slin16" else "")
        )
    return opener
