"""Request and response shapes of the operator's admin routes (``/v1.0/admin/...``)."""

from __future__ import annotations

from typing import Any

from ari_offload import policy
from ari_offload.api.schemas import CREDENTIALS, CUSTOMER, TIME
from ari_offload.policy import TenantOverrides, TenantRules
from ari_offload.schema import ID, Arr, Int, Obj, Str
from ari_offload.store.operator import NumberAssignment

_MAX_QUOTA = 1_000_000
_STR = Str(10_000, any_text=True)
_QUOTA = Int(0, _MAX_QUOTA, nullable=True, description="null: the policy's [tenant] value")
_ROUTES = Arr(
    Str(63, 1, policy.NAME_PATTERN),
    100,
    nullable=True,
    description="route names of the policy; null: the policy's [tenant] routes",
)
_CALLER_IDS = Arr(
    Str(33, 1, r"^_?[0-9+*#XZNxzn.!\[\]-]{1,32}$"),
    100,
    nullable=True,
    description="numbers or dialplan patterns; null: the policy's",
)
NUMBER = Str(32, 1, r"^\+?[0-9*#]{1,31}$", description="the dialled number, as the dialplan "
             "passes it: Stasis(ari-offload,number=${EXTEN})")  # fmt: skip

TENANT_CREATE = CREDENTIALS
TENANT_LIST = Obj("TenantList", {"tenants": Arr(CUSTOMER, 100_000)}, required=("tenants",))
_RULE_FIELDS = {
    "routes": _ROUTES,
    "caller_ids": _CALLER_IDS,
    "concurrent_calls": _QUOTA,
    "calls_per_minute": _QUOTA,
    "max_call_duration_s": _QUOTA,
}
RULES_SET = Obj("TenantRulesSet", _RULE_FIELDS)
_EFFECTIVE = Obj(
    None,
    {
        "routes": Arr(_STR, 100),
        "caller_ids": Arr(_STR, 100),
        "concurrent_calls": Int(0, _MAX_QUOTA, nullable=True),
        "calls_per_minute": Int(0, _MAX_QUOTA, nullable=True),
        "max_call_duration_s": Int(0, _MAX_QUOTA, nullable=True),
    },
    required=tuple(_RULE_FIELDS),
    description="what applies now: the overrides over the policy's [tenant] values",
)
RULES = Obj(
    "TenantRules",
    {
        "tenant_id": _STR,
        "overrides": Obj(None, _RULE_FIELDS, required=tuple(_RULE_FIELDS)),
        "effective": _EFFECTIVE,
    },
    required=("tenant_id", "overrides", "effective"),
)
NUMBER_ASSIGN = Obj(
    "NumberAssign",
    {"tenant_id": ID, "flow_id": Str(64, 1, r"^[A-Za-z0-9_.-]+$", nullable=True)},
    required=("tenant_id",),
)
NUMBER_RECORD = Obj(
    "Number",
    {"number": _STR, "tenant_id": _STR, "flow_id": Str(64, nullable=True), "created_at": TIME},
    required=("number", "tenant_id", "flow_id", "created_at"),
)
NUMBER_LIST = Obj("NumberList", {"numbers": Arr(NUMBER_RECORD, 100_000)}, required=("numbers",))


def overrides_json(o: TenantOverrides | None) -> dict[str, Any]:
    o = o or TenantOverrides()
    return {
        "routes": list(o.routes) if o.routes is not None else None,
        "caller_ids": list(o.caller_ids) if o.caller_ids is not None else None,
        "concurrent_calls": o.concurrent_calls,
        "calls_per_minute": o.calls_per_minute,
        "max_call_duration_s": o.max_call_duration_s,
    }


def rules_json(tenant_id: str, o: TenantOverrides | None, r: TenantRules) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "overrides": overrides_json(o),
        "effective": {
            "routes": list(r.routes),
            "caller_ids": [str(p) for p in r.caller_ids],
            "concurrent_calls": r.quotas.concurrent_calls,
            "calls_per_minute": r.quotas.calls_per_minute,
            "max_call_duration_s": r.quotas.max_call_duration_s,
        },
    }


def number_json(n: NumberAssignment) -> dict[str, Any]:
    return {
        "number": n.number,
        "tenant_id": n.customer_id,
        "flow_id": n.flow_id,
        "created_at": n.created_at.isoformat(),
    }
