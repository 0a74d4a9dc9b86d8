"""All WebSocket-edge HTTP routes in one router, so the app mounts this package in one line."""

from __future__ import annotations

from fastapi import APIRouter

from voxgate.websocket.native_edge import router as native_router
from voxgate.websocket.twilio_edge import router as twilio_router

router = APIRouter()
router.include_router(twilio_router)
router.include_router(native_router)
