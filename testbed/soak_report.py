"""The soak's report as bench/bench_soak.py prints it: the audit, then the memory curve."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from testbed.serve import errors_by_logger
from testbed.soak import Sample, SoakReport

TABLE_EVERY = 50


def _table_rows(report: SoakReport) -> list[Sample]:
    rows = report.samples
    return [
        s for i, s in enumerate(rows)
        if s.calls_done % TABLE_EVERY == 0 or i in (0, len(rows) - 1)
        or rows[max(0, i - 1)].run != s.run or rows[min(len(rows) - 1, i + 1)].run != s.run
    ]  # fmt: skip


def format_report(report: SoakReport, workdir: Path) -> str:
    plan = report.plan
    out = [
        f"# soak: {plan.calls} calls, concurrency {plan.concurrency}, hostile webhook share "
        f"{plan.hostile_share:.0%}, hangups 0.5-{plan.max_hangup_s:g} s, seed {plan.seed}",
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}; extra env: {plan.extra_env or 'none'}",
        f"faults: {'; '.join(report.faults) or 'none'}",
        f"took {report.seconds / 60:.1f} min; work dir {workdir}",
        "",
        f"calls placed {report.placed}, answered {report.answered}, recorded {report.recorded}; "
        f"SIPp failures {len(report.sipp_failures)} {report.sipp_failures[:3]}; calls live "
        f"during a fault that failed {len(report.cut_by_fault)} {report.cut_by_fault[:3]}",
        f"hangup reasons: {dict(report.hangup_reasons.most_common())}",
        f"leaked channels {len(report.leaked_channels)} {report.leaked_channels[:5]}, "
        f"leaked bridges {len(report.leaked_bridges)} {report.leaked_bridges[:5]}",
        f"calls not final in the API: {len(report.not_final)} {report.not_final[:5]}",
        f"ERROR lines (any logger): {len(report.errors)} {dict(errors_by_logger(report.errors))}",
        *[f"  {line[:200]}" for line in report.errors[:10]],
        f"app alive at the end: {report.alive_at_end}; exit code on SIGTERM: {report.exit_code}",
        f"webhook behaviours: {report.webhook_behaviours}",
        f"API actions on live calls: {dict(sorted(report.api_actions.items()))}",
        f"UDP garbage packets sent to the app: {report.udp_packets}",
        f"turns: webhook asked {report.turns_received}, store kept {report.turns_stored}; "
        f"calls that differ: {len(report.turn_mismatches)}; store writes lost "
        f'("not recorded" warnings): {len(report.lost_writes)}',
        *[f"  {line}" for line in report.turn_mismatches[:10]],
        "",
        f"calls done | app run | RSS MB | peak RSS MB | fds | threads   (every {TABLE_EVERY} "
        "calls, and around each fault)",
        *[
            f"{s.calls_done:10d} | {s.run:7d} | {s.process.rss_mb:6.0f} | "
            f"{s.process.peak_mb:11.0f} | {s.process.fds:3d} | {s.process.threads:7d}"
            for s in _table_rows(report)
        ],
        f"RSS slope after warm-up ({plan.warmup_calls} calls per run), least squares over the "
        f"samples every {plan.sample_every} calls, MB per 100 calls: "
        + (", ".join(f"run {r}: {v:+.1f}" for r, v in report.rss_slopes().items()) or "n/a"),
        "peak RSS (VmHWM) growth after warm-up: "
        + ", ".join(
            f"run {r}: {mb:+.0f} MB over {n} calls" for r, (n, mb) in report.peak_growth().items()
        ),
    ]
    return "\n".join(out)
