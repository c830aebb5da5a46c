"""The LLM agent kind, sans-IO: its settings, one call's chat history, the request body.

An agent of kind "llm" has no webhook: each caller turn becomes a chat-completions request
(``POST <base_url>/chat/completions``, OpenAI's shape, ``"stream": true``) to any server that
speaks it (OpenAI, vLLM, llama.cpp, Ollama, LM Studio...). ``ChatHistory`` keeps the call's
conversation as the caller lived it: the system prompt, then each thing the caller said or
keyed (user) and each thing said to the caller (assistant), where a reply the caller cut
short counts only as far as it was heard. It is bounded, oldest messages dropped first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ari_offload.agent.contract import (
    MAX_REPLY_TEXT_CHARS,
    WebhookReply,
    WebhookRequest,
    check_reply,
)
from ari_offload.errors import WebhookBadReply

COMPLETIONS_PATH = "/chat/completions"
# The API's bounds for an llm agent's fields.
MAX_SYSTEM_PROMPT_CHARS = 8000
MAX_MODEL_CHARS = 200
MAX_API_KEY_CHARS = 512
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.0, 2.0  # OpenAI's range; other servers take it too
# A reply is at most MAX_REPLY_TEXT_CHARS characters, about a quarter as many tokens.
MAX_MAX_TOKENS = MAX_REPLY_TEXT_CHARS // 4
# What one call's history keeps besides the system prompt: a phone call of ~40 turns, and
# about 6,000 tokens of context, well inside any chat model's window.
MAX_HISTORY_MESSAGES = 80
MAX_HISTORY_CHARS = 24_000
# How a DTMF turn reads to the model (the webhook gets the keys as fields instead).
_COLLECT_ENDINGS = {
    "max_digits": "all the digits asked for",
    "terminator": "ended with the terminator key",
    "timeout": "then stopped pressing keys",
}

Message = dict[str, str]


@dataclass(frozen=True)
class LlmConfig:
    """An llm agent's endpoint and model; ``temperature``/``max_tokens``: None, not sent."""

    base_url: str
    model: str
    system_prompt: str = ""
    api_key: str | None = field(default=None, repr=False)  # a secret: never logged
    temperature: float | None = None
    max_tokens: int | None = None

    @property
    def url(self) -> str:
        return completions_url(self.base_url)


def completions_url(base_url: str) -> str:
    """Where the requests go: ``base_url`` + /chat/completions (given whole, kept whole).

    A query string stays at the end (some gateways put the API version there)."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    if not path.endswith(COMPLETIONS_PATH):
        path += COMPLETIONS_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def completion_body(config: LlmConfig, messages: list[Message]) -> bytes:
    """The JSON body of one streamed chat-completions request."""
    body: dict[str, Any] = {"model": config.model, "messages": messages, "stream": True}
    if config.temperature is not None:
        body["temperature"] = config.temperature
    if config.max_tokens is not None:
        body["max_tokens"] = config.max_tokens
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def parse_completion(raw: bytes) -> WebhookReply:
    """A whole (not streamed) chat completion, from a server that ignored ``"stream"``."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise WebhookBadReply(f"the completion is not JSON; it starts with {raw[:60]!r}") from None
    choices = data.get("choices") if isinstance(data, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise WebhookBadReply('the completion has no "choices"[0]."message"."content" text')
    return check_reply(content, False)


def user_text(request: WebhookRequest) -> str:
    """What the caller did this turn, as the model reads it: their words, or their keys."""
    if request.type != "dtmf":
        return request.text
    keys = " ".join(request.digits or "")
    if request.ended_by is None:
        return f"(The caller pressed {keys} on the phone's keypad.)"
    ending = _COLLECT_ENDINGS.get(request.ended_by, request.ended_by)
    if not keys:
        return f"(The caller pressed no keys; {ending}.)"
    return f"(The caller typed {keys} on the phone's keypad; {ending}.)"


class ChatHistory:
    """One call's conversation with an LLM agent, bounded; ``asked`` gives the messages of
    the next request, ``said`` records what the caller heard from the agent's side."""

    def __init__(
        self,
        system_prompt: str,
        max_messages: int = MAX_HISTORY_MESSAGES,
        max_chars: int = MAX_HISTORY_CHARS,
    ) -> None:
        if max_messages < 1 or max_chars < 1:
            raise ValueError("a chat history must hold at least one message")
        self._system = system_prompt.strip()
        self._max_messages, self._max_chars = max_messages, max_chars
        self._messages: list[Message] = []
        self._chars = 0

    @property
    def messages(self) -> list[Message]:
        """The system prompt (if any), then the conversation kept so far."""
        system = [{"role": "system", "content": self._system}] if self._system else []
        return system + [dict(m) for m in self._messages]

    def asked(self, request: WebhookRequest) -> list[Message]:
        """The caller's turn joins the history; the messages to send for it."""
        self._add("user", user_text(request))
        return self.messages

    def said(self, text: str) -> None:
        """The caller heard ``text`` from the agent's side: a reply (as far as it was heard
        if cut short), the fallback line, the welcome, a text the API spoke into the call."""
        self._add("assistant", text)

    def _add(self, role: str, text: str) -> None:
        text = text.strip()
        if not text:
            return  # nothing heard (cut before the first word), or no words
        last = self._messages[-1] if self._messages else None
        if last is not None and last["role"] == role:
            # Two in a row (a welcome then a spoken API text; a reply nobody heard): one
            # message, since some chat templates refuse a role twice in a row.
            last["content"] += "\n" + text
            self._chars += 1 + len(text)
        else:
            self._messages.append({"role": role, "content": text})
            self._chars += len(text)
        self._trim()

    def _trim(self) -> None:
        """Oldest first, never the newest message (the turn being asked about)."""
        while len(self._messages) > 1 and (
            len(self._messages) > self._max_messages or self._chars > self._max_chars
        ):
            self._chars -= len(self._messages.pop(0)["content"])
