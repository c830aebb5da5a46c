"""The operator's policy: what tenants may make the PBX do. One TOML file, read once at start.

The operator owns the PBX, its trunks and its money. Tenants never send channel technologies
or dial strings: they send a number (``+15551234567``) or the name of a target the operator
wrote here, and this module turns it into a dial string, or refuses with the rule that said no.
Sans-IO: a frozen ``Policy`` (built by ``policy_file.load_policy``); the checks take plain
values and raise ``PolicyRefused``.

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
webhooks only to public addresses, small quotas. ``policy_file.load_policy`` reads the file.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ari_offload.dialpattern import DialPattern, first_match
from ari_offload.errors import PolicyRefused

# What a tenant may send as a number (destination, caller id): digits with an optional +.
NUMBER_PATTERN = r"^\+?[0-9]{1,20}$"
# Names of routes, endpoints and transfer targets: they never look like a number.
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$"
_NUMBER_RE = re.compile(NUMBER_PATTERN.removesuffix("$") + r"\Z")

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
