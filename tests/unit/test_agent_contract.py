"""The webhook contract, sans-IO: request JSON, reply parsing, signing and verifying."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from ari_offload.agent.contract import (
    MAX_REPLY_TEXT_CHARS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookReply,
    WebhookRequest,
    parse_reply,
    parse_request,
    sign,
    signature_problem,
    signed_payload,
    verify,
)
from ari_offload.errors import WebhookBadReply

SECRET = "whsec-test"
NOW = 1_700_000_000
BODY = b'{"text":"hi"}'
# HMAC-SHA256("whsec-test", b'1700000000.{"text":"hi"}'), computed once by hand: pins the format.
KNOWN_SIGNATURE = "sha256=1f107e4d7b14c74215c90ad8b70fb6786d29356a18a467d6e6cb10bc9e798545"
DOC = Path(__file__).parents[2] / "docs" / "webhook.md"


def test_request_json_has_every_field_and_keeps_unicode() -> None:
    request = WebhookRequest("c-1", "a-1", "Ça va? 你好", 3, heard="We are open from")
    assert json.loads(request.to_json()) == {
        "call_id": "c-1",
        "agent_id": "a-1",
        "text": "Ça va? 你好",
        "turn": 3,
        "heard": "We are open from",
        "type": "speech",
    }
    assert "你好".encode() in request.to_json()


def test_request_heard_none_is_null_and_round_trips() -> None:
    request = WebhookRequest("c-1", "a-1", "hello", 1, heard=None)
    assert b'"heard":null' in request.to_json()
    assert parse_request(request.to_json()) == request


def test_request_delivery_id_is_in_the_body_once_set() -> None:
    request = WebhookRequest("c-1", "a-1", "hello", 1, heard=None, delivery_id="d-1")
    assert json.loads(request.to_json())["delivery_id"] == "d-1"
    assert parse_request(request.to_json()) == request


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"agent_id":"a","text":"t","turn":1}', '"call_id" must be a string, got null'),
        (
            b'{"call_id":"c","agent_id":"a","text":"t","turn":1,"delivery_id":7}',
            '"delivery_id" must be a string',
        ),
        (b'{"call_id":"c","agent_id":"a","text":"t","turn":true}', '"turn" must be an integer'),
        (b'{"call_id":"c","agent_id":"a","text":"t","turn":1,"heard":5}', '"heard" must be a'),
        (b"[]", "request must be a JSON object"),
    ],
)
def test_parse_request_errors(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_request(body)


@pytest.mark.parametrize(
    ("body", "reply"),
    [
        (b'{"text": "Hello"}', WebhookReply("Hello")),
        (b'{"text": "Bye", "hangup": true}', WebhookReply("Bye", hangup=True)),
        (b'{"text": "", "hangup": true}', WebhookReply("", hangup=True)),
        (b'{"text": "Hi", "hangup": false, "debug": {"x": 1}}', WebhookReply("Hi")),
        (b'\xef\xbb\xbf{"text": "BOM is fine"}', WebhookReply("BOM is fine")),
    ],
)
def test_parse_reply_accepts(body: bytes, reply: WebhookReply) -> None:
    assert parse_reply(body) == reply


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "reply body is empty"),
        (b"  \n", "reply body is empty"),
        (
            b"<html>oops</html>",
            "reply is not JSON (Expecting value at line 1 column 1); "
            "body starts with b'<html>oops</html>'",
        ),
        (b"\xff\xfe\xfa", "reply is not JSON"),
        (b"[" * 100_000, "reply is not JSON"),
        (b'["Hello"]', 'reply must be a JSON object like {"text": "..."}, got an array'),
        (b'"Hello"', "got a string"),
        (b'{"reply": "Hi", "ok": true}', 'reply has no "text" field (its keys: ok, reply)'),
        (b"{}", 'reply has no "text" field (its keys: none)'),
        (b'{"text": null}', 'reply "text" must be a string, got null'),
        (b'{"text": 42}', 'reply "text" must be a string, got a number'),
        (b'{"text": "Hi", "hangup": "yes"}', 'reply "hangup" must be true or false, got a string'),
        (b'{"text": "Hi", "hangup": 1}', 'reply "hangup" must be true or false, got a number'),
        (b'{"text": "Hi", "hangup": null}', 'reply "hangup" must be true or false, got null'),
        (b'{"text": ""}', 'an empty text is allowed only with "hangup": true'),
        (b'{"text": "  "}', 'an empty text is allowed only with "hangup": true'),
    ],
)
def test_parse_reply_rejects_with_exact_message(body: bytes, message: str) -> None:
    with pytest.raises(WebhookBadReply, match=re.escape(message)):
        parse_reply(body)


def test_reply_text_limit_is_inclusive() -> None:
    text = "a" * MAX_REPLY_TEXT_CHARS
    assert parse_reply(json.dumps({"text": text}).encode()).text == text
    too_long = json.dumps({"text": text + "a"}).encode()
    with pytest.raises(
        WebhookBadReply,
        match=f"is {MAX_REPLY_TEXT_CHARS + 1} characters; the limit is {MAX_REPLY_TEXT_CHARS}",
    ):
        parse_reply(too_long)


def test_sign_matches_the_documented_format() -> None:
    assert signed_payload(BODY, NOW) == b"1700000000." + BODY
    assert sign(BODY, SECRET, NOW) == {
        TIMESTAMP_HEADER: "1700000000",
        SIGNATURE_HEADER: KNOWN_SIGNATURE,
    }


def test_verify_round_trip_any_header_case() -> None:
    headers = sign(BODY, SECRET, NOW)
    assert verify(BODY, headers, SECRET, now=NOW + 10)
    assert verify(BODY, {k.lower(): v for k, v in headers.items()}, SECRET, now=NOW)
    upper = {
        TIMESTAMP_HEADER: "1700000000",
        SIGNATURE_HEADER: "sha256=" + KNOWN_SIGNATURE.removeprefix("sha256=").upper(),
    }
    assert verify(BODY, upper, SECRET, now=NOW)


def _tampered(**changes: str) -> dict[str, str]:
    headers = sign(BODY, SECRET, NOW)
    headers.update(changes)
    return headers


@pytest.mark.parametrize(
    ("body", "headers", "secret", "now", "problem"),
    [
        (b'{"text":"hI"}', sign(BODY, SECRET, NOW), SECRET, NOW, "does not match the body"),
        (BODY, sign(BODY, SECRET, NOW), "other-secret", NOW, "does not match the body"),
        (BODY, _tampered(**{TIMESTAMP_HEADER: str(NOW + 1)}), SECRET, NOW, "does not match"),
        (BODY, _tampered(**{SIGNATURE_HEADER: KNOWN_SIGNATURE[7:]}), SECRET, NOW, "does not match"),
        (BODY, sign(BODY, SECRET, NOW), SECRET, NOW + 301, "more than 300 s away from now"),
        (BODY, sign(BODY, SECRET, NOW), SECRET, NOW - 301, "more than 300 s away from now"),
        (
            BODY,
            _tampered(**{TIMESTAMP_HEADER: "17e8"}),
            SECRET,
            NOW,
            "must be integer unix seconds",
        ),
        (BODY, _tampered(**{TIMESTAMP_HEADER: "9" * 5000}), SECRET, NOW, "integer unix seconds"),
        (BODY, {SIGNATURE_HEADER: KNOWN_SIGNATURE}, SECRET, NOW, "missing X-Ari-Offload-Timestamp"),
        (BODY, {}, SECRET, NOW, "missing"),
    ],
)
def test_verify_detects_tampering(
    body: bytes, headers: dict[str, str], secret: str, now: float, problem: str
) -> None:
    assert signature_problem(body, headers, secret, now) is not None
    assert problem in (signature_problem(body, headers, secret, now) or "")
    assert not verify(body, headers, secret, now)


def test_tolerance_is_configurable() -> None:
    headers = sign(BODY, SECRET, NOW)
    assert verify(BODY, headers, SECRET, now=NOW + 299)
    assert not verify(BODY, headers, SECRET, now=NOW + 31, tolerance_s=30)


def _doc_verifier() -> Any:
    """The standalone verify function that docs/webhook.md tells agent authors to copy."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    source = next(b for b in blocks if "def signature_ok(" in b)
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # noqa: S102 -- our own documentation, executed to keep it exact
    return namespace["signature_ok"]


def test_documented_verifier_agrees_with_sign() -> None:
    signature_ok = _doc_verifier()
    now = int(time.time())
    headers = sign(BODY, SECRET, now)
    assert signature_ok(BODY, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], SECRET)
    assert not signature_ok(
        BODY + b" ", headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], SECRET
    )
    old = sign(BODY, SECRET, now - 600)
    assert not signature_ok(BODY, old[TIMESTAMP_HEADER], old[SIGNATURE_HEADER], SECRET)
    assert not signature_ok(BODY, "", "", SECRET)
