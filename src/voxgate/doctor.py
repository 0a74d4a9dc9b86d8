"""``voxgate doctor``: what this machine has, so a broken install is found before a call is.

Each check returns rows (name, status, detail); a failed check never stops the others.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import socket
from collections.abc import Callable
from dataclasses import dataclass

from voxgate.config import Settings

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str
    detail: str


_PACKAGES = (
    "numpy",
    "av",
    "aiortc",
    "soxr",
    "pylibsrtp",
    "webrtcvad-wheels",
    "onnxruntime",
    "fastapi",
    "uvicorn",
    "websockets",
    "sqlalchemy",
    "prometheus-client",
    "opentelemetry-sdk",
    "uvloop",
    "faster-whisper",
    "piper-tts",
    "llama-cpp-python",
)


def check_versions() -> list[Check]:
    rows = [Check("python", OK, platform.python_version())]
    for dist in _PACKAGES:
        try:
            rows.append(Check(dist, OK, importlib.metadata.version(dist)))
        except importlib.metadata.PackageNotFoundError:
            rows.append(Check(dist, WARN, "not installed"))
    return rows


def check_codecs() -> list[Check]:
    rows: list[Check] = []
    for name in ("PCMU", "PCMA", "opus"):
        try:
            codecs = importlib.import_module("voxgate.audio.codecs")
            codecs.get_decoder(name, 8000 if name != "opus" else 48000)
            rows.append(Check(f"codec {name}", OK, "encode/decode available"))
        except Exception as exc:  # doctor reports every failure, whatever it is
            rows.append(Check(f"codec {name}", FAIL, f"{type(exc).__name__}: {exc}"))
    return rows


def check_models() -> list[Check]:
    try:
        registry = importlib.import_module("voxgate.providers.registry")
    except ImportError as exc:
        return [Check("models", WARN, f"provider registry unavailable: {exc}")]
    rows: list[Check] = []
    for model in registry.describe_models():
        found = bool(model.get("found"))
        detail = str(model.get("path") or model.get("detail") or "")
        if model.get("load_s") is not None:
            detail += f" (load {model['load_s']:.2f} s)"
        rows.append(Check(f"model {model.get('name')}", OK if found else FAIL, detail))
    return rows


def _port_free(host: str, port: int, kind: int) -> str | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            return str(exc)
    return None


def check_ports(settings: Settings) -> list[Check]:
    wanted = [("http", settings.server.host, settings.server.port, socket.SOCK_STREAM)]
    if settings.sip.enabled:
        if "udp" in settings.sip.transports:
            wanted.append(("sip/udp", settings.sip.host, settings.sip.port, socket.SOCK_DGRAM))
        if "tcp" in settings.sip.transports:
            wanted.append(("sip/tcp", settings.sip.host, settings.sip.port, socket.SOCK_STREAM))
    rows = []
    for label, host, port, kind in wanted:
        err = _port_free(host, port, kind)
        status, detail = (OK, "free") if err is None else (FAIL, f"in use or not bindable: {err}")
        rows.append(Check(f"port {label} {host}:{port}", status, detail))
    return rows


def run_checks(settings: Settings, with_models: bool = True) -> list[Check]:
    checks: list[Callable[[], list[Check]]] = [check_versions, check_codecs]
    if with_models:
        checks.append(check_models)
    rows: list[Check] = []
    for fn in checks:
        rows.extend(fn())
    rows.extend(check_ports(settings))
    return rows


def format_checks(rows: list[Check]) -> str:
    width = max(len(r.name) for r in rows)
    return "\n".join(f"{r.status:>4}  {r.name:<{width}}  {r.detail}" for r in rows)
