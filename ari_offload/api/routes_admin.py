"""The operator's routes: tenants, their rules, and which tenant's flow answers a number.

Authenticated with an admin key (``ari-offload admin create-key``), never a tenant's key.
Tenants can read their own numbers (``GET /v1.0/numbers``) but only the operator assigns them.
"""

from __future__ import annotations

import logging

from aiohttp import web

from ari_offload.api import schemas as s
from ari_offload.api import schemas_admin as sa
from ari_offload.api.errors import ApiError
from ari_offload.api.routes_auth import busy_error
from ari_offload.api.routing import PREFIX, Ctx, Resp, Route, json_response
from ari_offload.dialpattern import DialPattern
from ari_offload.errors import Busy, NameTaken
from ari_offload.policy import TenantOverrides

log = logging.getLogger("ari_offload.api")

_ADMIN = f"{PREFIX}/admin"


async def list_tenants(ctx: Ctx) -> web.Response:
    tenants = await ctx.store.tenants.list()
    return json_response({"tenants": [s.customer_json(c) for c in tenants]})


async def create_tenant(ctx: Ctx) -> web.Response:
    # Works with signup off: this is how an operator opens an account on a public server.
    try:
        customer = await ctx.store.customers.create(ctx.body["name"], ctx.body["password"])
    except NameTaken:
        raise ApiError(409, "name_taken", "a tenant of this name exists", "name") from None
    except Busy as exc:  # the password-hashing queue is full
        raise busy_error(exc) from None
    log.info("admin key %s created tenant %s", ctx.key_id, customer.id)
    return json_response(s.customer_json(customer), 201)


async def _tenant_id(ctx: Ctx) -> str:
    tenant_id = ctx.path["tenant_id"]
    if await ctx.store.customers.get(tenant_id) is None:
        raise ApiError.not_found("tenant")
    return tenant_id


async def get_rules(ctx: Ctx) -> web.Response:
    tenant_id = await _tenant_id(ctx)
    overrides = await ctx.store.tenants.rules(tenant_id)
    effective = ctx.services.policy.rules_for(overrides)
    return json_response(sa.rules_json(tenant_id, overrides, effective))


async def set_rules(ctx: Ctx) -> web.Response:
    """Replace the tenant's overrides; a field left out or null keeps the policy's value."""
    tenant_id = await _tenant_id(ctx)
    body = ctx.body
    for i, name in enumerate(body.get("routes") or ()):
        if name not in ctx.services.policy.routes:
            raise ApiError(422, "validation_error", f"routes[{i}]: the policy has no route "
                           f"named {name!r}", f"routes[{i}]")  # fmt: skip
    for i, pattern in enumerate(body.get("caller_ids") or ()):
        try:
            DialPattern.compile(pattern)
        except ValueError as exc:
            field = f"caller_ids[{i}]"
            raise ApiError(422, "validation_error", f"{field}: {exc}", field) from None
    overrides = TenantOverrides(
        routes=tuple(body["routes"]) if body.get("routes") is not None else None,
        caller_ids=tuple(body["caller_ids"]) if body.get("caller_ids") is not None else None,
        concurrent_calls=body.get("concurrent_calls"),
        calls_per_minute=body.get("calls_per_minute"),
        max_call_duration_s=body.get("max_call_duration_s"),
    )
    await ctx.store.tenants.set_rules(tenant_id, overrides)
    log.info("admin key %s set the rules of tenant %s", ctx.key_id, tenant_id)
    effective = ctx.services.policy.rules_for(overrides)
    return json_response(sa.rules_json(tenant_id, overrides, effective))


async def list_numbers(ctx: Ctx) -> web.Response:
    numbers = await ctx.store.numbers.list()
    return json_response({"numbers": [sa.number_json(n) for n in numbers]})


async def assign_number(ctx: Ctx) -> web.Response:
    tenant_id = ctx.body["tenant_id"]
    if await ctx.store.customers.get(tenant_id) is None:
        raise ApiError(422, "validation_error", "tenant_id: no such tenant", "tenant_id")
    flow_id = ctx.body.get("flow_id")
    if flow_id is not None and await ctx.store.flows.get(flow_id, customer_id=tenant_id) is None:
        raise ApiError(422, "validation_error", "flow_id: not a flow of this tenant", "flow_id")
    assigned = await ctx.store.numbers.assign(
        ctx.path["number"], customer_id=tenant_id, flow_id=flow_id
    )
    log.info("admin key %s assigned number %s", ctx.key_id, assigned.number)
    return json_response(sa.number_json(assigned))


async def unassign_number(ctx: Ctx) -> web.Response:
    if not await ctx.store.numbers.unassign(ctx.path["number"]):
        raise ApiError.not_found("number")
    return web.Response(status=204)


async def my_numbers(ctx: Ctx) -> web.Response:
    numbers = await ctx.store.numbers.list(ctx.customer_id)
    return json_response({"numbers": [sa.number_json(n) for n in numbers]})


_TENANT = f"{_ADMIN}/tenants/{{tenant_id}}"
_NUMBER = f"{_ADMIN}/numbers/{{number}}"
ROUTES = [
    Route("GET", f"{_ADMIN}/tenants", list_tenants, "adminListTenants", "List tenants",
          "admin", {200: Resp("every tenant", sa.TENANT_LIST)}, auth=False, admin=True),
    Route("POST", f"{_ADMIN}/tenants", create_tenant, "adminCreateTenant", "Create a tenant",
          "admin", {201: Resp("the tenant; it logs in with POST /v1.0/auth/login", s.CUSTOMER)},
          body=sa.TENANT_CREATE, auth=False, admin=True, errors=(409, 503),
          description="Works when signup is off: the way to open accounts on a public server."),
    Route("GET", f"{_TENANT}/rules", get_rules, "adminGetTenantRules",
          "A tenant's rules: the operator's overrides and what applies", "admin",
          {200: Resp("overrides and effective rules", sa.RULES)}, auth=False, admin=True),
    Route("PUT", f"{_TENANT}/rules", set_rules, "adminSetTenantRules",
          "Replace a tenant's overrides of the policy's [tenant] values", "admin",
          {200: Resp("overrides and effective rules", sa.RULES)}, body=sa.RULES_SET,
          body_required=False, auth=False, admin=True,
          description="Routes must be named in the policy; a field left out or null "
          "means the policy's [tenant] value."),
    Route("GET", f"{_ADMIN}/numbers", list_numbers, "adminListNumbers",
          "List inbound numbers and the tenant flow each reaches", "admin",
          {200: Resp("every assignment", sa.NUMBER_LIST)}, auth=False, admin=True),
    Route("PUT", _NUMBER, assign_number, "adminAssignNumber",
          "Assign an inbound number to a tenant's flow", "admin",
          {200: Resp("the assignment", sa.NUMBER_RECORD)}, body=sa.NUMBER_ASSIGN,
          auth=False, admin=True,
          description="The dialplan passes the dialled number: Stasis(ari-offload,"
          "number=${FILTER(0-9+*#,${EXTEN})}). flow_id null keeps the number the tenant's, "
          "unrouted (callers hear that it is not in service)."),
    Route("DELETE", _NUMBER, unassign_number, "adminUnassignNumber", "Release a number",
          "admin", {204: Resp("released")}, auth=False, admin=True),
    Route("GET", f"{PREFIX}/numbers", my_numbers, "listNumbers",
          "Your inbound numbers (the operator assigns them)", "numbers",
          {200: Resp("the numbers that reach your flows", sa.NUMBER_LIST)}),
]  # fmt: skip
