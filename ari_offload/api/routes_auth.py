"""Sign up, log in, and manage access keys.

Signup is on by default (``ApiSettings.signup_enabled``) because the default bind is
127.0.0.1: only local users can reach it. With a non-loopback bind the app refuses to start
while signup is on, unless ``ARI_OFFLOAD_API_SIGNUP_FORCE=true`` (config.check_api_settings).

Logins and signups are rate limited (api/throttle.py) before any password is hashed, and the
hashing itself runs on a small pool of its own (store/passwords.py).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from datetime import timedelta

from aiohttp import web

from ari_offload.api import schemas as s
from ari_offload.api.errors import ApiError
from ari_offload.api.routing import PREFIX, Ctx, Resp, Route, json_response
from ari_offload.api.throttle import retry_after_header
from ari_offload.errors import Busy, KeyLimitReached, NameTaken
from ari_offload.store import Customer, NewAccessKey
from ari_offload.store._db import utcnow

log = logging.getLogger("ari_offload.api")

SESSION_KEY_NAMES = ("login", "signup")  # keys the auth routes issue, retired first at the cap
_BEARER = (
    " Send keys as 'Authorization: Bearer <key>' (the primary form); '?accesskey=<key>' is "
    "also accepted, for tools that cannot set headers, but ends up in browser histories."
)


def client_ip(ctx: Ctx) -> str:
    """Who is asking, for the rate limits: the TCP peer, or the proxy's last X-Forwarded-For
    entry when the operator trusts it. IPv6 clients count by /64: one host usually has a whole
    /64 to rotate through."""
    address = ctx.request.remote or "unknown"
    if ctx.services.settings.trust_x_forwarded_for:
        forwarded = ctx.request.headers.get("X-Forwarded-For", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            address = last[:64]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _limited(seconds: float, what: str) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        f"too many {what}; retry after {retry_after_header(seconds)} s",
        headers={"Retry-After": retry_after_header(seconds)},
    )


def busy_error(exc: Busy) -> ApiError:
    return ApiError(
        503,
        "busy",
        "too many logins are being checked right now; retry shortly",
        headers={"Retry-After": retry_after_header(exc.retry_after_s)},
    )


def _key_limit(exc: KeyLimitReached) -> ApiError:
    return ApiError(
        409,
        "key_limit_reached",
        f"this account has {exc.limit} live access keys, the most allowed "
        "(ARI_OFFLOAD_API_MAX_LIVE_KEYS): revoke unused ones with "
        "DELETE /v1.0/accesskeys/{accesskey_id}",
    )


async def _session_key(ctx: Ctx, customer: Customer, name: str) -> NewAccessKey:
    """A key with the login lifetime; at the cap, the oldest session key makes room."""
    settings = ctx.services.settings
    expires_at = utcnow() + timedelta(seconds=settings.login_key_lifetime_s)
    keys = ctx.store.keys
    if await keys.count_live(customer.id) >= settings.max_live_keys:
        oldest = await keys.oldest_live(customer.id, names=SESSION_KEY_NAMES)
        if oldest is not None:
            log.info("access key %s retired: the key cap was reached", oldest.id)
            await keys.revoke(oldest.id, customer_id=customer.id)
    try:
        return await keys.create(
            customer.id, name=name, expires_at=expires_at, max_live=settings.max_live_keys
        )
    except KeyLimitReached as exc:
        raise _key_limit(exc) from None


async def signup(ctx: Ctx) -> web.Response:
    if not ctx.services.settings.signup_enabled:
        raise ApiError(
            403,
            "signup_disabled",
            "signup is disabled on this server; ask the "
            "operator for an account (ARI_OFFLOAD_API_SIGNUP_ENABLED)",
        )
    throttle, ip, now = ctx.services.throttle, client_ip(ctx), time.monotonic()
    wait = throttle.signup_retry_after(ip, now)
    if wait > 0:
        raise _limited(wait, "signups from this address")
    throttle.signup_attempted(ip, now)
    try:
        customer = await ctx.store.customers.create(ctx.body["name"], ctx.body["password"])
    except Busy as exc:
        raise busy_error(exc) from None
    except NameTaken:
        raise ApiError(
            409,
            "name_taken",
            "this name is taken; log in instead with POST /v1.0/auth/login",
            "name",
        ) from None
    key = await _session_key(ctx, customer, "signup")
    return json_response(
        {"customer": s.customer_json(customer), "accesskey": s.new_accesskey_json(key)}, 201
    )


async def login(ctx: Ctx) -> web.Response:
    throttle, ip, name = ctx.services.throttle, client_ip(ctx), ctx.body["name"]
    wait = throttle.login_retry_after(ip, name, time.monotonic())
    if wait > 0:
        raise _limited(wait, "failed logins")
    throttle.login_started(ip, name, time.monotonic())
    try:
        customer = await ctx.store.customers.authenticate(name, ctx.body["password"])
    except Busy as exc:
        throttle.login_unchecked(ip, name)
        raise busy_error(exc) from None
    except BaseException:
        throttle.login_unchecked(ip, name)
        raise
    if customer is None:
        throttle.login_failed(ip, name, time.monotonic())
        log.info("login refused")  # the name may be someone's typo'd password: not logged
        raise ApiError(401, "unauthorized", "wrong name or password")
    throttle.login_succeeded(ip, name)
    key = await _session_key(ctx, customer, "login")
    return json_response(
        {"customer": s.customer_json(customer), "accesskey": s.new_accesskey_json(key)}
    )


async def list_keys(ctx: Ctx) -> web.Response:
    keys = await ctx.store.keys.list(ctx.customer_id)
    return json_response({"accesskeys": [s.accesskey_json(k) for k in keys]})


async def create_key(ctx: Ctx) -> web.Response:
    expires_in = ctx.body.get("expires_in_s")
    expires_at = utcnow() + timedelta(seconds=expires_in) if expires_in else None
    try:
        key = await ctx.store.keys.create(
            ctx.customer_id,
            name=ctx.body.get("name") or "",
            expires_at=expires_at,
            max_live=ctx.services.settings.max_live_keys,
        )
    except KeyLimitReached as exc:
        raise _key_limit(exc) from None
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
        errors=(403, 409, 429, 503),
        description="Disabled when ARI_OFFLOAD_API_SIGNUP_ENABLED=false (and refused at start "
        "on a non-loopback bind unless ARI_OFFLOAD_API_SIGNUP_FORCE=true). Limited per client "
        "address: 429 with Retry-After. The token in accesskey.token is shown only in this "
        "response; the key expires after ARI_OFFLOAD_API_LOGIN_KEY_LIFETIME_S (7 days by "
        "default)." + _BEARER,
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
        errors=(409, 429, 503),
        description="Failed logins are limited per client address and per name, with a "
        "doubling block: 429 with Retry-After (seconds); a successful login clears the name's "
        "count. The key expires after ARI_OFFLOAD_API_LOGIN_KEY_LIFETIME_S (7 days by default); "
        "at the live-key cap the oldest login key is revoked to make room." + _BEARER,
    ),
    Route(
        "GET",
        f"{PREFIX}/accesskeys",
        list_keys,
        "listAccessKeys",
        "List access keys",
        "accesskeys",
        {200: Resp("the customer's keys, tokens not included", s.ACCESSKEY_LIST)},
        description=_BEARER.strip(),
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
        errors=(409,),
        description="The key keeps the expires_in_s it is given (null or absent: it never "
        "expires). A customer has at most ARI_OFFLOAD_API_MAX_LIVE_KEYS (50) live keys: beyond "
        "that, 409 key_limit_reached until unused keys are revoked." + _BEARER,
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
