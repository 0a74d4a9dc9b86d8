"""A scripted dialer: outcome by phone number and attempt, with concurrency bookkeeping."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from voxgate.cluster.campaigns import Contact, DialOutcome, DialStatus


@dataclass
class ScriptedDialer:
    """``script[phone]`` is the outcome per attempt (the last one repeats)."""

    script: dict[str, list[DialStatus]]
    hold_s: float = 0.02
    active: int = 0
    max_active: int = 0
    calls: list[tuple[str, int, float]] = field(default_factory=list)

    async def dial(self, contact: Contact, app: str) -> DialOutcome:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.calls.append((contact.phone, contact.attempt, time.monotonic()))
        try:
            await asyncio.sleep(self.hold_s)
            plan = self.script.get(contact.phone, ["completed"])
            status = plan[min(contact.attempt, len(plan)) - 1]
            result = {"confirmed": "yes", "app": app} if status == "completed" else {}
            return DialOutcome(status, call_id=f"call_{contact.contact_id}_{contact.attempt}", result=result)
        finally:
            self.active -= 1
