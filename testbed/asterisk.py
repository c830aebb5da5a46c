"""The test-bed Asterisk, through ``scripts/testbed`` (the one implementation of start/stop)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ari_offload.config import AriSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTBED_SCRIPT = REPO_ROOT / "scripts" / "testbed"
# The test bed's own fixed password (asterisk-conf/testbed/ari.conf), loopback only.
TESTBED_ARI = AriSettings(password="testbed-secret")  # noqa: S106
# The test bed's operator policy: its routes, endpoints and transfer targets; webhooks on 127.0.0.1.
TESTBED_POLICY_FILE = REPO_ROOT / "asterisk-conf" / "testbed" / "policy.toml"


class TestbedError(RuntimeError):
    pass


# Timeout parameters (ASYNC109) here are deadlines of a test helper, applied inside.
async def _run(*args: str, timeout: float = 60.0) -> str:
    if not TESTBED_SCRIPT.exists():
        raise TestbedError(f"{TESTBED_SCRIPT} not found: the test bed needs a source checkout")
    proc = await asyncio.create_subprocess_exec(
        str(TESTBED_SCRIPT),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise TestbedError(f"scripts/testbed {' '.join(args)} failed:\n{text}")
    return text


class Testbed:
    __test__ = False  # not a pytest class

    async def start(self) -> None:
        await _run("start")

    async def stop(self) -> None:
        await _run("stop")

    async def restart(self) -> None:
        await _run("restart")

    async def crash(self) -> None:
        """SIGKILL Asterisk: no graceful hangups, no StasisEnd events."""
        await _run("crash")

    async def cli(self, command: str) -> str:
        return await _run("cli", command)

    async def wait_app(self, app: str = TESTBED_ARI.app, timeout: float = 60.0) -> None:
        """Wait until the Stasis app is registered (its ARI websocket is connected)."""
        async with asyncio.timeout(timeout):
            while app not in await self.cli("ari show apps"):
                await asyncio.sleep(0.2)

    async def channel_names(self) -> list[str]:
        """Names from `core show channels concise` (one line per channel)."""
        out = await self.cli("core show channels concise")
        return [line.split("!")[0] for line in out.splitlines() if "!" in line]

    async def bridge_ids(self) -> list[str]:
        out = await self.cli("bridge show all")
        rows = [line for line in out.splitlines() if line.strip()]
        return [row.split()[0] for row in rows if not row.startswith("Bridge-ID")]

    async def wait_idle(self, timeout: float = 10.0) -> tuple[list[str], list[str]]:
        """Wait until no channel and no bridge is left; return what is left at the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            channels, bridges = await self.channel_names(), await self.bridge_ids()
            if (not channels and not bridges) or loop.time() > deadline:
                return channels, bridges
            await asyncio.sleep(0.2)
