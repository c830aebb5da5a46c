"""``make_api_app``: the aiohttp application serving ``/v1.0``, its OpenAPI and ``/metrics``."""

from __future__ import annotations

import json
from collections.abc import Set

from aiohttp import web

from ari_offload.api import (
    routes_admin,
    routes_auth,
    routes_calls,
    routes_events,
    routes_resources,
)
from ari_offload.api.errors import error_middleware, host_check_middleware
from ari_offload.api.forward import Forwarder
from ari_offload.api.openapi import openapi_document
from ari_offload.api.routes_console import add_console
from ari_offload.api.routing import PREFIX, SERVICES, Ctx, Resp, Route, Services, add_routes
from ari_offload.api.speech import FixedSpeechOffer, SpeechOffer
from ari_offload.api.telephony import Telephony
from ari_offload.api.throttle import AuthThrottle
from ari_offload.config import ApiSettings
from ari_offload.observe.event_stream import EventHub
from ari_offload.observe.metrics import CONTENT_TYPE, Metrics
from ari_offload.policy import Policy
from ari_offload.store import Store

MAX_BODY_BYTES = 1024 * 1024  # valid bodies stay far below; escaped text can be 6x longer
OPENAPI = web.AppKey("openapi", bytes)


async def get_openapi(ctx: Ctx) -> web.Response:
    return web.Response(body=ctx.request.app[OPENAPI], content_type="application/json")


async def get_metrics(ctx: Ctx) -> web.Response:
    response = web.Response(body=ctx.services.metrics.exposition())
    response.headers["Content-Type"] = CONTENT_TYPE  # has a version parameter aiohttp won't take
    return response


META_ROUTES = [
    Route(
        "GET",
        f"{PREFIX}/openapi.json",
        get_openapi,
        "getOpenapi",
        "This document",
        "meta",
        {200: Resp("the OpenAPI 3.1 document", content_type="application/json")},
        auth=False,
    ),
    Route(
        "GET",
        "/metrics",
        get_metrics,
        "getMetrics",
        "Prometheus metrics",
        "meta",
        {200: Resp("text exposition format", content_type="text/plain")},
        auth=False,
    ),
]


def all_routes() -> list[Route]:
    return [
        *routes_auth.ROUTES,
        *routes_resources.ROUTES,
        *routes_calls.ROUTES,
        *routes_events.ROUTES,
        *routes_admin.ROUTES,
        *META_ROUTES,
    ]


def make_api_app(
    settings: ApiSettings,
    store: Store,
    telephony: Telephony,
    metrics: Metrics,
    policy: Policy | None = None,
    egress_refused: Set[tuple[str, int]] = frozenset(),
    speech: SpeechOffer | None = None,
    events: EventHub | None = None,
    forwarder: Forwarder | None = None,
) -> web.Application:
    """The REST API; the caller owns ``store`` (opens and closes it) and runs the app.

    Run it with ``web.AppRunner(app, access_log_class=RedactingAccessLogger)`` so access keys
    passed as ``?accesskey=`` never reach the access log. ``egress_refused`` names this
    server's ARI and API (host, port): webhooks may not point there. It is read at each
    request, so the caller may add the API's port once it is bound. ``speech`` lists the
    voices and languages agents may name (None: none besides the server defaults);
    ``events`` the hub the call observers publish into (None: a hub of its own, silent).
    The console's files are served under ``/console``.
    ``forwarder``: in a cluster, sends live-call commands and outbound calls to the node that
    must run them (api/forward.py).
    """
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[error_middleware, host_check_middleware(settings.host)],
    )
    app[SERVICES] = Services(
        settings,
        store,
        telephony,
        metrics,
        policy or Policy(),
        AuthThrottle(settings),
        egress_refused,
        speech or FixedSpeechOffer(),
        events or EventHub(settings, metrics),
        forwarder,
    )
    routes = all_routes()
    app[OPENAPI] = json.dumps(openapi_document(routes)).encode()
    add_routes(app, routes)
    add_console(app)
    app.on_shutdown.append(_end_streams)
    return app


async def _end_streams(app: web.Application) -> None:
    """Open event streams end before the server waits for its handlers to finish."""
    app[SERVICES].events.close()
