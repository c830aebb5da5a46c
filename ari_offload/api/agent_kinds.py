"""An agent's kind in the API: the fields of an llm agent, and which fields each kind takes.

A "webhook" agent (the default) has a ``webhook``; an "llm" agent has ``base_url`` and
``model`` (agent.llm_chat) instead. api/schemas.py puts these fields into the agent's request
and response shapes; ``check_kind_fields`` refuses, with a 422 naming the field, a field of
the other kind or a missing one that the shapes alone cannot express.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ari_offload.agent.lines import AGENT_KINDS
from ari_offload.agent.llm_chat import (
    MAX_API_KEY_CHARS,
    MAX_MAX_TOKENS,
    MAX_MODEL_CHARS,
    MAX_SYSTEM_PROMPT_CHARS,
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
)
from ari_offload.errors import ValidationError
from ari_offload.schema import ONE_LINE, Bool, Int, Num, Spec, Str
from ari_offload.store import Agent

HTTP_URL = r"^https?://[^\u0000-\u0020\u007f]+$"
# The fields only one kind has, and those it must have.
WEBHOOK_ONLY = ("webhook",)
LLM_ONLY = ("base_url", "model", "system_prompt", "api_key", "temperature", "max_tokens")
_REQUIRED = {"webhook": ("webhook",), "llm": ("base_url", "model")}
_ONLY = {"webhook": WEBHOOK_ONLY, "llm": LLM_ONLY}
_AN = {"webhook": "a webhook agent", "llm": "an llm agent"}


def url_problem(credentials: str) -> Callable[[str], str | None]:
    """A URL field's further check; ``credentials`` says what to use instead of user:pass@."""

    def problem(value: str) -> str | None:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 (raises ValueError for an out-of-range port)
        except ValueError:
            return "not a valid URL"
        if "@" in parts.netloc:
            # aiohttp would send them as Basic auth to whatever the URL names.
            return f"credentials in the URL (user:pass@) are refused; {credentials}"
        return None if parts.hostname else "the URL needs a host"

    return problem


KIND = Str(
    8,
    enum=AGENT_KINDS,
    description='"webhook" (the default): each caller turn is POSTed to the webhook; "llm": '
    "each turn goes to an OpenAI-compatible chat-completions endpoint (base_url, model), with "
    "the call's history. Set at creation; it cannot change",
)
BASE_URL = Str(
    2048,
    1,
    HTTP_URL,
    also=url_problem("put the key in api_key"),
    description="llm agents: the OpenAI-compatible API, e.g. https://api.openai.com/v1 "
    "(requests go to <base_url>/chat/completions); the operator's policy (egress) says which "
    "addresses it may reach, as for webhooks",
)
MODEL = Str(
    MAX_MODEL_CHARS,
    1,
    r"^[^\u0000-\u0020\u007f]([^\u0000-\u001f\u007f]*[^\u0000-\u0020\u007f])?$",
    description="llm agents: the model name the endpoint knows, e.g. gpt-4o-mini",
)
SYSTEM_PROMPT = Str(
    MAX_SYSTEM_PROMPT_CHARS,
    description="llm agents: the system message of every request (who the agent is, how it "
    "talks: short sentences, no lists or markdown, it is heard on a phone)",
)
API_KEY = Str(
    MAX_API_KEY_CHARS,
    1,
    ONE_LINE,
    nullable=True,
    description="llm agents: sent as Authorization: Bearer <api_key>; write-only, never "
    "returned (see has_api_key) nor logged; null: none",
)
TEMPERATURE = Num(
    nullable=True,
    minimum=MIN_TEMPERATURE,
    maximum=MAX_TEMPERATURE,
    description=f"llm agents: sampling temperature ({MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g});"
    " null: the endpoint's default (not sent)",
)
MAX_TOKENS = Int(
    1,
    MAX_MAX_TOKENS,
    nullable=True,
    description="llm agents: the most tokens one reply may take; null: the endpoint's "
    "default (not sent)",
)
# In the request bodies (api/schemas.py adds ``kind`` to the create body only).
LLM_FIELDS: dict[str, Spec] = {
    "base_url": BASE_URL,
    "model": MODEL,
    "system_prompt": SYSTEM_PROMPT,
    "api_key": API_KEY,
    "temperature": TEMPERATURE,
    "max_tokens": MAX_TOKENS,
}
_STR_OR_NULL = Str(10_000, nullable=True, any_text=True)
# In the responses: every field, null where the agent's kind has none.
LLM_RESPONSE_FIELDS: dict[str, Spec] = {
    "kind": Str(8, enum=AGENT_KINDS),
    "base_url": _STR_OR_NULL,
    "model": _STR_OR_NULL,
    "system_prompt": _STR_OR_NULL,
    "has_api_key": Bool(),
    "temperature": Num(nullable=True),
    "max_tokens": Int(0, 2**31, nullable=True),
}


def llm_json(a: Agent) -> dict[str, Any]:
    return {
        "kind": a.kind,
        "base_url": a.base_url,
        "model": a.model,
        "system_prompt": a.system_prompt,
        "has_api_key": a.api_key is not None,
        "temperature": a.temperature,
        "max_tokens": a.max_tokens,
    }


def check_kind_fields(body: Mapping[str, object], kind: str, *, creating: bool) -> None:
    """A 422 (ValidationError) naming a field the agent's kind has not, or one it needs."""
    if body.get("kind", kind) != kind:
        raise ValidationError(
            "kind", f"an agent's kind cannot change (this one is {kind}); create a new agent"
        )
    for name in body:
        if name in _ONLY["llm" if kind == "webhook" else "webhook"]:
            raise ValidationError(
                name, f"{_AN[kind]} has no {name} (kind is set at creation and cannot change)"
            )
    for name in _REQUIRED[kind] if creating else ():
        if name not in body:
            raise ValidationError(name, f"required for {_AN[kind]}")
