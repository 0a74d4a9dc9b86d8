"""OpenAI-compatible chat completions over streaming SSE: one adapter, many servers.

OpenAI, Groq, vLLM, Ollama (``/v1``), llama.cpp's ``llama-server`` and most hosted LLM
gateways speak the same ``POST {base_url}/chat/completions`` with ``"stream": true``. The
wire details this module handles, because they are where adapters usually break:

- Server-sent events: ``data: {...}`` lines, blank-line separated, ``: keep-alive`` comments,
  a final ``data: [DONE]``.
- Tool calls arrive as *deltas*: the first fragment for a call carries ``index``, ``id`` and
  ``function.name``; later fragments carry only ``index`` and a piece of
  ``function.arguments``. Fragments are assembled by ``index`` and emitted as complete
  ``ToolCall``s once the stream ends (a half-built call is useless to a tool registry).
- Usage comes in a last chunk with empty ``choices`` when ``stream_options.include_usage``
  is set (servers that do not know the option ignore it; some reject it: turn it off).
- Errors: a non-2xx status, or an ``{"error": ...}`` object inside the stream. Both become a
  ``ProviderHTTPError`` carrying the status and a short body excerpt, never the API key.

Closing the iterator early (barge-in) leaves the ``httpx`` stream context, which closes the
connection, which is how these servers learn to stop generating.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from voxgate.providers.base import (
    ChatMessage,
    LLMEvent,
    ProviderError,
    ProviderTimeout,
    TextDelta,
    ToolCall,
    ToolChoice,
    ToolSchema,
    Usage,
    check_tool_choice,
)

_EXCERPT = 300


class ProviderHTTPError(ProviderError):
    """An HTTP-level failure of a hosted provider: ``status`` (0 when none) and ``body``."""

    def __init__(self, message: str, *, status: int = 0, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def message_to_wire(m: ChatMessage) -> dict[str, Any]:
    """One ``ChatMessage`` in the OpenAI chat format."""
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["content"] = m.content or None
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in m.tool_calls
        ]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    if m.name is not None:
        out["name"] = m.name
    return out


def tool_to_wire(t: ToolSchema) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
    }


def tool_choice_to_wire(choice: ToolChoice) -> str | dict[str, Any]:
    """OpenAI's ``tool_choice``: ``"auto"``, ``"none"`` or ``{"type": "function", "function":
    {"name": ...}}`` for one named tool."""
    if choice in ("auto", "none"):
        return choice
    return {"type": "function", "function": {"name": choice}}


@dataclass(slots=True)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ToolCallAssembler:
    """Collects ``delta.tool_calls`` fragments by ``index`` into complete ``ToolCall``s."""

    def __init__(self) -> None:
        self._calls: dict[int, _PartialCall] = {}

    def feed(self, fragments: Sequence[Mapping[str, Any]]) -> None:
        for n, frag in enumerate(fragments):
            index = frag.get("index", n)
            call = self._calls.setdefault(int(index), _PartialCall())
            if frag.get("id"):
                call.id = str(frag["id"])
            fn = frag.get("function") or {}
            if fn.get("name"):
                call.name += str(fn["name"])
            if fn.get("arguments"):
                args = fn["arguments"]
                call.arguments.append(args if isinstance(args, str) else json.dumps(args))

    def finish(self) -> list[ToolCall]:
        """The assembled calls in index order (empty arguments become ``"{}"``)."""
        out = [
            ToolCall(c.id or f"call_{i}", c.name, "".join(c.arguments) or "{}")
            for i, c in sorted(self._calls.items())
        ]
        self._calls.clear()
        return out


class OpenAICompatLLM:
    """``LLM`` over any OpenAI-compatible ``/chat/completions`` endpoint.

    ``base_url`` ends before ``/chat/completions`` (``https://api.openai.com/v1``,
    ``https://api.groq.com/openai/v1``, ``http://127.0.0.1:11434/v1`` for Ollama,
    ``http://127.0.0.1:8080/v1`` for llama-server). ``extra_body`` is merged into every request
    (e.g. ``{"temperature": 0.3, "max_tokens": 200}``). One ``httpx.AsyncClient`` is reused
    so connections stay warm between turns; pass ``client`` to share one, or call
    ``aclose()``.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        name: str = "openai",
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        include_usage: bool = True,
        extra_body: Mapping[str, Any] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Accept": "text/event-stream"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._include_usage = include_usage
        self._extra = dict(extra_body or {})
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=connect_timeout)
        )

    def __repr__(self) -> str:  # never show the key
        return f"OpenAICompatLLM(name={self.name!r}, url={self._url!r}, model={self.model!r})"

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    def build_request(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        tool_choice: ToolChoice = "auto",
    ) -> dict[str, Any]:
        """The JSON body sent for one turn (public so tests and logs can inspect it).

        ``tool_choice`` goes on the wire only with tools and when it is not ``"auto"`` (the
        API's default then): OpenAI rejects a ``tool_choice`` without ``tools``, and some
        compatible servers do not know the field at all, which only matters when it is used."""
        choice = check_tool_choice(tool_choice, tools)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [message_to_wire(m) for m in messages],
            "stream": True,
        }
        if self._include_usage:
            body["stream_options"] = {"include_usage": True}
        if tools:
            body["tools"] = [tool_to_wire(t) for t in tools]
            if choice != "auto":
                body["tool_choice"] = tool_choice_to_wire(choice)
        body.update(self._extra)
        return body

    def chat(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        tool_choice: ToolChoice = "auto",
    ) -> AsyncIterator[LLMEvent]:
        return self._stream(self.build_request(messages, tools, tool_choice=tool_choice))

    async def _stream(self, body: dict[str, Any]) -> AsyncIterator[LLMEvent]:
        try:
            async with self._client.stream(
                "POST", self._url, json=body, headers=self._headers
            ) as response:
                if response.status_code >= 400:
                    raw = (await response.aread()).decode("utf-8", "replace")
                    raise ProviderHTTPError(
                        f"{self.name}: HTTP {response.status_code}: {raw[:_EXCERPT]}",
                        status=response.status_code,
                        body=raw[:_EXCERPT],
                    )
                async for event in self._events(response):
                    yield event
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"{self.name}: timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise ProviderHTTPError(f"{self.name}: {type(exc).__name__}: {exc}") from exc

    async def _events(self, response: httpx.Response) -> AsyncIterator[LLMEvent]:
        calls = ToolCallAssembler()
        usage: Usage | None = None
        async for data in _sse_data(response):
            if data == "[DONE]":
                break
            try:
                chunk = json.loads(data)
            except json.JSONDecodeError as exc:
                raise ProviderHTTPError(
                    f"{self.name}: bad SSE data: {data[:_EXCERPT]}",
                    status=response.status_code,
                    body=data[:_EXCERPT],
                ) from exc
            if not isinstance(chunk, dict):
                continue
            if "error" in chunk:
                text = json.dumps(chunk["error"])[:_EXCERPT]
                raise ProviderHTTPError(
                    f"{self.name}: error in stream: {text}", status=response.status_code, body=text
                )
            if chunk.get("usage"):
                u = chunk["usage"]
                usage = Usage(int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0)))
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    yield TextDelta(str(delta["content"]))
                if delta.get("tool_calls"):
                    calls.feed(delta["tool_calls"])
        for call in calls.finish():
            yield call
        if usage is not None:
            yield usage


async def _sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The ``data`` payload of each server-sent event (multi-line data joined by newlines)."""
    lines: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        if key == "data":
            lines.append(value[1:] if value.startswith(" ") else value)
    if lines:
        yield "\n".join(lines)
