"""The wheel as a user gets it: built, installed into a fresh venv outside the checkout, run.

One wheel is built (``python -m build``: the sdist, then the wheel from the unpacked sdist, so
nothing stale in the checkout can leak in) and installed with its dependencies from PyPI into
one venv per session. Every command then runs from a directory outside the checkout, so nothing
can import from the source tree.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from ari_offload import __version__
from testbed.asterisk import REPO_ROOT, TESTBED_ARI, TESTBED_POLICY_FILE, Testbed
from tests.api_support import running_api
from tests.integration.test_cli import free_port
from tests.mcp_support import EXPECTED_TOOLS, mcp_session, tool_result

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]  # the first test builds
# The modules, the typing marker, and the console's files (served at /console).
SHIPPED_SUFFIXES = {".py", ".typed", ".html", ".css", ".js", ".svg"}


@dataclass(frozen=True)
class Installed:
    sdist: Path
    wheel: Path
    venv: Path
    outside: Path  # a working directory outside the checkout

    @property
    def command(self) -> str:
        return str(self.venv / "bin" / "ari-offload")

    def env(self, **extra: str) -> dict[str, str]:
        """This environment without anything that could point Python at the checkout."""
        drop = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
        return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def _run(*args: str | Path, cwd: Path) -> None:
    # Without PYTHONPATH: a checkout on it (a worktree's, with the egg-info the build leaves
    # there) reads as ari-offload already installed, and pip would skip the wheel.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=500,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    dist, outside = tmp_path_factory.mktemp("dist"), tmp_path_factory.mktemp("outside")
    _run(sys.executable, "-m", "build", "--outdir", dist, REPO_ROOT, cwd=outside)
    (sdist,), (wheel,) = dist.glob("ari_offload-*.tar.gz"), dist.glob("ari_offload-*.whl")
    venv = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=outside)
    # This venv's pip installs into the new one: a current pip resolves the dependencies from
    # PyPI in ~30 s, where the pip that venv bundles takes minutes over the same index pages.
    _run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q",
         "--no-compile", wheel, cwd=outside)  # fmt: skip
    return Installed(sdist, wheel, venv, outside)


def test_the_wheel_and_sdist_hold_the_package_and_nothing_else(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    shipped = {n for n in names if ".dist-info/" not in n}
    source = REPO_ROOT / "ari_offload"
    expected = {
        f"ari_offload/{p.relative_to(source).as_posix()}"
        for p in source.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in SHIPPED_SUFFIXES
    }

    assert shipped == expected  # every module, py.typed, the console; no testbed/, tests/...
    assert "ari_offload/api/console/index.html" in shipped
    assert "ari_offload/ari/__init__.py" in shipped
    assert "ari_offload/py.typed" in shipped

    with tarfile.open(installed.sdist) as sdist:
        top = {Path(name).parts[1] for name in sdist.getnames() if len(Path(name).parts) > 1}
    assert "ari_offload" in top
    assert not top & {"testbed", "tests", "bench"}


async def _output(installed: Installed, *args: str, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=installed.outside, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def test_the_installed_package_comes_from_the_venv(installed: Installed) -> None:
    python = str(installed.venv / "bin" / "python")
    code, where = await _output(
        installed, python, "-c", "import ari_offload; print(ari_offload.__file__)",
        env=installed.env(),
    )  # fmt: skip
    assert code == 0, where
    assert Path(where.strip()).is_relative_to(installed.venv)

    code, version = await _output(installed, installed.command, "--version", env=installed.env())
    assert code == 0, version
    assert version.strip() == f"ari-offload {__version__}"


def _product_env(installed: Installed, store: Path, api_port: int) -> dict[str, str]:
    return installed.env(
        ARI_OFFLOAD_ARI_PASSWORD=TESTBED_ARI.password,
        ARI_OFFLOAD_POLICY_FILE=str(TESTBED_POLICY_FILE),
        ARI_OFFLOAD_API_PORT=str(api_port),
        ARI_OFFLOAD_STORE_DATA_DIR=str(store),
    )


async def test_installed_doctor_says_all_good(
    installed: Installed, testbed: Testbed, tmp_path: Path
) -> None:
    env = _product_env(installed, tmp_path, free_port())
    code, report = await _output(installed, installed.command, "doctor", env=env)

    assert code == 0, report
    assert "Asterisk 22." in report
    assert "whisper" in report.lower()
    assert "piper" in report.lower()
    assert "result     all good" in report


async def _wait_for_api(http: aiohttp.ClientSession, base: str) -> None:
    async with asyncio.timeout(90):  # the models load first
        while True:
            try:
                async with http.get(f"{base}/v1.0/openapi.json") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.3)


async def test_installed_serve_answers_and_stops_on_sigterm(
    installed: Installed, testbed: Testbed, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = await asyncio.create_subprocess_exec(
        installed.command, "serve", cwd=installed.outside,
        env=_product_env(installed, tmp_path, port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:
            await _wait_for_api(http, base)
            async with http.get(f"{base}/v1.0/agents", params={"accesskey": "ak_wrong"}) as resp:
                status, body = resp.status, await resp.json()
            async with http.get(f"{base}/console") as resp:  # from the wheel's package data
                console = (
                    resp.status,
                    resp.content_type,
                    "script-src 'self'" in resp.headers.get("Content-Security-Policy", ""),
                )
        assert "ari-offload" in await testbed.cli("ari show apps")
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(server.communicate(), 30)
    log = out.decode(errors="replace")

    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    assert console == (200, "text/html", True)
    assert server.returncode == 0, log
    assert "REST API on" in log
    assert not [line for line in log.splitlines() if " ERROR " in line], log
    assert (tmp_path / "ari-offload.db").exists()


async def test_installed_mcp_speaks_mcp_over_stdio(installed: Installed, tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        token = await api.signup("assistant", "password1")
        async with mcp_session(
            api.base_url,
            token,
            tmp_path / "mcp.log",
            command=(installed.command, "mcp"),
            cwd=installed.outside,
        ) as mcp:
            tools = {tool.name for tool in (await mcp.list_tools()).tools}
            created = tool_result(
                await mcp.call_tool(
                    "create_agent",
                    {"name": "from-the-wheel", "webhook": "http://127.0.0.1:9000/hook"},
                )
            )
            listed = tool_result(await mcp.call_tool("list_agents", {}))

    assert tools >= EXPECTED_TOOLS
    assert created["name"] == "from-the-wheel"
    assert [agent["id"] for agent in listed["agents"]] == [created["id"]]
