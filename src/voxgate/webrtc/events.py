"""Live call events for a browser page: transcripts, who is speaking, turn latencies.

The agent knows what was said and how long each turn took; the page wants to show it while
the call runs. Rather than handing the agent a WebRTC object (which would tie it to one edge),
an edge *attaches* an :class:`EventChannel` to the session and the agent calls
:func:`publish` with a plain dict. On edges with no live channel (SIP, Twilio) ``publish`` is
a cheap no-op returning ``False``, so the agent can call it unconditionally.

This module imports nothing from aiortc: the agent may import it on any node.

Event shapes (JSON objects, all carry ``"type"``; extra keys are passed through)::

    {"type": "transcript", "role": "caller" | "agent", "text": str, "final": bool}
    {"type": "speaking", "role": "agent" | "caller", "speaking": bool}
    {"type": "turn", "index": int, "latency_ms": float, "stages": {name: ms}}
    {"type": "call", "state": "connected" | "ended", "call_id": str, "reason": str}
"""

from __future__ import annotations

import json
import logging
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from voxgate.calls.session import CallSession

log = logging.getLogger(__name__)

Sender = Callable[[str], None]


class EventChannel:
    """Serialises events to JSON text and hands them to a transport once it is open.

    Events published before the transport opens (an agent greets the caller while DTLS and
    SCTP are still being set up) are kept, up to ``max_pending``, and flushed in order on
    :meth:`open`; beyond that the oldest are dropped and counted, so a page that never opens
    its channel cannot grow the server's memory.
    """

    def __init__(self, max_pending: int = 256) -> None:
        self._send: Sender | None = None
        self._pending: deque[str] = deque(maxlen=max_pending)
        self._closed = False
        self.published = 0
        self.dropped = 0

    @property
    def is_open(self) -> bool:
        return self._send is not None and not self._closed

    def publish(self, event: Mapping[str, Any]) -> bool:
        """Queue or send one event; ``False`` once the channel is closed or the event is bad."""
        if self._closed:
            return False
        if not isinstance(event.get("type"), str):
            raise ValueError(f"an event needs a string 'type', got {event!r}")
        try:
            text = json.dumps(event, separators=(",", ":"), allow_nan=False, default=str)
        except ValueError as exc:  # NaN/inf latencies: a bug upstream, not a reason to crash
            log.warning("dropping event that is not valid JSON: %s", exc)
            return False
        self.published += 1
        if self._send is None:
            if len(self._pending) == self._pending.maxlen:
                self.dropped += 1
            self._pending.append(text)
            return True
        return self._deliver(text)

    def open(self, send: Sender) -> None:
        """Attach the transport (e.g. ``RTCDataChannel.send``) and flush what was queued."""
        if self._closed:
            return
        self._send = send
        while self._pending and self._send is not None:
            self._deliver(self._pending.popleft())

    def close(self) -> None:
        self._closed = True
        self._send = None
        self._pending.clear()

    def _deliver(self, text: str) -> bool:
        assert self._send is not None
        try:
            self._send(text)
        except Exception as exc:  # the transport closed under us: stop, never raise to the agent
            log.debug("event channel send failed: %s", exc)
            self.close()
            return False
        return True


_channels: weakref.WeakKeyDictionary[CallSession, EventChannel] = weakref.WeakKeyDictionary()


def attach(session: CallSession, channel: EventChannel) -> None:
    """Called by an edge that can carry live events for ``session``."""
    _channels[session] = channel


def channel_for(session: CallSession) -> EventChannel | None:
    return _channels.get(session)


def publish(session: CallSession, event: Mapping[str, Any]) -> bool:
    """Send a live event to whoever watches ``session``; no-op (False) on edges without one."""
    channel = _channels.get(session)
    if channel is None:
        return False
    return channel.publish(event)
