"""Every place that holds a turn's measurements holds exactly the declared ``TURN_FIELDS``,
and a webhook failure has one name from the error to the store and the metrics."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from datetime import UTC, datetime

import pytest

from ari_offload.agent.client import AgentAnswer, error_kind
from ari_offload.agent.contract import WebhookReply
from ari_offload.api.schemas import TURN, call_detail_json
from ari_offload.errors import (
    EgressRefused,
    WebhookBadReply,
    WebhookError,
    WebhookStatusError,
    WebhookTimeout,
    WebhookUnreachable,
)
from ari_offload.observe.metrics import TURN_PARTS, Metrics
from ari_offload.sdk.client import Call as SdkCall
from ari_offload.sdk.client import TurnLatency
from ari_offload.store import schema
from ari_offload.store.records import Call, CallStatus, Direction, Turn
from ari_offload.turn_fields import (
    LATENCY_FIELDS,
    STORED_FIELDS,
    TURN_FIELDS,
    WebhookFailure,
    stored_webhook_failure,
    webhook_failure,
)
from ari_offload.voice.turns import TurnTiming

STORED = [f.name for f in STORED_FIELDS]


def names(dataclass_type: type) -> list[str]:
    return [f.name for f in fields(dataclass_type)]


def test_the_conversation_measures_every_declared_field() -> None:
    assert names(TurnTiming) == ["turn", *(f.name for f in TURN_FIELDS)]


def test_the_store_columns_and_record_are_the_stored_fields() -> None:
    columns = [c.name for c in schema.turns.columns]
    assert columns == ["id", "call_id", "turn", *STORED, "at"]
    assert names(Turn) == ["call_id", "turn", *STORED, "at"]


def test_the_api_documents_and_serves_the_stored_fields() -> None:
    assert list(TURN.fields) == ["turn", *STORED, "at"]
    assert TURN.required == ("turn", *STORED, "at")
    at = datetime(2024, 5, 1, tzinfo=UTC)
    call = Call(
        "c1", "k1", None, Direction.IN, CallStatus.ENDED, caller=None, destination=None,
        channel_id=None, started_at=at, answered_at=at, ended_at=at, hangup_reason=None,
    )  # fmt: skip
    turn = Turn("c1", 1, 400.0, 60.0, 80.0, 40.0, 580.0, "timeout", at)
    (served,) = call_detail_json(call, [], [turn])["turns"]
    assert list(served) == ["turn", *STORED, "at"]
    TURN.validate(served, "turns[0]")  # what is served matches what is documented


def test_the_sdk_reads_the_stored_fields() -> None:
    assert names(TurnLatency) == ["turn", *STORED, "at"]
    served: dict[str, object] = {"turn": 1, **{name: None for name in STORED}, "at": None}
    served |= {"total_ms": 580.0, "webhook_error": "timeout"}
    call = SdkCall.from_json(
        {
            **dict.fromkeys(("id", "flow_id", "direction", "status", "caller")),
            **dict.fromkeys(("destination", "started_at", "answered_at", "ended_at")),
            "hangup_reason": None,
            "turns": [served],
        }
    )
    assert call.turns[0].total_ms == 580.0
    assert call.turns[0].webhook_error == "timeout"


def test_the_metrics_observe_every_latency_field() -> None:
    assert TURN_PARTS == ("endpoint", "stt", "webhook", "tts_first_audio", "total")
    assert [f.name for f in LATENCY_FIELDS] == [f"{part}_ms" for part in TURN_PARTS]
    metrics = Metrics()
    measured = TurnTiming(1, 400, 50, webhook_ms=10, tts_first_audio_ms=40, total_ms=500)
    metrics.observe_turn(**measured.latencies_ms())
    text = metrics.exposition().decode()
    for part in TURN_PARTS:
        assert f'ari_offload_turn_latency_seconds_count{{part="{part}"}} 1.0' in text
    with pytest.raises(ValueError, match="interrupted"):
        metrics.observe_turn(interrupted=1.0)


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (WebhookTimeout("slow"), "timeout"),
        (WebhookUnreachable("down"), "unreachable"),
        (EgressRefused("deny_loopback", "refused"), "unreachable"),
        (WebhookStatusError(500), "status"),
        (WebhookBadReply("not JSON"), "bad_reply"),
        (WebhookError("?"), "other"),
    ],
)
def test_a_webhook_error_has_one_failure_name(error: WebhookError, failure: str) -> None:
    assert error_kind(error) == failure
    answer = AgentAnswer(WebhookReply("Sorry."), error, 0.1)
    assert answer.failure is WebhookFailure(failure)
    metrics = Metrics()
    metrics.webhook_failed(error_kind(error))
    assert f'ari_offload_webhook_failures_total{{kind="{failure}"}} 1.0' in (
        metrics.exposition().decode()
    )


def test_old_rows_holding_a_class_name_read_back_as_the_failure() -> None:
    assert stored_webhook_failure("WebhookTimeout") == "timeout"
    assert stored_webhook_failure("EgressRefused") == "unreachable"
    assert stored_webhook_failure("timeout") == "timeout"
    assert stored_webhook_failure(None) is None


def test_the_api_reads_any_stored_text_as_a_documented_kind() -> None:
    assert webhook_failure("WebhookBadReply") is WebhookFailure.BAD_REPLY
    assert webhook_failure("unreachable") is WebhookFailure.UNREACHABLE
    assert webhook_failure("bad\ufffdreply") is WebhookFailure.OTHER
    assert webhook_failure(None) is None


def test_the_declarations_import_nothing_of_the_server() -> None:
    code = (
        "import sys, ari_offload.turn_fields;"
        "print(sorted(m for m in sys.modules if m.startswith('ari_offload')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['ari_offload', 'ari_offload.turn_fields']"
