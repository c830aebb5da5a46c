"""The two-node cluster of ``scripts/cluster`` (the one implementation of starting and
stopping it), driven from Python: calls through its Kamailio, node kills and restarts,
Kamailio's view of the nodes, the nodes' logs and their shared store."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from ari_offload.config import StoreSettings
from ari_offload.store import Store
from testbed.asterisk import REPO_ROOT
from testbed.serve import error_lines

CLUSTER_SCRIPT = REPO_ROOT / "scripts" / "cluster"
PROXY = "127.0.0.4:5060"  # Kamailio, as scripts/cluster and asterisk-conf/cluster set it
NODES = {"a": "127.0.0.2", "b": "127.0.0.3"}
API_PORT = 8080
UP_TIMEOUT_S = 240.0


class ClusterError(RuntimeError):
    pass


class Cluster:
    """One cluster with its own state dir (logs, PostgreSQL data) and PostgreSQL port."""

    def __init__(self, pg_port: int, state_dir: Path | None = None) -> None:
        if shutil.which("kamailio") is None or shutil.which("kamcmd") is None:
            raise ClusterError("kamailio not found: run scripts/install-testbed")
        # PostgreSQL runs as its own OS user: it must reach the state dir.
        self.state_dir = state_dir or Path(tempfile.mkdtemp(prefix="aoff-cluster-"))
        self.state_dir.chmod(0o755)
        self.store_url = f"postgresql+asyncpg://postgres@127.0.0.1:{pg_port}/ari_offload"
        self._env = {
            **os.environ,
            "ARI_OFFLOAD_CLUSTER_DIR": str(self.state_dir),
            "ARI_OFFLOAD_CLUSTER_PG_PORT": str(pg_port),
        }

    @staticmethod
    def api(node: str) -> str:
        return f"http://{NODES[node]}:{API_PORT}"

    def up(self) -> float:
        """``scripts/cluster up``; returns how long it took (seconds)."""
        started = time.monotonic()
        self._run_sync("up", timeout_s=UP_TIMEOUT_S)
        return time.monotonic() - started

    def down(self) -> None:
        self._run_sync("down", timeout_s=120)

    def remove(self) -> None:
        shutil.rmtree(self.state_dir, ignore_errors=True)

    async def kill(self, node: str) -> None:
        """SIGKILL the node's app and its Asterisk, as a machine that dies."""
        await self._run("kill", node, timeout_s=60)

    async def kill_app(self, node: str) -> None:
        """SIGKILL only the node's ari-offload; its Asterisk goes on."""
        await self._run("kill-app", node, timeout_s=60)

    async def start(self, node: str) -> None:
        """Start the node; returns once Kamailio sees it answer and its app is in Stasis."""
        await self._run("start", node, timeout_s=UP_TIMEOUT_S)

    async def dispatcher_flags(self, node: str) -> str:
        """Kamailio's state of the node: AP active, IP inactive (probing)."""
        proc = await asyncio.create_subprocess_exec(
            "kamcmd", "-s", f"unix:{self.state_dir}/kamailio.ctl", "dispatcher.list",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await proc.communicate()
        uri, flags = f"sip:{NODES[node]}:5060", ""
        lines = [line.split() for line in out.decode().splitlines()]
        for i, words in enumerate(lines):
            if words == ["URI:", uri]:
                flags = next((w[1] for w in lines[i + 1 :] if w and w[0] == "FLAGS:"), "")
                break
        return flags

    def log_text(self, node: str) -> str:
        path = self.state_dir / f"node-{node}" / "serve.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kamailio_log(self) -> str:
        path = self.state_dir / "kamailio.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def error_lines(self) -> list[str]:
        """Every ERROR line any node's app logged, over all its runs."""
        return [f"node {n}: {line}" for n in NODES for line in error_lines(self.log_text(n))]

    @asynccontextmanager
    async def store(self) -> AsyncIterator[Store]:
        """The cluster's shared store, opened as one more client."""
        store = await Store.open(StoreSettings(data_dir=self.state_dir, url=self.store_url))
        try:
            yield store
        finally:
            await store.close()

    def _run_sync(self, *args: str, timeout_s: float) -> None:
        result = subprocess.run(
            [str(CLUSTER_SCRIPT), *args], env=self._env, capture_output=True, text=True,
            timeout=timeout_s, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise ClusterError(f"scripts/cluster {' '.join(args)} failed:\n"
                               f"{result.stdout}{result.stderr}")  # fmt: skip

    async def _run(self, *args: str, timeout_s: float) -> None:
        proc = await asyncio.create_subprocess_exec(
            str(CLUSTER_SCRIPT), *args, env=self._env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
        if proc.returncode != 0:
            raise ClusterError(f"scripts/cluster {' '.join(args)} failed:\n{out.decode()}")
