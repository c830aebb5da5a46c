"""The operator kit under deploy/: the alert rules pass promtool (its syntax check and the
rules' own unit tests), the rules and the Grafana dashboard name only metrics a running API
server exports, and the systemd unit and its environment file are valid.

promtool and systemd-analyze are installed by scripts/install-testbed: missing, they fail.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from ari_offload.config import Settings
from testbed.asterisk import REPO_ROOT
from tests.api_support import running_api

DEPLOY = REPO_ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts_test.yml"
DASHBOARD = DEPLOY / "grafana" / "ari-offload.json"
UNIT = DEPLOY / "systemd" / "ari-offload.service"
ENV_FILE = DEPLOY / "systemd" / "ari-offload.env"
VENV_COMMAND = REPO_ROOT / ".venv" / "bin" / "ari-offload"

# Series Prometheus makes itself, not the app.
PROMETHEUS_OWN = {"up"}
# What PromQL words and functions look like, to tell them from metric names.
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "le", "inf", "nan",
}  # fmt: skip
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: run scripts/install-testbed"
    return found


def _run(*args: str | Path, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    checked = _run(_promtool(), "check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout
    tested = _run(_promtool(), "test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    unit_tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    tested_alerts = {t["alertname"] for test in unit_tests for t in test["alert_rule_test"]}
    assert tested_alerts == alerts, "every alert has a promtool unit test that makes it fire"


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not its functions, keywords or labels)."""
    text = re.sub(r"label_values\(\s*([^,)]+)[^)]*\)", r"\1", expr)  # Grafana's: (metric, label)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", text)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = _GROUPING.sub("", text)  # by (instance, le) and the like
    names = set()
    for match in _NAME.finditer(text):
        rest = text[match.end() :].lstrip()
        word = match.group()
        if rest.startswith("(") or word.lower() in PROMQL_WORDS or re.fullmatch(r"\d.*", word):
            continue  # a function, a keyword
        names.add(word)
    return names


def _dashboard_queries(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition", "query") and isinstance(value, str):
                yield value
            else:
                yield from _dashboard_queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from _dashboard_queries(item)


async def _exported(tmp_path: Path) -> set[str]:
    """Every series name the running API server's /metrics can show."""
    async with (
        running_api(tmp_path) as env,
        aiohttp.ClientSession() as http,
        http.get(env.url("/metrics")) as r,
    ):
        assert r.status == 200
        text = await r.text()
    names = set()
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        names.add(family)
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_count", "_sum", "_created"),
            "summary": ("_count", "_sum", "_created"),
        }.get(kind, ())
        names |= {family + suffix for suffix in suffixes}
    return names


async def test_the_dashboard_and_the_rules_name_only_metrics_we_export(tmp_path: Path) -> None:
    exported = await _exported(tmp_path)
    assert "ari_offload_speech_queue_depth" in exported
    assert "ari_offload_turns_total" in exported

    dashboard = json.loads(DASHBOARD.read_text())
    queries = list(_dashboard_queries(dashboard))
    rules = [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    series = [
        s["series"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for s in test["input_series"]
    ]
    assert len(queries) > 15
    used: dict[str, set[str]] = {}
    for where, exprs in (("dashboard", queries), ("alert rules", rules), ("rule tests", series)):
        for expr in exprs:
            names = metric_names(expr)
            assert names, f"{where}: no metric in {expr!r}"
            for name in names:
                used.setdefault(name, set()).add(where)
    unknown = {name: where for name, where in used.items() if name not in exported | PROMETHEUS_OWN}
    assert unknown == {}, f"not exported by /metrics: {unknown}"
    # The parser itself: it finds names and skips what is not one.
    assert metric_names(
        'histogram_quantile(0.95, sum by (le) (rate(a_b_bucket{part="total", x=~"$i"}[5m])))'
        " / on (instance) c_d > 0 and bool up"
    ) == {"a_b_bucket", "c_d", "up"}
    assert metric_names("label_values(e_f, instance)") == {"e_f"}


def test_the_dashboard_is_importable_with_a_datasource_input() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
            assert panel["targets"], panel["title"]


def test_the_systemd_unit_verifies_and_runs_the_installed_command(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (Debian's systemd package)"
    unit = UNIT.read_text()
    assert "ExecStart=/opt/ari-offload/bin/ari-offload serve" in unit
    assert "EnvironmentFile=/etc/ari-offload/ari-offload.env" in unit
    # The same unit with this checkout's command and env file: systemd checks both exist.
    local = tmp_path / "ari-offload.service"
    local.write_text(
        unit.replace("/opt/ari-offload/bin/ari-offload", str(VENV_COMMAND)).replace(
            "/etc/ari-offload/ari-offload.env", str(ENV_FILE)
        )
    )
    verified = _run(analyze, "verify", local)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "ignoring" not in verified.stderr, verified.stderr  # an unknown or misspelled key


def _env_file() -> dict[str, str]:
    values = {}
    for line in ENV_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def test_the_environment_file_sets_real_settings_to_valid_values() -> None:
    values = _env_file()
    defaults = Settings()
    known = {
        f"ARI_OFFLOAD_{section.name.upper()}_{f.name.upper()}"
        for section in fields(defaults)
        for f in fields(getattr(defaults, section.name))
    }
    ours = {name for name in values if name.startswith("ARI_OFFLOAD_")}
    assert ours, "no setting in the environment file"
    assert ours <= known, f"not settings: {sorted(ours - known)}"
    assert set(values) - ours == {"HF_HUB_OFFLINE"}
    settings = Settings.from_env(values)  # raises ConfigError on a value it cannot read
    assert settings.api.signup_enabled is False
    assert str(settings.policy.file) == "/etc/ari-offload/policy.toml"
    assert str(settings.store.data_dir) == "/var/lib/ari-offload"
