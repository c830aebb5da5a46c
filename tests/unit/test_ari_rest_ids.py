"""Ids in ARI URLs: a malformed one never becomes a request; a good one arrives quoted, as is.

A real aiohttp server on loopback stands in for ARI and records the raw path of every request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from ari_offload.ari.rest import AriRest
from ari_offload.config import AriSettings
from ari_offload.errors import AriBadId, AriError

BAD_IDS = [
    "x/../victim",
    "a%2F..",
    "..",
    ".",
    "",
    "a" * 65,
    "abc?reason=busy",
    "abc#frag",
    "a,b",
    "a b",
    "abc\n",
    "1795476849.0/answer",
    "abc;3",
    "abc;2;2",
    ";2",
]


@dataclass
class FakeAri:
    rest: AriRest
    seen: list[tuple[str, str]] = field(default_factory=list)  # (method, raw path with query)


@pytest.fixture
async def ari() -> AsyncIterator[FakeAri]:
    seen: list[tuple[str, str]] = []

    async def any_request(request: web.Request) -> web.Response:
        seen.append((request.method, request.raw_path))
        return web.json_response(
            {"id": "x", "name": "n", "state": "Up", "channels": [], "value": "",
             "channelvars": {"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1",
                             "UNICASTRTP_LOCAL_PORT": "4000"}}
        )  # fmt: skip

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", any_request)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        rest = AriRest(session, AriSettings(url=f"http://127.0.0.1:{port}", password="pw"))
        fake = FakeAri(rest)
        fake.seen = seen
        yield fake
    await runner.cleanup()


Call = Callable[[AriRest, str], Awaitable[object]]

# Every method that puts an id into a path or an id-valued parameter.
CALLS: dict[str, Call] = {
    "answer": lambda r, i: r.answer(i),
    "hangup": lambda r, i: r.hangup(i),
    "set_variable": lambda r, i: r.set_variable(i, "V", "1"),
    "get_variable": lambda r, i: r.get_variable(i, "V"),
    "continue": lambda r, i: r.continue_in_dialplan(i, "ctx", "s", 1),
    "external_media": lambda r, i: r.external_media(
        i, "127.0.0.1:4000", "ulaw", encapsulation="rtp", transport="udp"
    ),
    "originate": lambda r, i: r.originate(i, "PJSIP/alice", "flow=echo"),
    "create_bridge": lambda r, i: r.create_bridge(i, "name"),
    "add_to_bridge": lambda r, i: r.add_to_bridge("aoff-bridge-1", ["1795476849.0", i]),
    "add_to_bridge_id": lambda r, i: r.add_to_bridge(i, ["1795476849.0"]),
    "delete_bridge": lambda r, i: r.delete_bridge(i),
    "subscribe": lambda r, i: r.subscribe_channel(i),
}


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("method", sorted(CALLS))
async def test_malformed_id_sends_nothing(ari: FakeAri, method: str, bad: str) -> None:
    with pytest.raises(AriBadId) as raised:
        await CALLS[method](ari.rest, bad)

    assert ari.seen == []
    assert isinstance(raised.value, AriError)  # callers that handle AriError handle this too
    assert "nothing was sent" in str(raised.value)


async def test_malformed_app_name_sends_nothing(ari: FakeAri) -> None:
    ari.rest.app = "../bridges/victim"

    with pytest.raises(AriBadId):
        await ari.rest.subscribe_channel("1795476849.0")

    assert ari.seen == []


@pytest.mark.parametrize(
    ("method", "channel_id", "expected"),
    [
        ("answer", "1795476849.0", ("POST", "/ari/channels/1795476849.0/answer")),
        ("hangup", "aoff-media-0a1b", ("DELETE", "/ari/channels/aoff-media-0a1b?reason=normal")),
        ("get_variable", "1795476849.12",
         ("GET", "/ari/channels/1795476849.12/variable?variable=V")),
        ("answer", "5f3e-9c;2", ("POST", "/ari/channels/5f3e-9c%3B2/answer")),
        ("delete_bridge", "aoff-bridge-5f3e-9c", ("DELETE", "/ari/bridges/aoff-bridge-5f3e-9c")),
        ("subscribe", "1795476849.0",
         ("POST", "/ari/applications/ari-offload/subscription?eventSource=channel:1795476849.0")),
    ],
)  # fmt: skip
async def test_good_id_arrives_exactly(
    ari: FakeAri, method: str, channel_id: str, expected: tuple[str, str]
) -> None:
    await CALLS[method](ari.rest, channel_id)

    assert ari.seen == [expected]


async def test_query_values_are_quoted_by_aiohttp(ari: FakeAri) -> None:
    await ari.rest.continue_in_dialplan("1795476849.0", "a&b=c", "x y", 1)

    assert ari.seen == [
        ("POST", "/ari/channels/1795476849.0/continue?context=a%26b%3Dc&extension=x+y&priority=1")
    ]


async def test_a_built_path_is_sent_unnormalised(ari: FakeAri) -> None:
    # The layer below segment(): yarl must not collapse dot segments or re-quote (encoded=True).
    await ari.rest.request("GET", "/channels/a/../b%2Fc")

    assert ari.seen == [("GET", "/ari/channels/a/../b%2Fc")]


async def test_external_media_takes_what_the_transport_asks_for(ari: FakeAri) -> None:
    # RTP names where Asterisk sends; chan_websocket has no external_host but an option.
    await ari.rest.external_media(
        "aoff-media-1", "127.0.0.1:4000", "ulaw", encapsulation="rtp", transport="udp"
    )
    await ari.rest.external_media(
        "aoff-media-2", None, "slin16", encapsulation="none", transport="websocket",
        options={"connection_type": "server"},
    )  # fmt: skip
    (_, rtp), (_, ws) = ari.seen
    assert "external_host=127.0.0.1:4000" in rtp
    assert "encapsulation=rtp&transport=udp" in rtp
    assert "external_host" not in ws
    assert "connection_type=server" in ws
    assert "format=slin16&encapsulation=none&transport=websocket" in ws
