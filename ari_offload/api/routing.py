"""The route table: one ``Route`` per operation drives both aiohttp and the OpenAPI document.

A route's wrapper authenticates, checks path ids, parses the query and the JSON body against
the route's specs, then calls the endpoint with a ready ``Ctx``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ari_offload.api.auth import authenticate, authenticate_admin
from ari_offload.api.errors import ApiError, Handler
from ari_offload.api.forward import Forwarder, Placement, from_node, placement
from ari_offload.api.speech import FixedSpeechOffer, SpeechOffer
from ari_offload.api.telephony import Telephony
from ari_offload.api.throttle import AuthThrottle
from ari_offload.config import ApiSettings
from ari_offload.errors import ValidationError
from ari_offload.observe.event_stream import EventHub
from ari_offload.observe.metrics import Metrics
from ari_offload.policy import Policy
from ari_offload.schema import ID, Obj, Param, Spec, Str
from ari_offload.store import Store

PREFIX = "/v1.0"
# Path parameters that are not ids; the rest must look like an id we could have issued.
PATH_SPECS: dict[str, Str] = {"number": Str(32, 1, r"^\+?[0-9*#]{1,31}$")}
_PATH_PARAM = re.compile(r"\{(\w+)\}")
# Taken (and ignored where no key is needed) by every route besides its own parameters.
AUTH_QUERY = frozenset({"accesskey"})


@dataclass(frozen=True)
class Services:
    settings: ApiSettings
    store: Store
    telephony: Telephony
    metrics: Metrics
    policy: Policy  # the operator's rules: what tenants may dial, transfer to, reach
    throttle: AuthThrottle  # login/signup rate limits (state lives as long as the app)
    # (host, port) of this server's ARI and API: never a webhook target (agent.egress).
    egress_refused: Set[tuple[str, int]] = frozenset()
    # The voices and languages an agent may name (the loaded speech models' lists).
    speech: SpeechOffer = field(default_factory=FixedSpeechOffer)
    # The tenants' live events (GET /v1.0/events); the app's observers publish into it.
    events: EventHub = field(default_factory=EventHub)
    # In a cluster: sends requests on to the node that must run them (None: a single node).
    forwarder: Forwarder | None = None


SERVICES = web.AppKey("services", Services)


@dataclass(frozen=True)
class Ctx:
    request: web.Request
    services: Services
    customer_id: str  # "" on routes without auth
    key_id: str | None
    path: Mapping[str, str]
    query: Mapping[str, Any]
    body: Mapping[str, Any]

    @property
    def store(self) -> Store:
        return self.services.store


Endpoint = Callable[[Ctx], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Resp:
    description: str
    spec: Spec | None = None
    content_type: str = "application/json"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    endpoint: Endpoint
    operation_id: str
    summary: str
    tag: str
    responses: Mapping[int, Resp]
    body: Obj | None = None
    body_required: bool = True
    query: tuple[Param, ...] = ()
    auth: bool = True
    admin: bool = False  # an operator's admin key instead of a tenant's access key
    errors: tuple[int, ...] = ()  # error statuses beyond those implied by auth/body/path
    description: str = ""
    path_params: tuple[str, ...] = field(init=False)
    placement: Placement = field(init=False)  # which node runs it in a cluster

    def __post_init__(self) -> None:
        object.__setattr__(self, "path_params", tuple(_PATH_PARAM.findall(self.path)))
        object.__setattr__(self, "placement", placement(self.method, self.path))

    def error_statuses(self) -> list[int]:
        implied: set[int] = {422, *self.errors}  # 422 at least for unknown query parameters
        if self.auth or self.admin:
            implied.add(401)
        if self.path_params:
            implied.add(404)
        if self.body is not None:
            implied |= {400, 413, 415}
        if self.placement in (Placement.CALL_NODE, Placement.RECORDER):
            implied |= {502, 503}  # the call's node did not answer, or is down
        elif self.placement is Placement.LEAST_LOADED:
            implied.add(502)
        return sorted(implied)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def add_routes(app: web.Application, routes: list[Route]) -> None:
    for route in routes:
        app.router.add_route(route.method, route.path, _wrap(route))


def _wrap(route: Route) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        services = request.app[SERVICES]
        forwarded = await from_node(services.forwarder, request) is not None
        customer_id, key_id = "", None
        if route.admin:
            key_id = (await authenticate_admin(request, services.store)).id
        elif route.auth:
            key = await authenticate(request, services.store)
            customer_id, key_id = key.customer_id, key.id
        path = {}
        for name in route.path_params:
            try:
                path[name] = PATH_SPECS.get(name, ID).check(request.match_info[name], name)
            except ValidationError:
                # Not an id we could ever have issued: the resource cannot exist.
                raise ApiError.not_found(name.removesuffix("_id")) from None
        query = _parse_query(route, request)
        body = (
            {} if route.body is None else await _read_body(route.body, route.body_required, request)
        )
        forwarder = services.forwarder
        if forwarder is not None and not forwarded and route.placement is not Placement.ANY:
            answer = await forwarder.forward(
                route.placement, request, services.store, customer_id, path.get("call_id")
            )
            if answer is not None:
                return answer
        return await route.endpoint(Ctx(request, services, customer_id, key_id, path, query, body))

    return handle


def _parse_query(route: Route, request: web.Request) -> dict[str, Any]:
    known = {p.name: p for p in route.query}
    allowed = known.keys() | AUTH_QUERY
    for name in request.query:
        if name not in allowed:
            shown = name[:64]
            raise ApiError(422, "validation_error", f"{shown}: unknown query parameter", shown)
    out: dict[str, Any] = {}
    for param in route.query:
        raw = request.query.getall(param.name, [])
        if raw:
            out[param.name] = param.parse(raw)
        elif param.required:
            raise ApiError(422, "validation_error", f"{param.name}: required", param.name)
        else:
            out[param.name] = param.default
    return out


async def _read_body(spec: Obj, required: bool, request: web.Request) -> dict[str, Any]:
    raw = await request.read()  # raises 413 past client_max_size
    if not raw.strip():
        if required:
            raise ApiError(400, "missing_body", "send a JSON object as the request body")
        data: object = {}
    else:
        ctype = request.content_type
        if ctype != "application/json" and not ctype.endswith("+json"):
            raise ApiError(
                415, "unsupported_media_type", "send the body with Content-Type: application/json"
            )
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
        except (ValueError, RecursionError) as exc:
            # ValueError covers bad UTF-8 and JSONDecodeError; deep nesting -> RecursionError.
            message = str(exc) if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
            raise ApiError(400, "invalid_json", f"the body is not valid JSON: {message}") from None
    try:
        return spec.check(data, "")
    except ValidationError as exc:
        raise ApiError.invalid(exc) from None


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
