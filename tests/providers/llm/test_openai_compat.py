"""OpenAICompatLLM against a real HTTP server on loopback speaking the exact SSE wire format."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from voxgate.providers.base import ChatMessage, TextDelta, ToolCall, ToolSchema, Usage
from voxgate.providers.llm.openai_compat import OpenAICompatLLM, ProviderHTTPError

KEY = "sk-test-secret-key-123"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


TEXT_STREAM = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Hello"}),
    _chunk({"content": ", world."}),
    _chunk({}, "stop"),
    {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3}},
]

# Two parallel tool calls, their argument JSON split mid-token and interleaved.
TOOL_STREAM = [
    _chunk({"role": "assistant", "content": None}),
    _chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "book_appointment", "arguments": ""},
                }
            ]
        }
    ),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"day": "Tues'}}]}),
    _chunk(
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q":'},
                }
            ]
        }
    ),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'day", "time": "15:00"}'}}]}),
    _chunk({"tool_calls": [{"index": 1, "function": {"arguments": ' "x"}'}}]}),
    _chunk({}, "tool_calls"),
    {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 20}},
]


class FakeOpenAIServer:
    """Starlette app on 127.0.0.1:<random> serving scripted streams; records requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.script: list[dict[str, Any]] | None = TEXT_STREAM
        self.status = 200
        self.slow_forever = False
        self.disconnected = asyncio.Event()
        app = Starlette(routes=[Route("/v1/chat/completions", self.handle, methods=["POST"])])
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self.task: asyncio.Task[None] | None = None

    async def handle(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append((dict(request.headers), body))
        if self.status != 200:
            return JSONResponse(
                {"error": {"message": "Rate limit reached", "type": "rate_limit"}},
                status_code=self.status,
            )

        async def gen() -> AsyncIterator[bytes]:
            yield b": keep-alive\n\n"
            try:
                for c in self.script or []:
                    yield f"data: {json.dumps(c)}\n\n".encode()
                    await asyncio.sleep(0)
                while self.slow_forever:
                    yield f"data: {json.dumps(_chunk({'content': 'more '}))}\n\n".encode()
                    await asyncio.sleep(0.01)
                yield b"data: [DONE]\n\n"
            finally:
                self.disconnected.set()

        return StreamingResponse(gen(), media_type="text/event-stream")

    async def __aenter__(self) -> FakeOpenAIServer:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:  # noqa: ASYNC110 - uvicorn offers a flag, no event
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await self.task

    @property
    def base_url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as s:
        yield s


def _llm(server: FakeOpenAIServer) -> OpenAICompatLLM:
    return OpenAICompatLLM(base_url=server.base_url, model="m", api_key=KEY, timeout=5.0)


async def test_text_stream_and_usage(server: FakeOpenAIServer) -> None:
    llm = _llm(server)
    events = [
        e async for e in llm.chat([ChatMessage("system", "Be brief."), ChatMessage("user", "hi")])
    ]
    await llm.aclose()
    assert events == [TextDelta("Hello"), TextDelta(", world."), Usage(12, 3)]
    headers, body = server.requests[0]
    assert headers["authorization"] == f"Bearer {KEY}"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert "tools" not in body


async def test_tool_call_deltas_assembled_by_index(server: FakeOpenAIServer) -> None:
    server.script = TOOL_STREAM
    llm = _llm(server)
    tool = ToolSchema("book_appointment", "Book", {"type": "object", "properties": {}})
    history = [
        ChatMessage("user", "book"),
        ChatMessage("assistant", "", (ToolCall("call_0", "lookup", "{}"),)),
        ChatMessage("tool", '{"ok": true}', tool_call_id="call_0"),
    ]
    events = [e async for e in llm.chat(history, [tool])]
    await llm.aclose()
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert calls == [
        ToolCall("call_a", "book_appointment", '{"day": "Tuesday", "time": "15:00"}'),
        ToolCall("call_b", "lookup", '{"q": "x"}'),
    ]
    assert json.loads(calls[0].arguments) == {"day": "Tuesday", "time": "15:00"}
    assert events[-1] == Usage(40, 20)
    body = server.requests[0][1]
    assert body["tools"][0]["function"]["name"] == "book_appointment"
    assert body["messages"][1]["tool_calls"][0]["id"] == "call_0"
    assert body["messages"][1]["content"] is None
    assert body["messages"][2]["tool_call_id"] == "call_0"


async def test_http_error_maps_to_provider_error_without_key(server: FakeOpenAIServer) -> None:
    server.status = 429
    llm = _llm(server)
    with pytest.raises(ProviderHTTPError) as info:
        async for _ in llm.chat([ChatMessage("user", "hi")]):
            pass
    await llm.aclose()
    assert info.value.status == 429
    assert "Rate limit reached" in str(info.value)
    assert KEY not in str(info.value) and KEY not in repr(llm)


async def test_error_object_inside_stream(server: FakeOpenAIServer) -> None:
    server.script = [_chunk({"content": "Hi"}), {"error": {"message": "model overloaded"}}]
    llm = _llm(server)
    got: list[object] = []
    with pytest.raises(ProviderHTTPError, match="model overloaded"):
        async for e in llm.chat([ChatMessage("user", "hi")]):
            got.append(e)
    await llm.aclose()
    assert got == [TextDelta("Hi")]


async def test_connection_refused_is_provider_error() -> None:
    llm = OpenAICompatLLM(base_url="http://127.0.0.1:9/v1", model="m", timeout=2.0)
    with pytest.raises(ProviderHTTPError):
        async for _ in llm.chat([ChatMessage("user", "hi")]):
            pass
    await llm.aclose()


async def test_closing_iterator_disconnects(server: FakeOpenAIServer) -> None:
    server.script = []
    server.slow_forever = True
    llm = _llm(server)
    gen = llm.chat([ChatMessage("user", "talk forever")])
    first = await gen.__anext__()  # type: ignore[attr-defined]
    assert first == TextDelta("more ")
    await gen.aclose()  # type: ignore[attr-defined]
    await asyncio.wait_for(server.disconnected.wait(), 5.0)
    await llm.aclose()


async def test_tool_choice_goes_on_the_wire_in_openai_form(server: FakeOpenAIServer) -> None:
    llm = _llm(server)
    tools = [
        ToolSchema("book_appointment", "Book", {"type": "object", "properties": {}}),
        ToolSchema("cancel_appointment", "Cancel", {"type": "object", "properties": {}}),
    ]
    msgs = [ChatMessage("user", "hi")]
    for choice in ("auto", "none", "cancel_appointment"):
        [e async for e in llm.chat(msgs, tools, tool_choice=choice)]
    [e async for e in llm.chat(msgs, tool_choice="none")]  # no tools: OpenAI rejects a tool_choice
    with pytest.raises(ValueError, match="transfer_call"):
        [e async for e in llm.chat(msgs, tools, tool_choice="transfer_call")]
    await llm.aclose()
    bodies = [body for _, body in server.requests]
    assert len(bodies) == 4
    assert "tool_choice" not in bodies[0]  # "auto" is the API's default
    assert bodies[1]["tool_choice"] == "none"
    assert bodies[2]["tool_choice"] == {"type": "function", "function": {"name": "cancel_appointment"}}
    assert [t["function"]["name"] for t in bodies[2]["tools"]] == ["book_appointment", "cancel_appointment"]
    assert "tool_choice" not in bodies[3] and "tools" not in bodies[3]
