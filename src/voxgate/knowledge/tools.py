"""Tools the LLM can call, declared as typed async Python functions.

Why functions and not hand-written JSON schemas: the signature *is* the contract. One
declaration gives the LLM its schema (so a grammar can constrain the call), gives us
validation of what the model produced (a 0.5B model gets arguments wrong), and gives the app
an ordinary function to unit-test. The schema is derived with pydantic from the parameters
(``Literal``/``Enum`` become ``enum``, ``Optional``/defaults make a parameter optional,
``datetime.date`` becomes a string with ``format: date``, ``Annotated[str, Field(pattern=...)]``
a pattern) and the docstring (first paragraph = description, ``Args:`` lines = parameter
descriptions); a single pydantic-model parameter is used as the schema directly.

``ToolRegistry.call`` never raises and never leaves the caller in silence:

- bad arguments come back as a tool result that says exactly what was wrong, for the LLM to
  retry (the agent allows one retry, then asks the caller);
- a tool slower than ``slow_after`` (700 ms) triggers ``on_slow(filler)`` so the agent can
  say "One moment while I check that." while it runs;
- a timeout or an exception yields a ``say`` fallback ("Sorry, I couldn't check that right
  now.") the agent speaks instead of asking the LLM again.

A tool receives the per-call :class:`ToolContext` if it declares a parameter annotated with
it (never shown to the LLM). Call-control actions that must happen *after* the agent has
spoken (transfer, hang up) are deferred with ``ctx.defer``; see ``calltools.py``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from voxgate.calls.session import CallControl
from voxgate.providers.base import ToolCall, ToolSchema

__all__ = [
    "FALLBACK_SAY",
    "FILLER_SAY",
    "Tool",
    "ToolContext",
    "ToolRegistry",
    "ToolReply",
    "ToolResult",
    "tool",
]

FILLER_SAY = "One moment while I check that."
FALLBACK_SAY = "Sorry, I couldn't check that right now."
INVALID_SAY = "Sorry, I didn't catch all the details. Could you say them again?"

Status = Literal["ok", "invalid", "unknown", "timeout", "error"]
Deferred = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class ToolContext:
    """What a tool may know and do about the call it runs in (one per call)."""

    call_id: str = ""
    caller: str = ""
    route: str = ""
    control: CallControl | None = None
    transfer_targets: Mapping[str, str] = field(default_factory=dict)
    """Allowed transfer targets of the route: spoken name -> address (SIP URI, number)."""
    state: dict[str, Any] = field(default_factory=dict)
    """Per-call scratch space for the app's tools (e.g. the caller's confirmation code)."""
    deferred: list[Deferred] = field(default_factory=list)

    def defer(self, action: Deferred) -> None:
        """Run ``action`` once the agent's current reply has been spoken (or cut short)."""
        self.deferred.append(action)

    async def run_deferred(self) -> list[str]:
        """Run and clear the deferred actions in order; returns their errors (if any)."""
        actions, self.deferred = self.deferred, []
        errors: list[str] = []
        for action in actions:
            try:
                await action()
            except Exception as exc:  # one failed action must not skip the next
                errors.append(repr(exc))
        return errors


@dataclass(frozen=True, slots=True)
class ToolReply:
    """What a tool may return besides plain data: ``say`` is spoken as is, and with
    ``final`` the agent does not ask the LLM to phrase an answer (call control)."""

    content: Any = ""
    say: str | None = None
    final: bool = False


@dataclass(frozen=True, slots=True)
class ToolResult:
    """One executed (or refused) tool call."""

    call_id: str
    name: str
    status: Status
    content: str
    """Given back to the LLM as the ``tool`` message."""
    arguments: dict[str, Any] | None = None
    """The validated arguments (None when they could not be parsed or validated)."""
    say: str | None = None
    """Spoken to the caller directly (fallbacks, call-control confirmations)."""
    final: bool = False
    """No further LLM round: ``say`` is the answer."""
    seconds: float = 0.0
    slow: bool = False
    """The filler was triggered."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """For the call record / event hook."""
        return {
            "id": self.call_id,
            "name": self.name,
            "status": self.status,
            "arguments": self.arguments,
            "result": self.content,
            "say": self.say,
            "seconds": round(self.seconds, 4),
            "slow": self.slow,
        }


# --- declaration --------------------------------------------------------------------------

_ARGS_RE = re.compile(r"^\s*(?:Args|Arguments|Parameters):\s*$", re.M)
_ARG_LINE = re.compile(r"^\s+(\w+)(?:\s*\([^)]*\))?:\s*(.+)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """(description, {param: description}) from a Google-style docstring."""
    doc = inspect.cleandoc(doc or "")
    m = _ARGS_RE.search(doc)
    head = doc[: m.start()] if m else doc
    description = " ".join(head.strip().split("\n\n")[0].split())
    params: dict[str, str] = {}
    if m:
        last = None
        for line in doc[m.end() :].splitlines():
            am = _ARG_LINE.match(line)
            if am:
                last = am.group(1)
                params[last] = am.group(2).strip()
            elif line.strip() and line.startswith((" ", "\t")) and last:
                params[last] += " " + line.strip()
            elif line.strip():
                break
    return description, params


def _inline(schema: Any, defs: Mapping[str, Any]) -> Any:
    """Resolve ``$ref``s, drop pydantic's titles, and make ``Optional[X] = None`` plain X:
    small models read short schemas better, and llama.cpp's grammar builder wants no refs."""
    if isinstance(schema, list):
        return [_inline(s, defs) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[-1]]
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return _inline({**target, **rest}, defs)
    out = {k: _inline(v, defs) for k, v in schema.items() if k not in ("title", "$defs")}
    alts = out.get("anyOf")
    if isinstance(alts, list) and len(alts) == 2 and {"type": "null"} in alts:
        other = next(a for a in alts if a != {"type": "null"})
        del out["anyOf"]
        out = {**other, **out}
        if out.get("default", 0) is None:
            del out["default"]
    return out


def _clean_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema()
    schema: dict[str, Any] = _inline(raw, raw.get("$defs", {}))
    schema.setdefault("properties", {})
    schema["type"] = "object"
    if not schema.get("required"):
        schema.pop("required", None)
    schema.pop("additionalProperties", None)
    return schema


class _Args(BaseModel):
    # Extra keys are ignored: a small model adds "reason": "" to calls that take none.
    model_config = ConfigDict(extra="ignore")


@dataclass(frozen=True, slots=True)
class Tool:
    """A declared tool: the function, its argument model and its schema."""

    name: str
    description: str
    fn: Callable[..., Awaitable[Any]]
    args_model: type[BaseModel]
    context_param: str | None = None
    model_param: str | None = None
    """Set when the function takes one pydantic model instead of plain parameters."""
    timeout: float = 5.0
    filler: str | None = FILLER_SAY
    """Said when the tool is slow (None: stay quiet; e.g. a tool the LLM calls to hang up)."""

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Awaitable[Any]],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float = 5.0,
        filler: str | None = FILLER_SAY,
    ) -> Tool:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"tool {fn.__name__!r} must be an async function")
        desc, param_docs = _parse_docstring(fn.__doc__ or "")
        hints = get_type_hints(fn, include_extras=True)
        fields: dict[str, Any] = {}
        context_param = model_param = None
        for p in inspect.signature(fn).parameters.values():
            ann = hints.get(p.name, Any)
            if ann is ToolContext:
                context_param = p.name
                continue
            if inspect.isclass(ann) and issubclass(ann, BaseModel):
                model_param = p.name
                fields = {}
                args_model: type[BaseModel] = ann
                continue
            default = ... if p.default is inspect.Parameter.empty else p.default
            fields[p.name] = (ann, Field(default, description=param_docs.get(p.name)))
        if model_param is None:
            args_model = create_model(f"{fn.__name__}_args", __base__=_Args, **fields)
        return cls(
            name=name or fn.__name__,
            description=description or desc or fn.__name__.replace("_", " "),
            fn=fn,
            args_model=args_model,
            context_param=context_param,
            model_param=model_param,
            timeout=timeout,
            filler=filler,
        )

    def schema(self) -> ToolSchema:
        return ToolSchema(self.name, self.description, _clean_schema(self.args_model))

    async def invoke(self, args: BaseModel, ctx: ToolContext) -> Any:
        kwargs: dict[str, Any] = (
            {self.model_param: args} if self.model_param else {k: getattr(args, k) for k in type(args).model_fields}
        )
        if self.context_param:
            kwargs[self.context_param] = ctx
        return await self.fn(**kwargs)


def tool(
    fn: Callable[..., Awaitable[Any]] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float = 5.0,
    filler: str | None = FILLER_SAY,
) -> Any:
    """``@tool`` or ``@tool(timeout=2.0)``: turn an async function into a :class:`Tool`."""

    def wrap(f: Callable[..., Awaitable[Any]]) -> Tool:
        return Tool.from_function(f, name=name, description=description, timeout=timeout, filler=filler)

    return wrap(fn) if fn is not None else wrap


# --- execution ----------------------------------------------------------------------------


def _error_text(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "arguments"
        got = "" if e["type"] == "missing" else f" (got {json.dumps(e.get('input'), default=str)})"
        parts.append(f"{loc}: {e['msg']}{got}")
    return "; ".join(parts)


def _to_content(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return json.dumps(value, default=str, ensure_ascii=False)


class ToolRegistry:
    """The tools one agent (route) offers; see the module docstring."""

    def __init__(
        self,
        tools: Iterable[Tool] = (),
        *,
        slow_after: float = 0.7,
        fallback_say: str = FALLBACK_SAY,
        invalid_say: str = INVALID_SAY,
    ) -> None:
        self._tools: dict[str, Tool] = {}
        self.slow_after = slow_after
        self.fallback_say = fallback_say
        self.invalid_say = invalid_say
        for t in tools:
            self.add(t)

    def add(self, t: Tool) -> Tool:
        if t.name in self._tools:
            raise ValueError(f"tool {t.name!r} registered twice")
        self._tools[t.name] = t
        return t

    def tool(self, fn: Callable[..., Awaitable[Any]] | None = None, **kw: Any) -> Any:
        """Decorator registering a function (``@registry.tool`` or ``@registry.tool(...)``)."""

        def wrap(f: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            self.add(Tool.from_function(f, **kw))
            return f

        return wrap(fn) if fn is not None else wrap

    def with_tools(self, tools: Iterable[Tool]) -> ToolRegistry:
        """A new registry with these tools added (e.g. a route's call-control tools)."""
        out = ToolRegistry(
            self._tools.values(),
            slow_after=self.slow_after,
            fallback_say=self.fallback_say,
            invalid_say=self.invalid_say,
        )
        for t in tools:
            out.add(t)
        return out

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def schemas(self) -> list[ToolSchema]:
        return [t.schema() for t in self._tools.values()]

    def validate(self, call: ToolCall) -> tuple[Tool, BaseModel] | ToolResult:
        """The tool and its parsed arguments, or a refusal result explaining why."""
        t = self._tools.get(call.name)
        if t is None:
            known = ", ".join(self._tools) or "none"
            return ToolResult(call.id, call.name, "unknown", f"Unknown tool {call.name!r}; available tools: {known}.")
        try:
            raw = json.loads(call.arguments or "{}")
        except json.JSONDecodeError as exc:
            return ToolResult(call.id, call.name, "invalid", f"Arguments for {call.name} are not valid JSON ({exc.msg}).")
        if not isinstance(raw, dict):
            return ToolResult(call.id, call.name, "invalid", f"Arguments for {call.name} must be a JSON object.")
        try:
            return t, t.args_model.model_validate(raw)
        except ValidationError as exc:
            return ToolResult(
                call.id,
                call.name,
                "invalid",
                f"Invalid arguments for {call.name}: {_error_text(exc)}. Call {call.name} again "
                "with corrected arguments, or ask the caller for the missing details.",
            )

    async def call(
        self,
        call: ToolCall,
        ctx: ToolContext | None = None,
        *,
        on_slow: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> ToolResult:
        """Validate and run one call; never raises (see the module docstring)."""
        checked = self.validate(call)
        if isinstance(checked, ToolResult):
            return checked
        t, args = checked
        arguments = args.model_dump(mode="json")
        start = clock()
        task = asyncio.ensure_future(t.invoke(args, ctx or ToolContext()))
        slow = False
        try:
            done, _ = await asyncio.wait({task}, timeout=min(self.slow_after, t.timeout))
            if not done and self.slow_after < t.timeout:
                slow = True
                if on_slow is not None and t.filler:
                    on_slow(t.filler)
                done, _ = await asyncio.wait({task}, timeout=t.timeout - self.slow_after)
            if not done:
                task.cancel()
                return ToolResult(
                    call.id, t.name, "timeout", f"{t.name} timed out after {t.timeout:g} s.",
                    arguments, self.fallback_say, True, clock() - start, slow,
                )
            value = task.result()
        except asyncio.CancelledError:
            task.cancel()
            raise
        except Exception as exc:  # a tool bug must become a spoken fallback, not silence
            return ToolResult(
                call.id, t.name, "error", f"{t.name} failed: {exc!r}",
                arguments, self.fallback_say, True, clock() - start, slow,
            )
        seconds = clock() - start
        if isinstance(value, ToolReply):
            return ToolResult(
                call.id, t.name, "ok", _to_content(value.content), arguments,
                value.say, value.final, seconds, slow,
            )
        return ToolResult(call.id, t.name, "ok", _to_content(value), arguments, None, False, seconds, slow)
