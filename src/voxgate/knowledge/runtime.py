"""What the agent pipeline asks of the knowledge layer, per agent and per call.

``Knowledge`` is configured once per agent/route (tools, knowledge base, business rules) and
handed to the pipeline inside ``AgentProviders``; each call gets a ``CallKnowledge`` bound to
that call's session (its ``CallControl``, its route's transfer targets) and to the pipeline's
event hook. The pipeline and ``ReplyRun`` only call the few methods below, so they stay free
of tool, retrieval and rule logic:

- ``system_prompt`` / ``greeting``: after-hours behaviour, decided once at call start;
- ``escalate(text)``: the deterministic "talk to a human" rule, checked before the LLM;
- ``prepare(messages, record)``: the turn's plan: routing (the ``tool_choice``: the routed
  tool, "none" for a question, or "auto"; the tools offered are always all of them, so the
  prompt's tools block, and the LLM's cached prefix, never change) and retrieval; the passages go into the LLM
  context just before the caller's question (the stable prefix stays in the LLM's prompt
  cache) and onto the turn record for audit;
- ``run(call, say)``: one tool call with the filler policy;
- ``run_deferred()``: call-control actions once the reply has been spoken;
- ``redact``: applied to everything the history persists.

Every method is failure-tolerant: retrieval that fails is logged on the turn and skipped,
a tool that fails becomes a spoken fallback (``ToolRegistry.call``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from voxgate.agent.records import TurnRecord
from voxgate.calls.session import CallSession
from voxgate.knowledge.calltools import call_control_tools
from voxgate.knowledge.embeddings import Embedder
from voxgate.knowledge.rag import KnowledgeBase, Passage
from voxgate.knowledge.rules import RouteRules
from voxgate.knowledge.tools import ToolContext, ToolRegistry, ToolResult
from voxgate.providers.base import ChatMessage, ToolCall, ToolChoice, ToolSchema

__all__ = [
    "CALLER_TURNS", "CallKnowledge", "EmbeddingRouter", "EventHook", "FirstRouter", "Knowledge", "KeywordRouter",
    "Route", "Router", "TurnPlan",
]

log = logging.getLogger(__name__)

EventHook = Callable[[str, dict[str, Any]], None]
"""``(kind, data)``: "tool_call", "retrieval", "escalation", "after_hours" (for the call record)."""

CALLER_TURNS = "caller_turns"
"""``ToolContext.state`` key: the caller's words in this call so far (their turns in order, the
current one last), set before each LLM reply, so that tools can check arguments against
what was actually said (a small model fills slots with values nobody said)."""

CONTEXT_HEAD = (
    "Facts from our documents. Answer from these facts only; if they do not answer the "
    "question, say you are not sure and offer to transfer the caller."
)


@dataclass(frozen=True, slots=True)
class Route:
    """A router's decision for one caller turn."""

    tool: str | None
    """The tool the caller's words ask for; None: no tool (a question or small talk, which
    the model answers in words from the retrieved passages)."""
    sure: bool = True
    """Sure enough to make the model call ``tool`` (``tool_choice``; for None: "none", no tool
    call). Unsure: the model chooses ("auto") and ``tool`` only goes into the prompt as a hint."""


@runtime_checkable
class Router(Protocol):
    """Caller's words -> a ``Route``, or None for no opinion (the next router, or the LLM,
    decides). Plain ``text -> tool name`` callables are accepted too, as unsure routes."""

    def decide(self, text: str) -> Route | None: ...


class KeywordRouter:
    """Intent routing outside the model: the first pattern that matches the caller's words
    names the tool to use, or None for "no tool" (e.g. a question about the cancellation
    fee is not a cancellation). A 0.5B model picks the wrong one of seven similar tools
    ("move my appointment" -> book) far more often than it copies arguments wrongly
    (bench/tool_calls.py), and a precise pattern is right when it matches: its routes are
    sure (``sure``), so the model is made to call that tool (``tool_choice``).
    """

    def __init__(self, rules: Sequence[tuple[str, str | None]], *, sure: bool = True) -> None:
        self.rules = [(re.compile(p, re.I), tool) for p, tool in rules]
        self.sure = sure

    def decide(self, text: str) -> Route | None:
        return next((Route(tool, self.sure) for p, tool in self.rules if p.search(text)), None)

    def __call__(self, text: str) -> str | None:
        route = self.decide(text)
        return route.tool if route is not None else None


class EmbeddingRouter:
    """Intent routing by meaning: the caller's words are embedded (the knowledge base's
    sentence model, ~10 ms) and compared with example phrasings per tool; the tool of the
    nearest example wins if it is at least ``min_score`` similar. Examples under the key
    ``None`` (questions, small talk) route to no tool, so the LLM answers them. A route is
    sure when the best label is at least ``sure_score`` similar and ahead of the next label
    by ``sure_margin``; otherwise the model still sees every tool (a hint only). The no-tool
    label is sure whenever it is the nearest: the costs are not symmetric, as a request
    answered without tools costs a question back ("which day?"), while small talk answered
    with tools on offer can cost an action nobody asked for (a 0.5B model books
    ``check_availability(date="today")`` on "it's raining today").

    Keyword patterns only know the words someone thought of; callers say "take me off the
    schedule" or "push it to Monday". On held-out requests (bench/tool_calls_heldout.py) the
    receptionist's keyword router, tuned on the benchmark's own requests, picked the right
    tool for 19/40; its precise keywords plus nearest-example routing over 89 generic
    phrasings for 33/40.
    """

    def __init__(
        self,
        embedder: Embedder,
        examples: Mapping[str | None, Sequence[str]],
        *,
        min_score: float = 0.5,
        sure_score: float = 0.6,
        sure_margin: float = 0.1,
    ) -> None:
        self.embedder = embedder
        self.min_score = min_score
        self.sure_score = sure_score
        self.sure_margin = sure_margin
        self.labels: list[str | None] = [tool for tool, texts in examples.items() for _ in texts]
        self.vectors = embedder.embed([t for texts in examples.values() for t in texts])

    def scores(self, text: str) -> dict[str | None, float]:
        """Best similarity per label (for tests and tuning)."""
        sims = self.vectors @ self.embedder.embed([text])[0]
        best: dict[str | None, float] = {}
        for label, sim in zip(self.labels, sims.tolist(), strict=True):
            best[label] = max(best.get(label, -1.0), sim)
        return best

    def decide(self, text: str) -> Route | None:
        if not text.strip() or not self.labels:
            return None
        ranked = sorted(self.scores(text).items(), key=lambda kv: -kv[1])
        (label, top), runner_up = ranked[0], (ranked[1][1] if len(ranked) > 1 else -1.0)
        if top < self.min_score:
            return None
        if label is None:  # no tool: sure whenever nearest (see the class docstring)
            return Route(None)
        return Route(label, top >= self.sure_score and top - runner_up >= self.sure_margin)

    def __call__(self, text: str) -> str | None:
        route = self.decide(text)
        return route.tool if route is not None else None


class FirstRouter:
    """The first of ``routers`` with an opinion (e.g. precise keywords, then meaning)."""

    def __init__(self, *routers: Router | Callable[[str], str | None]) -> None:
        self.routers = routers

    def decide(self, text: str) -> Route | None:
        return next((route for r in self.routers if (route := decide(r, text)) is not None), None)

    def __call__(self, text: str) -> str | None:
        route = self.decide(text)
        return route.tool if route is not None else None


def decide(router: Router | Callable[[str], str | None], text: str) -> Route | None:
    """``router``'s decision; a plain ``text -> tool`` callable gives an unsure route."""
    if isinstance(router, Router):
        return router.decide(text)
    tool = router(text)
    return Route(tool, sure=False) if tool is not None else None


@dataclass(frozen=True, slots=True)
class TurnPlan:
    """What one LLM reply gets: its messages (with the route hint or retrieved passages), the
    tools (always every tool of the call, in the same order: the prompt's tools block must not
    change between turns, see ``voxgate.providers.base.ToolChoice``) and the ``tool_choice``
    the route implies ("auto", "none", or the routed tool's name)."""

    messages: list[ChatMessage]
    tools: Sequence[ToolSchema]
    route: Route | None = None
    tool_choice: ToolChoice = "auto"


@dataclass(slots=True)
class Knowledge:
    """An agent's tools, knowledge base and rules (shared by all its calls)."""

    tools: ToolRegistry | None = None
    kb: KnowledgeBase | None = None
    rules: RouteRules | None = None
    k: int = 2
    """Passages retrieved per turn (each costs prompt tokens on a small model)."""
    min_score: float = 0.3
    """Cosine floor: below it a passage is unrelated ("yes, that works" retrieves nothing)."""
    max_tool_rounds: int = 3
    """LLM calls per reply when it uses tools (the last round offers no tools)."""
    call_control: tuple[str, ...] = ("transfer_call", "end_call", "send_dtmf", "hold")
    """Built-in call-control tools to offer (``transfer_call`` only with transfer targets);
    fewer tools make a small model's choice easier."""
    farewell: str = "Thank you for calling. Goodbye!"
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    """Wall clock for opening hours (injected in tests)."""
    context_head: str = CONTEXT_HEAD
    router: Router | Callable[[str], str | None] | None = None
    """Caller's words -> the tool to call (see ``Route``, ``KeywordRouter``); None: the LLM
    decides among all tools."""
    route_history: int = 0
    """Earlier messages kept in a routed turn's prompt. 0: system prompt + this turn only;
    with the history the 0.5B model imitated its previous tool-result sentence ("You're
    cancelled for ...") instead of calling the routed tool. Tools get their context from
    ``ToolContext.state`` (e.g. the booking made earlier in the call), not from the prompt."""
    route_hint: str = "{question} (use the {tool} tool)"
    """How the router's choice reaches the model: appended to the caller's words in this LLM
    call only (a separate system message was echoed back as text by the 0.5B model)."""

    def for_call(self, session: CallSession, emit: EventHook | None = None) -> CallKnowledge:
        return CallKnowledge(self, session, emit)


class CallKnowledge:
    """``Knowledge`` bound to one call (see the module docstring)."""

    def __init__(self, config: Knowledge, session: CallSession, emit: EventHook | None = None) -> None:
        self.config = config
        self.session = session
        self._emit_hook = emit
        rules = config.rules
        targets = dict(rules.transfer_targets) if rules else {}
        self.context = ToolContext(
            call_id=session.call_id,
            caller=session.caller,
            route=session.route,
            control=session.control,
            transfer_targets=targets,
        )
        registry = config.tools or ToolRegistry()
        if config.call_control:
            builtins = call_control_tools(targets, farewell=config.farewell, include=config.call_control)
            registry = registry.with_tools(t for t in builtins if t.name not in registry)
        self.tools = registry
        self.max_rounds = config.max_tool_rounds
        self.open = rules.is_open(config.now()) if rules else True
        self.redact: Callable[[str], str] | None = rules.redactor() if rules else None

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        if self._emit_hook is None:
            return
        try:
            self._emit_hook(kind, data)
        except Exception:  # an observer bug must not break the call
            log.exception("knowledge event hook failed (%s)", kind)

    # --- call start ---------------------------------------------------------------------------

    def system_prompt(self, prompt: str) -> str:
        rules = self.config.rules
        if rules is None or self.open:
            return prompt
        return f"{prompt} {rules.after_hours.prompt_note}".strip()

    def greeting(self, greeting: str) -> tuple[str, bool]:
        """(greeting, hang up after it): the route's after-hours behaviour when closed."""
        rules = self.config.rules
        if rules is None or self.open or not greeting:
            return greeting, False
        ah = rules.after_hours
        self.emit("after_hours", {"mode": ah.mode})
        if ah.mode == "message_hangup":
            return ah.message, True
        return ah.greeting, False

    # --- per turn -----------------------------------------------------------------------------

    def escalate(self, text: str) -> str | None:
        """If the caller asks for a person: defer the transfer and return what to say."""
        rules = self.config.rules
        if rules is None:
            return None
        phrase = rules.wants_human(text)
        target = rules.escalation_target()
        control = self.session.control
        if phrase is None or target is None:
            return None
        address = rules.transfer_targets[target]
        self.context.defer(lambda: control.transfer(address))
        self.emit("escalation", {"phrase": phrase, "target": target})
        return rules.escalation_say

    def schemas(self) -> Sequence[ToolSchema]:
        return self.tools.schemas()

    async def prepare(self, messages: Sequence[ChatMessage], record: TurnRecord) -> TurnPlan:
        """The plan of one reply (see ``TurnPlan``):

        - a sure route to a tool: ``tool_choice`` is that tool, with the hint; no passages (an
          action, not a question: a shorter prompt, and a small model cannot pick a wrong
          tool or answer a request with a made-up fact);
        - a sure route to no tool (a question, small talk): ``tool_choice`` "none", passages;
        - an unsure route: every tool, with the hint; no passages;
        - no route: every tool, passages before the last user message (if any match).
        """
        out = list(messages)
        everything = self.tools.schemas()
        kb = self.config.kb
        last = next((i for i in range(len(out) - 1, -1, -1) if out[i].role == "user"), None)
        if last is None or not out[last].content.strip():
            return TurnPlan(out, everything)
        question = out[last].content
        self.context.state[CALLER_TURNS] = [m.content for m in out if m.role == "user"]
        router = self.config.router
        route = decide(router, question) if router is not None else None
        if route is not None and route.tool is not None and route.tool not in self.tools:
            route = None
        if route is not None:
            self.emit("route", {"turn": record.index, "tool": route.tool, "sure": route.sure})
        if route is not None and route.tool is not None:
            hinted = ChatMessage("user", self.config.route_hint.format(question=question, tool=route.tool))
            head = out[:1] if out[0].role == "system" else []
            keep = self.config.route_history
            earlier = out[len(head) : last][-keep:] if keep else []
            choice = route.tool if route.sure else "auto"
            return TurnPlan([*head, *earlier, hinted], everything, route, choice)
        choice = "none" if route is not None and route.sure else "auto"
        if kb is None:
            return TurnPlan(out, everything, route, choice)
        try:
            hits: list[Passage] = await kb.asearch(question, self.config.k, min_score=self.config.min_score)
        except Exception as exc:  # answer without the documents rather than not at all
            record.errors.append(f"retrieval: {exc!r}")
            return TurnPlan(out, everything, route, choice)
        record.retrieved = [h.to_dict() for h in hits]
        self.emit("retrieval", {"turn": record.index, "question": question, "passages": record.retrieved})
        if hits:
            facts = "\n".join(f"- {h.text}" for h in hits)
            out.insert(last, ChatMessage("system", f"{self.config.context_head}\n{facts}"))
        return TurnPlan(out, everything, route, choice)

    async def run(self, call: ToolCall, say: Callable[[str], None], record: TurnRecord | None = None) -> ToolResult:
        result = await self.tools.call(call, self.context, on_slow=say)
        data = {"turn": record.index if record is not None else None, **result.to_dict()}
        if record is not None:
            record.tool_calls.append(result.to_dict())
        self.emit("tool_call", data)
        return result

    @property
    def invalid_say(self) -> str:
        return self.tools.invalid_say

    @property
    def fallback_say(self) -> str:
        return self.tools.fallback_say

    async def run_deferred(self) -> list[str]:
        errors = await self.context.run_deferred()
        for e in errors:
            log.warning("deferred call-control action failed: %s", e)
        return errors
