"""The media transports by name: which one carries a call's audio is a setting.

A transport's opener binds what one call needs and returns a ``port.MediaLink``: the call's
``MediaPort`` and the externalMedia request that makes Asterisk send the audio to it. Adding
one (chan_websocket) is a module under ``media/`` with an opener, plus one line in
``TRANSPORTS``; ``MediaSettings.transport`` (env ARI_OFFLOAD_MEDIA_TRANSPORT) picks it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ari_offload.config import AriSettings, MediaSettings
from ari_offload.errors import ConfigError
from ari_offload.media.port import MediaLink
from ari_offload.media.udp import open_rtp

TRANSPORT_SETTING = "ARI_OFFLOAD_MEDIA_TRANSPORT"

# (the media settings, where Asterisk's ARI/HTTP server is) -> one call's opened transport
TransportOpener = Callable[[MediaSettings, AriSettings], Awaitable[MediaLink]]

TRANSPORTS: dict[str, TransportOpener] = {
    "rtp": open_rtp,
}


def transport_opener(name: str) -> TransportOpener:
    """The opener of the transport called ``name``; raises ``ConfigError`` if there is none."""
    try:
        return TRANSPORTS[name]
    except KeyError:
        known = ", ".join(sorted(TRANSPORTS))
        raise ConfigError(
            f"{TRANSPORT_SETTING}={name!r}: unknown media transport (known: {known})"
        ) from None
