"""The soak's audit reads the app's log and memory samples the way an operator would."""

from __future__ import annotations

from pathlib import Path

from testbed.serve import ProcessSample, ServeProcess, errors_by_logger
from testbed.soak import Sample, SoakPlan, SoakReport
from testbed.soak_report import format_report

LOG = """\
2026-12-02 04:00:00,001 INFO    ari_offload: REST API on http://127.0.0.1:1/v1.0
2026-12-02 04:00:01,002 ERROR   asyncio: Task was destroyed but it is pending!
task: <Task pending name='Task-9' coro=<Event.wait() running at locks.py:212>>
2026-12-02 04:00:02,003 ERROR   ari_offload.ari: call x: failed; hanging up
Traceback (most recent call last):
  File "x.py", line 1, in <module>
ValueError: logged with its error, counted once
2026-12-02 04:00:03,004 WARNING ari_offload.store: call y: not recorded
Exception in thread Thread-3:
Traceback (most recent call last):
RuntimeError: a thread died, nothing logged it
2026-12-02 04:00:04,005 CRITICAL aiohttp.server: boom
/x/y.py:3: RuntimeWarning: coroutine 'f' was never awaited
"""


def test_error_lines_come_from_every_logger_and_bare_tracebacks(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path, 1, tmp_path / "policy.toml")
    serve.log_path.write_text(LOG)

    errors = serve.error_lines()

    assert len(errors) == 5
    assert dict(errors_by_logger(errors)) == {
        "asyncio": 1,
        "ari_offload.ari": 1,
        "(traceback outside a log record)": 1,
        "aiohttp.server": 1,
        "(RuntimeWarning)": 1,
    }


def test_rss_slope_is_per_run_after_warm_up() -> None:
    report = SoakReport(SoakPlan(calls=400, concurrency=6, warmup_calls=100))

    def at(calls: int, run: int, rss: float) -> Sample:
        return Sample(calls, run, ProcessSample(rss, 20, 12))

    # Run 1 grows fast while warming up, then 2 MB per 100 calls; run 2 (after a SIGKILL)
    # starts lower and stays flat.
    report.samples = [at(0, 1, 300), at(50, 1, 400), at(100, 1, 450), at(200, 1, 452),
                      at(300, 1, 454), at(300, 2, 350), at(350, 2, 420), at(400, 2, 430),
                      at(500, 2, 430), at(600, 2, 430)]  # fmt: skip

    slopes = report.rss_slopes()

    assert round(slopes[1], 3) == 2.0
    assert round(slopes[2], 3) == 0.0


def test_the_report_prints_the_curve_the_slope_and_the_peak_growth() -> None:
    report = SoakReport(SoakPlan(calls=300, concurrency=6, warmup_calls=100, sample_every=10))
    report.samples = [
        Sample(n, 1 if n <= 200 else 2, ProcessSample(400 + (n % 30), 30, 20, 450 + n // 100))
        for n in range(0, 310, 10)
    ]

    text = format_report(report, Path("/tmp/soak"))

    assert "peak RSS (VmHWM) growth after warm-up: run 1: +1 MB over 100 calls" in text
    assert "RSS slope after warm-up" in text
    table = [line for line in text.splitlines() if line.strip()[:1].isdigit() and "|" in line]
    assert [int(line.split("|")[0]) for line in table] == [0, 50, 100, 150, 200, 210, 250, 300]
