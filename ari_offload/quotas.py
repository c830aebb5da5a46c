"""Call quotas (concurrent calls and calls per minute, per tenant and for the whole server).

Counted in the store, after the call's own record exists: two calls racing for the last slot
may both be refused, never both admitted. The store is the one count every node shares.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ari_offload.errors import QuotaExceeded
from ari_offload.policy import Policy, TenantRules
from ari_offload.store.store import Store

WINDOW = timedelta(minutes=1)
RETRY_CONCURRENT_S = 30  # a guess at when a slot frees up; the header is a hint only


async def tenant_rules(store: Store, policy: Policy, customer_id: str) -> TenantRules:
    return policy.rules_for(await store.tenants.rules(customer_id))


async def check_quotas(
    store: Store, policy: Policy, rules: TenantRules, customer_id: str, now: datetime
) -> None:
    """Raise ``QuotaExceeded`` if the call just recorded for ``customer_id`` is one too many."""
    since = now - WINDOW
    checks = (
        ("tenant.concurrent_calls", rules.quotas.concurrent_calls, customer_id, None),
        ("quotas.concurrent_calls", policy.quotas.concurrent_calls, None, None),
        ("tenant.calls_per_minute", rules.quotas.calls_per_minute, customer_id, since),
        ("quotas.calls_per_minute", policy.quotas.calls_per_minute, None, since),
    )
    for rule, limit, who, window_start in checks:
        if limit is None:
            continue
        if window_start is None:
            count = await store.calls.count_unfinished(who)
            what, retry = "calls at once", RETRY_CONCURRENT_S
        else:
            count = await store.calls.count_started_since(who, window_start)
            what, retry = "calls per minute", int(WINDOW.total_seconds())
        if count > limit:
            scope = "this account" if who else "this server"
            raise QuotaExceeded(rule, f"{scope} allows {limit} {what}", retry)


def max_duration_s(policy: Policy, rules: TenantRules) -> int | None:
    """The tighter of the server's and the tenant's call-length limits (None: unlimited)."""
    limits = [
        v
        for v in (policy.quotas.max_call_duration_s, rules.quotas.max_call_duration_s)
        if v is not None
    ]
    return min(limits) if limits else None
