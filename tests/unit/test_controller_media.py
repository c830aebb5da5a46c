"""The controller and a call's media transport: a transport that fails to open costs that
call only (the caller is hung up, not left in Stasis), and a refused call frees its port."""

from __future__ import annotations

from typing import Any, cast

import pytest

from ari_offload.ari.call import ActiveCall
from ari_offload.ari.controller import CallController
from ari_offload.ari.events import Channel
from ari_offload.ari.rest import AriRest
from ari_offload.config import AriSettings, MediaSettings
from ari_offload.media import transports
from ari_offload.media.port import ExternalMediaRequest
from tests.unit.fake_media import FakeMediaPort

CHANNEL = Channel(id="1795476849.0", name="PJSIP/anonymous-00000001", state="Ring")


class FakeRest:
    """What the controller asks of ARI before a call is set up."""

    settings = AriSettings()

    def __init__(self) -> None:
        self.hung_up: list[tuple[str, str]] = []

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self.hung_up.append((channel_id, reason))

    async def get_variable(self, channel_id: str, name: str) -> str:
        return ""


class FakeLink:
    def __init__(self) -> None:
        self.port = FakeMediaPort()
        self.external_media = ExternalMediaRequest("127.0.0.1:9", "ulaw", "rtp", "udp")

    async def connect(self, channel_vars: Any) -> str:
        return "nowhere"


async def never_runs(call: ActiveCall) -> None:
    raise AssertionError("no flow may run")


def controller(rest: FakeRest, transport: str, max_calls: int | None = None) -> CallController:
    return CallController(
        cast(AriRest, rest), MediaSettings(transport=transport), never_runs, max_calls=max_calls
    )


async def test_a_transport_that_does_not_open_hangs_the_caller_up(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def no_ports(media: MediaSettings, ari: AriSettings) -> FakeLink:
        raise OSError(98, "Address already in use")

    monkeypatch.setitem(transports.TRANSPORTS, "broken", no_ports)
    rest = FakeRest()
    ctl = controller(rest, "broken")
    await ctl._handle_call(CHANNEL, {}, "in", None)  # returns: the error is this call's only
    assert rest.hung_up == [(CHANNEL.id, "normal")], "the caller is not left waiting in Stasis"
    assert ctl.calls == {}
    assert "media transport did not open" in caplog.text


async def test_a_refused_call_closes_its_port(monkeypatch: pytest.MonkeyPatch) -> None:
    links: list[FakeLink] = []

    async def open_fake(media: MediaSettings, ari: AriSettings) -> FakeLink:
        links.append(FakeLink())
        return links[-1]

    monkeypatch.setitem(transports.TRANSPORTS, "fake", open_fake)
    rest = FakeRest()
    ctl = controller(rest, "fake", max_calls=0)  # the server takes no call at all
    await ctl._handle_call(CHANNEL, {}, "in", None)
    (link,) = links
    assert link.port.closed, "the refused call's port was closed"
    assert [channel for channel, _ in rest.hung_up] == [CHANNEL.id]
    assert ctl.calls == {}
