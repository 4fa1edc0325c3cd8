"""Deterministic, fast simulator of the router's upstream backends.

The simulator is a real HTTP server (Starlette on uvicorn) that speaks:

* vLLM's OpenAI-compatible API: ``/v1/chat/completions`` (streaming and not,
  tool calls, ``reasoning_content``), legacy ``/v1/completions``,
  where a tool is called when the ask names it or plainly wants what it does
  (``wants_tool``), with arguments valid against its schema (``tool_arguments``);
  ``/v1/embeddings`` and ``/v1/models``;
* the route classifier: a chat request whose ``model`` equals
  ``SimConfig.classifier_model`` is answered with a route label;
* xAI's ``/v1/responses`` API with server-side ``web_search``/``x_search`` tools.

Tests and the benchmark drive it through control endpoints under ``/sim``:
``GET /sim/calls`` (what the router sent), ``GET /sim/stats``, ``POST /sim/reset``,
``POST /sim/config`` and ``POST /sim/faults`` (inject 500/429/hang/cut/...).
A fault can also be requested per call with the ``x-sim-fault`` header.

Faults (``FAULTS``): ``"500"``/``"400"``/any 4xx-5xx status (OpenAI error body),
``"429"`` (plus ``Retry-After``), ``"hang"`` (no answer until the client leaves,
``/sim/reset``, shutdown or ``delay_ms``/300 s), ``"slow_first_token"`` (extra
``delay_ms`` before the answer), ``"garbage"`` (200 with a non-JSON body or SSE
line), ``"cut"`` (connection closed mid-stream / mid-body), ``"reset"``
(connection dropped before any response), ``"stall"`` (a stream that sends its first
chunks, then nothing until the client leaves, ``/sim/reset`` or the 300 s cap) and
``"slow_steady"`` (a stream whose every chunk comes ``delay_ms``, default 200, after the
previous one: slow but never silent for long). The ``x-sim-fault`` header wins (with
optional ``x-sim-delay-ms``/``x-sim-retry-after``); otherwise the first queued
fault whose ``model`` and ``path`` match (None matches anything) is consumed.

Typical use::

    with SimServer(SimConfig(tokens=8)) as sim:
        client = openai.OpenAI(base_url=sim.url + "/v1", api_key="x")

Command line::

    python -m tools.simulator --host 127.0.0.1 --port 8001 --ttft-ms 50

The hot path avoids pydantic and FastAPI: bodies are parsed and encoded with
orjson, answers are memoised, and SSE frames are built from pre-encoded
prefixes so a non-streaming call costs well under a millisecond of CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import functools
import hashlib
import hmac
import itertools
import json
import logging
import math
import os
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

__all__ = ["FAULTS", "SimConfig", "SimServer", "SimState", "create_app", "main"]

#: Fault names accepted by ``POST /sim/faults`` and the ``x-sim-fault`` header.
#: Any other HTTP status between 400 and 599 (as a string) is accepted as well.
FAULTS = frozenset({"500", "429", "400", "hang", "slow_first_token", "garbage", "cut", "reset", "stall",
                    "slow_steady"})
MODELS = ("sim-primary", "sim-classifier", "grok-4-1-fast-reasoning", "sim-embed")
MAX_RECORDED_CALLS = 10_000  # bounded so a long benchmark cannot grow memory without limit
HANG_MAX_S = 300.0
_DONE = b"data: [DONE]\n\n"
_FILLER = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")
_REASONING = ("Let ", "me ", "think ", "this ", "through.")
_ENRICH_WORDS = ("latest", "today", "news", "price", "weather", "current", "this week", "score")
_COMPLEX_WORDS = ("prove", "theorem", "research", "novel", "derive", "conjecture")
_GREETING_RE = re.compile(r"\b(?:hi|hello|hey|thanks|thank you)\b", re.IGNORECASE)
_DIRECTIVE_RE = re.compile(r"#route=([A-Z][A-Z0-9_]*)")
# A rendered classification prompt usually lists the labels with descriptions such
# as "needs current news"; searching only the embedded query (when it is marked)
# keeps those instructions from deciding the label.
_QUERY_TAG_RE = re.compile(r"<(\w*(?:query|question|request|message|input)\w*)>(.*?)</\1>", re.I | re.S)
_QUERY_LINE_RE = re.compile(
    r"^\s*(?:user\s+)?(?:query|question|request|message|input)\s*:\s*(.+)$", re.I | re.M
)
_SHORT_WORDS = 12
_ID_PREFIX = os.urandom(3).hex()
_ids = itertools.count(1)


def _new_id(prefix: str) -> str:
    """Returns a unique id such as ``chatcmpl-3fa2c1000000000000000007`` (cheaper than uuid4)."""
    return f"{prefix}{_ID_PREFIX}{next(_ids):018x}"


@dataclass
class SimConfig:
    """Live behaviour of the simulator; every field can be changed via ``POST /sim/config``.

    Attributes:
        classifier_model: Requests for this model are answered with a route label.
        tokens: Tokens per generated answer (including the ``[sim:<model>]`` tag).
        token_delay_ms: Delay between streamed chunks.
        ttft_ms: Delay before the first chunk, or before a non-streaming answer.
        classifier_answer: Fixed classifier label; ``None`` uses the keyword heuristic.
        classifier_script: A scripted teacher: the label to answer per query (the text of the
            last user message the router's classification prompt embeds, stripped); a query
            not listed gets ``classifier_answer`` or the heuristic. Tests of the local
            classifier's auto mode play a classifier with a known answer per prompt with it.
        classifier_delay_ms: Delay before a classifier answer (replaces ``ttft_ms``).
        reasoning: Emit ``reasoning_content`` before the content.
        model_name_override: Report this ``model`` instead of the requested one.
        api_key: When set, API calls must send ``Authorization: Bearer <api_key>``.
    """

    classifier_model: str = "sim-classifier"
    tokens: int = 12
    token_delay_ms: float = 0.0
    ttft_ms: float = 0.0
    classifier_answer: str | None = None
    classifier_script: dict[str, str] | None = None
    classifier_delay_ms: float = 0.0
    reasoning: bool = False
    model_name_override: str | None = None
    api_key: str | None = None


@dataclass
class _Fault:
    """A queued fault; ``count == -1`` means it never runs out."""

    fault: str
    model: str | None = None
    path: str | None = None
    count: int = 1
    retry_after: float = 1.0
    delay_ms: float | None = None


class SimState:
    """Mutable simulator state shared by all requests (``app.state.sim``).

    Lists are mutated under a lock because tests may read or reset them from
    another thread; counters are only touched on the event loop.
    """

    def __init__(self, config: SimConfig) -> None:
        """Initialises the state.

        Args:
            config: Start configuration; ``reset()`` restores a copy of it.
        """
        self._initial = dataclasses.replace(config)
        self.config = dataclasses.replace(config)
        self.calls: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDED_CALLS)
        self.faults: list[_Fault] = []
        self.total_calls = 0
        self.open_streams = 0
        self.cancelled_streams = 0
        self.faults_triggered = 0
        self._lock = threading.Lock()
        self._hang_event: asyncio.Event | None = None
        self._hang_loop: asyncio.AbstractEventLoop | None = None

    def record(self, entry: dict[str, Any]) -> None:
        """Appends one call to the log."""
        with self._lock:
            self.calls.append(entry)
            self.total_calls += 1

    def stats(self) -> dict[str, int]:
        """Returns the counters served by ``GET /sim/stats``."""
        return {
            "open_streams": self.open_streams,
            "calls": self.total_calls,
            "cancelled_streams": self.cancelled_streams,
            "faults_triggered": self.faults_triggered,
        }

    def add_fault(self, fault: _Fault) -> None:
        """Queues a fault for the next matching requests."""
        with self._lock:
            self.faults.append(fault)

    def take_fault(self, path: str, model: Any) -> _Fault | None:
        """Consumes the first queued fault matching ``path`` and ``model``, if any."""
        if not self.faults:  # fast path, no lock: the common benchmark case
            return None
        with self._lock:
            for i, f in enumerate(self.faults):
                if (f.model is None or f.model == model) and (f.path is None or f.path == path):
                    if f.count > 0:
                        f.count -= 1
                        if f.count == 0:
                            del self.faults[i]
                    return f
        return None

    def update_config(self, changes: dict[str, Any]) -> SimConfig:
        """Applies a subset of ``SimConfig`` fields.

        Raises:
            ValueError: If a key is not a ``SimConfig`` field.
        """
        unknown = set(changes) - {f.name for f in dataclasses.fields(SimConfig)}
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        with self._lock:
            # Replace rather than mutate so a request that already read the config sees one version.
            self.config = dataclasses.replace(self.config, **changes)
        return self.config

    def reset(self) -> None:
        """Clears calls, faults and counters, restores the start config and releases hangs.

        ``open_streams`` is kept: it counts streams that are still running.
        """
        with self._lock:
            self.calls.clear()
            self.faults.clear()
            self.config = dataclasses.replace(self._initial)
            self.total_calls = self.cancelled_streams = self.faults_triggered = 0
        self.release_hangs()

    def hang_event(self) -> asyncio.Event:
        """Returns the event that hanging requests wait on (one per running loop)."""
        loop = asyncio.get_running_loop()
        if self._hang_event is None or self._hang_loop is not loop:
            self._hang_event, self._hang_loop = asyncio.Event(), loop
        return self._hang_event

    def release_hangs(self) -> None:
        """Wakes every hanging request; safe to call from any thread."""
        event, loop = self._hang_event, self._hang_loop
        self._hang_event = None
        if event is None or loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:  # asyncio.Event is not thread-safe: hop onto its loop
            loop.call_soon_threadsafe(event.set)


# --------------------------------------------------------------------------- helpers


def _error(status: int, message: str, err_type: str = "invalid_request_error", code: str | None = None,
           headers: dict[str, str] | None = None) -> Response:
    """Builds an OpenAI-style error response."""
    body = orjson.dumps({"error": {"message": message, "type": err_type, "param": None, "code": code}})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _json(obj: Any) -> Response:
    return Response(orjson.dumps(obj), media_type="application/json")


def _text_of(content: Any) -> str:
    """Flattens message content (a string or a list of parts) into plain text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                out.append(part["text"])
        return " ".join(out)
    return str(content)


def _last_user_text(messages: list[Any]) -> str:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            return _text_of(m.get("content"))
    return ""


def _count_words(messages: list[Any]) -> int:
    return sum(len(_text_of(m.get("content")).split()) for m in messages if isinstance(m, dict))


def _spaced(words: list[str]) -> tuple[str, ...]:
    """Turns words into tokens: each word plus its following space (the last has none)."""
    if not words:
        return ()
    return tuple(w + " " for w in words[:-1]) + (words[-1],)


# Words of a tool's name that say nothing about what it does ("get_weather" is about weather).
_GENERIC_TOOL_WORDS = frozenset({
    "get", "set", "list", "run", "do", "make", "use", "call", "fetch", "find", "read", "write", "edit",
    "create", "update", "delete", "add", "remove", "send", "check", "show", "task", "tool", "tools",
    "exec", "execute", "function", "api", "query", "lookup", "look", "up", "by", "for", "the", "a", "to",
    "of", "and", "or", "from", "info", "data", "user", "question", "ask", "plan", "mode", "exit", "kill",
    "output", "input", "all", "new", "my", "on", "in", "is",
})


def _name_words(name: str) -> list[str]:
    """The words of a tool name: ``get_weather`` and ``getWeather`` both give ``get``, ``weather``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^a-zA-Z0-9]+", spaced.lower()) if w]


def wants_tool(name: str, text: str) -> bool:
    """Whether ``text`` plainly asks for what the tool ``name`` does.

    True when a telling word of the name (at least 4 letters, not a generic verb such as
    get/list/read) appears in the text as a word or a word's stem: "What's the weather in
    Paris?" wants ``get_weather``; "search the web for…" wants ``web_search``.
    """
    words = set(re.findall(r"[a-z0-9]+", text.lower()))
    for part in _name_words(name):
        if len(part) < 4 or part in _GENERIC_TOOL_WORDS:
            continue
        if any(w == part or (w.startswith(part) and len(w) - len(part) <= 3) for w in words):
            return True
    return False


def tool_arguments(schema: Any, text: str) -> dict[str, Any]:
    """Arguments for a call that are valid against the tool's ``parameters`` schema.

    Every required property (and, when none is required, the first one) gets a value of its
    declared type: strings take the asker's words (at most 40 characters), or a listed
    ``enum`` value; numbers and integers take ``minimum`` or 1; booleans true; arrays one
    item (as ``minItems`` allows); objects recurse. A schema with no properties (or none at
    all) gets ``{"query": …}``, the shape earlier versions always sent.
    """
    value = _schema_value(schema if isinstance(schema, dict) else {"type": "object"}, text[:40], depth=0)
    return value if isinstance(value, dict) else {"query": text[:40]}


def _schema_value(schema: dict[str, Any], text: str, depth: int) -> Any:
    if isinstance(schema.get("const"), str | int | float | bool):
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options and isinstance(options[0], dict):
            merged = {**schema, **options[0]}
            merged.pop(key)
            return _schema_value(merged, text, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, dict) or not properties:
            return {"query": text} if depth == 0 else {}
        required = [r for r in schema.get("required") or () if r in properties]
        chosen = required or [next(iter(properties))]
        if depth > 4:
            return {}
        return {name: _schema_value(properties[name] if isinstance(properties[name], dict) else {}, text, depth + 1)
                for name in chosen}
    if kind == "array":
        item = schema.get("items") if isinstance(schema.get("items"), dict) else {"type": "string"}
        count = max(1, int(schema.get("minItems") or 1))
        if schema.get("maxItems") == 0:
            return []
        return [_schema_value(item, text, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = max(1, math.ceil(low) + (1 if "exclusiveMinimum" in schema else 0)) if isinstance(
            low, int | float) else 1
        high = schema.get("maximum")
        if isinstance(high, int | float) and value > high:
            value = math.floor(high)
        return value if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    limit = schema.get("maxLength")
    value = text or "x"
    minimum = int(schema.get("minLength") or 0)
    if len(value) < minimum:
        value = value.ljust(minimum, "x")
    return value[:limit] if isinstance(limit, int) and limit >= max(1, minimum) else value


@functools.lru_cache(maxsize=4096)
def _answer_tokens(model: str, text: str, n: int) -> tuple[str, ...]:
    """Deterministic answer of exactly ``n`` tokens: ``[sim:<model>]`` plus words echoed from ``text``."""
    words = text.split() or list(_FILLER)
    picked = [f"[sim:{model}]"] + [words[i % len(words)] for i in range(max(n, 1) - 1)]
    return _spaced(picked)


@functools.lru_cache(maxsize=4096)
def classify(text: str) -> str:
    """Heuristic route label for a (rendered) classification prompt.

    ``#route=LABEL`` anywhere wins. Otherwise the query is searched: the text
    inside ``<query>``-like tags (any tag whose name contains query, question,
    request, message or input, e.g. ``<last_user_message>``) or after a
    ``Query:`` line when present, else the whole text. ENRICH keywords win, then
    COMPLEX keywords, then a short greeting (SIMPLE); anything else is MODERATE.

    Args:
        text: Text of the last user message.

    Returns:
        The route label.
    """
    directive = _DIRECTIVE_RE.search(text)
    if directive:
        return directive.group(1)
    tags = _QUERY_TAG_RE.findall(text)
    if tags:
        query = tags[-1][1]
    else:
        lines = _QUERY_LINE_RE.findall(text)
        query = lines[-1] if lines else text
    low = query.lower()
    if any(w in low for w in _ENRICH_WORDS):
        return "ENRICH"
    if any(w in low for w in _COMPLEX_WORDS):
        return "COMPLEX"
    if _GREETING_RE.search(low) and len(low.split()) <= _SHORT_WORDS:
        return "SIMPLE"
    return "MODERATE"


def scripted_answer(script: dict[str, str] | None, text: str) -> str | None:
    """The scripted teacher's label for a (rendered) classification prompt, if it lists the query."""
    if not script:
        return None
    tags = _QUERY_TAG_RE.findall(text)
    query = (tags[-1][1] if tags else text).strip()
    return script.get(query)


def _embedding(text: str) -> list[float]:
    """Eight deterministic unit-length floats derived from a hash of ``text``."""
    digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
    vals = [int.from_bytes(digest[i:i + 2], "little") / 32767.5 - 1.0 for i in range(0, 16, 2)]
    norm = math.sqrt(sum(v * v for v in vals)) or 1.0
    return [round(v / norm, 6) for v in vals]


async def _wait_disconnect(receive: Receive) -> None:
    """Returns once the client has gone (the request body has already been read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class _SimulatedDisconnect(Exception):
    """Raised to drop a connection when the server's transport is not reachable."""


class _QuietAbortFilter(logging.Filter):
    """Hides uvicorn's traceback for connections we drop on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _SimulatedDisconnect))


logging.getLogger("uvicorn.error").addFilter(_QuietAbortFilter())


async def _drop_connection(scope: Scope, *, flush: bool) -> None:
    """Closes the client connection without finishing the HTTP response.

    The raw uvicorn ``send`` (stashed in the scope by ``_SimApp``) is a bound
    method of uvicorn's request cycle, which holds the socket transport. Closing
    it directly avoids uvicorn's own "500 Internal Server Error" fallback, so the
    client sees a genuine broken connection.

    Args:
        scope: ASGI scope of the request.
        flush: True to deliver already-written bytes first (``close``), False to
            discard them (``abort``, like a reset).

    Raises:
        _SimulatedDisconnect: When the transport is unavailable (non-uvicorn server).
    """
    transport = getattr(getattr(scope.get("sim.send"), "__self__", None), "transport", None)
    receive = scope.get("sim.receive")
    if transport is None or receive is None:
        raise _SimulatedDisconnect("simulated connection drop")
    if flush:
        transport.close()
    else:
        transport.abort()
    # Wait until uvicorn registers the loss; returning earlier would make it log
    # "returned without completing response" or write a terminating chunk.
    try:
        await asyncio.wait_for(_wait_disconnect(receive), 5.0)
    except TimeoutError:
        pass


class _DropResponse:
    """ASGI response that optionally sends a truncated body, then drops the connection."""

    def __init__(self, body: bytes | None = None) -> None:
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.body is not None:  # "cut": correct status and length, half the bytes
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(self.body)).encode())]})
            half = self.body[: len(self.body) // 2]
            await send({"type": "http.response.body", "body": half, "more_body": True})
        await _drop_connection(scope, flush=self.body is not None)


class _SSEResponse(StreamingResponse):
    """StreamingResponse that always closes its generator.

    When the client disconnects while the stream is blocked in ``send``,
    Starlette cancels the task but leaves the generator suspended; ``aclose``
    runs its ``finally`` now so ``open_streams`` is accurate.
    """

    media_type = "text/event-stream"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()  # type: ignore[attr-defined]


async def _emit(state: SimState, scope: Scope, chunks: list[bytes], first_delay: float, gap: float,
                cut_after: int | None, stall_after: int | None = None) -> AsyncIterator[bytes]:
    """Yields pre-built SSE frames with simulated timing and tracks open/cancelled streams.

    Args:
        state: Simulator state holding the counters.
        scope: ASGI scope (needed to drop the connection for the "cut" fault).
        chunks: Complete SSE frames, in order.
        first_delay: Seconds before the first frame.
        gap: Seconds between frames; 0 means never sleep.
        cut_after: Drop the connection after this many frames (never sending ``[DONE]``).
        stall_after: Go silent after this many frames, until the client leaves, a reset or the cap.
    """
    state.open_streams += 1
    finished = False
    try:
        if first_delay > 0:
            await asyncio.sleep(first_delay)
        for i, chunk in enumerate(chunks):
            if cut_after is not None and i == cut_after:
                finished = True  # the server hung up; not a client cancellation
                await _drop_connection(scope, flush=True)
                return
            if stall_after is not None and i == stall_after:
                try:
                    await asyncio.wait_for(state.hang_event().wait(), HANG_MAX_S)
                except TimeoutError:
                    pass
                finished = True
                return
            if i and gap > 0:
                await asyncio.sleep(gap)
            yield chunk
        finished = True
    finally:
        state.open_streams -= 1
        if not finished:  # CancelledError or GeneratorExit: the client went away
            state.cancelled_streams += 1


# --------------------------------------------------------------------------- application


class _SimApp(Starlette):
    """Starlette app that stashes the server's raw ``send``/``receive`` in the scope.

    Starlette's middleware wraps both callables; the raw ones are needed to reach
    the socket for the "cut"/"reset" faults and to watch for client disconnects.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["sim.send"] = send
            scope["sim.receive"] = receive
        await super().__call__(scope, receive, send)


class _Handlers:
    """Request handlers bound to one ``SimState``."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    # -- shared request prologue / fault handling --------------------------------------

    async def _prelude(
        self, request: Request, messages_key: str | None
    ) -> tuple[dict[str, Any], dict[str, Any]] | Response:
        """Parses the JSON body, records the call and checks the API key.

        Returns:
            ``(body, call_entry)`` or an error response.
        """
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error(400, "Request body is not valid JSON.")
        if not isinstance(body, dict):
            return _error(400, "Request body must be a JSON object.")
        auth = request.headers.get("authorization")
        messages = body.get(messages_key) if messages_key else None
        if messages_key == "input" and isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        tools = body.get("tools")
        entry = {"path": request.scope["path"], "model": body.get("model"),
                 "stream": bool(body.get("stream")), "messages": messages,
                 "tools_count": len(tools) if isinstance(tools, list) else 0,
                 "has_auth": bool(auth), "fault": None, "body": body}
        self.state.record(entry)  # never the Authorization value itself
        key = self.state.config.api_key
        if key is not None and not (auth and hmac.compare_digest(auth.encode(), b"Bearer " + key.encode())):
            return _error(401, "Incorrect API key provided.", code="invalid_api_key")
        return body, entry

    def _select_fault(self, request: Request, body: dict[str, Any], entry: dict[str, Any]) -> _Fault | None:
        """Picks the fault for this request: the ``x-sim-fault`` header first, then the queue."""
        name = request.headers.get("x-sim-fault")
        if name:
            h = request.headers
            fault = _Fault(name, retry_after=float(h.get("x-sim-retry-after", 1)),
                           delay_ms=float(h["x-sim-delay-ms"]) if "x-sim-delay-ms" in h else None)
        else:
            fault = self.state.take_fault(request.scope["path"], body.get("model"))
        if fault is not None:
            entry["fault"] = fault.fault
            self.state.faults_triggered += 1
        return fault

    async def _fault_response(
        self, fault: _Fault | None, scope: Scope, stream: bool
    ) -> Response | _DropResponse | None:
        """Returns the response a fault replaces the answer with, or None to answer normally."""
        if fault is None or fault.fault in ("cut", "slow_first_token", "stall", "slow_steady"):
            return None  # handled while answering
        name = fault.fault
        if name == "429":
            return _error(429, "Rate limit reached (simulated).", "rate_limit_error", "rate_limit_exceeded",
                          headers={"Retry-After": f"{fault.retry_after:g}"})
        if name.isdigit():
            status = int(name)
            return _error(status, f"Simulated HTTP {status}.",
                          "server_error" if status >= 500 else "invalid_request_error")
        if name == "reset":
            return _DropResponse()
        if name == "garbage":
            if stream:
                frames = [b"data: {this is not json\n\n", _DONE]
                return _SSEResponse(_emit(self.state, scope, frames, 0, 0, None))
            return Response(b"<html>simulated garbage, not JSON", media_type="application/json")
        if name == "hang":
            # Hang until reset/shutdown, the client giving up, or the cap; never busy-wait.
            waiters = [asyncio.ensure_future(self.state.hang_event().wait())]
            if "sim.receive" in scope:
                waiters.append(asyncio.ensure_future(_wait_disconnect(scope["sim.receive"])))
            cap = fault.delay_ms / 1000 if fault.delay_ms is not None else HANG_MAX_S
            try:
                await asyncio.wait(waiters, timeout=cap, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
            return _error(503, "Simulated hang released.", "server_error")
        return _error(400, f"Unknown simulated fault {name!r}.")

    def _delays(self, fault: _Fault | None, classifier: bool) -> tuple[float, float]:
        """Returns (first-token delay, inter-chunk delay) in seconds."""
        cfg = self.state.config
        first = (cfg.classifier_delay_ms if classifier else cfg.ttft_ms) / 1000
        if fault is not None and fault.fault == "slow_first_token":
            first += (fault.delay_ms if fault.delay_ms is not None else 1000.0) / 1000
        if fault is not None and fault.fault == "slow_steady":
            return first, (fault.delay_ms if fault.delay_ms is not None else 200.0) / 1000
        return first, cfg.token_delay_ms / 1000

    async def _finish(self, scope: Scope, fault: _Fault | None, stream: bool, build: Any,
                      classifier: bool = False) -> Response | _DropResponse:
        """Sends the answer produced by ``build()`` (SSE frames or a JSON body) with timing and faults."""
        first, gap = self._delays(fault, classifier)
        cut = fault is not None and fault.fault == "cut"
        if stream:
            chunks: list[bytes] = build()
            cut_after = min(3, len(chunks) - 1) if cut else None
            stall_after = min(2, len(chunks) - 1) if fault is not None and fault.fault == "stall" else None
            return _SSEResponse(_emit(self.state, scope, chunks, first, gap, cut_after, stall_after))
        if fault is not None and fault.fault == "stall":  # a body that never comes
            await asyncio.wait_for(self.state.hang_event().wait(), HANG_MAX_S)
        if fault is not None and fault.fault == "slow_steady":
            first += gap * 12  # the whole answer's time, in one piece
        if first > 0:
            await asyncio.sleep(first)
        body: bytes = build()
        return _DropResponse(body) if cut else Response(body, media_type="application/json")

    # -- endpoints ------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        """``GET /health``."""
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def models(self, request: Request) -> Response:
        """``GET /v1/models``: OpenAI model list."""
        now = int(time.time())
        return _json({"object": "list", "data": [
            {"id": m, "object": "model", "created": now, "owned_by": "sim"} for m in MODELS]})

    async def chat(self, request: Request) -> Response | _DropResponse:
        """``POST /v1/chat/completions`` in vLLM's shape (see module docstring)."""
        pre = await self._prelude(request, "messages")
        if isinstance(pre, Response):
            return pre
        body, entry = pre
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "'messages' is required and must be a non-empty list.")
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            return _error(400, "max_tokens must be a positive integer.")
        stream = bool(body.get("stream"))
        fault = self._select_fault(request, body, entry)
        early = await self._fault_response(fault, request.scope, stream)
        if early is not None:
            return early

        cfg = self.state.config
        requested = body.get("model") or "sim-primary"
        model = cfg.model_name_override or requested
        classifier = requested == cfg.classifier_model
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        reasoning: tuple[str, ...] = ()
        content: tuple[str, ...] = ()
        tool: tuple[str, str, str] | None = None
        if classifier:
            fixed = cfg.classifier_answer  # "" is a legitimate (garbage) answer to simulate
            text = _last_user_text(messages)
            scripted = scripted_answer(cfg.classifier_script, text)
            if scripted is not None:
                fixed = scripted
            content = (fixed if fixed is not None else classify(text),)
        else:
            reasoning = _REASONING if cfg.reasoning else ()
            offered = self._tool_to_call(body, last)
            if offered is not None:
                name, schema = offered
                arguments = tool_arguments(schema, _text_of(last.get("content")))
                tool = (_new_id("call_"), name, json.dumps(arguments))
            elif last.get("role") == "tool":
                said = _text_of(last.get("content"))[:60]
                content = _spaced(f"[sim:{model}] tool said: {said}".split())
            else:
                content = _answer_tokens(model, _last_user_text(messages), cfg.tokens)
                fmt = body.get("response_format")
                if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
                    content = _spaced(orjson.dumps({"answer": "".join(content)}).decode().split(" "))
        finish = "tool_calls" if tool else "stop"
        if limit is not None and tool is None and len(reasoning) + len(content) > limit:
            finish = "length"  # reasoning tokens count against the budget, as in vLLM
            reasoning, content = reasoning[:limit], content[: max(0, limit - len(reasoning))]
        generated = len(reasoning) + len(content) + (len(tool[2].split()) + 2 if tool else 0)
        usage = {"prompt_tokens": _count_words(messages), "completion_tokens": generated}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        cid, created = _new_id("chatcmpl-"), int(time.time())

        def build_body() -> bytes:
            msg: dict[str, Any] = {"role": "assistant", "content": None if tool else "".join(content)}
            if reasoning:
                msg["reasoning_content"] = "".join(reasoning)
            if tool:
                msg["tool_calls"] = [{"id": tool[0], "type": "function",
                                      "function": {"name": tool[1], "arguments": tool[2]}}]
            return orjson.dumps({"id": cid, "object": "chat.completion", "created": created, "model": model,
                                 "choices": [{"index": 0, "message": msg, "finish_reason": finish,
                                              "logprobs": None}], "usage": usage})

        def build_chunks() -> list[bytes]:
            # Every frame shares this prefix; only the delta differs.
            head = (b'data: {"id":"' + cid.encode() + b'","object":"chat.completion.chunk","created":'
                    + str(created).encode() + b',"model":' + orjson.dumps(model)
                    + b',"choices":[{"index":0,"delta":')
            tail = b',"logprobs":null,"finish_reason":null}]}\n\n'
            deltas: list[dict[str, Any]] = []
            call_head = None
            if tool:
                call_head = [{"index": 0, "id": tool[0], "type": "function",
                              "function": {"name": tool[1], "arguments": ""}}]
            if call_head and not reasoning:  # OpenAI/vLLM put the call header in the role delta
                deltas.append({"role": "assistant", "tool_calls": call_head})
            else:
                deltas.append({"role": "assistant", "content": ""})
            deltas.extend({"reasoning_content": t} for t in reasoning)
            if tool:
                if reasoning:
                    deltas.append({"tool_calls": call_head})
                step = -(-len(tool[2]) // 4)  # 4 fragments, like a real tokenizer splitting the JSON
                deltas.extend({"tool_calls": [{"index": 0, "function": {"arguments": tool[2][i:i + step]}}]}
                              for i in range(0, len(tool[2]), step))
            deltas.extend({"content": t} for t in content)
            out = [head + orjson.dumps(d) + tail for d in deltas]
            out.append(head + b'{},"logprobs":null,"finish_reason":"' + finish.encode() + b'"}]}\n\n')
            opts = body.get("stream_options")
            if isinstance(opts, dict) and opts.get("include_usage"):
                last = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                        "choices": [], "usage": usage}
                out.append(b"data: " + orjson.dumps(last) + b"\n\n")
            out.append(_DONE)
            return out

        build = build_chunks if stream else build_body
        return await self._finish(request.scope, fault, stream, build, classifier)

    @staticmethod
    def _tool_to_call(body: dict[str, Any], last: dict[str, Any]) -> tuple[str, Any] | None:
        """The function to call (its name and parameters schema), or None to answer with text.

        A call is made when tools are offered, the last message is from the user, and it
        names a tool, or asks plainly for what a tool does (a word of the tool's name, such
        as "weather" for ``get_weather``; see ``wants_tool``), or says ``#tool`` (the first
        tool); ``tool_choice`` "none"/"required"/named function is honoured.
        """
        tools = body.get("tools")
        if not isinstance(tools, list) or not tools or last.get("role") != "user":
            return None
        functions = [t.get("function") for t in tools if isinstance(t, dict)]
        offered = {f["name"]: f.get("parameters") for f in functions
                   if isinstance(f, dict) and isinstance(f.get("name"), str) and f["name"]}
        choice = body.get("tool_choice")
        if not offered or choice == "none":
            return None
        names = list(offered)
        if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            chosen = choice["function"].get("name")
            name = chosen if chosen in offered else names[0]
            return name, offered[name]
        text = _text_of(last.get("content"))
        low = text.lower()
        for n in names:
            if n.lower() in low:
                return n, offered[n]
        for n in names:
            if wants_tool(n, text):
                return n, offered[n]
        if "#tool" in low or choice == "required":
            return names[0], offered[names[0]]
        return None

    async def completions(self, request: Request) -> Response | _DropResponse:
        """``POST /v1/completions`` (legacy text completions)."""
        pre = await self._prelude(request, None)
        if isinstance(pre, Response):
            return pre
        body, entry = pre
        prompt = body.get("prompt")
        if isinstance(prompt, list):
            prompt = " ".join(p for p in prompt if isinstance(p, str))
        if not isinstance(prompt, str):
            return _error(400, "'prompt' is required.")
        stream = bool(body.get("stream"))
        fault = self._select_fault(request, body, entry)
        early = await self._fault_response(fault, request.scope, stream)
        if early is not None:
            return early
        cfg = self.state.config
        requested = body.get("model") or "sim-primary"
        model = cfg.model_name_override or requested
        classifier = requested == cfg.classifier_model
        fixed = cfg.classifier_answer
        tokens = ((fixed if fixed is not None else classify(prompt),) if classifier
                  else _answer_tokens(model, prompt, cfg.tokens))
        limit, finish = body.get("max_tokens"), "stop"
        if isinstance(limit, int) and 0 < limit < len(tokens):
            tokens, finish = tokens[:limit], "length"
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(tokens)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        base = {"id": _new_id("cmpl-"), "object": "text_completion", "created": int(time.time()),
                "model": model}

        def build_body() -> bytes:
            choice = {"text": "".join(tokens), "index": 0, "finish_reason": finish, "logprobs": None}
            return orjson.dumps({**base, "choices": [choice], "usage": usage})

        def build_chunks() -> list[bytes]:
            frames = [{**base, "choices": [{"text": t, "index": 0, "finish_reason": None, "logprobs": None}]}
                      for t in tokens]
            end = {"text": "", "index": 0, "finish_reason": finish, "logprobs": None}
            frames.append({**base, "choices": [end]})
            opts = body.get("stream_options")
            if isinstance(opts, dict) and opts.get("include_usage"):
                frames.append({**base, "choices": [], "usage": usage})
            return [b"data: " + orjson.dumps(f) + b"\n\n" for f in frames] + [_DONE]

        build = build_chunks if stream else build_body
        return await self._finish(request.scope, fault, stream, build, classifier)

    async def responses(self, request: Request) -> Response | _DropResponse:
        """``POST /v1/responses``: xAI answer with server-side search tool calls and citations."""
        pre = await self._prelude(request, "input")
        if isinstance(pre, Response):
            return pre
        body, entry = pre
        inp = body.get("input")
        if isinstance(inp, str):
            query = inp
        elif isinstance(inp, list) and inp:
            tail = inp[-1].get("content") if isinstance(inp[-1], dict) else inp[-1]
            query = _last_user_text(inp) or _text_of(tail)
        else:
            return _error(400, "'input' is required.")
        stream = bool(body.get("stream"))
        fault = self._select_fault(request, body, entry)
        early = await self._fault_response(fault, request.scope, stream)
        if early is not None:
            return early
        cfg = self.state.config
        model = cfg.model_name_override or body.get("model") or "grok-4-1-fast-reasoning"
        q = " ".join(query.split())[:100]
        output: list[dict[str, Any]] = []
        for t in body.get("tools") or []:
            kind = t.get("type") if isinstance(t, dict) else None
            if kind in ("web_search", "web_search_preview", "x_search"):
                prefix = "xs_" if kind == "x_search" else "ws_"
                output.append({"type": f"{'x_search' if kind == 'x_search' else 'web_search'}_call",
                               "id": _new_id(prefix), "status": "completed",
                               "action": {"type": "search", "query": q}})
        searched = bool(output)
        if searched:
            text = (f"Search results for \"{q}\": Example A reports the most recent developments "
                    f"on this topic [1]. Example B adds background and context [2]. "
                    f"Sources agree on the main points.")
            annotations = [{"type": "url_citation", "url": f"https://example.com/{s}",
                            "title": f"Example {s.upper()}",
                            "start_index": text.index(f"[{i}]"), "end_index": text.index(f"[{i}]") + 3}
                           for i, s in ((1, "a"), (2, "b"))]
            citations = ["https://example.com/a", "https://example.com/b"]
        else:
            text, annotations, citations = f"[sim:{model}] Answer about \"{q}\" without search.", [], []
        msg_id = _new_id("msg_")
        output.append({"type": "message", "id": msg_id, "role": "assistant", "status": "completed",
                       "content": [{"type": "output_text", "text": text, "annotations": annotations}]})
        in_tok = _count_words(inp) if isinstance(inp, list) else len(query.split())
        out_tok = len(text.split())
        usage = {"input_tokens": in_tok, "output_tokens": out_tok, "total_tokens": in_tok + out_tok}
        resp = {"id": _new_id("resp_"), "object": "response", "created_at": int(time.time()), "model": model,
                "status": "completed", "output": output, "citations": citations, "usage": usage}

        def build_chunks() -> list[bytes]:
            # Minimal Responses-API event stream: created, text deltas, done, completed.
            started = {**resp, "status": "in_progress", "output": [], "citations": [], "usage": None}
            events: list[dict[str, Any]] = [{"type": "response.created", "response": started}]
            where = {"item_id": msg_id, "output_index": len(output) - 1, "content_index": 0}
            events += [{"type": "response.output_text.delta", **where, "delta": t}
                       for t in _spaced(text.split(" "))]
            events.append({"type": "response.output_text.done", **where, "text": text})
            events.append({"type": "response.completed", "response": resp})
            return [b"event: " + e["type"].encode() + b"\ndata: "
                    + orjson.dumps({**e, "sequence_number": i}) + b"\n\n" for i, e in enumerate(events)]

        return await self._finish(request.scope, fault, stream,
                                  build_chunks if stream else functools.partial(orjson.dumps, resp))

    async def embeddings(self, request: Request) -> Response | _DropResponse:
        """``POST /v1/embeddings``: 8 deterministic floats per input (``float`` or ``base64``)."""
        pre = await self._prelude(request, None)
        if isinstance(pre, Response):
            return pre
        body, entry = pre
        inp = body.get("input")
        if isinstance(inp, (str, int)) or (isinstance(inp, list) and inp and isinstance(inp[0], int)):
            inp = [inp]  # a single string or a single token-id list
        if not isinstance(inp, list) or not inp:
            return _error(400, "'input' is required.")
        fault = self._select_fault(request, body, entry)
        early = await self._fault_response(fault, request.scope, False)
        if early is not None:
            return early
        texts = [x if isinstance(x, str) else str(x) for x in inp]
        as_b64 = body.get("encoding_format") == "base64"
        data = []
        for i, t in enumerate(texts):
            vec: Any = _embedding(t)
            if as_b64:
                vec = base64.b64encode(struct.pack("<8f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": vec})
        n = sum(len(t.split()) for t in texts)
        model = self.state.config.model_name_override or body.get("model") or "sim-embed"
        out = {"object": "list", "data": data, "model": model,
               "usage": {"prompt_tokens": n, "total_tokens": n}}
        return await self._finish(request.scope, fault, False, functools.partial(orjson.dumps, out))

    # -- control endpoints ------------------------------------------------------------

    async def sim_calls(self, request: Request) -> Response:
        """``GET /sim/calls``: recorded API calls, oldest first."""
        with self.state._lock:
            calls = list(self.state.calls)
        return _json(calls)

    async def sim_stats(self, request: Request) -> Response:
        """``GET /sim/stats``: stream and call counters."""
        return _json(self.state.stats())

    async def sim_reset(self, request: Request) -> Response:
        """``POST /sim/reset``: clear calls/faults/counters, restore the start config."""
        self.state.reset()
        return _json({"status": "reset"})

    async def sim_config(self, request: Request) -> Response:
        """``GET``/``POST /sim/config``: read or update the live config."""
        if request.method == "POST":
            try:
                changes = orjson.loads(await request.body() or b"{}")
                self.state.update_config(changes)
            except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
                return _error(400, str(exc))
        return _json(dataclasses.asdict(self.state.config))

    async def sim_faults(self, request: Request) -> Response:
        """``GET``/``POST /sim/faults``: list or queue faults."""
        if request.method == "POST":
            try:
                spec = orjson.loads(await request.body())
                name = str(spec["fault"])
                if name not in FAULTS and not (name.isdigit() and 400 <= int(name) <= 599):
                    raise ValueError(f"unknown fault {name!r}; expected one of {sorted(FAULTS)}")
                count = int(spec.get("count", 1))
                if count == 0 or count < -1:
                    raise ValueError("count must be positive or -1")
                delay = spec.get("delay_ms")
                self.state.add_fault(_Fault(name, spec.get("model"), spec.get("path"), count,
                                            float(spec.get("retry_after") or 1.0),
                                            None if delay is None else float(delay)))
            except (orjson.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
                return _error(400, f"bad fault spec: {exc}")
        with self.state._lock:
            return _json([dataclasses.asdict(f) for f in self.state.faults])


def create_app(config: SimConfig | None = None) -> Starlette:
    """Builds the simulator ASGI app.

    Args:
        config: Start configuration (defaults to ``SimConfig()``).

    Returns:
        A Starlette app whose ``state.sim`` is the ``SimState``.
    """
    state = SimState(config or SimConfig())
    h = _Handlers(state)
    routes = [
        Route("/v1/chat/completions", h.chat, methods=["POST"]),
        Route("/v1/completions", h.completions, methods=["POST"]),
        Route("/v1/responses", h.responses, methods=["POST"]),
        Route("/v1/embeddings", h.embeddings, methods=["POST"]),
        Route("/v1/models", h.models, methods=["GET"]),
        Route("/health", h.health, methods=["GET"]),
        Route("/sim/calls", h.sim_calls, methods=["GET"]),
        Route("/sim/stats", h.sim_stats, methods=["GET"]),
        Route("/sim/reset", h.sim_reset, methods=["POST"]),
        Route("/sim/config", h.sim_config, methods=["GET", "POST"]),
        Route("/sim/faults", h.sim_faults, methods=["GET", "POST"]),
    ]
    app = _SimApp(routes=routes)
    app.state.sim = state
    return app


# --------------------------------------------------------------------------- serving


class _SimUvicornServer(uvicorn.Server):
    """uvicorn server that wakes hanging requests before its graceful shutdown waits on them."""

    def __init__(self, config: uvicorn.Config, state: SimState) -> None:
        super().__init__(config)
        self.sim_state = state
        self.loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.sim_state.release_hangs()
        await super().shutdown(sockets)


def _uvicorn_config(app: Starlette, **kwargs: Any) -> uvicorn.Config:
    return uvicorn.Config(app, loop="auto", access_log=False, log_level="warning", lifespan="off",
                          timeout_graceful_shutdown=3, **kwargs)


class SimServer:
    """Runs the simulator on 127.0.0.1 in a background thread.

    Example::

        with SimServer(SimConfig(tokens=5)) as sim:
            httpx.get(sim.url + "/health")

    Attributes:
        url: Base URL, e.g. ``http://127.0.0.1:54321`` (append ``/v1`` for OpenAI clients).
        port: The bound port.
        app: The ASGI app.
        app_state: The ``SimState`` (counters, calls, live config).
    """

    def __init__(self, config: SimConfig | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 startup_timeout: float = 10.0) -> None:
        """Creates (but does not start) the server.

        Args:
            config: Start configuration.
            host: Interface to bind.
            port: Port to bind; 0 picks a free one.
            startup_timeout: Seconds to wait for uvicorn to start.
        """
        self.app = create_app(config)
        self.app_state: SimState = self.app.state.sim
        self._host, self._port, self._timeout = host, port, startup_timeout
        self._server: _SimUvicornServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.url = ""

    def start(self) -> SimServer:
        """Binds the socket, starts uvicorn and waits until it accepts connections.

        Raises:
            RuntimeError: If uvicorn did not start in time.
        """
        # Binding here (instead of letting uvicorn bind port 0) tells us the port up front.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self.port = sock.getsockname()[1]
        self.url = f"http://{self._host}:{self.port}"
        self._server = _SimUvicornServer(_uvicorn_config(self.app), self.app_state)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"sim-server-{self.port}", daemon=True)
        self._thread.start()
        ready = threading.Event()
        deadline = time.monotonic() + self._timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError(f"simulator failed to start on {self.url}")
            ready.wait(0.005)  # short bounded poll of uvicorn's `started` flag
        return self

    def stop(self) -> None:
        """Releases hanging requests and stops uvicorn (waits for the thread)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        self.app_state.release_hangs()
        thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: run the simulator in the foreground.

    Args:
        argv: Arguments (defaults to ``sys.argv[1:]``).
    """
    p = argparse.ArgumentParser(prog="python -m tools.simulator", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--tokens", type=int, default=SimConfig.tokens)
    p.add_argument("--token-delay-ms", type=float, default=0.0)
    p.add_argument("--ttft-ms", type=float, default=0.0)
    p.add_argument("--classifier-model", default=SimConfig.classifier_model)
    p.add_argument("--classifier-answer", default=None)
    p.add_argument("--classifier-delay-ms", type=float, default=0.0)
    p.add_argument("--reasoning", action="store_true")
    p.add_argument("--model-name-override", default=None)
    p.add_argument("--api-key", default=None)
    a = p.parse_args(argv)
    cfg = SimConfig(classifier_model=a.classifier_model, tokens=a.tokens, token_delay_ms=a.token_delay_ms,
                    ttft_ms=a.ttft_ms, classifier_answer=a.classifier_answer,
                    classifier_delay_ms=a.classifier_delay_ms, reasoning=a.reasoning,
                    model_name_override=a.model_name_override, api_key=a.api_key)
    app = create_app(cfg)
    print(f"ai-router simulator on http://{a.host}:{a.port}", flush=True)
    _SimUvicornServer(_uvicorn_config(app, host=a.host, port=a.port), app.state.sim).run()


if __name__ == "__main__":
    main()
