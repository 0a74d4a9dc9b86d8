"""Real servers for tests: PostgreSQL and Redis started on loopback in temporary folders.

Each returns a handle with a URL and a ``stop()``; fixtures in ``conftest.py`` share one
server per test session. When the binaries are missing the fixtures skip with the package
name to install (``make test`` installs them when it runs as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@dataclass
class PostgresServer:
    datadir: Path
    port: int
    bindir: Path

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    async def new_database(self) -> str:
        """A fresh empty database per test, so tests never see each other's rows."""
        import asyncpg  # type: ignore[import-untyped]

        name = f"t_{os.urandom(6).hex()}"
        conn = await asyncpg.connect(host="127.0.0.1", port=self.port, user="postgres")
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        _as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"])
        shutil.rmtree(self.datadir, ignore_errors=True)


def _as_postgres(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def start_postgres() -> PostgresServer:
    bindir = postgres_bin()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL server not installed (Debian package: postgresql)")
    datadir = Path(tempfile.mkdtemp(prefix="voxgate-pg-"))
    sockdir = datadir / "sock"
    sockdir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(datadir, "postgres", "postgres")
        shutil.chown(sockdir, "postgres", "postgres")
    pgdata = datadir / "data"
    res = _as_postgres(
        [str(bindir / "initdb"), "-D", str(pgdata), "-A", "trust", "-U", "postgres", "--no-sync"]
    )
    if res.returncode != 0:
        raise RuntimeError(f"initdb failed: {res.stderr[-2000:]}")
    port = free_port()
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockdir} -c fsync=off -c full_page_writes=off"
    res = _as_postgres(
        [str(bindir / "pg_ctl"), "-D", str(pgdata), "-o", opts, "-l", str(datadir / "log"), "-w", "start"]
    )
    if res.returncode != 0:
        log = (datadir / "log").read_text() if (datadir / "log").exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {res.stderr[-1000:]} {log[-2000:]}")
    server = PostgresServer(pgdata, port, bindir)
    server.datadir = pgdata
    return server


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]
    workdir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_redis() -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server not installed (Debian package: redis-server)")
    workdir = Path(tempfile.mkdtemp(prefix="voxgate-redis-"))
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return RedisServer(port, proc, workdir)
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("redis-server did not start")
