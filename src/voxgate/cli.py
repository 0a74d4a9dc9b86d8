"""The ``voxgate`` command: serve, doctor, version (and subcommands contributed by packages)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voxgate import __version__
from voxgate.errors import ConfigError


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML config file")
    parser.add_argument("--host", help="HTTP bind address (server.host)")
    parser.add_argument("--port", type=int, help="HTTP port (server.port)")
    parser.add_argument(
        "--workers", type=int, help="processes serving the node, one per core (server.workers)"
    )
    parser.add_argument("--sip-port", type=int, help="SIP port (sip.port)")
    parser.add_argument("--no-sip", action="store_true", help="do not start the SIP edge")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Flags become nested overrides; they win over environment and TOML."""
    out: dict[str, Any] = {}
    server: dict[str, Any] = {}
    if args.host is not None:
        server["host"] = args.host
    if args.port is not None:
        server["port"] = args.port
    if getattr(args, "workers", None) is not None:
        server["workers"] = args.workers
    sip: dict[str, Any] = {}
    if args.sip_port is not None:
        sip["port"] = args.sip_port
    if args.no_sip:
        sip["enabled"] = False
    if args.log_level is not None:
        out["log_level"] = args.log_level
    # Merge with lower-priority sources per section, so one flag doesn't reset a section.
    from voxgate.config import load_settings

    base = load_settings(args.config)
    if server:
        out["server"] = {**base.server.model_dump(), **server}
    if sip:
        out["sip"] = {**base.sip.model_dump(), **sip}
    return out


def _settings(args: argparse.Namespace) -> Any:
    from voxgate.config import load_settings

    return load_settings(args.config, **_overrides(args))


def cmd_serve(args: argparse.Namespace) -> int:
    # Per-call numpy work is small: BLAS thread pools only add contention with the model
    # threads on small machines (measured: 8-15 ms -> up to 190 ms per embedding under load).
    # Must be set before numpy loads, which the imports below do.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from voxgate.server import run

    return run(_settings(args))


def cmd_doctor(args: argparse.Namespace) -> int:
    from voxgate.doctor import FAIL, format_checks, run_checks

    rows = run_checks(_settings(args), with_models=not args.no_models)
    print(format_checks(rows))
    return 1 if any(r.status == FAIL for r in rows) else 0


def cmd_version(args: argparse.Namespace) -> int:
    print(f"voxgate {__version__}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxgate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the server with the embedded offline agent")
    _config_args(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("doctor", help="check versions, codecs, models and ports")
    _config_args(p)
    p.add_argument("--no-models", action="store_true", help="skip the model checks")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=cmd_version)

    from voxgate.agent.talk import add_talk_parser

    add_talk_parser(sub)

    from voxgate.knowledge.cli import add_kb_parser

    add_kb_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"voxgate: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
