"""Access keys on requests: ``Authorization: Bearer KEY`` or ``?accesskey=KEY``."""

from __future__ import annotations

from aiohttp import web

from ari_offload.api.errors import ApiError
from ari_offload.store import AccessKey, Store
from ari_offload.store.operator import AdminKey

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ari-offload"'}


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers=_CHALLENGE)


def request_token(request: web.Request) -> str:
    """The presented key; the header wins over the query string."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("the Authorization header must be 'Bearer <access key>'")
        return token.strip()
    token = request.query.get("accesskey", "")
    if not token:
        raise _unauthorized(
            "missing access key: add ?accesskey=KEY or "
            "'Authorization: Bearer KEY' (get one from POST /v1.0/auth/login)"
        )
    return token


async def authenticate(request: web.Request, store: Store) -> AccessKey:
    key = await store.keys.authenticate(request_token(request))
    if key is None:
        # One message for unknown, revoked and expired keys: nothing to probe.
        raise _unauthorized("invalid, revoked or expired access key")
    return key


async def authenticate_admin(request: web.Request, store: Store) -> AdminKey:
    """The operator's admin key (``ari-offload admin create-key``); tenant keys never pass."""
    key = await store.admin_keys.authenticate(request_token(request))
    if key is None:
        raise _unauthorized("this route needs an operator admin key (ari-offload admin create-key)")
    return key
