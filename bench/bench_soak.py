"""Soak: N real calls at concurrency C through a real ``ari-offload serve``, with hostile
callers, a misbehaving webhook, API actions on live calls, UDP garbage and (flags) an Asterisk
restart and a SIGKILL of the app mid-run; prints what was left behind and the memory curve.

    .venv/bin/python -m bench.bench_soak --calls 1000 --concurrency 6 --asterisk-restart --app-kill

Method: see testbed/soak.py. RSS is the app process's resident set (/proc/<pid>/statm),
sampled every --sample-every completed calls; the slope is a least-squares fit over the samples
after --warmup calls of each run of the app (a SIGKILL starts a new run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

from testbed.serve import errors_by_logger
from testbed.soak import Sample, SoakPlan, SoakReport, run_soak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--asterisk-restart", action="store_true", help="a third of the way in")
    parser.add_argument("--app-kill", action="store_true", help="SIGKILL two thirds of the way in")
    parser.add_argument("--hostile-share", type=float, default=0.6)
    parser.add_argument("--max-hangup-s", type=float, default=18.0)
    parser.add_argument("--sample-every", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=100, help="calls before the slope counts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE",
        help="extra environment for the app, e.g. MALLOC_ARENA_MAX=2 (repeatable)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the work dir (log, store)")
    args = parser.parse_args()
    plan = SoakPlan(
        calls=args.calls, concurrency=args.concurrency, asterisk_restart=args.asterisk_restart,
        app_kill=args.app_kill, seed=args.seed, hostile_share=args.hostile_share,
        max_hangup_s=args.max_hangup_s, sample_every=args.sample_every, warmup_calls=args.warmup,
        extra_env=dict(item.split("=", 1) for item in args.env),
    )  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="ari-offload-soak-"))
    try:
        report = asyncio.run(run_soak(plan, workdir))
        print(format_report(report, workdir))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    problems = [
        report.sipp_failures, report.leaked_channels, report.leaked_bridges,
        report.not_final, report.errors, report.turn_mismatches, report.lost_writes,
    ]  # fmt: skip
    clean = not any(problems) and report.alive_at_end and report.exit_code == 0
    print("CLEAN" if clean else "NOT CLEAN")
    return 0 if clean else 1


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


if __name__ == "__main__":
    sys.exit(main())
