"""Opt-in realtime scheduling for the media event loop (``media.realtime_priority``).

Why: a media loop has a deadline every 20 ms. On a busy machine the default Linux scheduler
(CFS, ``SCHED_OTHER``) shares the cores fairly, so a loop that is runnable when its tick is
due can wait a scheduler slice (4-12 ms measured) behind another process: the far end, a
neighbour, the other worker. bench/sip_load.py measured exactly that at 500 calls on 2
cores (each worker runnable but waiting for a core 8-13 % of the time, p99 send jitter
4-36 ms with each loop only 60-70 % busy). Telephony servers solve it the same way this
module does: Asterisk ``-p`` and FreeSWITCH ``-rp`` run their media threads ``SCHED_RR`` /
``SCHED_FIFO``, so a due tick preempts every ordinary task at once.

What is changed, and what is not:

* only the **calling thread** (the event loop's), never the whole process: the same
  process runs CPU-bound inference (STT/LLM/TTS) in worker threads, and those must keep
  competing fairly or a long transcription would hold a core for as long as it runs;
* with ``SCHED_RESET_ON_FORK``: on Linux a thread is a ``clone()``d task and inherits its
  creator's policy, and the loop thread creates the executor threads (and, in the
  supervisor, the worker processes) later. Reset-on-fork makes every task it creates start
  at ``SCHED_OTHER``, nice 0 (tests/test_realtime.py checks both a thread and a process);
* a bug that spins the loop cannot freeze the machine: the kernel's RT throttling
  (``/proc/sys/kernel/sched_rt_runtime_us``, 950000 of every 1000000 us by default) leaves
  5 % of each core to ordinary tasks, enough for a shell and ``kill``; and the loop only ever
  runs its own short callbacks, so it sleeps most of each 20 ms tick.

Realtime needs privilege (``CAP_SYS_NICE``, or ``RLIMIT_RTPRIO`` >= the priority). Without it
this logs one warning naming the fix and the node runs at normal priority: a missing
privilege degrades jitter under contention, it must never stop calls from being served.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger("voxgate.realtime")

MAX_PRIORITY = 99
"""Linux ``SCHED_RR`` priorities are 1-99 (``sched_get_priority_max``)."""
SUGGESTED_PRIORITY = 10
"""Above ordinary tasks, well below the kernel's own RT threads (migration, watchdog at 99)
and below audio daemons that often use 20+ on a desktop, so nothing critical is starved."""


def describe(tid: int = 0) -> str:
    """The scheduling policy of thread ``tid`` (0: the calling thread), e.g.
    ``SCHED_RR priority 10, reset on fork`` or ``SCHED_OTHER``; for logs and tests."""
    policy = os.sched_getscheduler(tid)
    reset = bool(policy & os.SCHED_RESET_ON_FORK)
    base = policy & ~os.SCHED_RESET_ON_FORK
    names = {
        os.SCHED_OTHER: "SCHED_OTHER",
        os.SCHED_RR: "SCHED_RR",
        os.SCHED_FIFO: "SCHED_FIFO",
        os.SCHED_BATCH: "SCHED_BATCH",
        os.SCHED_IDLE: "SCHED_IDLE",
    }
    out = names.get(base, f"policy {base}")
    if base in (os.SCHED_RR, os.SCHED_FIFO):
        out += f" priority {os.sched_getparam(tid).sched_priority}"
    return out + (", reset on fork" if reset else "")


def apply_realtime(priority: int, *, what: str = "event loop") -> bool:
    """Run the calling thread (call it on the event loop's thread) at ``SCHED_RR``
    ``priority`` with ``SCHED_RESET_ON_FORK``; ``priority`` 0 changes nothing.

    True when applied (logged once at info, naming the policy read back from the kernel).
    False when off, or when the kernel refused (no privilege, unsupported platform): then one
    warning says how to grant it and the thread keeps its normal priority. ``what`` names
    the thread in the log (``event loop``, ``SIP front``)."""
    if not 0 <= priority <= MAX_PRIORITY:
        raise ValueError(f"realtime priority must be 0 (off) or 1-{MAX_PRIORITY}, got {priority}")
    if priority == 0:
        return False
    if not hasattr(os, "sched_setscheduler") or not hasattr(os, "SCHED_RESET_ON_FORK"):
        log.warning(
            "media.realtime_priority = %d: realtime scheduling is Linux-only; %s runs at "
            "normal priority", priority, what,
        )  # fmt: skip
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
    except PermissionError:
        log.warning(
            "media.realtime_priority = %d: not permitted to use realtime scheduling (needs "
            "CAP_SYS_NICE or RLIMIT_RTPRIO >= %d); %s runs at normal priority, so media ticks "
            "can be late when the cores are busy. Fix: run as root, or with systemd "
            "LimitRTPRIO=%d (or AmbientCapabilities=CAP_SYS_NICE), or `ulimit -r %d` in the "
            "starting shell; in a container add --cap-add SYS_NICE or --ulimit rtprio=%d",
            priority, priority, what, priority, priority, priority,
        )  # fmt: skip
        return False
    except OSError as exc:  # e.g. EINVAL under a kernel without RT classes
        log.warning(
            "media.realtime_priority = %d: the kernel refused SCHED_RR (%s); %s runs at "
            "normal priority", priority, exc, what,
        )  # fmt: skip
        return False
    log.info(
        "realtime scheduling: %s thread (tid %d) is %s; threads and processes it starts run "
        "SCHED_OTHER",
        what, threading.get_native_id(), describe(),
    )  # fmt: skip
    return True
