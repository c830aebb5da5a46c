"""A throwaway PostgreSQL server for the store and API tests (Debian's ``postgresql`` package).

``postgres`` (session scope) runs ``initdb`` and ``pg_ctl start`` in a temp dir: 127.0.0.1 on a
free port plus a unix socket in that dir, trust auth, ``fsync=off``. It is stopped with
``pg_ctl stop -m fast`` at the end. ``postgres_url`` (per test) is a fresh, empty database.

The cluster is deliberately unlike SQLite where that can hide bugs: ICU ``en-US`` collation
(which sorts "a" before "B", as most production clusters do) and a server time zone that is
not UTC.

Missing binaries FAIL the tests (never skip): ``scripts/install-testbed`` installs them.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN_GLOB = "/usr/lib/postgresql/*/bin"
OS_USER = "postgres"  # initdb and the server refuse to run as root
SUPERUSER = "postgres"
SESSION_DB = "ari_offload_test"
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",  # a throwaway cluster: durability buys nothing, speed does
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "32MB",
    "timezone": "'America/New_York'",  # the store must not depend on a UTC server
    "log_min_messages": "warning",
}
DIR_PREFIX = "ari-offload-pg-"
OWNER_FILE = "owner.pid"  # the pytest process that started the server in this dir
START_TIMEOUT_S = 60
START_TRIES = 3  # a free port can be taken between probing it and the server binding it


def bin_dir() -> Path:
    """The newest installed PostgreSQL server's bin dir; fails the test if there is none."""
    found = [Path(d) for d in glob.glob(BIN_GLOB) if Path(d, "initdb").is_file()]
    if not found:
        pytest.fail(
            f"PostgreSQL server binaries not found ({BIN_GLOB}/initdb): the store tests run on "
            "a real PostgreSQL; run scripts/install-testbed (installs Debian's postgresql)",
            pytrace=False,
        )
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)


@dataclass(frozen=True)
class PostgresServer:
    pg_bin: Path
    host: str
    port: int
    database: str  # created at start; tests that want isolation use new_database()

    @property
    def url(self) -> str:
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def client(self, tool: str, *args: str) -> None:
        # Over TCP with trust auth: no need to be the postgres OS user.
        cmd = [str(self.pg_bin / tool), "-h", self.host, "-p", str(self.port), "-U", SUPERUSER]
        result = subprocess.run([*cmd, *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {result.stderr.strip()}")

    def new_database(self) -> str:
        """A new empty database with a unique name; returns its name."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.client("createdb", name)
        return name

    def drop_database(self, name: str) -> None:
        self.client("dropdb", "--force", "--if-exists", name)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _as_postgres(cmd: list[str]) -> list[str]:
    """Run as the postgres OS user when we are root (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", OS_USER, "--", *cmd]


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _as_postgres(cmd), cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )


def _make_dir() -> Path:
    """A temp dir the server's OS user owns (pytest's own tmp dirs are root-only)."""
    path = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
    (path / OWNER_FILE).write_text(str(os.getpid()))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(OS_USER)
        except KeyError:
            shutil.rmtree(path)
            pytest.fail(
                f"no {OS_USER!r} OS user: run scripts/install-testbed (Debian's postgresql)",
                pytrace=False,
            )
        os.chown(path, user.pw_uid, user.pw_gid)
    return path


def _start(pg_bin: Path, root: Path) -> int:
    """initdb + pg_ctl start; returns the port the server listens on."""
    data, sock, log = root / "data", root / "sock", root / "server.log"
    init = _run(
        [
            str(pg_bin / "initdb"),
            "-D", str(data),
            "-U", SUPERUSER,
            "-A", "trust",
            "-E", "UTF8",
            "--locale=C.UTF-8",
            "--locale-provider=icu",
            "--icu-locale=en-US",
            "--no-sync",
        ],
        root,
    )  # fmt: skip
    if init.returncode != 0:
        pytest.fail(f"initdb failed:\n{init.stdout}\n{init.stderr}", pytrace=False)
    _run(["mkdir", "-m", "700", str(sock)], root)
    for _ in range(START_TRIES):
        port = free_port()
        opts = {**SERVER_SETTINGS, "port": str(port), "unix_socket_directories": f"'{sock}'"}
        conf = "".join(f"{k} = {v}\n" for k, v in opts.items())
        subprocess.run(  # each try rewrites the file: the port changes
            _as_postgres(["sh", "-c", f"cat > '{data}/postgresql.auto.conf'"]),
            input=conf, text=True, check=True, cwd=root,
        )  # fmt: skip
        started = _run(
            [str(pg_bin / "pg_ctl"), "start", "-w", "-t", str(START_TIMEOUT_S), "-D", str(data),
             "-l", str(log)],
            root,
        )  # fmt: skip
        if started.returncode == 0:
            return port
    log_text = log.read_text(errors="replace") if log.exists() else "(no log)"
    pytest.fail(f"pg_ctl start failed:\n{started.stderr}\n{log_text[-3000:]}", pytrace=False)


def _stop(pg_bin: Path, root: Path, mode: str = "fast") -> None:
    _run([str(pg_bin / "pg_ctl"), "stop", "-m", mode, "-w", "-D", str(root / "data")], root)


def _reap_orphans(pg_bin: Path) -> None:
    """Stop servers that this fixture started in runs that died before their teardown."""
    for root in Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}*"):
        try:
            owner = int((root / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if Path(f"/proc/{owner}").exists():
            continue  # that run is still going
        if _server_running_in(root):
            _stop(pg_bin, root, "immediate")
        shutil.rmtree(root, ignore_errors=True)


def _server_running_in(root: Path) -> bool:
    """Whether postmaster.pid names a live postgres whose data dir is this one."""
    try:
        pid = int((root / "data" / "postmaster.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return False
    return str(root / "data").encode() in cmdline


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A running throwaway PostgreSQL with an empty database ``ari_offload_test``."""
    pg_bin = bin_dir()
    _reap_orphans(pg_bin)
    root = _make_dir()
    began = time.monotonic()
    try:
        port = _start(pg_bin, root)
        server = PostgresServer(pg_bin=pg_bin, host="127.0.0.1", port=port, database=SESSION_DB)
        server.client("createdb", SESSION_DB)
        print(f"\nPostgreSQL ready on 127.0.0.1:{port} in {time.monotonic() - began:.2f}s")
        yield server
    finally:
        _stop(pg_bin, root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    """A fresh empty database on the session's server, dropped after the test."""
    name = postgres.new_database()
    yield postgres.url_for(name)
    postgres.drop_database(name)
