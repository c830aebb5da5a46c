"""A real ``ari-offload serve`` process on the test bed, watched from outside like an operator
would: its log, its RSS, open fds and threads from /proc, its UDP ports; killable by SIGKILL.

The soak benchmark and its short version in the tests run the app this way (not in-process)
so that a crash is a real crash and memory is the app's own, not the test runner's.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from testbed.asterisk import TESTBED_ARI, TESTBED_POLICY_FILE

READY_LINE = "REST API on "
# cli.py's log format: "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) +(?P<name>\S+): ")
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(frozen=True)
class ProcessSample:
    """What /proc says of the app at one moment."""

    rss_mb: float
    fds: int
    threads: int
    peak_mb: float = 0.0  # VmHWM: the highest RSS the process ever had


def soak_policy(directory: Path, tenant_concurrent: int, per_minute: int) -> Path:
    """The test bed's policy with quotas wide enough for a soak (the test bed's own are kept
    small to test them)."""
    text = TESTBED_POLICY_FILE.read_text()
    text = re.sub(r"(?m)^concurrent_calls = \d+", f"concurrent_calls = {tenant_concurrent}", text)
    text = re.sub(r"(?m)^calls_per_minute = \d+", f"calls_per_minute = {per_minute}", text)
    path = directory / "policy.toml"
    path.write_text(text)
    return path


class ServeProcess:
    """``python -m ari_offload.cli serve`` with its settings in the environment; every run of
    it appends to the same log file, so the log covers restarts and crashes too."""

    def __init__(
        self, data_dir: Path, api_port: int, policy: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.api_port = api_port
        self.log_path = data_dir / "serve.log"
        self._env = {
            **os.environ,
            "ARI_OFFLOAD_ARI_PASSWORD": TESTBED_ARI.password,
            "ARI_OFFLOAD_API_PORT": str(api_port),
            "ARI_OFFLOAD_STORE_DATA_DIR": str(data_dir),
            "ARI_OFFLOAD_POLICY_FILE": str(policy),
            **(extra_env or {}),
        }
        self._proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/v1.0"

    @property
    def pid(self) -> int:
        assert self._proc is not None, "start() first"
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self, timeout_s: float = 120.0) -> None:
        """Start and wait until its REST API is up (the models load first)."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ari_offload.cli", "serve", env=self._env,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        self.starts += 1
        async with asyncio.timeout(timeout_s):
            while READY_LINE not in self._log_since(offset):
                if self._proc.returncode is not None:
                    raise RuntimeError(
                        f"serve exited with {self._proc.returncode}: see {self.log_path}"
                    )
                await asyncio.sleep(0.2)

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or the OOM killer."""
        if self.running:
            assert self._proc is not None
            self._proc.send_signal(signal.SIGKILL)
            await self._proc.wait()

    async def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, as systemd stops it; returns its exit code."""
        assert self._proc is not None, "start() first"
        if self._proc.returncode is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(timeout_s):
                    await self._proc.wait()
            except TimeoutError:
                await self.kill()
        return self._proc.returncode or 0

    def lines_with(self, text: str) -> list[str]:
        return [line for line in self.log_text().splitlines() if text in line]

    def sample(self) -> ProcessSample:
        status = Path(f"/proc/{self.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss_kb = int(Path(f"/proc/{self.pid}/statm").read_text().split()[1]) * _PAGE_KB
        fds = len(os.listdir(f"/proc/{self.pid}/fd"))
        peak_kb = int(fields["VmHWM"].split()[0])
        return ProcessSample(rss_kb / 1024, fds, int(fields["Threads"].strip()), peak_kb / 1024)

    def udp_ports(self) -> list[int]:
        """The UDP ports the app has bound on 127.0.0.1 (its RTP endpoints), from /proc."""
        inodes = set()
        fd_dir = Path(f"/proc/{self.pid}/fd")
        for fd in fd_dir.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue  # closed meanwhile
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        ports = []
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[9] in inodes and cols[1].startswith("0100007F:"):
                ports.append(int(cols[1].split(":")[1], 16))
        return ports

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def error_lines(self) -> list[str]:
        return error_lines(self.log_text())


def error_lines(log_text: str) -> list[str]:
    """Every ERROR or CRITICAL line of a ``serve`` log, from any logger (asyncio's included),
    and any traceback printed outside a logged error (an unhandled exception in a thread)."""
    found = []
    last_level = ""
    for line in log_text.splitlines():
        match = _LOG_LINE.match(line)
        if match:
            last_level = match["level"]
            if last_level in ("ERROR", "CRITICAL"):
                found.append(line)
        elif _unlogged_failure(line, last_level):
            found.append(line)
    return found


def _unlogged_failure(line: str, last_level: str) -> bool:
    """A traceback no ERROR record carries (a thread died), or a coroutine never awaited."""
    if line.startswith("Traceback"):
        return last_level not in ("ERROR", "CRITICAL")
    return "RuntimeWarning: coroutine" in line


def errors_by_logger(lines: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in lines:
        match = _LOG_LINE.match(line)
        if match:
            counts[match["name"]] += 1
        elif "RuntimeWarning" in line:
            counts["(RuntimeWarning)"] += 1
        else:
            counts["(traceback outside a log record)"] += 1
    return counts
