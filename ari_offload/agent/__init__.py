"""The agent webhook: contract (sans-IO types, parsing, signing) and the HTTP client.

The sample agent lives in ``ari_offload.agent.sample`` and is imported on its own.
"""

from ari_offload.agent.client import AgentAnswer, WebhookClient, WebhookStats
from ari_offload.agent.contract import WebhookReply, WebhookRequest, parse_reply, sign, verify

__all__ = [
    "AgentAnswer",
    "WebhookClient",
    "WebhookReply",
    "WebhookRequest",
    "WebhookStats",
    "parse_reply",
    "sign",
    "verify",
]
