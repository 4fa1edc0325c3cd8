"""The HTTP edge: OpenAI-compatible endpoints and LangServe, all running one compiled graph.

Start it from the repository root with `python -m uvicorn server:app` or `python server.py`.
Handlers parse and validate the request, run the graph, and shape its result as OpenAI
does; the routing itself lives in `graph/` and `nodes/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from langserve import add_routes
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from ai_router.access import AccessMiddleware, is_loopback
from ai_router.assemble import completion_chunks
from ai_router.backends import Backend, BackendError, Backends, build_backends, elapsed_ms, set_backends
from ai_router.caches import CachedResponse, ResponseCache, build_caches, set_caches
from ai_router.errors import OpenAIError, error_body
from ai_router.local_classifier import load_local_model
from ai_router.log_setup import configure_logging
from ai_router.redact import known_secrets, redact, register_secret
from ai_router.runs import GraphRun
from ai_router.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingsRequest,
    FeedbackRequest,
    RouteRequest,
    read_json,
    validate,
)
from ai_router.sessions.recorder import RequestSession
from ai_router.sessions.store import SessionStore
from ai_router.settings import Settings, get_settings
from ai_router.sse import DisconnectAwareStreamingResponse
from ai_router.stats import Stats
from ai_router.steps import overhead_ms, step_record
from graph.build import graph
from graph.context import RouterContext
from graph.routes import ROUTES
from prompts import prompts_digest

log = logging.getLogger("ai_router")

# Fields of the client's request that are not passed to the graph as generation params.
_NOT_PARAMS = frozenset({"messages", "model", "stream", "route", "dry_run"})


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Build settings and backend clients once; close the clients on shutdown."""
    settings = get_settings()
    configure_logging(settings.log_level)
    _guard_tracing()
    for secret in (settings.xai_api_key, settings.primary_api_key, settings.classifier_api_key,
                   settings.admin_api_key, settings.vision_api_key, settings.embeddings_api_key):
        register_secret(secret.get_secret_value() if secret else None)
    for key in settings.client_keys:
        register_secret(key)
    backends = build_backends(settings)
    set_backends(backends)
    app.state.caches = build_caches(settings)
    set_caches(app.state.caches)
    app.state.settings = settings
    app.state.backends = backends
    app.state.stats = Stats()
    app.state.sessions = _session_store(settings)
    if app.state.sessions is not None:
        await app.state.sessions.open()
    if settings.local_classifier != "off":  # load the model now, not on the first request
        load_local_model(settings.local_classifier_model_path)
    # Names the prompts and route table behind every decision, so evals see what changed.
    app.state.prompt_version = hashlib.sha256(
        (prompts_digest() + repr(sorted(ROUTES.items()))).encode()
    ).hexdigest()[:16]
    if not (settings.client_keys or settings.admin_api_key):
        if is_loopback(settings.host):
            log.warning("No ROUTER_API_KEYS or ADMIN_API_KEY set: serve on loopback (%s) only.", settings.host)
        else:
            log.warning("No ROUTER_API_KEYS set but HOST=%s: anyone who reaches this address can use "
                        "the router and its xAI key. Set ROUTER_API_KEYS and ADMIN_API_KEY.", settings.host)
    log.info(
        "ai-router ready: primary=%s classifier=%s xai=%s",
        settings.primary_base_url, settings.classifier_base_url,
        settings.xai_base_url if settings.xai_configured else "off (no XAI_API_KEY)",
    )
    try:
        yield
    finally:
        if app.state.sessions is not None:
            await app.state.sessions.aclose()  # in-flight records reach the disk before exit
        await backends.aclose()
        set_backends(None)
        set_caches(None)


def _guard_tracing() -> None:
    """Turn LangSmith tracing off when it is on without a key: it would stall every run."""
    enabled = os.environ.get("LANGSMITH_TRACING", os.environ.get("LANGCHAIN_TRACING_V2", "")).lower() == "true"
    has_key = os.environ.get("LANGSMITH_API_KEY") or os.environ.get("LANGCHAIN_API_KEY")
    if enabled and not has_key:
        log.warning("LANGSMITH_TRACING=true but no LANGSMITH_API_KEY: LangSmith tracing disabled, "
                    "local traces still written")
        os.environ["LANGSMITH_TRACING"] = "false"
        os.environ["LANGCHAIN_TRACING_V2"] = "false"


def _session_store(settings: Settings) -> SessionStore | None:
    if not settings.session_logs:
        return None
    return SessionStore(
        Path(settings.session_log_dir),
        Path(settings.trace_log_dir) if settings.traces == "local" else None,
        tz=settings.tz,
        content_mode=settings.session_log_content,
        truncate_chars=settings.session_log_truncate_chars,
        max_age_days=settings.session_log_max_age_days,
        max_files=settings.session_log_max_files,
        secrets=known_secrets(),
    )


app = FastAPI(title="ai-router", version="0.1.0", lifespan=lifespan)
app.add_middleware(AccessMiddleware)


# --- errors: one shape everywhere -----------------------------------------------------

@app.exception_handler(OpenAIError)
async def _openai_error(request: Request, exc: OpenAIError) -> JSONResponse:
    headers = dict(exc.headers)
    session_id = getattr(request.state, "session_id", None)
    if session_id:
        headers["X-Session-Id"] = session_id
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)


@app.exception_handler(RequestValidationError)
async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    return JSONResponse(error_body(400, f"Invalid request: {where}: {first['msg']}", param=where), status_code=400)


@app.exception_handler(StarletteHTTPException)
async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    return JSONResponse(error_body(exc.status_code, str(exc.detail)), status_code=exc.status_code)


@app.exception_handler(Exception)
async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error: %s", redact(repr(exc)))
    return JSONResponse(error_body(500, "Internal router error; see the router's log."), status_code=500)


# --- helpers ------------------------------------------------------------------------

def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _header_safe(text: str, limit: int = 300) -> str:
    """Make `text` fit an HTTP header (latin-1, one line, bounded)."""
    return text.encode("ascii", "replace").decode().replace("\r", " ").replace("\n", " ")[:limit]


def route_path(state: dict[str, Any], dry_run: bool) -> str:
    """The backend path of a run, as sessions record it: router, meta, enrich, primary, xai."""
    label = state.get("route")
    if dry_run:
        return "router"
    if label == "META":
        return "meta"
    if label and ROUTES[label].node == "enrich" and not state.get("degraded"):
        return "enrich"
    return state.get("backend") or "router"


def _decision_headers(session_id: str, state: dict[str, Any], overhead_ms: float | None) -> dict[str, str]:
    """Response headers that tell operators how the request was routed."""
    headers = {
        "X-Session-Id": session_id,
        "X-AI-Router-Route": state.get("route") or "",
        "X-AI-Router-Backend": route_path(state, False),
        "X-AI-Router-Reason": _header_safe(state.get("route_reason") or ""),
    }
    if state.get("served_model"):
        headers["X-AI-Router-Model"] = _header_safe(state["served_model"])
    if overhead_ms is not None:
        headers["X-AI-Router-Overhead-Ms"] = f"{overhead_ms:.2f}"
    return headers


def _params(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in _NOT_PARAMS}


def _error_from_state(state: dict[str, Any]) -> OpenAIError:
    error = state["error"]
    retry_after = error.get("retry_after")
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
    return OpenAIError(error.get("status_code") or 502, error.get("message") or "backend failed",
                       code=error.get("kind"), headers=headers)


def open_session(request: Request, endpoint: str) -> RequestSession:
    """Start the session of a request that just arrived."""
    app_state = request.app.state
    session = RequestSession(
        app_state.sessions, app_state.stats, endpoint, request.headers.get("user-agent"), app_state.prompt_version
    )
    request.state.session_id = session.id
    return session


async def recorded(session: RequestSession, request: Request, handler: Awaitable[Response],
                   state: dict[str, Any] | None = None) -> Response:
    """Await `handler`; if it fails, finish the session with the error, then re-raise.

    Successful paths finish the session themselves (a stream only when it ends), and
    `finish` writes once, so every request leaves exactly one record, whatever happens.
    The record holds the graph run's state when the failure came after the run began.
    """
    try:
        return await handler
    except ClientDisconnected:
        session.finish(getattr(request.state, "run_state", None) or state or {}, status_code=499,
                       error="client disconnected before the answer")
        return Response(status_code=499)
    except BaseException as exc:
        run_state = getattr(request.state, "run_state", None) or state or {}
        if isinstance(exc, OpenAIError):
            session.finish(run_state, status_code=exc.status_code, error=exc.message)
        elif isinstance(exc, asyncio.CancelledError):
            session.finish(run_state, status_code=499, error="client disconnected")
        else:
            session.finish(run_state, status_code=500, error=f"internal error: {type(exc).__name__}")
        raise


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


# --- the chat path ---------------------------------------------------------------------

async def run_chat(
    request: Request,
    session: RequestSession,
    body: dict[str, Any],
    *,
    stream: bool,
    forced_route: str | None = None,
    dry_run: bool = False,
) -> Response:
    """Route and answer one chat request (the heart of every chat endpoint)."""
    settings = _settings(request)
    session.stream, session.dry_run = stream and not dry_run, dry_run
    if forced_route is not None and forced_route not in ROUTES:
        raise OpenAIError(400, f"Unknown route {forced_route!r}. Expected one of: {list(ROUTES)}", param="route")
    context = RouterContext(forced_route=forced_route, dry_run=dry_run, stream=session.stream)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    responses: ResponseCache | None = request.app.state.caches.responses
    cache_key = None
    if responses is not None and not dry_run and ResponseCache.cacheable(body):
        cache_key = ResponseCache.key(body, request.headers.get("authorization"), forced_route)
        hit = responses.get(cache_key)
        if hit is not None:
            return _from_cache(request, session, hit, stream=stream, include_usage=include_usage)
    run = GraphRun(graph, {"messages": body["messages"], "params": _params(body)}, context, session.node_times)
    request.state.run_state = run.state

    if not context.stream:
        state = await until_disconnect(request, run)
        state["route_path"] = route_path(state, dry_run)
        if dry_run:
            session.finish(state, status_code=200, error=None)
            return JSONResponse(_dry_run_body(session.id, state, elapsed_ms(session.started)),
                                headers=_decision_headers(session.id, state, None))
        if state.get("error"):
            raise _error_from_state(state)
        response = dict(state["response"])
        response["id"] = session.id
        response["model"] = settings.virtual_model
        if cache_key is not None:
            _store(responses, cache_key, state)
        headers = _decision_headers(session.id, state, overhead_ms(state, elapsed_ms(session.started)))
        session.finish(state, status_code=200, error=None)
        return Response(orjson.dumps(response), media_type="application/json", headers=headers)

    # Streaming: run until the first chunk, so that a failure before any byte (and every
    # fallback) can still become a proper HTTP error, and the headers can name the route.
    try:
        first = await run.next_chunk()
    except BaseException:
        await run.aclose()
        raise
    run.state["route_path"] = route_path(run.state, False)
    if first is None and run.state.get("error"):
        raise _error_from_state(run.state)
    headers = _decision_headers(session.id, run.state, None)
    if first and first.get("model"):
        headers["X-AI-Router-Model"] = _header_safe(str(first["model"]))  # the state has it only at the end
    store = (lambda state: _store(responses, cache_key, state)) if cache_key is not None else None
    return DisconnectAwareStreamingResponse(
        _sse(run, first, session, settings.virtual_model, include_usage, store),
        media_type="text/event-stream",
        headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(
    run: GraphRun,
    first: dict[str, Any] | None,
    session: RequestSession,
    virtual_model: str,
    include_usage: bool,
    store: Callable[[dict[str, Any]], None] | None = None,
) -> AsyncIterator[bytes]:
    """Yield the stream as SSE, exactly as vLLM frames it (`data: {json}` + blank line, then `[DONE]`).

    Chunks keep every field the backend sent; only `id` (the session id) and `model` (the
    virtual model) are rewritten. A failure after the first byte ends the stream with an
    in-band OpenAI error event, never a silent truncation. Framing by hand rather than with
    sse-starlette keeps the bytes identical to vLLM's (no `\r\n`, no ping comments).
    """
    error: str | None = None
    status = 200
    try:
        chunk = first
        while chunk is not None:
            if include_usage or chunk.get("choices") or not chunk.get("usage"):
                chunk["id"] = session.id
                chunk["model"] = virtual_model
                yield b"data: " + orjson.dumps(chunk) + b"\n\n"
                session.mark_first_byte()
            chunk = await run.next_chunk()
        if run.state.get("error"):
            failure = _error_from_state(run.state)
            error, status = f"stream truncated: {failure.message}", failure.status_code
            yield b"data: " + orjson.dumps(failure.body()) + b"\n\n"
        elif store is not None:
            store(run.state)
        yield b"data: [DONE]\n\n"
    except (asyncio.CancelledError, GeneratorExit):
        error, status = "client disconnected mid-stream", 499
        raise
    except Exception as exc:  # a bug in a node: tell the client in-band, keep the record
        error, status = f"internal error during the stream: {type(exc).__name__}", 500
        log.error("stream failed: %s", redact(repr(exc)))
        yield b"data: " + orjson.dumps(error_body(500, "Internal router error during the stream.")) + b"\n\n"
        yield b"data: [DONE]\n\n"
    finally:
        # Starlette cancels this generator when the client leaves, and its cancel scope
        # would cancel the clean-up too: shield it, so the upstream call really stops.
        with anyio.CancelScope(shield=True):
            await run.aclose()
        session.finish(run.state, status_code=status, error=error)


def _dry_run_body(session_id: str, state: dict[str, Any], total_ms: float) -> dict[str, Any]:
    """The decision a dry run returns."""
    return {
        "session_id": session_id,
        "dry_run": True,
        "route": route_path(state, False),
        "route_label": state.get("route"),
        "route_reason": state.get("route_reason"),
        "backend": state.get("backend"),
        "degraded": state.get("degraded"),
        "classification_raw": state.get("classification_raw"),
        "classification_ms": state.get("classification_ms"),
        "local_classification": state.get("local_classification"),
        "total_ms": total_ms,
    }


# --- the response cache (RESPONSE_CACHE=on) ------------------------------------------------

def _store(cache: ResponseCache | None, key: str | None, state: dict[str, Any]) -> None:
    """Keep a finished answer, unless it was built on a live search (it would go stale)."""
    if cache is None or key is None or not state.get("response") or state.get("error"):
        return
    if route_path(state, False) == "enrich":
        return
    decision = {k: state.get(k) for k in ("route", "route_reason", "backend", "served_model")}
    cache.put(key, state["response"], decision)


def _from_cache(
    request: Request, session: RequestSession, hit: CachedResponse, *, stream: bool, include_usage: bool
) -> Response:
    """Answer from the response cache, as JSON or as a stream of chunks."""
    settings = _settings(request)
    response = orjson.loads(hit.body)
    response["id"] = session.id
    response["model"] = settings.virtual_model
    state = {
        **hit.decision, "response": response, "steps": [],
        "route_reason": f"response cache hit (first answered: {hit.decision['route_reason']})",
    }
    state["route_path"] = route_path(state, False)
    headers = {**_decision_headers(session.id, state, None), "X-AI-Router-Cache": "hit"}
    session.finish(state, status_code=200, error=None)
    if not stream:
        return Response(orjson.dumps(response), media_type="application/json", headers=headers)
    chunks = completion_chunks(response, include_usage=include_usage)
    frames = b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks) + b"data: [DONE]\n\n"
    return Response(frames, media_type="text/event-stream", headers={**headers, "Cache-Control": "no-cache"})


@app.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    """OpenAI chat completions, streaming or not, routed per request."""
    return await _chat_endpoint(request, "chat.completions", ChatCompletionRequest)


@app.post("/api/route")
async def route(request: Request) -> Response:
    """Force a route (`"route": "COMPLEX"`) or ask for the decision only (`"dry_run": true`)."""
    return await _chat_endpoint(request, "api.route", RouteRequest)


async def _chat_endpoint(request: Request, endpoint: str, schema: type[ChatCompletionRequest]) -> Response:
    """Read, validate and answer a chat body; `RouteRequest` bodies may force a route or dry-run."""
    session = open_session(request, endpoint)

    async def handle() -> Response:
        body = await read_json(request, _settings(request).max_request_bytes)
        session.body = body
        chat = validate(schema, body)
        _check_size(request, chat)
        forced = getattr(chat, "route", None)
        return await run_chat(request, session, body, stream=chat.stream,
                              forced_route=forced.upper() if forced else None,
                              dry_run=getattr(chat, "dry_run", False))

    return await recorded(session, request, handle())


def _check_size(request: Request, chat: ChatCompletionRequest) -> None:
    limit = _settings(request).max_messages
    if len(chat.messages) > limit:
        raise OpenAIError(400, f"Too many messages: {len(chat.messages)} (limit {limit}, MAX_MESSAGES).", param="messages")


# --- legacy completions -------------------------------------------------------------------

@app.post("/v1/completions")
async def completions(request: Request) -> Response:
    """Legacy text completions, forwarded to the primary model unclassified.

    Their callers are mostly editors asking for code continuations (fill-in-the-middle),
    which only make sense on the raw completion endpoint of the local model.
    """
    settings = _settings(request)
    session = open_session(request, "completions")
    state: dict[str, Any] = {
        "route": "LEGACY", "route_path": "primary", "steps": [], "backend": "primary",
        "route_reason": "legacy completions: primary, unclassified",
    }

    async def handle() -> Response:
        body = await read_json(request, settings.max_request_bytes)
        session.body = body
        legacy = validate(CompletionRequest, body)
        primary = request.app.state.backends["primary"]
        payload = {**body, "model": primary.model}
        session.stream = legacy.stream
        headers = {"X-AI-Router-Route": "LEGACY", "X-Session-Id": session.id}
        if legacy.stream:
            return DisconnectAwareStreamingResponse(_relay_completions(primary, payload, session, state, settings.virtual_model),
                                     media_type="text/event-stream", headers=headers)
        try:
            answer = await primary.post_json("/completions", payload)
        except BackendError as exc:
            raise OpenAIError(exc.status_code, exc.message, code=exc.kind) from None
        state["served_model"] = answer.get("model")
        answer["model"] = settings.virtual_model
        session.finish(state, status_code=200, error=None)
        return JSONResponse(answer, headers=headers)

    return await recorded(session, request, handle(), state)


async def _relay_completions(primary: Backend, payload: dict[str, Any], session: RequestSession,
                             state: dict[str, Any], virtual_model: str) -> AsyncIterator[bytes]:
    """Relay a streamed legacy completion, ending with an in-band error if it breaks."""
    error: str | None = None
    status = 200
    try:
        async for chunk in primary.stream_json("/completions", payload):
            chunk["model"] = virtual_model
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
            session.mark_first_byte()
        yield b"data: [DONE]\n\n"
    except BackendError as exc:
        error, status = exc.message, exc.status_code
        yield b"data: " + orjson.dumps(error_body(exc.status_code, exc.message)) + b"\n\n"
        yield b"data: [DONE]\n\n"
    except (asyncio.CancelledError, GeneratorExit):
        error, status = "client disconnected mid-stream", 499
        raise
    finally:
        session.finish(state, status_code=status, error=error)


# --- feedback ------------------------------------------------------------------------------

@app.post("/v1/feedback")
async def feedback(request: Request) -> JSONResponse:
    """Attach a person's rating to the session record of one answer (its `chatcmpl-…` id)."""
    settings = _settings(request)
    rating = validate(FeedbackRequest, await read_json(request, settings.max_request_bytes))
    store: SessionStore | None = request.app.state.sessions
    if store is None:
        raise OpenAIError(400, "Session logs are off (SESSION_LOGS=false): there is no record to rate.")
    if rating.expected_route is not None and rating.expected_route.upper() not in ROUTES:
        raise OpenAIError(400, f"Unknown route {rating.expected_route!r}. Expected one of: {list(ROUTES)}",
                          param="expected_route")
    entry = {
        "score": rating.score,
        "comment": rating.comment,
        "expected_route": rating.expected_route.upper() if rating.expected_route else None,
        "received_at": datetime.now(ZoneInfo(settings.tz)).isoformat(timespec="seconds"),
    }
    if not store.add_feedback(rating.response_id, entry):
        raise OpenAIError(404, f"No session {rating.response_id!r} is known to this router.", param="response_id")
    return JSONResponse({"object": "feedback", "response_id": rating.response_id, "status": "recorded"})


# --- embeddings ----------------------------------------------------------------------------

@app.post("/v1/embeddings")
async def embeddings(request: Request) -> Response:
    """OpenAI embeddings, forwarded to EMBEDDINGS_BASE_URL (for RAG front-ends on the same URL)."""
    settings = _settings(request)
    session = open_session(request, "embeddings")
    state: dict[str, Any] = {"route": "EMBEDDINGS", "route_path": "embeddings", "backend": "embeddings", "steps": []}

    async def handle() -> Response:
        body = await read_json(request, settings.max_request_bytes)
        validate(EmbeddingsRequest, body)
        backends: Backends = request.app.state.backends
        if "embeddings" not in backends:
            raise OpenAIError(
                404, "No embeddings backend is configured on this router: set EMBEDDINGS_BASE_URL and "
                "EMBEDDINGS_MODEL.", code="embeddings_not_configured", param="model",
            )
        backend = backends["embeddings"]
        started = time.perf_counter()
        try:
            answer = await backend.post_json("/embeddings", {**body, "model": backend.model})
        except BackendError as exc:
            state["steps"].append(step_record("embed", backend, "/embeddings", None, started, error=exc))
            raise OpenAIError(exc.status_code, exc.message, code=exc.kind) from None
        served = answer.get("model")
        state["served_model"] = served
        state["steps"].append(step_record("embed", backend, "/embeddings", None, started,
                                          usage=answer.get("usage"), model=served))
        answer["model"] = backend.model  # the name /v1/models lists; the header says who answered
        session.finish(state, status_code=200, error=None)
        headers = {"X-AI-Router-Route": "EMBEDDINGS", "X-AI-Router-Backend": "embeddings", "X-Session-Id": session.id}
        if served:
            headers["X-AI-Router-Model"] = _header_safe(str(served))
        return Response(orjson.dumps(answer), media_type="application/json", headers=headers)

    return await recorded(session, request, handle(), state)


# --- models, health, stats --------------------------------------------------------------------

@app.get("/v1/models")
async def models(request: Request) -> dict[str, Any]:
    """The one virtual chat model clients choose, and the embedding model when there is one."""
    settings = _settings(request)
    data = [{"id": settings.virtual_model, "object": "model", "created": 0, "owned_by": "ai-router"}]
    if settings.embeddings_configured:
        data.append({"id": settings.embeddings_model, "object": "model", "created": 0, "owned_by": "ai-router"})
    return {"object": "list", "data": data}


@app.get("/health")
async def health(request: Request) -> JSONResponse:
    """Whether each backend answers; 503 when the primary model is unreachable."""
    backends: Backends = request.app.state.backends

    async def probe(name: str) -> tuple[str, dict[str, Any]]:
        backend = backends[name]
        started = time.perf_counter()
        detail = await backend.probe()
        ok = detail is None
        return name, {
            "ok": ok, "url": backend.base_url, "model": backend.model,
            "latency_ms": elapsed_ms(started), "error": detail, **backend.status(),
        }

    # An alias (vision served by the xAI backend) is probed once, under its own name.
    names = [name for name, backend in backends.by_name.items() if backend.name == name]
    results = dict(await asyncio.gather(*(probe(name) for name in names)))
    healthy = all(r["ok"] for r in results.values())
    status = "ok" if healthy else ("degraded" if results["primary"]["ok"] else "down")
    return JSONResponse(
        {"status": status, "backends": results}, status_code=200 if results["primary"]["ok"] else 503
    )


@app.get("/stats")
async def stats(request: Request) -> dict[str, Any]:
    """Counts and latencies per route since start, each backend's breaker and load, the caches."""
    backends: Backends = request.app.state.backends
    return {
        **request.app.state.stats.snapshot(),
        "backends": {name: backend.status() for name, backend in backends.by_name.items() if backend.name == name},
        "caches": request.app.state.caches.snapshot(),
    }


# The same compiled graph, for LangServe clients and the playground at /graph/playground.
add_routes(app, graph, path="/graph")


@app.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus metrics (request counts, latency and overhead histograms), across workers."""
    return Response(request.app.state.stats.prometheus_text(), media_type=CONTENT_TYPE_LATEST)


if __name__ == "__main__":
    from ai_router.launch import serve

    serve(get_settings())
