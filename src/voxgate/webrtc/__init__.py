"""voxgate.webrtc: browser calls over WebRTC (aiortc), HTTP signaling and the talk page.

The public surface: ``router`` (mounted by ``voxgate.api.app``), :class:`WebRtcOptions`
(set ``app.state.webrtc_options``), :class:`IcePolicy`, and the live-event hook in
:mod:`voxgate.webrtc.events` (``publish(session, event)``).

Only the event hook is imported eagerly: an agent on any node can ``from voxgate.webrtc
import publish`` without loading aiortc, PyAV or FastAPI; the rest loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from voxgate.webrtc.events import EventChannel, publish

if TYPE_CHECKING:
    from voxgate.webrtc._ice import IcePolicy
    from voxgate.webrtc._peer import OfferError, WebRtcCall, WebRtcOptions
    from voxgate.webrtc.edge import WebRtcEdge, router

_LAZY = {
    "IcePolicy": "voxgate.webrtc._ice",
    "OfferError": "voxgate.webrtc._peer",
    "WebRtcCall": "voxgate.webrtc._peer",
    "WebRtcOptions": "voxgate.webrtc._peer",
    "WebRtcEdge": "voxgate.webrtc.edge",
    "router": "voxgate.webrtc.edge",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'voxgate.webrtc' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "EventChannel",
    "IcePolicy",
    "OfferError",
    "WebRtcCall",
    "WebRtcEdge",
    "WebRtcOptions",
    "publish",
    "router",
]
