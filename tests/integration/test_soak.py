"""The soak benchmark's short version (bench/bench_soak.py runs the long one): 30 real SIPp
calls, four at a time, hung up at random moments, a webhook that misbehaves in 60% of
requests, API talk/hangup on live calls, garbage UDP at every app port and an Asterisk
restart a third of the way in, against a real ``ari-offload serve`` process."""

from __future__ import annotations

from pathlib import Path

from testbed.asterisk import Testbed
from testbed.soak import SoakPlan, run_soak


async def test_thirty_hostile_calls_leave_nothing_and_lose_nothing(
    testbed: Testbed, tmp_path: Path
) -> None:
    plan = SoakPlan(calls=30, concurrency=4, asterisk_restart=True, max_hangup_s=14.0)

    report = await run_soak(plan, tmp_path)

    summary = (
        f"placed {report.placed}, recorded {report.recorded}, faults {report.faults}, "
        f"webhook {report.webhook_behaviours}, API {dict(report.api_actions)}"
    )
    print(summary)  # in the test's captured output when it fails
    assert report.placed == 30
    # A call being set up when Asterisk restarts may be refused by Asterisk itself; every
    # other call completes, and every call Asterisk let through has its record.
    assert report.sipp_failures == []
    assert len(report.cut_by_fault) <= plan.concurrency
    assert report.recorded >= report.placed - len(report.cut_by_fault)
    assert len(report.faults) == 1
    assert report.faults[0].startswith("Asterisk restart before call")
    assert (report.leaked_channels, report.leaked_bridges) == ([], [])
    assert report.not_final == [], "every call is final in the API"
    assert report.errors == [], "no ERROR line from any logger in the app's log"
    assert report.alive_at_end, "the app survived"
    assert report.exit_code == 0, "and stopped cleanly on SIGTERM"
    assert not [a for a in report.api_actions if a.split()[1].startswith("5")], "no 5xx"
    # What the agent was asked is what the store kept, call by call.
    assert report.turns_received > 10, "the callers got far enough to talk to the agent"
    assert report.turn_mismatches == []
    assert report.lost_writes == [], "no store write was lost"
    # The hostility really happened.
    assert report.udp_packets > 100
    assert sum(n for b, n in report.webhook_behaviours.items() if b != "good") > 5
    assert any(a.startswith("talk 200") for a in report.api_actions)
