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
import shutil
import sys
import tempfile
from pathlib import Path

from testbed.soak import SoakPlan, run_soak
from testbed.soak_report import format_report


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


if __name__ == "__main__":
    sys.exit(main())
