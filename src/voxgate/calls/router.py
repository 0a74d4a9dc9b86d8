"""Routing: which application answers a call.

A route matches on the edge and the dialled target (SIP request-URI user, WebSocket path,
browser room) with shell-style globs, first match wins, and names an application: an
in-process agent or an external WebSocket URL. A call's originator may ask for an app
(``CallSession.requested_app``, e.g. an outbound campaign's script): it is honoured before
the rules once validated (:meth:`Router.requested`). Apps are looked up by name in a table that
the server fills at start-up, so routing stays pure and testable.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from voxgate.calls.session import CallSession


class CallApp(Protocol):
    """Whatever handles a call once routed: the agent pipeline, an external app bridge..."""

    name: str

    async def run(self, session: CallSession) -> None:
        """Handle the call until it ends (or return to let the manager end it)."""
        ...


AppFactory = Callable[["RouteRule"], CallApp]


@dataclass(frozen=True, slots=True)
class RouteRule:
    app: str
    """``"agent"``, ``"agent:NAME"``, or a ``ws://``/``wss://`` URL of an external app."""
    callee: str = "*"
    """Glob on the dialled target (e.g. ``"+1555*"``, ``"support"``)."""
    edge: str = "*"
    name: str = ""
    protocol: str = "twilio"
    """Wire protocol towards an external app: ``"twilio"`` or ``"native"``."""
    auth_header: str | None = None
    """Sent as ``Authorization`` when connecting to an external app (never logged)."""

    def matches(self, edge: str, callee: str) -> bool:
        return fnmatch.fnmatchcase(edge, self.edge) and fnmatch.fnmatchcase(callee, self.callee)

    @property
    def kind(self) -> str:
        """The app family: ``"agent"`` or ``"websocket"``."""
        if self.app.startswith(("ws://", "wss://")):
            return "websocket"
        return self.app.split(":", 1)[0]


class NoRoute(LookupError):
    """No rule matched and no default is configured; edges answer 404/close."""


class Router:
    def __init__(
        self,
        rules: Sequence[RouteRule],
        factories: Mapping[str, AppFactory],
        default: RouteRule | None = RouteRule(app="agent", name="default"),
    ) -> None:
        self._rules = list(rules)
        self._factories = dict(factories)
        self._default = default
        for rule in self._rules:
            if rule.kind not in self._factories:
                raise ValueError(
                    f"route {rule.name or rule.callee!r}: no application of kind {rule.kind!r}; "
                    f"known kinds: {sorted(self._factories)}"
                )

    def rule_for(self, edge: str, callee: str) -> RouteRule:
        for rule in self._rules:
            if rule.matches(edge, callee):
                return rule
        if self._default is None:
            raise NoRoute(f"no route for {edge} call to {callee!r}")
        return self._default

    def requested(self, app: str) -> RouteRule:
        """The rule for an app the call's originator asked for (``session.requested_app``):
        a configured route naming that app (its protocol and auth come along), else
        ``"agent"``/``"agent:NAME"``. An external URL no route names is refused: placing a
        call must not send its audio anywhere a route does not already allow."""
        for rule in self._rules:
            if rule.app == app:
                return rule
        rule = RouteRule(app=app, name=app)
        if rule.kind == "websocket":
            raise NoRoute(f"requested app {app!r} is not a configured route's app")
        if rule.kind not in self._factories:
            raise NoRoute(f"requested app {app!r}: no application of kind {rule.kind!r}; "
                          f"known kinds: {sorted(self._factories)}")  # fmt: skip
        return rule

    def check(self, app: str) -> None:
        """Raise NoRoute unless a call could ask for ``app`` (e.g. before a campaign dials)."""
        rule = self.requested(app)
        self._factories[rule.kind](rule)

    def resolve(self, session: CallSession) -> tuple[RouteRule, CallApp]:
        if session.requested_app:
            rule = self.requested(session.requested_app)
        else:
            rule = self.rule_for(session.edge, session.callee)
        factory = self._factories.get(rule.kind)
        if factory is None:
            raise NoRoute(f"route {rule.name!r} names unknown application kind {rule.kind!r}")
        session.route = rule.name or rule.app
        return rule, factory(rule)
