"""The HTTP edge: OpenAI-compatible endpoints and LangServe, all running one compiled graph.

Start it from the repository root with `python -m uvicorn server:app` or `python server.py`.
The lifespan builds the process's services once (settings, backend clients, caches, session
store); handlers read and validate a request, then hand it to the chat path in `core.http`,
which runs the graph. The routing itself lives in `graph/` and `nodes/`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from langserve import add_routes
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.backends.client import elapsed_ms
from core.http import dialects, proxies
from core.http.access import AccessMiddleware, BudgetMiddleware
from core.http.chat import open_session, recorded, run_chat
from core.http.desk import Desk, DeskDeps, build_desk
from core.http.dialects import SERVED_APIS
from core.http.errors import OpenAIError, error_body_for
from core.http.home import install, services_of
from core.http.keys import Keys, is_loopback
from core.http.models import listed_models, model_aliases, route_for_model
from core.http.schemas import ChatCompletionRequest, FeedbackRequest, RouteRequest, read_json, validate
from core.log_setup import configure_logging
from core.redact import redact, register_secret
from core.routes import check_route
from core.routing.agreement import agreement_metrics
from core.services import Services, build_services, install_default_services, session_store
from core.sessions.store import SESSION_ID_LENGTH, AmbiguousSessionId
from core.settings import Settings
from core.shared.metrics import shared_metrics
from graph.build import graph

log = logging.getLogger("ai_router")


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Build the process's services once; flush the session records and close the clients on shutdown."""
    settings = Settings()
    configure_logging(settings.log_level)
    _guard_tracing()
    for secret in (settings.xai_api_key, settings.primary_api_key, settings.classifier_api_key,
                   settings.admin_api_key, settings.vision_api_key, settings.embeddings_api_key):
        register_secret(secret.get_secret_value() if secret else None)
    for key in settings.client_keys:
        register_secret(key)
    model_aliases(settings)  # a mistyped MODEL_ALIASES fails at start, not on a request
    services = build_services(settings)
    await services.start(session_store(settings))
    install(app, services)
    install_default_services(services)  # LangServe's /graph runs bring no context: they use these
    if settings.local_classifier != "off":  # load the model now, not on the first request
        _ = services.local_model
    desk = _mount_desk(app, services)
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
        if desk is not None:
            await desk.aclose()
        await services.aclose()
        install_default_services(None)


def _mount_desk(app: FastAPI, services: Services) -> Desk | None:
    """The review desk at /review (REVIEW_DESK), built from this process's services."""
    settings = services.settings
    if not settings.review_desk:
        return None
    store = services.sessions

    async def add_feedback(session_id: str, entry: dict[str, Any]) -> bool:
        # The desk names sessions by their whole id, so a prefix can never be ambiguous here.
        return store is not None and store.add_feedback(session_id, entry) is not None

    desk = build_desk(DeskDeps(settings, keys=Keys(settings),
                               add_feedback=add_feedback if store is not None else None,
                               on_prompts_changed=services.reload_prompts,
                               local_classifier=lambda: _local_classifier(services)))
    # Mounted here, not at import: the desk is built from the settings the lifespan reads. A second
    # lifespan of the same app (tests) replaces the first one's routes.
    app.router.routes[:] = [r for r in app.router.routes if not getattr(r, "path", "").startswith("/review")]
    app.include_router(desk.router)
    desk.start()
    return desk


def _guard_tracing() -> None:
    """Turn LangSmith tracing off when it is on without a key: it would stall every run."""
    enabled = os.environ.get("LANGSMITH_TRACING", os.environ.get("LANGCHAIN_TRACING_V2", "")).lower() == "true"
    has_key = os.environ.get("LANGSMITH_API_KEY") or os.environ.get("LANGCHAIN_API_KEY")
    if enabled and not has_key:
        log.warning("LANGSMITH_TRACING=true but no LANGSMITH_API_KEY: LangSmith tracing disabled, "
                    "local traces still written")
        os.environ["LANGSMITH_TRACING"] = "false"
        os.environ["LANGCHAIN_TRACING_V2"] = "false"


app = FastAPI(title="ai-router", version="0.1.0", lifespan=lifespan)
app.add_middleware(BudgetMiddleware)  # inner: runs once the keys are checked
app.add_middleware(AccessMiddleware)


# --- errors: one shape per API (OpenAI's, Anthropic's under /v1/messages) ------------------

@app.exception_handler(OpenAIError)
async def _openai_error(request: Request, exc: OpenAIError) -> JSONResponse:
    headers = dict(exc.headers)
    session_id = getattr(request.state, "session_id", None)
    if session_id:
        headers["X-Session-Id"] = session_id
    body = error_body_for(request.url.path, exc.status_code, exc.message, code=exc.code, param=exc.param)
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


@app.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    return JSONResponse(error_body_for(request.url.path, 400, f"Invalid request: {where}: {first['msg']}",
                                       param=where), status_code=400)


@app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = str(exc.detail)
    if exc.status_code in (404, 405):  # an endpoint (or method) this router does not serve: say what it does
        message = f"{request.method} {request.url.path} is not served by this router. It serves {SERVED_APIS}."
    return JSONResponse(error_body_for(request.url.path, exc.status_code, message), status_code=exc.status_code)


@app.exception_handler(Exception)
async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error: %s", redact(repr(exc)))
    return JSONResponse(error_body_for(request.url.path, 500, "Internal router error; see the router's log."),
                        status_code=500)


def _services(request: Request) -> Services:
    return services_of(request.app)


# --- chat ----------------------------------------------------------------------------------

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
    services = _services(request)
    session = open_session(services, request, endpoint)

    async def handle() -> Response:
        body = await read_json(request, services.settings.max_request_bytes)
        session.body = body
        chat = validate(schema, body)
        limit = services.settings.max_messages
        if len(chat.messages) > limit:
            raise OpenAIError(400, f"Too many messages: {len(chat.messages)} (limit {limit}, MAX_MESSAGES).",
                              param="messages")
        forced = getattr(chat, "route", None) or route_for_model(services.settings, chat.model)
        return await run_chat(graph, services, request, session, body, stream=chat.stream,
                              forced_route=forced.upper() if forced else None,
                              dry_run=getattr(chat, "dry_run", False))

    return await recorded(session, handle())


# --- the Responses API and the Anthropic Messages API (translated to chat, same path) --------

@app.post("/v1/responses")
async def responses(request: Request) -> Response:
    """OpenAI Responses API: one turn through the chat path, kept for `previous_response_id`."""
    services = _services(request)
    session = open_session(services, request, "responses")
    return await recorded(session, dialects.create_response(graph, services, request, session))


@app.get("/v1/responses/{response_id}")
async def get_response(request: Request, response_id: str) -> Response:
    """A stored response (only to the key that created it)."""
    return await dialects.get_response(_services(request), request, response_id)


@app.delete("/v1/responses/{response_id}")
async def delete_response(request: Request, response_id: str) -> Response:
    """Forget a stored response (only the key that created it may)."""
    return await dialects.delete_response(_services(request), request, response_id)


@app.post("/v1/messages")
async def messages(request: Request) -> Response:
    """Anthropic Messages API (`?beta=true` as Claude Code sends it), through the chat path."""
    services = _services(request)
    session = open_session(services, request, "messages")
    return await recorded(session, dialects.create_message(graph, services, request, session))


@app.post("/v1/messages/count_tokens")
async def count_tokens(request: Request) -> Response:
    """Anthropic token counting: an estimate (about 4 characters per token), not a tokenizer's count."""
    return await dialects.count_tokens(_services(request), request)


@app.head("/")
async def head_root() -> Response:
    """Claude Code checks the base URL with `HEAD /` before its first request."""
    return Response(status_code=200)


@app.get("/")
async def root() -> dict[str, Any]:
    """What this router serves."""
    return {"name": "ai-router", "serves": SERVED_APIS}


@app.post("/v1/completions")
async def completions(request: Request) -> Response:
    """Legacy text completions, forwarded to the primary model unclassified (editors' code completion)."""
    return await proxies.completions(_services(request), request)


@app.post("/v1/embeddings")
async def embeddings(request: Request) -> Response:
    """OpenAI embeddings, forwarded to EMBEDDINGS_BASE_URL (for RAG front-ends on the same URL)."""
    return await proxies.embeddings(_services(request), request)


# --- feedback ------------------------------------------------------------------------------

@app.post("/v1/feedback")
async def feedback(request: Request) -> JSONResponse:
    """Attach a person's rating to the session record of one answer (its `chatcmpl-…` id)."""
    services = _services(request)
    settings = services.settings
    rating = validate(FeedbackRequest, await read_json(request, settings.max_request_bytes))
    store = services.sessions
    if store is None:
        raise OpenAIError(400, "Session logs are off (SESSION_LOGS=false): there is no record to rate.")
    if rating.expected_route is not None:
        try:
            check_route(rating.expected_route.upper())
        except ValueError as error:
            raise OpenAIError(400, str(error), param="expected_route") from None
    entry = {
        "score": rating.score,
        "comment": rating.comment,
        "expected_route": rating.expected_route.upper() if rating.expected_route else None,
        "received_at": datetime.now(ZoneInfo(settings.tz)).isoformat(timespec="seconds"),
    }
    try:
        session_id = store.add_feedback(rating.response_id, entry)
    except AmbiguousSessionId as error:
        raise OpenAIError(400, str(error), param="response_id") from None
    if session_id is None:
        shared = services.shared  # served by another replica? hand it over through Redis
        if shared is None or not await shared.forward_feedback(rating.response_id, entry):
            whole = len(rating.response_id) >= SESSION_ID_LENGTH  # another replica's session needs its whole id
            raise OpenAIError(404, f"No session {rating.response_id!r} is known to this router"
                              + ("." if whole else " (a session another replica served needs its whole id)."),
                              param="response_id")
    if services.agreement is not None and rating.expected_route:  # a person's route beats the LLM's in the measure
        services.agreement.label(session_id or rating.response_id, rating.expected_route.upper())
    return JSONResponse({"object": "feedback", "response_id": session_id or rating.response_id,
                         "status": "recorded"})


# --- models, health, stats --------------------------------------------------------------------

@app.get("/v1/models")
async def models(request: Request) -> dict[str, Any]:
    """The virtual chat model, the aliases that force a route (MODEL_ALIASES), the embedding model."""
    return {"object": "list", "data": listed_models(_services(request).settings)}


@app.get("/health")
async def health(request: Request) -> JSONResponse:
    """Whether each backend answers; 503 when the primary model is unreachable."""
    backends = _services(request).backends

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
    shared = _services(request).shared
    results, redis = await asyncio.gather(
        asyncio.gather(*(probe(name) for name in names)),
        shared.health() if shared is not None else _no_redis(),
    )
    results = dict(results)
    healthy = all(r["ok"] for r in results.values()) and redis["state"] in ("ok", "off")
    status = "ok" if healthy else ("degraded" if results["primary"]["ok"] else "down")
    return JSONResponse(  # Redis down degrades the fleet's sharing, not this router: still 200
        {"status": status, "backends": results, "redis": redis},
        status_code=200 if results["primary"]["ok"] else 503,
    )


async def _no_redis() -> dict[str, Any]:
    return {"configured": False, "state": "off"}


@app.get("/stats")
async def stats(request: Request) -> dict[str, Any]:
    """Counts and latencies per route since start, each backend's breaker and load, the caches."""
    services = _services(request)
    backends = services.backends
    return {
        **services.stats.snapshot(),
        "backends": {name: backend.status() for name, backend in backends.by_name.items() if backend.name == name},
        "caches": services.caches.snapshot(),
        "usage": services.usage.snapshot() if services.usage is not None else None,
        "shared": await services.shared.snapshot() if services.shared is not None else None,
        "conversations": services.conversations.snapshot() if services.conversations is not None else None,
        "local_classifier": _local_classifier(services),
    }


def _local_classifier(services: Services) -> dict[str, Any]:
    """The local classifier's mode, model and measured agreement per route (`/stats`)."""
    model = services.local_model if services.settings.local_classifier != "off" else None
    return {
        "mode": services.settings.local_classifier,
        "model_version": model.version if model is not None else None,
        "agreement": services.agreement.snapshot() if services.agreement is not None else None,
    }


# The same compiled graph, for LangServe clients and the playground at /graph/playground.
add_routes(app, graph, path="/graph")


@app.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus metrics (request counts, latency and overhead histograms), across workers."""
    services = _services(request)
    text = services.stats.prometheus_text()
    if services.shared is not None:
        text += shared_metrics(await services.shared.snapshot(), services.backends)
    if services.agreement is not None:
        text += agreement_metrics(services.agreement.snapshot())
    return Response(text, media_type=CONTENT_TYPE_LATEST)


if __name__ == "__main__":
    from tools.launch import serve

    serve(Settings())
