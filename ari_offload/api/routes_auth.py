"""Sign up, log in, and manage access keys.

Signup is on by default (``ApiSettings.signup_enabled``) because the default bind is
127.0.0.1: only local users can reach it. Anyone exposing the API beyond loopback should set
``ARI_OFFLOAD_API_SIGNUP_ENABLED=false`` and create customers locally.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from aiohttp import web

from ari_offload.api import schemas as s
from ari_offload.api.errors import ApiError
from ari_offload.api.routing import PREFIX, Ctx, Resp, Route, json_response
from ari_offload.store import NameTaken
from ari_offload.store._db import utcnow

log = logging.getLogger("ari_offload.api")


async def signup(ctx: Ctx) -> web.Response:
    if not ctx.services.settings.signup_enabled:
        raise ApiError(
            403,
            "signup_disabled",
            "signup is disabled on this server; ask the "
            "operator for an account (ARI_OFFLOAD_API_SIGNUP_ENABLED)",
        )
    try:
        customer = await ctx.store.customers.create(ctx.body["name"], ctx.body["password"])
    except NameTaken:
        raise ApiError(
            409,
            "name_taken",
            "this name is taken; log in instead with POST /v1.0/auth/login",
            "name",
        ) from None
    key = await ctx.store.keys.create(customer.id, name="signup")
    return json_response(
        {"customer": s.customer_json(customer), "accesskey": s.new_accesskey_json(key)}, 201
    )


async def login(ctx: Ctx) -> web.Response:
    customer = await ctx.store.customers.authenticate(ctx.body["name"], ctx.body["password"])
    if customer is None:
        log.info("login refused")  # the name may be someone's typo'd password: not logged
        raise ApiError(401, "unauthorized", "wrong name or password")
    key = await ctx.store.keys.create(customer.id, name="login")
    return json_response(
        {"customer": s.customer_json(customer), "accesskey": s.new_accesskey_json(key)}
    )


async def list_keys(ctx: Ctx) -> web.Response:
    keys = await ctx.store.keys.list(ctx.customer_id)
    return json_response({"accesskeys": [s.accesskey_json(k) for k in keys]})


async def create_key(ctx: Ctx) -> web.Response:
    expires_in = ctx.body.get("expires_in_s")
    expires_at = utcnow() + timedelta(seconds=expires_in) if expires_in else None
    key = await ctx.store.keys.create(
        ctx.customer_id, name=ctx.body.get("name") or "", expires_at=expires_at
    )
    return json_response(s.new_accesskey_json(key), 201)


async def revoke_key(ctx: Ctx) -> web.Response:
    key = await ctx.store.keys.revoke(ctx.path["accesskey_id"], customer_id=ctx.customer_id)
    if key is None:
        raise ApiError.not_found("access key")
    return json_response(s.accesskey_json(key))


ROUTES = [
    Route(
        "POST",
        f"{PREFIX}/auth/signup",
        signup,
        "signup",
        "Create a customer and a first key",
        "auth",
        {201: Resp("the customer and its first access key", s.SESSION)},
        body=s.CREDENTIALS,
        auth=False,
        errors=(403, 409),
        description="Disabled when ARI_OFFLOAD_API_SIGNUP_ENABLED=false. The token in "
        "accesskey.token is shown only in this response.",
    ),
    Route(
        "POST",
        f"{PREFIX}/auth/login",
        login,
        "login",
        "Get a new access key",
        "auth",
        {200: Resp("the customer and a new access key", s.SESSION)},
        body=s.CREDENTIALS,
        auth=False,
    ),
    Route(
        "GET",
        f"{PREFIX}/accesskeys",
        list_keys,
        "listAccessKeys",
        "List access keys",
        "accesskeys",
        {200: Resp("the customer's keys, tokens not included", s.ACCESSKEY_LIST)},
    ),
    Route(
        "POST",
        f"{PREFIX}/accesskeys",
        create_key,
        "createAccessKey",
        "Create an access key",
        "accesskeys",
        {201: Resp("the new key with its token, shown once", s.NEW_ACCESSKEY)},
        body=s.ACCESSKEY_CREATE,
        body_required=False,
    ),
    Route(
        "DELETE",
        f"{PREFIX}/accesskeys/{{accesskey_id}}",
        revoke_key,
        "revokeAccessKey",
        "Revoke an access key",
        "accesskeys",
        {200: Resp("the revoked key", s.ACCESSKEY)},
    ),
]
