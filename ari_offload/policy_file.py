"""Reading the operator's policy file (TOML) into a ``Policy``; every error names the key.

Kept apart from ``policy.py`` (the rules themselves) so the checks stay small and sans-IO;
this module only validates the file's shape.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from ari_offload.dialpattern import DialPattern
from ari_offload.errors import ConfigError
from ari_offload.policy import (
    DEFAULT_MAX_CONNECTIONS_PER_HOST,
    NAME_PATTERN,
    Egress,
    OutboundRoute,
    Policy,
    Quotas,
    TenantRules,
    TransferTarget,
)

_NAME_RE = re.compile(NAME_PATTERN.removesuffix("$") + r"\Z")
_TECH_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
# A dial string after {number} is filled in: technology/resource, nothing the dialplan splits on.
_DIAL_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*/[A-Za-z0-9+*#@._:/=-]+\Z")
_DIALPLAN_NAME_RE = re.compile(r"[A-Za-z0-9_.+*#-]{1,80}\Z")


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
