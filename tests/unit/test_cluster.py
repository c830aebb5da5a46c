"""The cluster's decisions, without a database: who is live, who is lost, where an outbound
call goes, which node a request runs on, what a node signature proves; its settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ari_offload.api.app import all_routes
from ari_offload.api.errors import ApiError
from ari_offload.api.forward import MAX_SKEW_S, Forwarder, Placement, placement
from ari_offload.cluster import identity, is_live, least_loaded, lost_reason, node_id_of
from ari_offload.config import (
    ApiSettings,
    AriSettings,
    ClusterSettings,
    Settings,
    StoreSettings,
    check_cluster_settings,
)
from ari_offload.errors import ConfigError
from ari_offload.store import Node

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
TIMEOUT_S = 5.0
SECRET = "s3cret-shared-by-every-node"
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/ari_offload"


def node(
    node_id: str, silent_s: float = 0.0, connected: bool = True, down_s: float | None = None
) -> Node:
    return Node(
        id=node_id, api_url=f"http://{node_id}:8080", asterisk=f"asterisk-{node_id}",
        started_at=NOW - timedelta(hours=1), last_seen=NOW - timedelta(seconds=silent_s),
        load=0, ari_connected=connected,
        down_since=None if down_s is None else NOW - timedelta(seconds=down_s),
    )  # fmt: skip


def test_a_node_is_live_while_its_beats_are_fresh_and_its_asterisk_answers() -> None:
    assert is_live(node("a", silent_s=4.9), NOW, TIMEOUT_S)
    assert not is_live(node("a", silent_s=5.1), NOW, TIMEOUT_S)
    assert not is_live(node("a", connected=False, down_s=1), NOW, TIMEOUT_S)


def test_a_node_is_lost_after_the_timeout_of_silence_or_without_asterisk() -> None:
    assert lost_reason(node("a", silent_s=4), NOW, TIMEOUT_S) is None
    assert lost_reason(node("a", silent_s=7), NOW, TIMEOUT_S) == (
        "node-lost: node a sent no heartbeat for 7 s"
    )
    # Asterisk away, but not for long yet: its calls may come back.
    assert lost_reason(node("a", connected=False, down_s=3), NOW, TIMEOUT_S) is None
    assert lost_reason(node("a", connected=False, down_s=9), NOW, TIMEOUT_S) == (
        "node-lost: node a lost its Asterisk (asterisk-a) 9 s ago"
    )


def test_outbound_calls_go_to_the_live_node_with_the_fewest_calls() -> None:
    nodes = [node("a"), node("b"), node("c", silent_s=60)]
    assert least_loaded(nodes, {"a": 3, "b": 1}, "a", NOW, TIMEOUT_S) == nodes[1]
    # A tie stays on the node that was asked (no hop), else the first by id.
    assert least_loaded(nodes, {"a": 1, "b": 1}, "b", NOW, TIMEOUT_S) == nodes[1]
    assert least_loaded(nodes, {}, "c", NOW, TIMEOUT_S) == nodes[0]
    # The lost node c has no calls at all, and still gets none.
    assert least_loaded(nodes, {"a": 9, "b": 9}, "a", NOW, TIMEOUT_S) == nodes[0]
    assert least_loaded([node("a", connected=False)], {}, "a", NOW, TIMEOUT_S) is None


def test_live_call_commands_run_on_the_calls_node_whatever_their_name() -> None:
    """Every POST /calls/{call_id}/<command> (hangup, talk and any added later) is sent to
    the call's node: the rule is the route's shape, not a list to keep up to date."""
    where = {(r.method, r.path): r.placement for r in all_routes()}
    commands = [k for k in where if k[0] == "POST" and k[1].startswith("/v1.0/calls/{call_id}/")]
    assert ("POST", "/v1.0/calls/{call_id}/hangup") in commands
    assert ("POST", "/v1.0/calls/{call_id}/talk") in commands
    assert {where[k] for k in commands} == {Placement.CALL_NODE}
    assert where["POST", "/v1.0/calls"] is Placement.LEAST_LOADED
    # A recording is a file on the node that wrote it.
    assert where["GET", "/v1.0/calls/{call_id}/recording"] is Placement.RECORDER
    placed = {("POST", "/v1.0/calls"), ("GET", "/v1.0/calls/{call_id}/recording")}
    others = {v for k, v in where.items() if k not in commands and k not in placed}
    assert others == {Placement.ANY}
    assert placement("POST", "/v1.0/calls/{call_id}/transfer") is Placement.CALL_NODE
    assert placement("DELETE", "/v1.0/calls/{call_id}") is Placement.ANY


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def forwarder(node_id: str, secret: str = SECRET, clock: Clock | None = None) -> Forwarder:
    return Forwarder(
        node_id, secret, None,  # type: ignore[arg-type]  # never sends here
        timeout_s=1, node_timeout_s=TIMEOUT_S, clock=clock or Clock(),
    )  # fmt: skip


def test_a_node_signature_binds_node_time_method_path_and_body() -> None:
    clock = Clock()
    a, b = forwarder("a", clock=clock), forwarder("b", clock=clock)
    path, body = "/v1.0/calls/c1/talk?accesskey=k", b'{"text": "hi"}'
    header = a.sign("POST", path, body)

    assert b.verify(header, "POST", path, body) == "a"
    for method, other_path, other_body in (
        ("POST", path, b'{"text": "transfer me"}'),
        ("POST", "/v1.0/calls/c2/talk?accesskey=k", body),
        ("POST", "/v1.0/calls/c1/hangup?accesskey=k", body),
        ("DELETE", path, body),
    ):
        with pytest.raises(ApiError) as refused:
            b.verify(header, method, other_path, other_body)
        assert refused.value.status == 401
    with pytest.raises(ApiError):  # another cluster's secret
        forwarder("b", secret="another-cluster-secret").verify(header, "POST", path, body)
    with pytest.raises(ApiError):  # another node name in the same signature
        b.verify(header.replace("node=a", "node=b"), "POST", path, body)
    for garbage in ("", "node=a", "sig=00", header + ", x=1", header.replace("t=", "t=-")):
        with pytest.raises(ApiError):
            b.verify(garbage, "POST", path, body)
    clock.now += MAX_SKEW_S + 1  # replayed later
    with pytest.raises(ApiError):
        b.verify(header, "POST", path, body)


def cluster_settings(**changes: object) -> Settings:
    cluster = ClusterSettings(secret=SECRET, node_id="a")
    return Settings(
        api=ApiSettings(host="10.0.0.5", port=8080),
        ari=AriSettings(url="http://10.0.0.5:8088"),
        store=StoreSettings(url=PG),
        cluster=ClusterSettings(**{**vars(cluster), **changes}),
    )


def test_cluster_settings_come_from_the_environment() -> None:
    env = {
        "ARI_OFFLOAD_CLUSTER_SECRET": SECRET,
        "ARI_OFFLOAD_CLUSTER_NODE_ID": "a",
        "ARI_OFFLOAD_CLUSTER_API_URL": "http://10.0.0.5:8080",
        "ARI_OFFLOAD_CLUSTER_NODE_TIMEOUT_S": "8",
    }
    cluster = Settings.from_env(env).cluster
    assert cluster.enabled
    assert (cluster.node_id, cluster.node_timeout_s, cluster.heartbeat_s) == ("a", 8.0, 1.0)
    assert SECRET not in repr(cluster)
    assert not Settings.from_env({}).cluster.enabled
    assert node_id_of(Settings()) is None


def test_a_node_knows_where_the_others_reach_it() -> None:
    me = identity(cluster_settings(), 8080)
    assert (me.id, me.api_url, me.asterisk) == ("a", "http://10.0.0.5:8080", "10.0.0.5")
    assert identity(cluster_settings(api_url="http://a.lan:80/"), 8080).api_url == "http://a.lan:80"
    wildcard = Settings(api=ApiSettings(host="0.0.0.0"), cluster=ClusterSettings(secret=SECRET))
    with pytest.raises(ConfigError, match="ARI_OFFLOAD_CLUSTER_API_URL"):
        identity(wildcard, 8080)
    with pytest.raises(ConfigError, match="no path"):
        identity(cluster_settings(api_url="http://proxy/node-a"), 8080)


def test_cluster_settings_that_could_not_work_are_refused() -> None:
    check_cluster_settings(cluster_settings())
    check_cluster_settings(Settings())  # no cluster: nothing to check
    with pytest.raises(ConfigError, match="16 characters"):
        check_cluster_settings(cluster_settings(secret="short"))
    for url in ("", "sqlite+aiosqlite:///var/x.db"):
        settings = Settings(store=StoreSettings(url=url), cluster=ClusterSettings(secret=SECRET))
        with pytest.raises(ConfigError, match="PostgreSQL"):
            check_cluster_settings(settings)
    with pytest.raises(ConfigError, match="3 heartbeats"):
        check_cluster_settings(cluster_settings(heartbeat_s=2.0, node_timeout_s=5.0))
