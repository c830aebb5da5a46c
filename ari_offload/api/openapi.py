"""The OpenAPI 3.1 document, generated from the route table it describes."""

from __future__ import annotations

from typing import Any

from ari_offload import __version__
from ari_offload.api import schemas as s
from ari_offload.api.routing import Route
from ari_offload.schema import ID, Schema

_STATUS_TEXT = {
    400: "malformed request (not JSON, or no body)",
    401: "missing, invalid, revoked or expired access key",
    403: "forbidden: the operator's policy refused it (error.message names the rule)",
    404: "no such resource (or not the caller's)",
    409: "conflict with the current state",
    413: "body too large",
    415: "the body is not application/json",
    422: "a field is invalid: error.field names it",
    429: "rate limited or a quota used up: retry after the Retry-After header's seconds",
    502: "Asterisk refused the call",
    503: "busy: retry after the Retry-After header's seconds",
}


def openapi_document(routes: list[Route]) -> dict[str, Any]:
    components: dict[str, Schema] = {}
    error_ref = s.ERROR.schema(components)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(
            route, components, error_ref
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ari-offload",
            "version": __version__,
            "description": "AI agents on the phone through Asterisk, text only. Authenticate "
            "with an access key from POST /v1.0/auth/signup or /auth/login, sent as "
            "'Authorization: Bearer <key>' (the primary form; ?accesskey=<key> is also "
            "accepted).",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "accesskey": {"type": "apiKey", "in": "query", "name": "accesskey"},
            },
        },
    }


def _operation(route: Route, components: dict[str, Schema], error_ref: Schema) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, resp in route.responses.items():
        entry: dict[str, Any] = {"description": resp.description}
        if resp.spec is not None:
            entry["content"] = {resp.content_type: {"schema": resp.spec.schema(components)}}
        elif resp.content_type != "application/json":
            entry["content"] = {resp.content_type: {"schema": {"type": "string"}}}
        responses[str(status)] = entry
    error_content = {"application/json": {"schema": error_ref}}
    for status in route.error_statuses():
        responses[str(status)] = {
            "description": _STATUS_TEXT.get(status, "error"),
            "content": error_content,
        }
    responses["default"] = {"description": "unexpected error", "content": error_content}
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "responses": responses,
        "security": [{"bearer": []}, {"accesskey": []}] if route.auth or route.admin else [],
    }
    if route.description:
        op["description"] = route.description
    params = [
        {"name": name, "in": "path", "required": True, "schema": ID.schema(components)}
        for name in route.path_params
    ]
    params += [p.schema(components) for p in route.query]
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": route.body_required,
            "content": {"application/json": {"schema": route.body.schema(components)}},
        }
    return op
