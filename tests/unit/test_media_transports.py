"""The transport registry: a setting names the transport; "rtp" opens a real UDP port."""

from __future__ import annotations

import socket
from typing import cast

import pytest

from ari_offload.ari.controller import CallController
from ari_offload.ari.rest import AriRest
from ari_offload.config import AriSettings, MediaSettings, Settings
from ari_offload.errors import ConfigError
from ari_offload.media.transports import TRANSPORTS, transport_opener
from ari_offload.media.udp import RtpEndpoint


async def never_runs(call: object) -> None:
    raise AssertionError("no call in this test")


def test_the_setting_comes_from_the_environment_and_defaults_to_rtp() -> None:
    env = {"ARI_OFFLOAD_MEDIA_TRANSPORT": "websocket"}
    assert Settings.from_env(env).media.transport == "websocket"
    assert MediaSettings().transport == "rtp"
    assert "rtp" in TRANSPORTS


def test_an_unknown_transport_names_the_setting_and_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        transport_opener("udp")
    assert "ARI_OFFLOAD_MEDIA_TRANSPORT='udp'" in str(caught.value)
    assert "known: rtp, websocket" in str(caught.value)


def test_the_controller_refuses_an_unknown_transport_when_built() -> None:
    # At start-up, not when the first caller is already waiting.
    with pytest.raises(ConfigError, match="ARI_OFFLOAD_MEDIA_TRANSPORT"):
        CallController(cast(AriRest, None), MediaSettings(transport="nope"), never_runs)


async def test_rtp_asks_externalmedia_for_rtp_over_udp_to_its_own_socket() -> None:
    link = await transport_opener("rtp")(
        MediaSettings(rtp_host="127.0.0.1", codec="alaw"), AriSettings()
    )
    try:
        assert isinstance(link.port, RtpEndpoint)
        host, port = link.port.local_address
        request = link.external_media
        assert (request.encapsulation, request.transport) == ("rtp", "udp")
        assert (request.external_host, request.format) == (f"{host}:{port}", "alaw")
        assert link.port.codec.name == "alaw"
    finally:
        await link.port.close()


async def test_rtp_connects_to_where_externalmedia_listens() -> None:
    link = await transport_opener("rtp")(MediaSettings(rtp_host="127.0.0.1"), AriSettings())
    asterisk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    asterisk.bind(("127.0.0.1", 0))
    asterisk.settimeout(3)
    try:
        with pytest.raises(ValueError, match="UNICASTRTP_LOCAL_ADDRESS"):
            await link.connect({})
        remote_port = asterisk.getsockname()[1]
        where = await link.connect(
            {"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1", "UNICASTRTP_LOCAL_PORT": str(remote_port)}
        )
        assert where.endswith(f"<-> 127.0.0.1:{remote_port}")
        link.port.play_payload(b"\x42" * 160)
        await link.port.drained()
        data, _ = asterisk.recvfrom(2048)
        assert data.endswith(b"\x42" * 160)
    finally:
        asterisk.close()
        await link.port.close()


def test_slin16_needs_the_websocket_transport() -> None:
    with pytest.raises(ConfigError) as caught:
        transport_opener("rtp", "slin16")
    assert str(caught.value) == (
        "ARI_OFFLOAD_MEDIA_CODEC='slin16': the 'rtp' transport carries ulaw, alaw;"
        " slin16 needs ARI_OFFLOAD_MEDIA_TRANSPORT=websocket"
    )
    assert transport_opener("websocket", "slin16") is TRANSPORTS["websocket"]
    with pytest.raises(ConfigError, match="ARI_OFFLOAD_MEDIA_TRANSPORT"):
        CallController(
            cast(AriRest, None), MediaSettings(transport="rtp", codec="slin16"), never_runs
        )


async def test_websocket_asks_externalmedia_for_a_server_channel_in_the_codec() -> None:
    link = await transport_opener("websocket")(
        MediaSettings(transport="websocket", codec="slin16"), AriSettings(url="http://pbx:8088")
    )
    try:
        request = link.external_media
        assert (request.external_host, request.format, request.transport) == (
            None, "slin16", "websocket",
        )  # fmt: skip
        assert link.port.codec.sample_rate == 16000
    finally:
        await link.port.close()
