"""Call quotas (concurrent calls and calls per minute, per tenant and for the whole server).

Checked after the call's own record exists, by admitting it in the store
(``store/admissions.py``): one transaction under the store's quota lock counts the admitted
calls and admits this one only if it fits. The store is the one count every node shares: of
two calls racing for the last slot, on one node or two, exactly one is admitted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ari_offload.errors import QuotaExceeded
from ari_offload.policy import Policy, TenantRules
from ari_offload.store.admissions import QuotaLimit
from ari_offload.store.store import Store

WINDOW = timedelta(minutes=1)
RETRY_CONCURRENT_S = 30  # a guess at when a slot frees up; the header is a hint only


async def tenant_rules(store: Store, policy: Policy, customer_id: str) -> TenantRules:
    return policy.rules_for(await store.tenants.rules(customer_id))


async def check_quotas(
    store: Store,
    policy: Policy,
    rules: TenantRules,
    customer_id: str,
    call_id: str,
    now: datetime,
) -> None:
    """Admit the call just recorded as ``call_id`` for ``customer_id``; raise
    ``QuotaExceeded`` (and leave it unadmitted) if it is one too many."""
    since = now - WINDOW
    candidates = (
        ("tenant.concurrent_calls", rules.quotas.concurrent_calls, customer_id, None),
        ("quotas.concurrent_calls", policy.quotas.concurrent_calls, None, None),
        ("tenant.calls_per_minute", rules.quotas.calls_per_minute, customer_id, since),
        ("quotas.calls_per_minute", policy.quotas.calls_per_minute, None, since),
    )
    limits = [
        QuotaLimit(rule, limit, who, window_start)
        for rule, limit, who, window_start in candidates
        if limit is not None
    ]
    refused = await store.admissions.admit(call_id, limits, now)
    if refused is None:
        return
    scope = "this account" if refused.customer_id else "this server"
    if refused.since is None:
        what, retry = "calls at once", RETRY_CONCURRENT_S
    else:
        what, retry = "calls per minute", int(WINDOW.total_seconds())
    raise QuotaExceeded(refused.rule, f"{scope} allows {refused.limit} {what}", retry)


def max_duration_s(policy: Policy, rules: TenantRules) -> int | None:
    """The tighter of the server's and the tenant's call-length limits (None: unlimited)."""
    limits = [
        v
        for v in (policy.quotas.max_call_duration_s, rules.quotas.max_call_duration_s)
        if v is not None
    ]
    return min(limits) if limits else None
