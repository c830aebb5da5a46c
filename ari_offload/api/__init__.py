"""The control plane: REST API (aiohttp) under /v1.0, its OpenAPI document, /metrics.

app = make_api_app(settings.api, store, telephony, metrics)  # metrics: observe.metrics.Metrics
runner = web.AppRunner(app, access_log_class=RedactingAccessLogger)
"""

from ari_offload.api.app import make_api_app
from ari_offload.api.errors import RedactingAccessLogger
from ari_offload.api.telephony import Telephony

__all__ = ["RedactingAccessLogger", "Telephony", "make_api_app"]
