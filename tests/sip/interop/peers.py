"""Real SIP peers for the interop tests: sipp runs and the voxgate edge under test.

Every process is started with a time limit and killed in ``finally``; every tool binds
127.0.0.1 explicitly. sipp runs in a temporary folder holding a ``pcap`` link to
``/usr/share/sip-tester`` (its built-in scenarios and ours name pcaps relative to it).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import shutil
import socket
import tempfile
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from voxgate.calls.manager import CallManager
from voxgate.sip.endpoint import SipEdge, SipEdgeOptions
from voxgate.sip.media import MediaOptions
from voxgate.sip.transaction import TimerValues

SCENARIOS = Path(__file__).parent / "scenarios"
PCAPS = Path("/usr/share/sip-tester")
SIPP = shutil.which("sipp")

needs_sipp = pytest.mark.skipif(SIPP is None, reason="sipp not installed (apt-get install sip-tester)")


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_sip_port() -> int:
    """A port free for both UDP and TCP."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


_rtp_base = 41000 + (os.getpid() % 40) * 200


def rtp_range(size: int = 100) -> tuple[int, int]:
    """A port range for one edge (distinct per test process and per call of this)."""
    global _rtp_base
    low = _rtp_base
    _rtp_base += size
    if _rtp_base > 60000:
        _rtp_base = 41000
    return low, low + size


@dataclass
class SippResult:
    returncode: int
    stdout: str
    stderr: str
    workdir: Path
    stats: dict[str, str] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def sipp(
    *args: str, timeout_s: float = 30.0, workdir: Path | None = None,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Start sipp (bound to 127.0.0.1) and always kill it at the end."""
    assert SIPP is not None
    cwd = workdir or Path(tempfile.mkdtemp(prefix="sipp-"))
    link = cwd / "pcap"
    if not link.exists():
        link.symlink_to(PCAPS)
    proc = await asyncio.create_subprocess_exec(
        SIPP, *args, "-i", "127.0.0.1", "-mi", "127.0.0.1", "-nostdin",
        "-timeout", f"{int(timeout_s)}s", "-timeout_error",
        cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def run_sipp(*args: str, timeout_s: float = 30.0) -> SippResult:
    """Run sipp to completion (killed after ``timeout_s`` + 5 s)."""
    workdir = Path(tempfile.mkdtemp(prefix="sipp-"))
    async with sipp(*args, timeout_s=timeout_s, workdir=workdir) as proc:
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout_s + 5)
        except TimeoutError:
            proc.kill()
            out, err = await proc.communicate()
    result = SippResult(proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"), workdir)
    return result


def scenario(name: str) -> str:
    return str(SCENARIOS / name)


def edge_options(**overrides: object) -> SipEdgeOptions:
    port = free_sip_port()
    defaults: dict[str, object] = {
        "ports": {"udp": port, "tcp": port},
        "allowed": [ipaddress.ip_network("127.0.0.0/8")],
        "rtp_ports": rtp_range(),
        "media": MediaOptions(media_timeout_s=10.0),
    }
    defaults.update(overrides)
    return SipEdgeOptions(**defaults)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running_edge(
    manager: CallManager, options: SipEdgeOptions | None = None,
    timers: TimerValues | None = None,
) -> AsyncIterator[SipEdge]:  # fmt: skip
    edge = SipEdge(options or edge_options(), manager, timers=timers)
    await edge.start()
    try:
        yield edge
    finally:
        await edge.close()


def target(edge: SipEdge, transport: str = "udp") -> str:
    return f"127.0.0.1:{edge.transports.port(transport)}"


BARESIP = shutil.which("baresip")
needs_baresip = pytest.mark.skipif(BARESIP is None, reason="baresip not installed (apt-get install baresip)")
AUDIO = Path("/work/shared/audio")


def baresip_config(folder: Path, *, sip_port: int, source_wav: Path, rtp_ports: tuple[int, int]) -> Path:
    """A headless baresip config (see tests/interop/README.md): plays ``source_wav`` as its
    microphone, records what it receives as ``folder/rec/dump-*-dec.wav``, auto-answers."""
    cfg = folder / "cfg"
    rec = folder / "rec"
    cfg.mkdir(parents=True, exist_ok=True)
    rec.mkdir(exist_ok=True)
    (cfg / "config").write_text(
        "\n".join([
            "poll_method epoll", f"sip_listen 127.0.0.1:{sip_port}", "net_interface 127.0.0.1",
            "audio_player aubridge,sink", f"audio_source aufile,{source_wav}", "audio_alert aubridge,sink",
            "ausrc_srate 8000", "auplay_srate 8000", "ausrc_channels 1", "auplay_channels 1",
            "module_path /usr/lib/baresip/modules", "module g711.so", "module aufile.so",
            "module aubridge.so", "module sndfile.so", "module_app account.so", "module_app menu.so",
            f"snd_path {rec}", f"rtp_ports {rtp_ports[0]}-{rtp_ports[1]}", "",
        ])
    )  # fmt: skip
    (cfg / "accounts").write_text("<sip:alice@127.0.0.1>;regint=0;answermode=auto\n")
    return cfg


@contextlib.asynccontextmanager
async def baresip(cfg: Path, *commands: str, quit_after_s: int = 12) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run baresip headless (``-t`` bounds its life); killed at the end whatever happens."""
    assert BARESIP is not None
    args = ["-f", str(cfg), "-t", str(quit_after_s)]
    for command in commands:
        args += ["-e", command]
    proc = await asyncio.create_subprocess_exec(
        BARESIP, *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def stop_process(proc: asyncio.subprocess.Process, grace_s: float = 3.0) -> None:
    """SIGTERM (baresip then finishes its recordings' WAV headers), SIGKILL after a grace."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def read_pcm16(path: Path) -> np.ndarray:
    """A baresip recording as int16 (falls back to raw data after the header if unfinished)."""
    try:
        with wave.open(str(path)) as w:
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
    except (wave.Error, EOFError):
        return np.frombuffer(path.read_bytes()[44:], dtype="<i2").astype(np.int16)
