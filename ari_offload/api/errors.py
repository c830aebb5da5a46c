"""Every error leaves the API as ``{"error": {"code", "message", "field"}}``.

``ApiError`` is raised by handlers; the middleware turns it, aiohttp's own HTTP errors (404 for
unknown routes, 405, 413) and anything unexpected (a logged 500, no internals in the body)
into that shape.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import LooseHeaders

from ari_offload.errors import PolicyRefused, QuotaExceeded, StoreError, ValidationError

log = logging.getLogger("ari_offload.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    429: "too_many_requests",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: LooseHeaders | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers

    @classmethod
    def invalid(cls, exc: ValidationError) -> ApiError:
        return cls(422, "validation_error", str(exc), exc.field)

    @classmethod
    def refused(cls, exc: PolicyRefused, field: str | None = None) -> ApiError:
        """403 naming the policy rule; 429 with Retry-After for a quota."""
        message = f"{exc.message} (policy rule {exc.rule})"
        if isinstance(exc, QuotaExceeded):
            return cls(429, "quota_exceeded", message, field,
                       headers={"Retry-After": str(exc.retry_after_s)})  # fmt: skip
        return cls(403, "policy_refused", message, field)

    @classmethod
    def not_found(cls, what: str) -> ApiError:
        return cls(404, "not_found", f"{what} not found")

    def response(self) -> web.Response:
        return error_response(self.status, self.code, self.message, self.field, self.headers)


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: LooseHeaders | None = None,
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, "field": field}},
        status=status,
        headers=headers,
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except ValidationError as exc:
        return ApiError.invalid(exc).response()
    except PolicyRefused as exc:
        return ApiError.refused(exc).response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        message = exc.reason
        if exc.status == 404:
            message = f"no route {request.method} {request.path}"
        elif headers:
            message = f"{request.method} is not allowed here; use {', '.join(headers.values())}"
        return error_response(exc.status, _CODES.get(exc.status, "error"), message, headers=headers)
    except StoreError:
        log.exception("store failure in %s %s", request.method, request.path)
        return error_response(503, "store_unavailable", "the database is not available")
    except Exception:
        # Log the traceback for operators; the client only learns an id to quote.
        ref = secrets.token_hex(4)
        log.exception("unhandled error in %s %s [ref %s]", request.method, request.path, ref)
        return error_response(500, "internal_error", f"internal error (ref {ref}); see the log")


_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_check_middleware(bind_host: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """On a loopback bind, refuse requests whose Host is not loopback.

    Without it a web page could rebind its DNS name to 127.0.0.1 and drive the API from the
    user's browser (sign up, place calls): signup is on by default only because of this bind.
    """
    guard = is_loopback(bind_host)

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if guard:
            try:
                host = request.url.host or ""
            except ValueError:  # a Host header that is not a host at all
                host = ""
            if not is_loopback(host):
                return error_response(
                    403,
                    "forbidden_host",
                    "this API is bound to loopback: use 127.0.0.1 or localhost",
                )
        return await handler(request)

    return check


class RedactingAccessLogger(AbstractAccessLogger):
    """Access log without query strings: ``?accesskey=`` must never reach a log file.

    Pass it to ``web.AppRunner(app, access_log_class=RedactingAccessLogger)``.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %d %.1f ms',
            request.remote,
            request.method,
            request.path,
            response.status,
            time * 1000,
        )
