"""A webhook agent on Flask, with ari-offload's helper: a plain and a streamed reply.

Run it with ``flask --app flask_agent run --port 9000`` (Flask finds ``make_app``).
"""

import os
import time
from collections.abc import Iterator

from flask import Flask

from ari_offload.agent import WebhookReply, WebhookRequest, flask_view

# The agent's secret in ari-offload; None accepts unsigned requests (an agent without one).
SECRET = os.environ.get("AGENT_SECRET")


def answer(request: WebhookRequest) -> str | WebhookReply:
    if "bye" in request.text.lower():
        return WebhookReply("Goodbye!", hangup=True)
    return f"You said: {request.text}"


def answer_streamed(request: WebhookRequest) -> Iterator[str]:
    # Each piece is sent as it is yielded (an LLM's tokens, say): the caller hears the first
    # clause while the rest is still being written.
    yield "Let me look that up for you, "
    time.sleep(0.5)
    yield f"you said: {request.text}"


def make_app(secret: str | None = SECRET) -> Flask:
    app = Flask(__name__)
    app.post("/ai-webhook")(flask_view(answer, secret=secret))
    app.post("/ai-webhook/streamed")(flask_view(answer_streamed, secret=secret))
    return app
