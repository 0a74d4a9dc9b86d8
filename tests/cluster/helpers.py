"""Test doubles for cluster tests: a local call whose control records what it was asked."""

from __future__ import annotations

from dataclasses import dataclass, field

from voxgate.calls.manager import CallManager
from voxgate.calls.playout import PlayoutBuffer
from voxgate.calls.router import CallApp, Router, RouteRule
from voxgate.calls.session import CallSession


@dataclass
class RecordingControl:
    """Every action is recorded; hang-up and transfer end the call like a real edge does."""

    actions: list[tuple[str, str]] = field(default_factory=list)
    session: CallSession | None = None

    async def hangup(self, reason: str = "agent_hangup") -> None:
        self.actions.append(("hangup", reason))
        if self.session is not None:
            self.session.end(reason)

    async def transfer(self, target: str) -> None:
        self.actions.append(("transfer", target))
        if self.session is not None:
            self.session.end("transferred")

    async def hold(self) -> None:
        self.actions.append(("hold", ""))

    async def unhold(self) -> None:
        self.actions.append(("unhold", ""))

    async def send_dtmf(self, digits: str) -> None:
        self.actions.append(("dtmf", digits))


class HoldApp:
    """Keeps the call up until something ends it (control, drain, node loss)."""

    name = "hold"

    async def run(self, session: CallSession) -> None:
        await session.wait_ended()


def hold_manager() -> CallManager:
    app = HoldApp()

    def factory(rule: RouteRule) -> CallApp:
        return app

    return CallManager(Router([], {"agent": factory}))


def local_call(callee: str = "100", conversation_id: str = "") -> tuple[CallSession, RecordingControl]:
    control = RecordingControl()
    session = CallSession(edge="local", sink=PlayoutBuffer(8000), control=control,
                          sample_rate=8000, callee=callee)
    if conversation_id:
        session.metadata["conversation_id"] = conversation_id
    control.session = session
    return session, control
