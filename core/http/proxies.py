"""Proxies at the HTTP edge: endpoints forwarded to one backend without routing.

Legacy `/v1/completions` goes to the primary model unclassified, `/v1/embeddings` to the
embeddings backend. Each still leaves one session record, like every request: the proxy fills
`session.state` as it goes, and `recorded` finishes the session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from core.backends.client import Backend, BackendError
from core.backends.steps import step_record
from core.http.chat import header_safe, open_session, recorded
from core.http.errors import OpenAIError, error_body
from core.http.models import route_for_model
from core.http.schemas import CompletionRequest, EmbeddingsRequest, read_json, validate
from core.http.sse import DisconnectAwareStreamingResponse
from core.services import Services
from core.sessions.recorder import RequestSession


async def completions(services: Services, request: Request) -> Response:
    """Legacy text completions, forwarded to the primary model unclassified.

    Their callers are mostly editors asking for code continuations (fill-in-the-middle),
    which only make sense on the raw completion endpoint of the local model.
    """
    settings = services.settings
    session = open_session(services, request, "completions")
    state: dict[str, Any] = {
        "route": "LEGACY", "path": "primary", "steps": [], "backend": "primary",
        "route_reason": "legacy completions: primary, unclassified",
    }
    session.state = state

    async def handle() -> Response:
        body = await read_json(request, settings.max_request_bytes)
        session.body = body
        legacy = validate(CompletionRequest, body)
        route_for_model(settings, body.get("model"))  # MODEL_POLICY=strict refuses unknown names
        primary = services.backends["primary"]
        payload = {**body, "model": primary.model}
        session.stream = legacy.stream
        headers = {"X-AI-Router-Route": "LEGACY", "X-AI-Router-Backend": "primary", "X-Session-Id": session.id}
        if legacy.stream:
            relay = _relay_completions(primary, payload, session, state, settings.virtual_model)
            return DisconnectAwareStreamingResponse(relay, media_type="text/event-stream", headers=headers)
        started = time.perf_counter()
        try:
            answer = await primary.post_json("/completions", payload)
        except BackendError as exc:
            state["steps"].append(step_record("complete", primary, "/completions", None, started, error=exc))
            raise OpenAIError(exc.status_code, exc.message, code=exc.kind) from None
        state["served_model"] = answer.get("model")
        state["steps"].append(step_record("complete", primary, "/completions", _prompt(body), started,
                                          content=_completion_text(answer), usage=answer.get("usage"),
                                          model=answer.get("model")))
        answer["model"] = settings.virtual_model
        answer["id"] = session.id  # the id /v1/feedback takes, as for chat
        return JSONResponse(answer, headers=headers)

    return await recorded(session, handle())


async def _relay_completions(primary: Backend, payload: dict[str, Any], session: RequestSession,
                             state: dict[str, Any], virtual_model: str) -> AsyncIterator[bytes]:
    """Relay a streamed legacy completion, ending with an in-band error if it breaks."""
    started = time.perf_counter()
    usage: dict[str, Any] | None = None
    text: list[str] = []
    failure: BackendError | None = None
    try:
        async for chunk in primary.stream_json("/completions", payload):
            usage = chunk.get("usage") or usage
            text += [c.get("text") or "" for c in chunk.get("choices") or [] if isinstance(c, dict)]
            state.setdefault("served_model", chunk.get("model"))
            chunk["model"] = virtual_model
            chunk["id"] = session.id
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
            session.mark_first_byte()
        yield b"data: [DONE]\n\n"
    except BackendError as exc:
        failure = exc
        session.fail(exc.status_code, exc.message)
        yield b"data: " + orjson.dumps(error_body(exc.status_code, exc.message)) + b"\n\n"
        yield b"data: [DONE]\n\n"
    except (asyncio.CancelledError, GeneratorExit):
        session.fail(499, "client disconnected mid-stream")
        raise
    finally:
        state["steps"].append(step_record("complete", primary, "/completions", _prompt(payload), started,
                                          content="".join(text), usage=usage, model=state.get("served_model"),
                                          error=failure))


def _prompt(body: dict[str, Any]) -> Any:
    """A legacy completion's prompt as a step records it (a user message, for sizes and estimates)."""
    prompt = body.get("prompt")
    return [{"role": "user", "content": prompt if isinstance(prompt, str) else orjson.dumps(prompt).decode()}]


def _completion_text(answer: dict[str, Any]) -> str:
    return "".join(c.get("text") or "" for c in answer.get("choices") or [] if isinstance(c, dict))


async def embeddings(services: Services, request: Request) -> Response:
    """OpenAI embeddings, forwarded to EMBEDDINGS_BASE_URL (for RAG front-ends on the same URL)."""
    settings = services.settings
    session = open_session(services, request, "embeddings")
    state: dict[str, Any] = {"route": "EMBEDDINGS", "path": "embeddings", "backend": "embeddings", "steps": []}
    session.state = state

    async def handle() -> Response:
        body = await read_json(request, settings.max_request_bytes)
        validate(EmbeddingsRequest, body)
        backends = services.backends
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
        headers = {"X-AI-Router-Route": "EMBEDDINGS", "X-AI-Router-Backend": "embeddings", "X-Session-Id": session.id}
        if served:
            headers["X-AI-Router-Model"] = header_safe(str(served))
        return Response(orjson.dumps(answer), media_type="application/json", headers=headers)

    return await recorded(session, handle())
