"""The chat path at the HTTP edge: run the graph for one request and answer as OpenAI does.

`run_chat` is the heart of every chat endpoint: it builds the run's context, answers from the
response cache when it may, drives the graph (`GraphRun`), and turns the run's state into a JSON
body or an SSE stream with the decision in its headers. Every request's
session is finished in one place (`recorded`), exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import anyio
import orjson
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from langgraph.graph.state import CompiledStateGraph

from core.backends.assemble import completion_chunks
from core.backends.client import elapsed_ms
from core.backends.steps import overhead_ms
from core.caches import CachedResponse, ResponseCache
from core.context import RouterContext
from core.http.errors import OpenAIError
from core.http.keys import presented_key
from core.http.runs import GraphRun
from core.http.sse import DisconnectAwareStreamingResponse
from core.redact import redact
from core.routes import check_route
from core.services import Services
from core.sessions.recorder import RequestSession
from core.state import decision_of, request_params

log = logging.getLogger("ai_router")


class Dialect(Protocol):
    """How the chat path renders its answer for the API the client speaks.

    `run_chat` runs every request the same way (graph, decision headers, session, usage)
    and hands each finished chat completion, or each chunk of a stream, to a dialect that
    renders it: Chat Completions itself (`ChatDialect`, the default), the Responses API or
    the Anthropic Messages API (`core.http.dialects`). A stream is framed as `opening()`,
    one `chunk()` per chat chunk, then `closing()` after a clean end, or `failure()` when it
    broke after the first byte (an in-band error the client can see).
    """

    async def answer(self, response: dict[str, Any]) -> dict[str, Any]:
        """The JSON body for a finished chat completion (its `id` is the session id)."""
        ...

    def opening(self) -> bytes:
        """The frames a stream starts with."""
        ...

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        """The frames one chat chunk becomes (possibly none)."""
        ...

    def failure(self, error: OpenAIError) -> bytes:
        """The frames that end a stream broken after its first byte."""
        ...

    async def closing(self) -> bytes:
        """The frames that end a stream that finished cleanly."""
        ...


class ChatDialect:
    """Chat Completions, exactly as vLLM frames them (`data: {json}` + blank line, then `[DONE]`).

    Chunks keep every field the backend sent; only `id` (the session id) and `model` (the
    virtual model) are rewritten, and the usage-only chunk is dropped unless the client asked
    for it (`stream_options.include_usage`).
    """

    def __init__(self, session_id: str, virtual_model: str, include_usage: bool) -> None:
        """Render for the session `session_id`, naming the virtual model."""
        self.session_id = session_id
        self.virtual_model = virtual_model
        self.include_usage = include_usage

    async def answer(self, response: dict[str, Any]) -> dict[str, Any]:
        """The chat completion as it is."""
        return response

    def opening(self) -> bytes:
        """Nothing: a chat stream starts with its first chunk."""
        return b""

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        """One `data:` frame, with the router's id and model."""
        if not (self.include_usage or chunk.get("choices") or not chunk.get("usage")):
            return b""
        chunk["id"] = self.session_id
        chunk["model"] = self.virtual_model
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def failure(self, error: OpenAIError) -> bytes:
        """The OpenAI error as a `data:` frame, then `[DONE]`."""
        return b"data: " + orjson.dumps(error.body()) + b"\n\ndata: [DONE]\n\n"

    async def closing(self) -> bytes:
        """`[DONE]`."""
        return b"data: [DONE]\n\n"


def open_session(services: Services, request: Request, endpoint: str) -> RequestSession:
    """Start the session of a request that just arrived."""
    session = RequestSession(
        services.sessions, services.stats, endpoint, request.headers.get("user-agent"), services.prompt_version,
        usage=services.usage, budgets=services.budgets,
    )
    request.state.session_id = session.id
    session.client = getattr(request.state, "client", None) or "anonymous"  # named by the budget middleware
    session.synthetic = (services.settings.synthetic_traffic
                         or request.headers.get("x-ai-router-synthetic", "").lower() in ("1", "true", "yes"))
    if services.shared is not None:
        services.shared.note_session(session.id)  # feedback posted to another replica finds this one
    return session


def header_safe(text: str, limit: int = 300) -> str:
    """Make `text` fit an HTTP header (latin-1, one line, bounded)."""
    return text.encode("ascii", "replace").decode().replace("\r", " ").replace("\n", " ")[:limit]


def decision_headers(session_id: str, state: dict[str, Any], overhead_ms: float | None) -> dict[str, str]:
    """Response headers that tell operators how the request was routed."""
    headers = {
        "X-Session-Id": session_id,
        "X-AI-Router-Route": state.get("route") or "",
        "X-AI-Router-Backend": state.get("backend") or "router",
        "X-AI-Router-Path": state.get("path") or "router",
        "X-AI-Router-Reason": header_safe(state.get("route_reason") or ""),
    }
    if state.get("served_model"):
        headers["X-AI-Router-Model"] = header_safe(state["served_model"])
    if overhead_ms is not None:
        headers["X-AI-Router-Overhead-Ms"] = f"{overhead_ms:.2f}"
    return headers


def error_from_state(state: dict[str, Any]) -> OpenAIError:
    """The OpenAI-style error of a run that ended with `error` (with `Retry-After` when the backend sent one)."""
    error = state["error"]
    retry_after = error.get("retry_after")
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
    return OpenAIError(error.get("status_code") or 502, error.get("message") or "backend failed",
                       code=error.get("kind"), headers=headers)


async def recorded(session: RequestSession, handler: Awaitable[Response]) -> Response:
    """Await `handler` and finish the request's session: the one place every request is recorded.

    The ways through a request only say how it went (`session.state`, `session.fail`). Here
    the session is finished once the answer is ready, or, for a stream, once its last byte
    is sent or the client has gone (`_finish_after`): exactly one record per request,
    whatever happens.
    """
    streaming = False
    try:
        response = await handler
        if isinstance(response, StreamingResponse):
            response.body_iterator = _finish_after(response.body_iterator, session)
            streaming = True
        return response
    except ClientDisconnected:
        session.fail(499, "client disconnected before the answer")
        return Response(status_code=499)
    except OpenAIError as exc:
        session.fail(exc.status_code, exc.message)
        raise
    except asyncio.CancelledError:
        session.fail(499, "client disconnected")
        raise
    except BaseException as exc:
        session.fail(500, f"internal error: {type(exc).__name__}")
        raise
    finally:
        if not streaming:
            session.finish()


async def _finish_after(body: AsyncIterable[Any], session: RequestSession) -> AsyncIterator[Any]:
    """Relay a stream's body, then finish its session (after the body's own clean-up has run)."""
    try:
        async for part in body:
            yield part
    finally:
        closing = getattr(body, "aclose", None)
        if closing is not None:
            # Starlette cancels the response when the client leaves; shield the body's clean-up
            # (it stops the upstream call and says how the stream ended) from that cancellation.
            with anyio.CancelScope(shield=True):
                await closing()
        session.finish()


class ClientDisconnected(Exception):
    """The client hung up before a non-streaming answer was ready."""


async def until_disconnect(request: Request, run: GraphRun) -> dict[str, Any]:
    """Run the graph to the end, unless the client hangs up first: then cancel the run.

    Starlette does not cancel a non-streaming handler when its client goes away, so without
    this a closed connection would leave the generation running on the GPU.
    """
    work = asyncio.ensure_future(run.run_to_end())
    watcher = asyncio.ensure_future(_client_gone(request))
    try:
        done, _ = await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        work.cancel()
        raise
    finally:
        watcher.cancel()
    if work in done:
        return work.result()
    work.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await work
    await run.aclose()
    raise ClientDisconnected


async def _client_gone(request: Request) -> None:
    """Return once the client has disconnected (the body was already read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def run_chat(
    graph: CompiledStateGraph[Any, Any, Any, Any],
    services: Services,
    request: Request,
    session: RequestSession,
    body: dict[str, Any],
    *,
    stream: bool,
    forced_route: str | None = None,
    dry_run: bool = False,
    dialect: Dialect | None = None,
) -> Response:
    """Route and answer one chat request (the heart of every chat endpoint).

    `dialect` renders the answer for the API the client speaks (default: Chat Completions).
    """
    settings = services.settings
    session.stream, session.dry_run = stream and not dry_run, dry_run
    if forced_route is not None:
        try:
            check_route(forced_route)
        except ValueError as error:
            raise OpenAIError(400, str(error), param="route") from None
    context = RouterContext.from_settings(settings, services, forced_route=forced_route, dry_run=dry_run,
                                          stream=session.stream)
    # Real traffic counts in the local classifier's agreement (a later label of the session too); synthetic does not.
    context.attach(measured_session=None if session.synthetic else session.id)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    dialect = dialect or ChatDialect(session.id, settings.virtual_model, include_usage)
    responses = services.caches.responses
    cache_key = None
    if responses is not None and not dry_run and ResponseCache.cacheable(body):
        cache_key = ResponseCache.key(body, presented_key(request.scope), forced_route,
                                      context.prompts.digest)
        hit = await responses.aget(cache_key)
        if hit is not None:
            return await _from_cache(settings.virtual_model, session, hit, dialect, stream=stream)
    run = GraphRun(graph, {"messages": body["messages"], "params": request_params(body)}, context, session.node_times)
    session.state = run.state

    if not context.stream:
        state = session.state = await until_disconnect(request, run)
        if dry_run:
            return JSONResponse(_dry_run_body(session.id, state, elapsed_ms(session.started)),
                                headers=decision_headers(session.id, state, None))
        if state.get("error"):
            raise error_from_state(state)
        response = dict(state["response"])
        response["id"] = session.id
        response["model"] = settings.virtual_model
        if cache_key is not None:
            _store(responses, cache_key, state)
        headers = decision_headers(session.id, state, overhead_ms(state, elapsed_ms(session.started)))
        return Response(orjson.dumps(await dialect.answer(response)), media_type="application/json",
                        headers=headers)

    # Streaming: run until the first chunk, so that a failure before any byte (and every
    # fallback) can still become a proper HTTP error, and the headers can name the route.
    try:
        first = await run.next_chunk()
    except BaseException:
        await run.aclose()
        raise
    if first is None and run.state.get("error"):
        raise error_from_state(run.state)
    headers = decision_headers(session.id, run.state, None)  # `served_model`: the first chunk's (GraphRun)
    store = (lambda state: _store(responses, cache_key, state)) if cache_key is not None else None
    return DisconnectAwareStreamingResponse(
        _sse(run, first, session, dialect, store),
        media_type="text/event-stream",
        headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(
    run: GraphRun,
    first: dict[str, Any] | None,
    session: RequestSession,
    dialect: Dialect,
    store: Callable[[dict[str, Any]], None] | None = None,
) -> AsyncIterator[bytes]:
    r"""Yield the stream, framed by `dialect` (Chat Completions: exactly as vLLM frames it).

    A failure after the first byte ends the stream with an in-band error in the dialect's
    shape, never a silent truncation. Framing by hand rather than with sse-starlette keeps
    the bytes identical to vLLM's (no `\r\n`, no ping comments). How the stream ended goes
    to the session, which the edge finishes after this generator's clean-up.
    """
    try:
        opening = dialect.opening()
        if opening:
            yield opening
        chunk = first
        while chunk is not None:
            frames = dialect.chunk(chunk)
            if frames:
                yield frames
                session.mark_first_byte()
            chunk = await run.next_chunk()
        if run.state.get("error"):
            failure = error_from_state(run.state)
            session.fail(failure.status_code, f"stream truncated: {failure.message}")
            yield dialect.failure(failure)
        else:
            if store is not None:
                store(run.state)
            yield await dialect.closing()
    except (asyncio.CancelledError, GeneratorExit):
        session.fail(499, "client disconnected mid-stream")
        raise
    except Exception as exc:  # a bug in a node: tell the client in-band, keep the record
        session.fail(500, f"internal error during the stream: {type(exc).__name__}")
        log.error("stream failed: %s", redact(repr(exc)))
        yield dialect.failure(OpenAIError(500, "Internal router error during the stream."))
    finally:
        # Starlette cancels this generator when the client leaves, and its cancel scope
        # would cancel the clean-up too: shield it, so the upstream call really stops.
        with anyio.CancelScope(shield=True):
            await run.aclose()


def _dry_run_body(session_id: str, state: dict[str, Any], total_ms: float) -> dict[str, Any]:
    """The decision a dry run returns, in the headers' vocabulary.

    `route` is the label (`X-AI-Router-Route`), `backend` the backend that would answer
    (`X-AI-Router-Backend`), `path` the way it takes (`X-AI-Router-Path`: meta, enrich or the
    backend); `route_label` repeats the label for older readers.
    """
    decision = decision_of(state)
    return {
        "session_id": session_id,
        "dry_run": True,
        **decision,
        "backend": decision["backend"] or "router",
        "path": decision["path"] or "router",
        "route_label": decision["route"],
        "total_ms": total_ms,
    }


# --- the response cache (RESPONSE_CACHE=on) ------------------------------------------------

def _store(cache: ResponseCache | None, key: str | None, state: dict[str, Any]) -> None:
    """Keep a finished answer, unless it was built on a live search (it would go stale)."""
    if cache is None or key is None or not state.get("response") or state.get("error"):
        return
    if state.get("path") == "enrich":
        return
    cache.put(key, state["response"], {**decision_of(state), "served_model": state.get("served_model")})


async def _from_cache(
    virtual_model: str, session: RequestSession, hit: CachedResponse, dialect: Dialect, *, stream: bool
) -> Response:
    """Answer from the response cache, as JSON or as a stream of chunks, in the client's dialect."""
    response = orjson.loads(hit.body)
    response["id"] = session.id
    response["model"] = virtual_model
    state = {
        **hit.decision, "response": response, "steps": [],
        "route_reason": f"response cache hit (first answered: {hit.decision['route_reason']})",
    }
    headers = {**decision_headers(session.id, state, None), "X-AI-Router-Cache": "hit"}
    session.state = state
    if not stream:
        return Response(orjson.dumps(await dialect.answer(response)), media_type="application/json",
                        headers=headers)
    chunks = completion_chunks(response, include_usage=True)  # the dialect drops what its client did not ask for
    frames = dialect.opening() + b"".join(dialect.chunk(chunk) for chunk in chunks) + await dialect.closing()
    return Response(frames, media_type="text/event-stream", headers={**headers, "Cache-Control": "no-cache"})
