"""The webhook contract, sans-IO: request/reply types, reply parsing, request signing.

For every caller utterance ari-offload POSTs a ``WebhookRequest`` as JSON to the agent's
webhook and expects ``{"text": "...", "hangup": false}`` back. docs/webhook.md is the
user-facing description; this module is the reference implementation of it.

Signing (when the agent has a secret)::

    X-Ari-Offload-Timestamp: <unix seconds, integer>
    X-Ari-Offload-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

The signed string is the timestamp's ASCII digits, one ``.``, then the exact body bytes, so a
captured request cannot be replayed once its timestamp falls outside the tolerance.

Every request also carries ``X-Ari-Offload-Delivery: <uuid4>``, new for each POST, and the same
id as ``delivery_id`` in the body: headers are not signed (that would break every verifier
written against the scheme above), the body is, so an agent that dedupes on the body's
``delivery_id`` after verifying catches a replay inside the tolerance even if the header was
changed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ari_offload.agent.reply_actions import ReplyAction, parse_reply_actions, split_hangup
from ari_offload.errors import WebhookBadReply

SIGNATURE_HEADER = "X-Ari-Offload-Signature"
TIMESTAMP_HEADER = "X-Ari-Offload-Timestamp"
DELIVERY_HEADER = "X-Ari-Offload-Delivery"
SIGNATURE_PREFIX = "sha256="
DEFAULT_SIGNATURE_TOLERANCE_S = 300.0

# About four minutes of speech: anything longer is a bug in the agent, not a reply.
MAX_REPLY_TEXT_CHARS = 4000
_SNIPPET_CHARS = 60
_MAX_TIMESTAMP_DIGITS = 12  # bounds int() on hostile input; unix seconds need 10 until 2286


# What a request reports: words the caller said, or keys the caller pressed.
REQUEST_TYPES = ("speech", "dtmf")
# How a ``collect`` ended (a request of type "dtmf" answering one); None: a key pressed
# unasked (not collecting), sent on its own.
COLLECT_ENDINGS = ("max_digits", "terminator", "timeout")


@dataclass(frozen=True)
class WebhookRequest:
    """One caller turn, as sent to the agent: an utterance, or keys pressed."""

    call_id: str
    agent_id: str
    text: str  # what the caller said (transcribed); "" for keys
    turn: int  # 1 for the first turn of the call, then 2, 3, ...
    # What the caller heard of the previous reply before interrupting it; None if all of it.
    heard: str | None
    # Unique per POST (a uuid4), set by the client as it sends; None: not sent yet, left out.
    delivery_id: str | None = None
    type: str = "speech"  # REQUEST_TYPES
    digits: str | None = None  # the keys pressed (type "dtmf"), terminator left out
    ended_by: str | None = None  # COLLECT_ENDINGS when the keys answer a collect

    def to_json(self) -> bytes:
        data = asdict(self)
        for name in ("delivery_id", "digits", "ended_by"):
            if data[name] is None:
                del data[name]
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class WebhookReply:
    """The agent's answer: text to speak, what to do after (``actions``: transfer,
    send_dtmf, collect; agent.reply_actions) and whether to hang up then."""

    text: str
    hangup: bool = False
    actions: tuple[ReplyAction, ...] = ()


class RequestFieldError(ValueError):
    """A request body field is missing or of the wrong type; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_request(body: bytes) -> WebhookRequest:
    """Parse a request body on the agent's side; ``ValueError`` with an exact message
    (``RequestFieldError``, naming the field, when the body is an object).

    Fields this version does not know are ignored: newer ari-offloads may send more.
    """
    data = _load_object(body, "request")
    for name in ("call_id", "agent_id", "text"):
        if not isinstance(data.get(name), str):
            raise RequestFieldError(
                name, f'request "{name}" must be a string, got {_kind(data.get(name))}'
            )
    turn = data.get("turn")
    if not isinstance(turn, int) or isinstance(turn, bool):
        raise RequestFieldError("turn", f'request "turn" must be an integer, got {_kind(turn)}')
    heard = data.get("heard")
    if heard is not None and not isinstance(heard, str):
        raise RequestFieldError(
            "heard", f'request "heard" must be a string or null, got {_kind(heard)}'
        )
    for name in ("delivery_id", "digits", "ended_by"):
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise RequestFieldError(name, f'request "{name}" must be a string, got {_kind(value)}')
    kind = data.get("type", "speech")
    if kind not in REQUEST_TYPES:
        raise RequestFieldError(
            "type", f'request "type" must be one of {", ".join(REQUEST_TYPES)}, got {kind!r}'
        )
    return WebhookRequest(
        data["call_id"], data["agent_id"], data["text"], turn, heard, data.get("delivery_id"),
        kind, data.get("digits"), data.get("ended_by"),
    )  # fmt: skip


def parse_reply(body: bytes) -> WebhookReply:
    """Parse the agent's reply body, raising ``WebhookBadReply`` that says what to fix."""
    try:
        data = _load_object(body, "reply")
    except ValueError as exc:
        raise WebhookBadReply(str(exc)) from None
    if "text" not in data:
        keys = ", ".join(sorted(data)) or "none"
        raise WebhookBadReply(f'reply has no "text" field (its keys: {keys})')
    text, hangup = data["text"], data.get("hangup", False)
    if not isinstance(text, str):
        raise WebhookBadReply(f'reply "text" must be a string, got {_kind(text)}')
    if not isinstance(hangup, bool):
        raise WebhookBadReply(f'reply "hangup" must be true or false, got {_kind(hangup)}')
    return check_reply(text, hangup, reply_actions(data))


def reply_actions(data: Mapping[str, Any]) -> tuple[ReplyAction, ...]:
    """The checked ``actions`` of a reply object (or a stream's line); () if it has none."""
    if data.get("actions") is None:
        return ()
    return parse_reply_actions(data["actions"])


def check_reply(text: str, hangup: bool, actions: tuple[ReplyAction, ...] = ()) -> WebhookReply:
    """A whole reply (parsed, or a stream's pieces joined), or ``WebhookBadReply``."""
    actions, hangup = split_hangup(actions, hangup)
    if not text.strip() and not hangup and not actions:
        raise WebhookBadReply(
            'reply "text" is empty; an empty text is allowed only with "hangup": true or actions'
        )
    if len(text) > MAX_REPLY_TEXT_CHARS:
        raise WebhookBadReply(
            f'reply "text" is {len(text)} characters; the limit is '
            f"{MAX_REPLY_TEXT_CHARS} (split long answers over several turns)"
        )
    return WebhookReply(text, hangup, actions)


def _load_object(body: bytes, what: str) -> dict[str, Any]:
    if not body.strip():
        raise ValueError(f'{what} body is empty; expected JSON like {{"text": "..."}}')
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested input
        raise ValueError(
            f"{what} is not JSON ({_reason(exc)}); body starts with {body[:_SNIPPET_CHARS]!r}"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f'{what} must be a JSON object like {{"text": "..."}}, got {_kind(data)}')
    return data


def _reason(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return f"invalid {exc.encoding} at byte {exc.start}"
    return type(exc).__name__


def _kind(value: object) -> str:
    """The JSON name of a parsed value's type, as an agent author would say it."""
    if value is None:
        return "null"
    names = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }
    return names.get(type(value), type(value).__name__)


def signed_payload(body: bytes, timestamp: int) -> bytes:
    """The exact bytes that are HMAC'd: ``b"<timestamp>." + body``."""
    return str(timestamp).encode() + b"." + body


def sign(body: bytes, secret: str, timestamp: int) -> dict[str, str]:
    """The signature headers for ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret.encode(), signed_payload(body, timestamp), hashlib.sha256)
    signature = SIGNATURE_PREFIX + digest.hexdigest()
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature}


@dataclass(frozen=True)
class SignatureFailure:
    """Why a received request's signature is not valid: a stable ``code``, the ``header`` at
    fault and a sentence. Codes: ``missing_signature``, ``bad_timestamp``,
    ``stale_timestamp``, ``bad_signature``."""

    code: str
    header: str
    message: str


def signature_failure(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    now: float,
    tolerance_s: float = DEFAULT_SIGNATURE_TOLERANCE_S,
) -> SignatureFailure | None:
    """What is wrong with the signature of a received request, or None if it is valid.

    ``headers`` may be any mapping (aiohttp, Flask, a plain dict); names match in any case.
    """
    raw_ts, signature = _header(headers, TIMESTAMP_HEADER), _header(headers, SIGNATURE_HEADER)
    if raw_ts is None or signature is None:
        missing = TIMESTAMP_HEADER if raw_ts is None else SIGNATURE_HEADER
        return SignatureFailure(
            "missing_signature",
            missing,
            f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header",
        )
    if not raw_ts.isascii() or not raw_ts.isdigit() or len(raw_ts) > _MAX_TIMESTAMP_DIGITS:
        return SignatureFailure(
            "bad_timestamp", TIMESTAMP_HEADER, f"{TIMESTAMP_HEADER} must be integer unix seconds"
        )
    if abs(now - int(raw_ts)) > tolerance_s:
        return SignatureFailure(
            "stale_timestamp",
            TIMESTAMP_HEADER,
            f"{TIMESTAMP_HEADER} is more than {tolerance_s:g} s away from now",
        )
    expected = sign(body, secret, int(raw_ts))[SIGNATURE_HEADER]
    # Constant-time compare so the signature cannot be guessed byte by byte from timings.
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        return SignatureFailure(
            "bad_signature",
            SIGNATURE_HEADER,
            f"{SIGNATURE_HEADER} does not match the body (wrong secret, or body altered)",
        )
    return None


def signature_problem(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    now: float,
    tolerance_s: float = DEFAULT_SIGNATURE_TOLERANCE_S,
) -> str | None:
    """Why the signature of a received request is not valid, or None if it is."""
    failure = signature_failure(body, headers, secret, now, tolerance_s)
    return None if failure is None else failure.message


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    now: float,
    tolerance_s: float = DEFAULT_SIGNATURE_TOLERANCE_S,
) -> bool:
    """True if ``headers`` carry a valid, fresh signature of ``body`` made with ``secret``."""
    return signature_problem(body, headers, secret, now, tolerance_s) is None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)
