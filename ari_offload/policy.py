"""The operator's policy: what tenants may make the PBX do. One TOML file, read once at start.

The operator owns the PBX, its trunks and its money. Tenants never send channel technologies
or dial strings: they send a number (``+15551234567``) or the name of a target the operator
wrote here, and this module turns it into a dial string, or refuses with the rule that said no.
Sans-IO: ``load_policy(path)`` / ``parse_policy(dict)`` build a frozen ``Policy``; the checks
take plain values and raise ``PolicyRefused``.

    technologies = ["PJSIP"]          # every dial string below must use one; Local only if named
    [outbound]
    default_route = "carrier"
    [outbound.routes.carrier]
    dial = "PJSIP/{number}@carrier"   # {number} is the tenant's digits, never anything else
    allow = ["_NXXNXXXXXX"]           # dialplan patterns; a number must match one ...
    deny = ["_900.", "_00."]          # ... and none of these (deny wins)
    [endpoints]                       # endpoints tenants may call directly, by name
    desk = "PJSIP/alice"
    [transfer.operator]               # where a flow's transfer may send a caller, by name
    context = "ari-offload-transfer"
    extension = "operator"
    [quotas]                          # the whole server
    concurrent_calls = 50
    [tenant]                          # every tenant, unless the operator sets other values
    routes = ["carrier"]
    caller_ids = []
    concurrent_calls = 3
    [egress]                          # where agent webhooks may connect
    allow = ["127.0.0.1/32"]

With no file the built-in default is the strict one: no routes, endpoints or transfer targets,
webhooks only to public addresses, small quotas.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

from ari_offload.dialpattern import DialPattern, first_match
from ari_offload.errors import ConfigError, PolicyRefused

# What a tenant may send as a number (destination, caller id): digits with an optional +.
NUMBER_PATTERN = r"^\+?[0-9]{1,20}$"
# Names of routes, endpoints and transfer targets: they never look like a number.
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$"
_NUMBER_RE = re.compile(NUMBER_PATTERN.removesuffix("$") + r"\Z")
_NAME_RE = re.compile(NAME_PATTERN.removesuffix("$") + r"\Z")
_TECH_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
# A dial string after {number} is filled in: technology/resource, nothing the dialplan splits on.
_DIAL_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*/[A-Za-z0-9+*#@._:/=-]+\Z")
_DIALPLAN_NAME_RE = re.compile(r"[A-Za-z0-9_.+*#-]{1,80}\Z")

DEFAULT_GLOBAL_CONCURRENT = 50
DEFAULT_GLOBAL_PER_MINUTE = 120
DEFAULT_TENANT_CONCURRENT = 3
DEFAULT_TENANT_PER_MINUTE = 10
DEFAULT_MAX_CALL_DURATION_S = 3600
DEFAULT_MAX_CONNECTIONS_PER_HOST = 4

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Quotas:
    """Limits on calls; None means no limit of that kind."""

    concurrent_calls: int | None = None
    calls_per_minute: int | None = None
    max_call_duration_s: int | None = None


@dataclass(frozen=True)
class OutboundRoute:
    name: str
    dial: str  # a template holding {number} once
    allow: tuple[DialPattern, ...]
    deny: tuple[DialPattern, ...]

    def dial_string(self, number: str) -> str:
        """The dial string for ``number``; raises ``PolicyRefused`` naming the rule."""
        denied = first_match(self.deny, number)
        if denied is not None:
            raise PolicyRefused(
                f"outbound.routes.{self.name}.deny",
                f"route {self.name!r} refuses {number} (pattern {denied})",
            )
        if first_match(self.allow, number) is None:
            raise PolicyRefused(
                f"outbound.routes.{self.name}.allow",
                f"route {self.name!r} allows no number like {number}",
            )
        return self.dial.replace("{number}", number)


@dataclass(frozen=True)
class TransferTarget:
    """Back into the dialplan (context, extension, priority) or to an endpoint's dial string."""

    name: str
    context: str | None = None
    extension: str | None = None
    priority: int = 1
    endpoint: str | None = None


@dataclass(frozen=True)
class TenantRules:
    """What one tenant may do: the policy's [tenant] defaults with the operator's overrides."""

    routes: tuple[str, ...]
    caller_ids: tuple[DialPattern, ...]
    quotas: Quotas


@dataclass(frozen=True)
class Egress:
    """Where webhooks may connect. Public addresses always; these networks besides."""

    allow: tuple[IpNetwork, ...] = ()
    deny_ports: tuple[int, ...] = ()  # refused everywhere (the app adds its ARI and API ports)
    max_connections_per_host: int = DEFAULT_MAX_CONNECTIONS_PER_HOST

    def allows_address(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        if any(ip in net for net in self.allow):
            return True
        return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class Policy:
    technologies: frozenset[str] = frozenset({"PJSIP"})
    routes: Mapping[str, OutboundRoute] = field(default_factory=dict)
    default_route: str | None = None
    endpoints: Mapping[str, str] = field(default_factory=dict)  # name -> dial string
    transfers: Mapping[str, TransferTarget] = field(default_factory=dict)
    quotas: Quotas = Quotas(
        DEFAULT_GLOBAL_CONCURRENT, DEFAULT_GLOBAL_PER_MINUTE, DEFAULT_MAX_CALL_DURATION_S
    )
    tenant: TenantRules = TenantRules(
        (), (), Quotas(DEFAULT_TENANT_CONCURRENT, DEFAULT_TENANT_PER_MINUTE)
    )
    egress: Egress = Egress()
    source: str = "built-in default (no policy file)"

    def rules_for(self, overrides: TenantOverrides | None) -> TenantRules:
        if overrides is None:
            return self.tenant
        quotas = self.tenant.quotas
        for name in ("concurrent_calls", "calls_per_minute", "max_call_duration_s"):
            value = getattr(overrides, name)
            if value is not None:
                quotas = replace(quotas, **{name: value})
        return TenantRules(
            routes=self.tenant.routes if overrides.routes is None else overrides.routes,
            caller_ids=(
                self.tenant.caller_ids
                if overrides.caller_ids is None
                else tuple(DialPattern.compile(c) for c in overrides.caller_ids)
            ),
            quotas=quotas,
        )

    def outbound_dial_string(self, destination: str, route: str | None, rules: TenantRules) -> str:
        """A tenant's destination (a number, or an endpoint's name) as a dial string."""
        if _NUMBER_RE.match(destination):
            name = route or self.default_route
            if name is None:
                raise PolicyRefused(
                    "outbound.default_route", "no route is named for numbers; give 'route'"
                )
            found = self.routes.get(name)
            if found is None:
                raise PolicyRefused("outbound.routes", f"no route named {name!r}")
            if name not in rules.routes:
                raise PolicyRefused("tenant.routes", f"this account may not use route {name!r}")
            return found.dial_string(destination)
        if route is not None:
            raise PolicyRefused("outbound.routes", "'route' goes with a number, not an endpoint")
        dial = self.endpoints.get(destination)
        if dial is None:
            raise PolicyRefused(
                "endpoints",
                "destination must be a number (digits, optional +) or the name of an "
                "endpoint the operator allows",
            )
        return dial

    def check_caller_id(self, caller_id: str, rules: TenantRules) -> None:
        if not _NUMBER_RE.match(caller_id):
            raise PolicyRefused("tenant.caller_ids", "caller_id must be a number (digits, +)")
        if first_match(rules.caller_ids, caller_id) is None:
            raise PolicyRefused(
                "tenant.caller_ids", f"this account may not present caller id {caller_id}"
            )

    def transfer_target(self, name: str) -> TransferTarget:
        target = self.transfers.get(name)
        if target is None:
            raise PolicyRefused("transfer", f"no transfer target named {name!r}")
        return target

    def describe(self) -> list[str]:
        """Lines for ``doctor`` and the start-up log: what tenants can make the PBX do."""
        lines = [
            f"policy: {self.source}",
            f"  technologies: {', '.join(sorted(self.technologies))}",
        ]
        for route in self.routes.values():
            lines.append(
                f"  route {route.name}: {route.dial} allow {[str(p) for p in route.allow]} "
                f"deny {[str(p) for p in route.deny]}"
            )
        lines.append(f"  default route: {self.default_route or '(none)'}")
        lines.append(f"  endpoints: {dict(self.endpoints) or '(none)'}")
        lines.append(f"  transfer targets: {sorted(self.transfers) or '(none)'}")
        lines.append(f"  quotas (server): {_quota_text(self.quotas)}")
        lines.append(
            f"  tenant defaults: routes {list(self.tenant.routes)}, caller ids "
            f"{[str(p) for p in self.tenant.caller_ids]}, {_quota_text(self.tenant.quotas)}"
        )
        lines.append(
            f"  webhook egress: public addresses, plus {[str(n) for n in self.egress.allow]}; "
            f"ports refused {list(self.egress.deny_ports)}"
        )
        return lines


@dataclass(frozen=True)
class TenantOverrides:
    """Per-tenant values the operator set (store); None keeps the policy's [tenant] value."""

    routes: tuple[str, ...] | None = None
    caller_ids: tuple[str, ...] | None = None
    concurrent_calls: int | None = None
    calls_per_minute: int | None = None
    max_call_duration_s: int | None = None


def _quota_text(q: Quotas) -> str:
    def show(v: int | None) -> str:
        return "unlimited" if v is None else str(v)

    return (
        f"{show(q.concurrent_calls)} concurrent, {show(q.calls_per_minute)}/min, "
        f"max {show(q.max_call_duration_s)} s per call"
    )


def is_number(text: str) -> bool:
    return _NUMBER_RE.match(text) is not None


def is_name(text: str) -> bool:
    return _NAME_RE.match(text) is not None


def load_policy(path: Path | None) -> Policy:
    """The policy in ``path`` (None: the strict built-in default); raises ``ConfigError``."""
    if path is None:
        return Policy()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"policy file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"policy file {path}: not valid TOML: {exc}") from None
    return parse_policy(raw, source=str(path))


def parse_policy(raw: Mapping[str, Any], source: str = "<policy>") -> Policy:
    """Validate a decoded policy; every error names the key, e.g. ``outbound.routes.x.dial``."""
    r = _Reader(source)
    r.only(raw, "", {"technologies", "outbound", "endpoints", "transfer", "quotas", "tenant",
                     "egress"})  # fmt: skip
    techs = frozenset(r.strings(raw, "technologies", ["PJSIP"]))
    for tech in techs:
        if not _TECH_RE.match(tech):
            r.fail("technologies", f"{tech!r} is not a channel technology name")
    outbound = r.table(raw, "outbound")
    r.only(outbound, "outbound", {"default_route", "routes"})
    routes = {
        name: _route(r, techs, name, spec)
        for name, spec in r.named_tables(outbound, "routes", "outbound.routes").items()
    }
    default_route = outbound.get("default_route")
    if default_route is not None and default_route not in routes:
        r.fail("outbound.default_route", f"names no route in [outbound.routes]: {default_route!r}")
    endpoints = {}
    for name, dial in r.table(raw, "endpoints").items():
        r.name(name, "endpoints")
        endpoints[name] = _dial(r, techs, dial, f"endpoints.{name}")
    transfers = {
        name: _transfer(r, techs, name, spec)
        for name, spec in r.named_tables(raw, "transfer", "transfer").items()
    }
    quotas = _quotas(r, r.table(raw, "quotas"), "quotas", Policy.quotas, set())
    tenant_raw = r.table(raw, "tenant")
    tenant_routes = tuple(r.strings(tenant_raw, "routes", [], "tenant.routes"))
    for name in tenant_routes:
        if name not in routes:
            r.fail("tenant.routes", f"names no route in [outbound.routes]: {name!r}")
    tenant = TenantRules(
        routes=tenant_routes,
        caller_ids=tuple(
            r.pattern(p, "tenant.caller_ids")
            for p in r.strings(tenant_raw, "caller_ids", [], "tenant.caller_ids")
        ),
        quotas=_quotas(r, tenant_raw, "tenant", Policy.tenant.quotas, {"routes", "caller_ids"}),
    )
    return Policy(techs, routes, default_route, endpoints, transfers, quotas, tenant,
                  _egress(r, r.table(raw, "egress")), source)  # fmt: skip


def _route(r: _Reader, techs: frozenset[str], name: str, spec: Mapping[str, Any]) -> OutboundRoute:
    where = f"outbound.routes.{name}"
    r.only(spec, where, {"dial", "allow", "deny"})
    dial = spec.get("dial")
    if not isinstance(dial, str) or dial.count("{number}") != 1:
        r.fail(f"{where}.dial", "a dial string holding {number} once, e.g. PJSIP/{number}@trunk")
    _dial(r, techs, dial.replace("{number}", "0"), f"{where}.dial")
    allow = tuple(r.pattern(p, f"{where}.allow") for p in r.strings(spec, "allow", [], where))
    deny = tuple(r.pattern(p, f"{where}.deny") for p in r.strings(spec, "deny", [], where))
    if not allow:
        r.fail(f"{where}.allow", "list the number patterns this route may dial")
    return OutboundRoute(name, dial, allow, deny)


def _transfer(
    r: _Reader, techs: frozenset[str], name: str, spec: Mapping[str, Any]
) -> TransferTarget:
    where = f"transfer.{name}"
    r.only(spec, where, {"context", "extension", "priority", "endpoint"})
    if "endpoint" in spec:
        if {"context", "extension", "priority"} & spec.keys():
            r.fail(where, "give either endpoint, or context and extension, not both")
        return TransferTarget(name, endpoint=_dial(r, techs, spec["endpoint"], f"{where}.endpoint"))
    for key in ("context", "extension"):
        value = spec.get(key)
        if not isinstance(value, str) or not _DIALPLAN_NAME_RE.match(value):
            r.fail(f"{where}.{key}", "required: letters, digits and _.+*#- only")
    priority = spec.get("priority", 1)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 1000:
        r.fail(f"{where}.priority", "an integer from 1 to 1000")
    return TransferTarget(name, spec["context"], spec["extension"], priority)


def _dial(r: _Reader, techs: frozenset[str], dial: object, where: str) -> str:
    if not isinstance(dial, str) or not _DIAL_RE.match(dial):
        r.fail(where, "a dial string like PJSIP/alice (technology/resource)")
    tech = dial.split("/", 1)[0]
    if tech not in techs:
        r.fail(where, f"technology {tech!r} is not in technologies {sorted(techs)}")
    return dial


def _quotas(
    r: _Reader, raw: Mapping[str, Any], where: str, default: Quotas, other_keys: set[str]
) -> Quotas:
    names = ("concurrent_calls", "calls_per_minute", "max_call_duration_s")
    r.only(raw, where, {*names, *other_keys})
    values: dict[str, int | None] = {}
    for name in names:
        if name not in raw:
            continue
        value = raw[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            r.fail(f"{where}.{name}", "a whole number, 0 or more (0: none allowed)")
        values[name] = value
    return replace(default, **values)


def _egress(r: _Reader, raw: Mapping[str, Any]) -> Egress:
    r.only(raw, "egress", {"allow", "deny_ports", "max_connections_per_host"})
    nets = []
    for text in r.strings(raw, "allow", [], "egress.allow"):
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            r.fail("egress.allow", f"{text!r} is not an address or network (CIDR)")
    ports = raw.get("deny_ports", [])
    if not isinstance(ports, list) or not all(
        isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports
    ):
        r.fail("egress.deny_ports", "a list of port numbers")
    limit = raw.get("max_connections_per_host", DEFAULT_MAX_CONNECTIONS_PER_HOST)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        r.fail("egress.max_connections_per_host", "a whole number, 1 or more")
    return Egress(tuple(nets), tuple(ports), limit)


class _Reader:
    """Small typed accessors that raise ``ConfigError`` naming the file and the key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> NoReturn:
        raise ConfigError(f"policy {self.source}: {key}: {message}")

    def only(self, raw: Mapping[str, Any], where: str, known: set[str]) -> None:
        for key in raw:
            if key not in known:
                self.fail(f"{where}.{key}" if where else key, "unknown key")

    def table(self, raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = raw.get(key, {})
        if not isinstance(value, dict):
            self.fail(key, "expected a table")
        return dict(value)

    def named_tables(
        self, raw: Mapping[str, Any], key: str, where: str
    ) -> dict[str, Mapping[str, Any]]:
        out: dict[str, Mapping[str, Any]] = {}
        for name, spec in self.table(raw, key).items():
            self.name(name, where)
            if not isinstance(spec, dict):
                self.fail(f"{where}.{name}", "expected a table")
            out[name] = spec
        return out

    def name(self, name: str, where: str) -> None:
        if not _NAME_RE.match(name):
            self.fail(f"{where}.{name}", "names start with a letter: letters, digits, _.-")

    def strings(
        self, raw: Mapping[str, Any], key: str, default: list[str], where: str = ""
    ) -> list[str]:
        value = raw.get(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(f"{where}.{key}" if where and not where.endswith(key) else key,
                      "expected a list of strings")  # fmt: skip
        return [str(v) for v in value]

    def pattern(self, text: str, where: str) -> DialPattern:
        try:
            return DialPattern.compile(text)
        except ValueError as exc:
            self.fail(where, str(exc))
