"""The egress guard's address and URL checks, sans-IO (the sockets are in test_webhook_egress)."""

from __future__ import annotations

import ipaddress

import pytest

from ari_offload.agent.egress import EgressGuard, own_endpoints
from ari_offload.errors import PolicyRefused
from ari_offload.policy import Egress

STRICT = Egress()  # public addresses only
TESTBED = Egress(allow=(ipaddress.ip_network("127.0.0.1/32"),))
EVERYTHING = Egress(allow=(ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")))


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.9.9.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("169.254.169.254", "a link-local address"),  # cloud metadata
        ("fe80::1", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("10.0.0.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fc00::1", "a unique-local (ULA) address"),
        ("fd12:3456::1", "a unique-local (ULA) address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("::ffff:127.0.0.1", "a loopback address"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "a link-local address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("64:ff9b::7f00:1", "an address embedding 127.0.0.1, a loopback address"),  # NAT64
        ("2002:7f00:1::", "an address embedding 127.0.0.1, a loopback address"),  # 6to4
        ("::127.0.0.1", "an address embedding 127.0.0.1, a loopback address"),  # v4-compatible
    ],
)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    refusal = EgressGuard(STRICT, frozenset()).refusal(address, 80)
    assert refusal is not None
    assert refusal.rule == "egress.allow"
    assert f" is {kind}, which the operator's policy does not allow" in refusal.message


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert EgressGuard(STRICT, frozenset()).refusal(address, 443) is None


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("0.0.0.0", "the unspecified address"),  # on Linux it reaches loopback
        ("::", "the unspecified address"),
        ("::ffff:0.0.0.0", "the unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
    ],
)
def test_unspecified_and_multicast_are_refused_even_if_allowed(address: str, kind: str) -> None:
    refusal = EgressGuard(EVERYTHING, frozenset()).refusal(address, 80)
    assert refusal is not None
    assert f"is {kind}, never a webhook destination" in refusal.message


def test_allowed_networks() -> None:
    guard = EgressGuard(TESTBED, frozenset())
    assert guard.refusal("127.0.0.1", 9000) is None
    assert guard.refusal("::ffff:127.0.0.1", 9000) is None  # the same address on the wire
    assert guard.refusal("127.0.0.2", 9000) is not None
    assert guard.refusal("::1", 9000) is not None
    lan = EgressGuard(Egress(allow=(ipaddress.ip_network("10.1.0.0/16"),)), frozenset())
    assert lan.refusal("10.1.2.3", 80) is None
    assert lan.refusal("10.2.0.1", 80) is not None


def test_deny_ports_everywhere() -> None:
    guard = EgressGuard(Egress(deny_ports=(25, 6379)), frozenset())
    for address in ("8.8.8.8", "2001:4860:4860::8888"):
        refusal = guard.refusal(address, 25)
        assert refusal is not None
        assert refusal.rule == "egress.deny_ports"
    assert guard.refusal("8.8.8.8", 80) is None


def test_the_servers_own_ports_are_refused_on_every_non_public_address() -> None:
    guard = EgressGuard(EVERYTHING, {("127.0.0.1", 8088), ("9.9.9.9", 8080)})
    for address, port in [
        ("127.0.0.1", 8088),
        ("127.0.0.2", 8088),
        ("::1", 8088),
        ("::ffff:127.0.0.1", 8088),
        ("10.0.0.5", 8088),
        ("9.9.9.9", 8080),  # the API on a public address: that address and port only
        ("127.0.0.1", 8080),
    ]:
        refusal = guard.refusal(address, port)
        assert refusal is not None, (address, port)
        assert refusal.rule == "egress.deny_ports"
        assert "this server's ARI or API port" in refusal.message
    assert guard.refusal("127.0.0.1", 8089) is None
    assert guard.refusal("8.8.8.8", 8088) is None
    assert guard.refusal("9.9.9.10", 8080) is None


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "pbx.example"])
def test_an_api_on_every_address_or_behind_a_name_has_its_port_refused_everywhere(
    bind: str,
) -> None:
    # Bound to 0.0.0.0 (or known by a name) the API answers on the server's public address
    # too, which the guard cannot list: its port is refused on every address.
    guard = EgressGuard(EVERYTHING, {(bind, 8080)})
    refusal = guard.refusal("9.9.9.9", 8080)
    assert refusal is not None
    assert refusal.rule == "egress.deny_ports"
    assert guard.refusal("9.9.9.9", 8081) is None


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://169.254.169.254/latest/meta-data/", "egress.allow"),
        ("http://[::ffff:169.254.169.254]/", "egress.allow"),
        ("https://10.0.0.1/hook", "egress.allow"),
        ("http://127.0.0.1:8088/ari", "egress.deny_ports"),
        ("http://agent.example:25/hook", "egress.deny_ports"),  # names: only by their port
    ],
)
def test_check_url_refuses_what_can_never_be_allowed(url: str, rule: str) -> None:
    guard = EgressGuard(Egress(allow=TESTBED.allow, deny_ports=(25,)), {("127.0.0.1", 8088)})
    with pytest.raises(PolicyRefused) as caught:
        guard.check_url(url)
    assert caught.value.rule == rule


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/ai-webhook",
        "http://localhost:8088/",  # a name: where it points is checked when a call connects
        "https://agent.example/hook?token=x",
        "http://8.8.8.8/",
    ],
)
def test_check_url_accepts_what_may_be_allowed(url: str) -> None:
    EgressGuard(TESTBED, {("127.0.0.1", 8088)}).check_url(url)


def test_own_endpoints_from_settings() -> None:
    assert own_endpoints("http://127.0.0.1:8088", "127.0.0.1", 8080) == {
        ("127.0.0.1", 8088),
        ("127.0.0.1", 8080),
    }
    assert own_endpoints("https://pbx.example", "0.0.0.0", 0) == {("pbx.example", 443)}
