"""``media.realtime_priority`` (``voxgate.realtime``): the event loop's thread on SCHED_RR with
reset-on-fork, everything it starts (inference threads, worker processes, sipp) back at
SCHED_OTHER; no privilege = one warning and normal priority; config validation.

Realtime is only ever applied in a throwaway thread or a child process, never to the thread
pytest runs on (it would stay realtime for the rest of the session).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from voxgate import realtime
from voxgate.config import load_settings
from voxgate.errors import ConfigError
from voxgate.realtime import apply_realtime, describe

RR_RESET = os.SCHED_RR | os.SCHED_RESET_ON_FORK


def _in_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a fresh thread (its scheduling policy dies with it); re-raise its error."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            box["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join(30)
    if "error" in box:
        raise box["error"]
    return box["value"]


def _can_set_realtime() -> bool:
    def probe() -> bool:
        try:
            os.sched_setscheduler(0, RR_RESET, os.sched_param(1))
        except PermissionError:
            return False
        return True

    return bool(_in_thread(probe))


needs_rt = pytest.mark.skipif(
    not _can_set_realtime(),
    reason="this machine does not allow SCHED_RR here (not root, no CAP_SYS_NICE, "
    "RLIMIT_RTPRIO 0): the applied path cannot be observed",
)


@needs_rt
def test_applies_sched_rr_to_the_calling_thread_only_and_resets_on_fork(
    caplog: pytest.LogCaptureFixture,
) -> None:
    main_tid = threading.main_thread().native_id
    assert main_tid is not None

    def loop_thread() -> dict[str, Any]:
        applied = apply_realtime(10, what="event loop")
        seen: dict[str, Any] = {
            "applied": applied,
            "policy": os.sched_getscheduler(0),
            "priority": os.sched_getparam(0).sched_priority,
            "describe": describe(),
            "main": os.sched_getscheduler(main_tid),
        }
        started: dict[str, int] = {}

        def inference() -> None:  # a thread the loop starts later, e.g. an executor's
            tid = threading.get_native_id()
            started["policy"] = os.sched_getscheduler(tid)
            started["priority"] = os.sched_getparam(tid).sched_priority

        t = threading.Thread(target=inference)
        t.start()
        t.join(10)
        seen["thread"] = started
        child = subprocess.run(  # a process it starts (a worker, sipp)
            [sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        seen["process"] = int(child.stdout)
        return seen

    with caplog.at_level(logging.INFO, logger="voxgate.realtime"):
        seen = _in_thread(loop_thread)
    assert seen["applied"] is True
    assert seen["policy"] == RR_RESET
    assert seen["priority"] == 10
    assert seen["describe"] == "SCHED_RR priority 10, reset on fork"
    assert seen["main"] == os.SCHED_OTHER  # the rest of the process is untouched
    assert seen["thread"] == {"policy": os.SCHED_OTHER, "priority": 0}
    assert seen["process"] == os.SCHED_OTHER
    logged = [r.getMessage() for r in caplog.records if r.name == "voxgate.realtime"]
    assert len(logged) == 1
    assert "event loop thread" in logged[0]
    assert "SCHED_RR priority 10, reset on fork" in logged[0]


def test_priority_0_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    def loop_thread() -> tuple[bool, int, str]:
        return apply_realtime(0), os.sched_getscheduler(0), describe()

    with caplog.at_level(logging.DEBUG, logger="voxgate.realtime"):
        applied, policy, text = _in_thread(loop_thread)
    assert (applied, policy, text) == (False, os.SCHED_OTHER, "SCHED_OTHER")
    assert not [r for r in caplog.records if r.name == "voxgate.realtime"]


@pytest.mark.parametrize("priority", [-1, 100])
def test_out_of_range_priority_is_a_value_error(priority: int) -> None:
    with pytest.raises(ValueError, match="0 \\(off\\) or 1-99"):
        apply_realtime(priority)


_CHILD = """
import logging, os, resource, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
from voxgate.realtime import apply_realtime, describe
print(apply_realtime(10), describe())
"""


def test_without_privilege_a_warning_names_the_fix_and_start_up_goes_on() -> None:
    """A real EPERM: the child drops CAP_SYS_NICE from its bounding set (so even root has
    no such capability after exec) and sets RLIMIT_RTPRIO to 0, then applies."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_sys_nice = 24, 23

    def drop() -> None:  # in the child, before exec
        import resource

        resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
        if libc.prctl(pr_capbset_drop, cap_sys_nice, 0, 0, 0) != 0 and os.geteuid() == 0:
            os._exit(77)  # cannot drop it: the test cannot produce EPERM here

    src = str(Path(realtime.__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], preexec_fn=drop, capture_output=True, text=True,
        timeout=60, env={**os.environ, "PYTHONPATH": src},
    )  # fmt: skip
    if out.returncode == 77:
        pytest.skip("cannot drop CAP_SYS_NICE from the bounding set (no CAP_SETPCAP)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False SCHED_OTHER"
    warnings = [line for line in out.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1, out.stderr
    for fix in ("not permitted", "run as root", "LimitRTPRIO=10", "ulimit -r 10", "normal priority"):
        assert fix in warnings[0], warnings[0]


def test_permission_error_from_the_kernel_is_a_warning_not_a_failure(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The same path wherever the real one cannot be produced (monkeypatched refusal)."""

    def refuse(pid: int, policy: int, param: os.sched_param) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    with caplog.at_level(logging.WARNING, logger="voxgate.realtime"):
        assert _in_thread(lambda: apply_realtime(10, what="SIP front")) is False
    (record,) = [r for r in caplog.records if r.name == "voxgate.realtime"]
    assert record.levelno == logging.WARNING
    assert "SIP front runs at normal priority" in record.getMessage()


def test_config_default_off_and_accepts_1_to_99() -> None:
    assert load_settings().media.realtime_priority == 0
    assert load_settings(media={"realtime_priority": 10}).media.realtime_priority == 10
    assert load_settings(media={"realtime_priority": 99}).media.realtime_priority == 99


@pytest.mark.parametrize("value", [-1, 100, 1000])
def test_config_out_of_range_names_key_value_and_rule(tmp_path: Path, value: int) -> None:
    cfg = tmp_path / "voxgate.toml"
    cfg.write_text(f"[media]\nrealtime_priority = {value}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    text = str(info.value)
    assert f"media.realtime_priority': value {value}" in text
    assert "0 (off) or a SCHED_RR priority 1-99" in text


def _policy(tid: int) -> int:
    return os.sched_getscheduler(tid)


@needs_rt
@pytest.mark.interop
def test_serve_with_workers_puts_every_loop_on_sched_rr_and_nothing_else(
    redis_server: Any, tmp_path: Path
) -> None:
    """``voxgate serve`` with 2 workers and the SIP front: the supervisor's loop (the front)
    and each worker's loop run SCHED_RR 10; every other thread of the workers (started
    before or after) is SCHED_OTHER."""
    from tests.servers import free_port
    from tests.sip.interop.peers import free_sip_port
    from tests.test_workers import NodeProc
    from tests.test_workers_sip import _config

    cfg = _config(tmp_path, free_port(), free_sip_port(), redis_server.url, "rt" + os.urandom(4).hex())
    cfg.write_text(cfg.read_text().replace("[media]\n", "[media]\nrealtime_priority = 10\n"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "voxgate.cli", "serve", "--config", str(cfg)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    node = NodeProc(proc, 0)
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: node.output.extend(stdout), daemon=True).start()
    try:
        node.wait_for("voxgate is up", 90)
        node.wait_for("pids", 5)
        banner = next(line for line in node.output if "pids" in line)
        match = re.search(r"pids ([\d ]+);", banner)
        assert match, banner
        workers = [int(p) for p in match.group(1).split()]
        assert len(workers) == 2
        assert _policy(proc.pid) == RR_RESET
        assert os.sched_getparam(proc.pid).sched_priority == 10
        for pid in workers:
            assert _policy(pid) == RR_RESET, pid  # the worker's event loop (main thread)
            others = [int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid]
            assert others, "a worker has helper threads (executor, database)"
            assert {_policy(t) for t in others} == {os.SCHED_OTHER}
        text = "".join(node.output)
        assert text.count("realtime scheduling: event loop thread") == 2, text[-3000:]
        assert text.count("realtime scheduling: supervisor (SIP front) thread") == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, "".join(node.output[-40:])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
