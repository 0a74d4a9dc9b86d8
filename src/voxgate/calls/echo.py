"""The ``echo`` app: plays the caller's own audio straight back.

Operators use it to check a trunk or a stream end to end (one-way audio, codec or latency
problems are heard at once) and benchmarks use it to measure an edge's own cost: it adds
nothing but a direct hand-off from the inbound path to the sink (:meth:`CallSession.listen`),
so what is measured is the edge, not an app.
"""

from __future__ import annotations

from voxgate.calls.router import RouteRule
from voxgate.calls.session import CallSession


class EchoApp:
    """``CallApp`` for routes whose app is ``"echo"``."""

    name = "echo"

    async def run(self, session: CallSession) -> None:
        session.listen(session.sink.write)
        await session.wait_ended()


def echo_factory(rule: RouteRule) -> EchoApp:
    return EchoApp()
