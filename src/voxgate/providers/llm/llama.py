"""Embedded LLM: Qwen2.5-Coder-0.5B-Instruct (Q4 GGUF) on llama.cpp via llama-cpp-python.

Design choices, each for latency on two shared cores:

- One ``Llama`` object, loaded once and reused: llama.cpp keeps the KV cache of the last
  prompt and re-evaluates only what changed, so a stable system prompt (plus tool list) and
  the earlier turns of a call are not recomputed (first token ~0.1 s instead of ~1 s for a
  250-token prompt). Generations are serialized on a one-thread executor: a ``Llama``
  context is not thread-safe.
- The prompt is rendered here (``render_chatml``) exactly as the chat template stored in the
  GGUF renders it (Qwen2.5 ChatML, tools in a ``<tools>`` block); a test checks this against
  the Jinja template. llama-cpp-python silently falls back to the llama-2 format when it
  cannot find a template, which produces garbage, so we never rely on its guess.
- Tokens are produced on the worker thread and handed to the event loop one by one through an
  ``asyncio.Queue``; closing the iterator sets a stop flag the worker checks between tokens,
  so barge-in stops generation within one token (~20 ms).
- Tool calls: the model generates freely, in the tool-call format it was trained on
  (Qwen's ``<tools>`` system block). Text streams out as it comes. If the reply opens a tool
  call instead (``{`` first, or ``<tool_call>``), the call is collected and validated
  (``parse_call``: known tool, JSON object arguments, required keys present). Only when it is
  malformed (a 0.5B model writes ``{""}`` now and then) is it redone from the same cached
  prompt under a JSON-schema grammar admitting only ``{"name": <tool>, "arguments": <its
  parameters>}``. Grammar-constrained sampling is the safety net, not the default, because
  llama-cpp-python applies the grammar to the whole 152k-token vocabulary at every step:
  measured here ~0.1 s per token, 4-7 s for one call, against ~1 s unconstrained. Plain
  conversation never touches a grammar. One tool call per turn; text before it is streamed.
- ``tool_choice`` is enforced by decoding, never by changing the prompt: the ``<tools>``
  block is rendered from all the tools passed, whatever the choice, so a call that offers
  the same tools every turn keeps one cached system+tools prefix (a narrowed tool list
  changed the system block: ~1.5 s of prompt re-read for a one-tool turn, ~5 s for the
  seven-tool turn after it, bench/tool_calls.py). A named tool: the reply is pre-filled
  with ``<tool_call>\n{"name": "<tool>", "arguments":`` and the model writes only the
  arguments, freely and greedily (the one-tool grammar is the redo if they are malformed).
  ``"none"``: a logits processor forbids the ``<tool_call>`` token everywhere and a ``{``
  as the first token, so the reply is words.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from voxgate.providers._executor import ModelExecutor
from voxgate.providers.base import (
    ChatMessage,
    LLMEvent,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolChoice,
    ToolSchema,
    Usage,
    check_tool_choice,
)
from voxgate.providers.models import qwen_gguf

try:
    from llama_cpp import Llama, LogitsProcessorList
    from llama_cpp.llama_grammar import LlamaGrammar
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("LlamaLLM needs the models extra: pip install -e '.[models]'") from exc

DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
"""What Qwen's template inserts when a conversation has no system message."""
TOOL_TAG = "<tool_call>"
STOP = ["<|im_end|>", "<|endoftext|>"]

_TOOLS_HEAD = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
_TOOLS_TAIL = (
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
)


def _tojson(value: Any) -> str:
    """The template's ``tojson`` (as in transformers: non-ASCII kept, key order kept)."""
    return json.dumps(value, ensure_ascii=False)


def tool_to_wire(t: ToolSchema) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
    }


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def render_chatml(
    messages: Sequence[ChatMessage],
    tools: Sequence[ToolSchema] = (),
    *,
    default_system: str = DEFAULT_SYSTEM,
) -> str:
    """The prompt Qwen2.5's chat template renders, ending with the assistant cue."""
    out: list[str] = []
    has_system = bool(messages) and messages[0].role == "system"
    system = messages[0].content if has_system else default_system
    if tools:
        out.append("<|im_start|>system\n" + system + _TOOLS_HEAD)
        out.extend("\n" + _tojson(tool_to_wire(t)) for t in tools)
        out.append(_TOOLS_TAIL)
    else:
        out.append(f"<|im_start|>system\n{system}<|im_end|>\n")
    for i, m in enumerate(messages):
        if i == 0 and has_system:
            continue
        if m.role in ("user", "system") or (m.role == "assistant" and not m.tool_calls):
            out.append(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n")
        elif m.role == "assistant":
            out.append("<|im_start|>assistant")
            if m.content:
                out.append("\n" + m.content)
            for c in m.tool_calls:
                out.append(
                    f'\n<tool_call>\n{{"name": "{c.name}", "arguments": '
                    f"{_tojson(_arguments(c.arguments))}}}\n</tool_call>"
                )
            out.append("<|im_end|>\n")
        else:  # tool results; consecutive results share one user turn
            if i == 0 or messages[i - 1].role != "tool":
                out.append("<|im_start|>user")
            out.append(f"\n<tool_response>\n{m.content}\n</tool_response>")
            if i == len(messages) - 1 or messages[i + 1].role != "tool":
                out.append("<|im_end|>\n")
    out.append("<|im_start|>assistant\n")
    return "".join(out)


def forced_call_prefix(name: str) -> str:
    """What a reply forced to call ``name`` is pre-filled with (the model writes the rest:
    the arguments object, the closing brace and ``</tool_call>``), in the exact format the
    template renders calls in, so the model continues a call it has seen thousands of. It
    stops at ``:``, a token boundary: with the space pre-filled as well the model must go on
    from an unusual tokenization (`` {`` is one token) and wrote ``4, "type": "object"}``
    instead of the arguments object (bench/tool_calls.py, set C)."""
    return f'{TOOL_TAG}\n{{"name": "{name}", "arguments":'


def call_schema(tools: Sequence[ToolSchema]) -> dict[str, Any]:
    """JSON schema of one call: ``{"name": <tool>, "arguments": <its parameters>}``."""
    return {
        "oneOf": [
            {
                "type": "object",
                "properties": {"name": {"const": t.name}, "arguments": t.parameters},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
            for t in tools
        ]
    }


def _collect(pieces: Iterator[str], stop: threading.Event) -> tuple[str, int] | None:
    """A completion's whole text and its token count; None as soon as ``stop`` is set (the
    turn was closed: the rest is not wanted, and stopping early frees the model)."""
    text, count = "", 0
    for piece in pieces:
        if stop.is_set():
            return None
        count += 1
        text += piece
    return text, count


def parse_call(raw: str, tools: Sequence[ToolSchema]) -> ToolCall | None:
    """A ``ToolCall`` from ``{"name": ..., "arguments": {...}}`` text, or None if it is not a
    well-formed call of one of ``tools`` with its required arguments and, where the schema
    lists the allowed values (``enum``/``const``), one of those (trailing text such as
    ``</tool_call>`` is ignored). None means: redo under the grammar, which admits only valid
    calls."""
    start = raw.find("{")
    if start < 0:
        return None
    body = raw[start:].split(TOOL_TAG.replace("<", "</"), 1)[0].rstrip()
    obj: Any = None
    # The 0.5B model often stops one or two closing braces short: repair that instead of a
    # 4-7 s grammar redo (measured in bench/tool_calls.py).
    for tail in ("", "}", "}}"):
        try:
            obj, _ = json.JSONDecoder().raw_decode(body + tail)
            break
        except json.JSONDecodeError:
            continue
    if obj is None:
        return None
    by_name = {t.name: t for t in tools}
    if not isinstance(obj, dict) or obj.get("name") not in by_name:
        return None
    args = obj.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return None
    if not isinstance(args, dict):
        return None
    params = by_name[obj["name"]].parameters
    required = params.get("required", [])
    if any(k not in args for k in required):
        return None
    known = params.get("properties")
    if known is not None:  # drop schema words echoed as arguments ("required": [...], "type": "object")
        args = {k: v for k, v in args.items() if k in known}
        for k, v in args.items():  # a value outside an enum ("billing office" for "front desk"): redo
            spec = known[k] if isinstance(known[k], dict) else {}
            allowed = spec.get("enum", [spec["const"]] if "const" in spec else None)
            if allowed is not None and v not in allowed:
                same = [a for a in allowed if isinstance(a, str) and isinstance(v, str) and a.lower() == v.strip().lower()]
                if not same:
                    return None
                args[k] = same[0]
    return ToolCall(f"call_{uuid.uuid4().hex[:12]}", str(obj["name"]), _tojson(args))


def _tag_prefix_len(text: str) -> int:
    """Length of the longest suffix of ``text`` that could start ``<tool_call>``."""
    for n in range(min(len(TOOL_TAG) - 1, len(text)), 0, -1):
        if TOOL_TAG.startswith(text[-n:]):
            return n
    return 0


class LlamaLLM:
    """Implements ``voxgate.providers.base.LLM`` with a local GGUF model.

    ``max_tokens`` caps a reply (a spoken turn is short); ``temperature`` 0.2 keeps a small
    model on topic; tool calls are always generated greedily.
    """

    prompt_cache = True
    """llama.cpp keeps the KV cache of the last prompt: the agent pre-reads its system prompt
    at call start (``AgentSettings.prewarm_llm``)."""

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        n_ctx: int = 2048,
        n_threads: int = 2,
        max_tokens: int = 200,
        temperature: float = 0.2,
        seed: int = 7,
        warmup: bool = True,
    ) -> None:
        path = model_path or qwen_gguf()
        t0 = time.perf_counter()
        self._llm = Llama(str(path), n_ctx=n_ctx, n_threads=n_threads, seed=seed, verbose=False)
        self.name = "llama-qwen2.5-coder-0.5b"
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.executor = ModelExecutor("llama", 1)
        self._grammars: dict[str, Any] = {}
        self.grammar_retries = 0
        """Tool calls the model wrote malformed and that were redone under the grammar."""
        self.tokens_generated = 0
        """Tokens generated over the object's life (for metrics, and to observe cancellation)."""
        self.chat_template: str | None = self._llm.metadata.get("tokenizer.chat_template")
        self._tag_id = self._single_token(TOOL_TAG)
        self._brace_ids = np.array(  # tokens a JSON object can start with (~130 of 152k)
            [i for i in range(self._llm.n_vocab()) if self._llm.detokenize([i]).lstrip()[:1] == b"{"],
            dtype=np.intp,
        )
        if warmup:
            for _ in self._completion(render_chatml([ChatMessage("user", "Hi")]), None, 1):
                pass
        self.load_seconds = time.perf_counter() - t0

    # -- prompt ---------------------------------------------------------------------------

    def render(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSchema] = ()) -> str:
        """The exact prompt text of a turn (public for tests and debugging)."""
        return render_chatml(messages, tools)

    def _grammar(self, tools: Sequence[ToolSchema]) -> Any:
        key = json.dumps(call_schema(tools))
        grammar = self._grammars.get(key)
        if grammar is None:
            grammar = LlamaGrammar.from_json_schema(key, verbose=False)
            self._grammars[key] = grammar
        return grammar

    def _single_token(self, text: str) -> int:
        ids = self._llm.tokenize(text.encode(), add_bos=False, special=True)
        if len(ids) != 1:  # a different model family: "none" could not be enforced
            raise ProviderError(f"{self.name}: {text!r} is not one token in this model ({ids})")
        return int(ids[0])

    def _no_call(self) -> LogitsProcessorList:
        """Logits processor of a ``"none"`` reply: no ``<tool_call>`` token anywhere and no
        ``{`` as the first token (the bare-JSON form of a call), so the model answers in words.
        Cheap: ~130 of the 152k logits are touched, unlike a grammar."""
        first = [True]

        def forbid(_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]) -> npt.NDArray[np.single]:
            scores[self._tag_id] = -math.inf
            if first[0]:
                scores[self._brace_ids] = -math.inf
                first[0] = False
            return scores

        return LogitsProcessorList([forbid])

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=True))

    # -- generation (worker thread) ---------------------------------------------------------

    def _completion(
        self,
        prompt: str,
        grammar: Any,
        max_tokens: int,
        *,
        greedy: bool = False,
        stop: Sequence[str] = (),
        logits_processor: LogitsProcessorList | None = None,
    ) -> Iterator[str]:
        chunks = self._llm.create_completion(
            prompt,
            max_tokens=max_tokens,
            temperature=0.0 if grammar is not None or greedy else self.temperature,
            repeat_penalty=1.1,
            stop=[*STOP, *stop],
            stream=True,
            grammar=grammar,
            logits_processor=logits_processor,
        )
        stream = cast(Iterator[dict[str, Any]], chunks)
        try:
            for chunk in stream:
                self.tokens_generated += 1
                yield str(chunk["choices"][0]["text"])
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    def _redo_under_grammar(
        self, prompt: str, tools: Sequence[ToolSchema], stop: threading.Event
    ) -> tuple[ToolCall, int] | None:
        """A malformed tool call generated again under the tools' grammar (slow but always
        well-formed): the call and the tokens it took; None if the turn was closed."""
        self.grammar_retries += 1
        got = _collect(self._completion(prompt, self._grammar(tools), 256), stop)
        if got is None:
            return None
        raw, produced = got
        call = parse_call(raw, tools)
        if call is None:
            raise ProviderError(f"{self.name}: tool call cut short: {raw[:200]!r}")
        return call, produced

    def _forced(
        self, prompt: str, tool: ToolSchema, stop: threading.Event, emit: Callable[[LLMEvent], None]
    ) -> None:
        """A reply that must call ``tool``: pre-filled call, arguments written freely; the
        one-tool grammar only if they are malformed (see the module docstring)."""
        head = forced_call_prefix(tool.name)
        end = TOOL_TAG.replace("<", "</")
        got = _collect(self._completion(prompt + head, None, 128, greedy=True, stop=[end]), stop)
        if got is None:
            return
        raw, produced = got
        call = parse_call(head[len(TOOL_TAG) + 1 :] + raw, [tool])
        if call is None:
            redone = self._redo_under_grammar(prompt + TOOL_TAG + "\n", [tool], stop)
            if redone is None:
                return
            call, more = redone
            produced += more
        emit(call)
        emit(Usage(self.count_tokens(prompt), produced))

    def _turn(
        self,
        prompt: str,
        tools: Sequence[ToolSchema],
        stop: threading.Event,
        emit: Callable[[LLMEvent], None],
        choice: ToolChoice = "auto",
    ) -> None:
        """One reply: stream text, or collect a tool call (see the module docstring)."""
        if tools and choice not in ("auto", "none"):
            self._forced(prompt, next(t for t in tools if t.name == choice), stop, emit)
            return
        words_only = choice == "none" and bool(tools)
        if words_only:
            tools = ()
        produced = 0
        said = ""  # text streamed so far
        held = ""  # text not streamed yet: could be the start of a tool call
        tool_prefix: str | None = None  # set once the reply turned out to be a tool call
        raw = ""  # the tool call as generated freely
        no_call = self._no_call() if words_only else None
        for piece in self._completion(prompt, None, self.max_tokens, logits_processor=no_call):
            if stop.is_set():
                return
            produced += 1
            if not tools:
                emit(TextDelta(piece))
                continue
            if tool_prefix is not None:
                raw += piece
                continue
            held += piece
            head = (said + held).lstrip()
            if not said.strip() and head.startswith("{"):
                tool_prefix, raw = said, held
                continue
            if TOOL_TAG in held:
                before, _, raw = held.partition(TOOL_TAG)
                if before:
                    emit(TextDelta(before))
                tool_prefix = said + before + TOOL_TAG + "\n"
                continue
            if not head or (not said.strip() and "{".startswith(head)):
                continue
            keep = _tag_prefix_len(held)
            out, held = held[: len(held) - keep], held[len(held) - keep :]
            if out:
                emit(TextDelta(out))
                said += out
        if tool_prefix is None:
            if held:
                emit(TextDelta(held))
        else:
            call = parse_call(raw, tools)
            if call is None:  # malformed: redo it under the grammar (slow but valid)
                redone = self._redo_under_grammar(prompt + tool_prefix, tools, stop)
                if redone is None:
                    return
                call, more = redone
                produced += more
            emit(call)
        emit(Usage(self.count_tokens(prompt), produced))

    def _worker(
        self,
        prompt: str,
        tools: Sequence[ToolSchema],
        choice: ToolChoice,
        stop: threading.Event,
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue[LLMEvent | BaseException | None],
    ) -> None:
        def emit(item: LLMEvent) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        try:
            if not stop.is_set():  # closed while queued behind another turn: skip
                self._turn(prompt, tools, stop, emit, choice)
        except Exception as exc:
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    # -- LLM protocol -----------------------------------------------------------------------

    def chat(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        tool_choice: ToolChoice = "auto",
    ) -> AsyncIterator[LLMEvent]:
        """The prompt's tools block is ``tools`` whatever ``tool_choice`` is (the cached prefix
        stays valid); the choice only steers decoding."""
        choice = check_tool_choice(tool_choice, tools)
        return self._stream(self.render(messages, tools), list(tools), choice)

    async def _stream(self, prompt: str, tools: list[ToolSchema], choice: ToolChoice) -> AsyncIterator[LLMEvent]:
        stop = threading.Event()
        queue: asyncio.Queue[LLMEvent | BaseException | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self.executor.submit(self._worker, prompt, tools, choice, stop, loop, queue)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, ProviderError):
                    raise item
                if isinstance(item, BaseException):
                    raise ProviderError(f"{self.name}: generation failed: {item}") from item
                yield item
        finally:
            stop.set()  # closed early (barge-in) or done: the worker stops at the next token

    def close(self) -> None:
        self.executor.shutdown()
        self._llm.close()
