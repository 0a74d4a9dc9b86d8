"""`voxgate serve` as a user runs it: a real process, a real port, SIGTERM drains and exits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_prints_where_to_call_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "VOXGATE_AUTH__API_TOKENS": '["tok-abc-123"]',
        "VOXGATE_RECORDS__DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/records.db",
        "VOXGATE_RECORDS__RECORDINGS_DIR": str(tmp_path / "recordings"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "voxgate.cli", "serve", "--port", str(port), "--no-sip"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "voxgate is up" in line:
                break
        out = "".join(lines)
        assert "voxgate is up" in out, out
        r = httpx.get(f"http://127.0.0.1:{port}/v1/info", headers={"Authorization": "Bearer tok-abc-123"})
        assert r.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/v1/info").status_code == 401
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "tok-abc-123" not in out  # a configured token is never printed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
