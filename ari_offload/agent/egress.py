"""The webhook egress guard: agent webhooks connect only where the operator's policy allows.

A tenant writes its webhook URL. Unguarded, that URL could name loopback, the cloud metadata
address (169.254.169.254), a private network or ari-offload's own ARI and API ports, and the
spoken fallback line and the stored ``webhook_error`` would tell the tenant what answered there.

One rule set (``EgressGuard.refusal``), applied twice:

* At create/update time (``EgressGuard.check_url``, from the API): URLs that can never be
  allowed, i.e. a literal address the policy refuses, or a refused port. Names are not
  resolved then: they may point somewhere else by the time a call comes.
* At connect time (``webhook_session``), to every address a socket is about to use.
  ``_GuardedResolver`` wraps aiohttp's resolver and drops the refused addresses of a name, so
  a name that rebinds to 127.0.0.1 after the API looked at it is still refused, with
  ``EgressRefused`` when no address is left. aiohttp skips the resolver for a literal IP, so
  the connector's ``socket_factory`` checks the exact sockaddr of every connection attempt
  again, literal or resolved. The socket factory is a public TCPConnector hook; it was chosen
  over a TCPConnector subclass (that would override the private ``_resolve_host``) and over a
  pre-connect check in the client (that would parse the URL apart from aiohttp and could
  drift from what actually connects).

``refused`` holds the (host, port) pairs of this server's ARI and API. Their ports are refused
on that host and on every non-public address (loopback, private, the policy's own networks),
even where the policy allows the address: ``0.0.0.0:8088`` or ``127.0.0.2:8088`` reach ARI as
well as ``127.0.0.1:8088`` does. The set is read at each check, so the App can add the API's
port once it is bound.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Set
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from ari_offload.errors import EgressRefused, PolicyRefused
from ari_offload.policy import Egress

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
RULE_ALLOW = "egress.allow"
RULE_PORTS = "egress.deny_ports"
_MAX_LISTED = 4  # addresses named in a refusal of a name
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
_ULA = ipaddress.IPv6Network("fc00::/7")


class EgressGuard:
    """Says whether a webhook may connect to an address and port, and if not, which rule."""

    def __init__(self, egress: Egress, refused: Set[tuple[str, int]]) -> None:
        self.egress = egress
        self._refused = refused  # live: read at every check

    def refusal(self, address: str, port: int) -> PolicyRefused | None:
        """None if ``address``:``port`` is allowed, else the refusal naming the rule."""
        ip = ipaddress.ip_address(address.partition("%")[0])  # drop an IPv6 zone (fe80::1%eth0)
        shown = address
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            # ::ffff:a.b.c.d is a.b.c.d on the wire: judge it, and allow it, as that address.
            ip = ip.ipv4_mapped
            shown = f"{address} (IPv4-mapped {ip})"
        if ip.is_unspecified or ip.is_multicast:
            kind = "the unspecified address" if ip.is_unspecified else "a multicast address"
            return PolicyRefused(RULE_ALLOW, f"{shown} is {kind}, never a webhook destination")
        if port in self.egress.deny_ports:
            return PolicyRefused(RULE_PORTS, f"port {port} is refused by the operator's policy")
        if self._own_port(ip, port):
            return PolicyRefused(
                RULE_PORTS,
                f"port {port} of {shown} is this server's ARI or API port, "
                "never a webhook destination",
            )
        for candidate in (ip, *_embedded_ipv4(ip)):
            if not self.egress.allows_address(str(candidate)):
                return PolicyRefused(
                    RULE_ALLOW,
                    f"{shown} is {_kind(ip, candidate)}, which the operator's policy does not "
                    "allow",
                )
        return None

    def check_url(self, url: str) -> None:
        """Refuse, at create time, a webhook URL no connection could ever be allowed to use.

        A literal address is judged now; a name only by its port: where it points is
        checked when a call connects.
        """
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)
        try:
            ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            if port in self.egress.deny_ports:
                raise PolicyRefused(
                    RULE_PORTS, f"port {port} is refused by the operator's policy"
                ) from None
            return
        refusal = self.refusal(host, port)
        if refusal is not None:
            raise refusal

    def _own_port(self, ip: IpAddress, port: int) -> bool:
        for host, own in self._refused:
            if own != port:
                continue
            if not ip.is_global:
                return True  # any loopback, private or policy-allowed address
            try:
                own_ip = ipaddress.ip_address(host)
            except ValueError:
                return True  # a name may resolve to any of our addresses: the port, everywhere
            if own_ip == ip or own_ip.is_unspecified:
                return True  # 0.0.0.0 / :: listens on every address, public ones included
        return False

    def refuse_name(self, host: str, refusals: list[PolicyRefused]) -> EgressRefused:
        listed = "; ".join(str(r) for r in refusals[:_MAX_LISTED])
        more = f"; and {len(refusals) - _MAX_LISTED} more" if len(refusals) > _MAX_LISTED else ""
        return EgressRefused(
            refusals[0].rule, f"{host} resolves only to refused addresses: {listed}{more}"
        )


def _embedded_ipv4(ip: IpAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries and may be translated to on the way."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found = [a for a in (ip.sixtofour, ip.teredo[1] if ip.teredo else None) if a is not None]
    if ip in _NAT64 or (ip in _V4_COMPATIBLE and int(ip) > 1):  # not :: or ::1
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _kind(ip: IpAddress, judged: IpAddress) -> str:
    """What makes ``judged`` (``ip`` or an IPv4 address inside it) not public, in words."""
    prefix = "" if judged == ip else f"an address embedding {judged}, "
    if judged.is_loopback:
        kind = "a loopback address"
    elif judged.is_link_local:
        kind = "a link-local address"
    elif isinstance(judged, ipaddress.IPv6Address) and judged in _ULA:
        kind = "a unique-local (ULA) address"
    elif isinstance(judged, ipaddress.IPv4Address) and judged in _SHARED:
        kind = "a shared (carrier-grade NAT) address"
    elif judged.is_private:
        kind = "a private address"
    elif judged == ip and ip in _V4_COMPATIBLE:  # ::a.b.c.d, deprecated
        kind = "an IPv4-compatible IPv6 address"
    else:
        kind = "not a public address"
    return prefix + kind


class _GuardedResolver(AbstractResolver):
    """aiohttp's resolver with every refused address dropped; none left: ``EgressRefused``."""

    def __init__(self, guard: EgressGuard) -> None:
        self._guard = guard
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed, refusals = [], []
        for result in results:
            refusal = self._guard.refusal(result["host"], result["port"])
            if refusal is None:
                allowed.append(result)
            else:
                refusals.append(refusal)
        if not allowed:
            raise self._guard.refuse_name(host, refusals)
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def _guarded_socket(guard: EgressGuard) -> Any:
    """The connector's socket factory: the last check, on the exact address being connected."""

    def make(addr_info: tuple[Any, ...]) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        refusal = guard.refusal(str(sockaddr[0]), int(sockaddr[1]))
        if refusal is not None:
            raise EgressRefused(refusal.rule, str(refusal))
        return socket.socket(family=family, type=type_, proto=proto)

    return make


def own_endpoints(ari_url: str, api_host: str, api_port: int) -> set[tuple[str, int]]:
    """The (host, port) pairs of this server's ARI and API, from the settings (port 0: none)."""
    parts = urlsplit(ari_url)
    ari_port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)
    found = {(parts.hostname or "127.0.0.1", ari_port)}
    if api_port:
        found.add((api_host, api_port))
    return found


def webhook_session(egress: Egress, refused: Set[tuple[str, int]]) -> aiohttp.ClientSession:
    """The session for agent webhooks: only allowed addresses, no cookies, no proxies.

    The caller closes it. Redirects are refused by ``WebhookClient`` itself.
    """
    guard = EgressGuard(egress, refused)
    connector = aiohttp.TCPConnector(
        resolver=_GuardedResolver(guard),
        socket_factory=_guarded_socket(guard),
        limit_per_host=egress.max_connections_per_host,
        use_dns_cache=False,  # resolve (and check) at every new connection
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),  # one tenant's cookies never reach another's agent
        trust_env=False,  # no HTTP(S)_PROXY: a proxy would connect where the guard cannot see
    )
