"""The agent webhook: contract (sans-IO types, parsing, signing), the HTTP client, the line
to an agent chosen by its kind (``lines``: its webhook, or an OpenAI-compatible LLM endpoint
with the call's history, ``llm_chat``), and the helper for writing a webhook (``server``:
check a request, build a reply; ``adapters``: the same as an aiohttp handler or a Flask
view, each importing its framework only when used).

The sample agent lives in ``ari_offload.agent.sample`` and is imported on its own.
"""

from ari_offload.agent.adapters import aiohttp_handler, flask_view
from ari_offload.agent.contract import WebhookReply, WebhookRequest
from ari_offload.agent.reply_actions import Collect, Hangup, SendDtmf, Transfer
from ari_offload.agent.server import (
    NDJSON_CONTENT_TYPE,
    NdjsonStream,
    Refusal,
    handle,
    reply,
    stream_ndjson,
)

__all__ = [
    "NDJSON_CONTENT_TYPE",
    "Collect",
    "Hangup",
    "NdjsonStream",
    "Refusal",
    "SendDtmf",
    "Transfer",
    "WebhookReply",
    "WebhookRequest",
    "aiohttp_handler",
    "flask_view",
    "handle",
    "reply",
    "stream_ndjson",
]
