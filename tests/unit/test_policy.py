"""The operator policy (sans-IO): dialplan patterns, routes, named targets, caller ids, the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ari_offload.dialpattern import DialPattern
from ari_offload.errors import ConfigError, PolicyRefused
from ari_offload.policy import Policy, TenantOverrides
from ari_offload.policy_file import load_policy, parse_policy
from testbed.asterisk import TESTBED_POLICY_FILE

REPO = Path(__file__).resolve().parents[2]

RAW: dict[str, Any] = {
    "technologies": ["PJSIP"],
    "outbound": {
        "default_route": "carrier",
        "routes": {
            "carrier": {
                "dial": "PJSIP/{number}@carrier",
                "allow": ["_NXXNXXXXXX", "_+1NXXNXXXXXX"],
                "deny": ["_900!", "_+1900!"],
            },
            "local": {"dial": "PJSIP/{number}@pbx", "allow": ["_1XXX"]},
        },
    },
    "endpoints": {"desk": "PJSIP/alice"},
    "transfer": {
        "operator": {"context": "from-internal", "extension": "100"},
        "sales": {"endpoint": "PJSIP/sales"},
    },
    "tenant": {"routes": ["carrier"], "caller_ids": ["_+1555XXXXXXX"], "concurrent_calls": 2},
}


@pytest.mark.parametrize(
    ("pattern", "number", "matches"),
    [
        ("_NXXNXXXXXX", "2125551234", True),
        ("_NXXNXXXXXX", "1125551234", False),  # N is 2-9
        ("_NXXNXXXXXX", "21255512345", False),  # one digit too many
        ("_900!", "900", True),  # ! is zero or more
        ("_900.", "900", False),  # . is one or more
        ("_900.", "9001", True),
        ("_1[2-57]XX", "1300", True),
        ("_1[2-57]XX", "1600", False),
        ("_+1NXX.", "+12125551234", True),
        ("_Z", "0", False),
        ("1234", "1234", True),  # no _: a literal number
        ("1234", "12345", False),
        ("*99", "*99", True),
    ],
)
def test_dialplan_patterns_match_like_asterisk(pattern: str, number: str, matches: bool) -> None:
    assert DialPattern.compile(pattern).matches(number) is matches


@pytest.mark.parametrize("bad", ["_", "_1[2", "_1[a-z]", "_A", "12a", "_X\n", ""])
def test_malformed_patterns_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"pattern|number|set|\["):
        DialPattern.compile(bad)


def test_numbers_become_dial_strings_on_the_tenants_routes_only() -> None:
    policy = parse_policy(RAW)
    rules = policy.tenant
    assert policy.outbound_dial_string("2125551234", None, rules) == "PJSIP/2125551234@carrier"
    assert policy.outbound_dial_string("desk", None, rules) == "PJSIP/alice"
    refusals = {
        "5551234": "outbound.routes.carrier.allow",  # matches no allow pattern
        "9005551234": "outbound.routes.carrier.deny",
        "+19005551234": "outbound.routes.carrier.deny",
        "Local/1@from-internal": "endpoints",
        "PJSIP/alice": "endpoints",
        "123@other-trunk": "endpoints",
        "sales": "endpoints",  # a transfer target is not an endpoint for outbound calls
    }
    for destination, rule in refusals.items():
        with pytest.raises(PolicyRefused) as err:
            policy.outbound_dial_string(destination, None, rules)
        assert err.value.rule == rule, destination
    with pytest.raises(PolicyRefused) as err:  # a route the operator did not give the tenant
        policy.outbound_dial_string("1234", "local", rules)
    assert err.value.rule == "tenant.routes"
    with pytest.raises(PolicyRefused) as err:
        policy.outbound_dial_string("1234", "nope", rules)
    assert err.value.rule == "outbound.routes"


def test_overrides_replace_the_tenant_defaults_field_by_field() -> None:
    policy = parse_policy(RAW)
    rules = policy.rules_for(TenantOverrides(routes=("local",), calls_per_minute=5))
    assert policy.outbound_dial_string("1234", "local", rules) == "PJSIP/1234@pbx"
    assert (rules.quotas.concurrent_calls, rules.quotas.calls_per_minute) == (2, 5)
    assert [str(p) for p in rules.caller_ids] == ["_+1555XXXXXXX"]


def test_caller_ids_are_numbers_the_tenant_may_present() -> None:
    policy = parse_policy(RAW)
    policy.check_caller_id("+15551234567", policy.tenant)
    for caller_id in ('"Bank" <+18005551234>', "+18005551234", "5551234567"):
        with pytest.raises(PolicyRefused) as err:
            policy.check_caller_id(caller_id, policy.tenant)
        assert err.value.rule == "tenant.caller_ids"


def test_transfer_targets_are_looked_up_by_name() -> None:
    policy = parse_policy(RAW)
    assert policy.transfer_target("operator").context == "from-internal"
    assert policy.transfer_target("sales").endpoint == "PJSIP/sales"
    with pytest.raises(PolicyRefused) as err:
        policy.transfer_target("PJSIP/alice")
    assert err.value.rule == "transfer"


def test_the_default_policy_allows_nothing_on_the_pbx() -> None:
    policy = Policy()
    with pytest.raises(PolicyRefused):
        policy.outbound_dial_string("2125551234", None, policy.tenant)
    with pytest.raises(PolicyRefused):
        policy.transfer_target("operator")
    assert not policy.egress.allows_address("127.0.0.1")
    assert not policy.egress.allows_address("169.254.169.254")
    assert policy.egress.allows_address("8.8.8.8")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"technologies": ["PJSIP"], "endpoints": {"x": "Local/1@from-internal"}}, "endpoints.x"),
        ({"outbound": {"routes": {"r": {"dial": "PJSIP/x@t", "allow": ["_X."]}}}}, "routes.r.dial"),
        ({"outbound": {"routes": {"r": {"dial": "PJSIP/{number}@t"}}}}, "routes.r.allow"),
        ({"outbound": {"default_route": "nope"}}, "outbound.default_route"),
        ({"tenant": {"routes": ["nope"]}}, "tenant.routes"),
        ({"tenant": {"concurrent_calls": -1}}, "tenant.concurrent_calls"),
        ({"transfer": {"t": {"context": "a,b", "extension": "1"}}}, "transfer.t.context"),
        ({"egress": {"allow": ["not-a-network"]}}, "egress.allow"),
        ({"quotas": {"bogus": 1}}, "quotas.bogus"),
        ({"typo": {}}, "typo"),
    ],
)
def test_a_malformed_policy_names_the_key(change: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_policy(change)


def test_the_shipped_policies_load(tmp_path: Path) -> None:
    testbed = load_policy(TESTBED_POLICY_FILE)
    assert testbed.egress.allows_address("127.0.0.1")
    sample = load_policy(REPO / "deploy" / "policy.toml")
    assert not sample.egress.allows_address("127.0.0.1")
    for premium in ("9005551234", "19005551234", "+19005551234", "011441234567", "+18765551234",
                    "8095551234"):  # fmt: skip
        with pytest.raises(PolicyRefused):
            sample.outbound_dial_string(premium, None, sample.tenant)
    assert sample.outbound_dial_string("+12125551234", None, sample.tenant).endswith("@carrier")
    broken = tmp_path / "policy.toml"
    broken.write_text("technologies = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_policy(broken)
    with pytest.raises(ConfigError, match="No such file"):
        load_policy(tmp_path / "missing.toml")
