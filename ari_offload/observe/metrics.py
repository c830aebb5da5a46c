"""Prometheus metrics that the whole app updates and ``GET /metrics`` exposes.

Each ``Metrics`` has its own ``CollectorRegistry``: several apps (tests) never collide, and
nothing leaks into the process-global default registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from ari_offload.agent.events import Outcome
from ari_offload.turn_fields import LATENCY_FIELDS, WebhookFailure

CONTENT_TYPE = CONTENT_TYPE_LATEST
_PART_OF = {f.name: f.part for f in LATENCY_FIELDS if f.part is not None}
TURN_PARTS = tuple(_PART_OF.values())  # the ``part`` labels of the turn latency histogram
# Seconds; dense around the 0.3-2 s region where conversational latency is decided.
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
SPEECH_STAGES = ("stt", "tts")  # the ``stage`` labels of the speech queue gauge


class Metrics:
    """Typed update methods; label values are free strings, the usual ones documented."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.active_calls = Gauge(
            "ari_offload_active_calls",
            "Calls currently in progress",
            ["direction"],
            registry=self.registry,
        )
        self.calls_total = Counter(
            "ari_offload_calls",
            "Calls finished, by direction and outcome",
            ["direction", "outcome"],
            registry=self.registry,
        )
        self.turn_latency = Histogram(
            "ari_offload_turn_latency_seconds",
            "Turn latency by part (end of caller speech to first reply audio is 'total')",
            ["part"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.webhook_failures = Counter(
            "ari_offload_webhook_failures",
            "Agent webhook failures by kind",
            ["kind"],
            registry=self.registry,
        )
        self.rtp_dropped = Counter(
            "ari_offload_rtp_packets_dropped",
            "RTP packets dropped, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.event_deliveries = Counter(
            "ari_offload_event_deliveries",
            "Call event delivery attempts to agents' events URLs, by outcome: delivered, "
            "retry (failed, tried again), gave_up (failed, last attempt), dropped (queue full)",
            ["outcome"],
            registry=self.registry,
        )
        self.turns = Counter(
            "ari_offload_turns",
            "Turns finished (a caller utterance or keys answered, the fallback included): the "
            "denominator of the webhook failure rate",
            registry=self.registry,
        )
        self.concurrent_calls_limit = Gauge(
            "ari_offload_concurrent_calls_limit",
            "The server's concurrent call quota from the operator's policy (0: none)",
            registry=self.registry,
        )
        self.speech_queue = Gauge(
            "ari_offload_speech_queue_depth",
            "Speech jobs waiting for a worker, by stage (stt: transcriptions, tts: synthesis)",
            ["stage"],
            registry=self.registry,
        )
        self.stream_subscribers = Gauge(
            "ari_offload_event_stream_subscribers",
            "Open GET /v1.0/events streams",
            registry=self.registry,
        )
        self.stream_dropped = Counter(
            "ari_offload_event_stream_dropped",
            "Event stream readers dropped because they fell too far behind",
            registry=self.registry,
        )
        self._speech_queue_source: Callable[[], Mapping[str, int]] | None = None
        for stage in SPEECH_STAGES:
            self.speech_queue.labels(stage)
        self.cluster_nodes = Gauge(
            "ari_offload_cluster_nodes",
            "Cluster nodes in the registry, by state: live (fresh heartbeat, Asterisk up) or "
            "down (the rest), as this node saw them at its last heartbeat",
            ["state"],
            registry=self.registry,
        )
        self.cluster_calls_closed = Counter(
            "ari_offload_cluster_lost_calls_closed",
            "Calls of lost nodes this node closed (reason node-lost)",
            registry=self.registry,
        )
        self.cluster_forwards = Counter(
            "ari_offload_cluster_forwards",
            "API requests forwarded to another node (a live call's, an outbound call to "
            "place), by outcome: answered, unreachable",
            ["outcome"],
            registry=self.registry,
        )
        for direction in ("in", "out"):
            self.active_calls.labels(direction)  # export 0 rather than nothing
        for outcome in Outcome:
            self.event_deliveries.labels(outcome)

    def call_started(self, direction: str) -> None:
        """A call entered the app (inbound StasisStart, or an outbound call was answered)."""
        self.active_calls.labels(direction).inc()

    def call_ended(self, direction: str, outcome: str) -> None:
        """A started call is over. outcome: e.g. completed, failed, no_flow."""
        self.active_calls.labels(direction).dec()
        self.calls_total.labels(direction, outcome).inc()

    def call_not_started(self, direction: str, outcome: str) -> None:
        """A call that never became active (e.g. originate refused): counted, not gauged."""
        self.calls_total.labels(direction, outcome).inc()

    def observe_turn(self, **parts_ms: float | None) -> None:
        """Record one turn's latencies, by ``TURN_FIELDS`` name; parts left None were not
        measured."""
        unknown = parts_ms.keys() - _PART_OF
        if unknown:
            raise ValueError(f"not turn latencies: {', '.join(sorted(unknown))}")
        for name, value_ms in parts_ms.items():
            if value_ms is not None:
                self.turn_latency.labels(_PART_OF[name]).observe(value_ms / 1000.0)

    def turn_finished(self) -> None:
        """A turn's reply ended (``observe_turn`` records its latencies)."""
        self.turns.inc()

    def watch_speech_queue(self, queued: Callable[[], Mapping[str, int]]) -> None:
        """``queued()`` (jobs waiting, by stage) is read at each scrape."""
        self._speech_queue_source = queued

    def stream_subscriber_dropped(self) -> None:
        self.stream_dropped.inc()

    def webhook_failed(self, kind: WebhookFailure) -> None:
        self.webhook_failures.labels(kind).inc()

    def event_delivery(self, outcome: str) -> None:
        """outcome: an ``agent.events.Outcome``."""
        self.event_deliveries.labels(outcome).inc()

    def rtp_packet_dropped(self, reason: str, count: int = 1) -> None:
        """reason: e.g. malformed, late, duplicate, overflow, wrong_ssrc."""
        self.rtp_dropped.labels(reason).inc(count)

    def cluster_view(self, live: int, known: int) -> None:
        self.cluster_nodes.labels("live").set(live)
        self.cluster_nodes.labels("down").set(known - live)

    def node_calls_closed(self, count: int) -> None:
        self.cluster_calls_closed.inc(count)

    def forwarded(self, outcome: str) -> None:
        """outcome: answered (whatever the status), unreachable."""
        self.cluster_forwards.labels(outcome).inc()

    def exposition(self) -> bytes:
        """The text exposition format, for ``GET /metrics``."""
        if self._speech_queue_source is not None:
            for stage, depth in self._speech_queue_source().items():
                self.speech_queue.labels(stage).set(depth)
        return generate_latest(self.registry)
