"""Generate the answer on the backend the decision names, streaming or not."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from core.backends.assemble import StreamAssembler
from core.backends.client import Backend, BackendError
from core.backends.payloads import chat_payload, system_prompt
from core.backends.steps import step_record
from core.context import RouterContext
from core.routes import ROUTES, carries_tools, fallback_backend
from core.services import run_scope
from core.state import RouterState

CHAT_PATH = "/chat/completions"


async def generate(state: RouterState, runtime: Runtime[RouterContext]) -> dict[str, Any]:
    """Send the request to the serving backend and return (or stream) its answer.

    Streaming, each backend chunk is handed to the stream writer as soon as it arrives,
    untouched; the server turns them into SSE. A failure is returned as `error` rather
    than raised, with the backend to fall back to (`fallback_to`) when one is left, so the
    graph's fallback edge can take it.
    """
    services, context = run_scope(runtime.context)
    settings = services.settings
    spec = ROUTES[state["route"]]
    backend = services.backends[state["backend"]]
    floor_setting = spec.min_max_tokens_setting if backend.name == spec.backend else None
    payload = chat_payload(
        state["messages"],
        state.get("params") or {},
        backend.model,
        system_prompt(context.prompts, spec.prompt, settings.tz, state.get("enrichment"), state.get("citations")),
        stream=context.stream,
        min_max_tokens=getattr(settings, floor_setting) if floor_setting else None,
        allow_tools=spec.takes_tools,
    )
    if context.stream:
        update = await _stream(backend, payload, context)
    elif streams_internally(payload):
        update = await _assembled(backend, payload)
    else:
        update = await _complete(backend, payload)
    if spec.takes_tools and payload.get("tools") and update.get("response"):
        # The loop's next request (the tool results) must come back to this route.
        services.caches.tool_routes.remember(update["response"], state["route"])
    if update.get("error"):
        failed = [*(state.get("failed_backends") or []), backend.name]
        update["fallback_to"] = fallback_backend(
            state["route"], backend.name, update["error"], failed, carries_tools(state.get("params")), settings
        )
    return update


def streams_internally(payload: dict[str, Any]) -> bool:
    """Whether a non-streaming request is streamed from the backend and assembled here.

    Streaming gives a non-streaming client the same bounded waits as a streaming one: the
    first-token deadline, then the idle deadline between chunks, and no cut of an answer
    that keeps coming. Requests whose answer a stream cannot rebuild exactly (several
    choices, log-probabilities) are sent as they are, under the backend's total deadline.
    """
    return (payload.get("n") or 1) == 1 and not payload.get("logprobs") and not payload.get("top_logprobs")


async def _assembled(backend: Backend, payload: dict[str, Any]) -> dict[str, Any]:
    """A non-streaming answer streamed from the backend and assembled into one completion.

    A stream that breaks midway is asked again from the start, as a broken non-streaming
    body was (`RETRY_ATTEMPTS`): nothing has reached the client yet. The backend client
    already retries failures before the first chunk.
    """
    payload = {**payload, "stream": True, "stream_options": {"include_usage": True}}
    started = time.perf_counter()
    for attempt in range(backend.retry.attempts + 1):
        assembler = StreamAssembler()
        try:
            first_chunk_ms = await _read_stream(backend, payload, assembler, started)
        except BackendError as error:
            if assembler.chunks and error.kind in ("cut", "protocol") and attempt < backend.retry.attempts:
                continue  # broke midway: ask again, the client has seen nothing
            # Nothing reached the client yet: a fallback is still clean, whatever was received.
            return _failure(backend, payload, started, error, after_first_byte=False, assembler=assembler)
        break
    answer = assembler.completion(assembler.id or "", assembler.created or int(time.time()))
    return _streamed(backend, payload, started, assembler, first_chunk_ms, answer)


async def _complete(backend: Backend, payload: dict[str, Any]) -> dict[str, Any]:
    """One non-streaming call."""
    started = time.perf_counter()
    try:
        answer = await backend.post_json(CHAT_PATH, payload)
    except BackendError as error:
        return _failure(backend, payload, started, error, after_first_byte=False)
    message = ((answer.get("choices") or [{}])[0] or {}).get("message") or {}
    step = step_record(
        "generate", backend, CHAT_PATH, payload["messages"], started,
        content=message.get("content"), reasoning=message.get("reasoning_content"),
        usage=answer.get("usage"), model=answer.get("model"),
    )
    return {"response": answer, "served_model": answer.get("model"), "error": None, "steps": [step]}


async def _stream(backend: Backend, payload: dict[str, Any], context: RouterContext) -> dict[str, Any]:
    """One streaming call: every chunk goes to the client as it arrives."""
    assembler = StreamAssembler()
    started = time.perf_counter()
    try:
        first_chunk_ms = await _read_stream(
            backend, payload, assembler, started, context.chunk_sink or get_stream_writer()
        )
    except BackendError as error:
        return _failure(
            backend, payload, started, error, after_first_byte=assembler.chunks > 0, assembler=assembler
        )
    return _streamed(backend, payload, started, assembler, first_chunk_ms, assembler.completion("", int(time.time())))


async def _read_stream(
    backend: Backend,
    payload: dict[str, Any],
    assembler: StreamAssembler,
    started: float,
    write: Callable[[dict[str, Any]], None] | None = None,
) -> float | None:
    """Read a backend stream into `assembler` (and hand each chunk to `write`); return the TTFT in ms.

    Raises:
        BackendError: the stream failed; `assembler` holds what arrived before.
    """
    first_chunk_ms: float | None = None
    async for chunk in backend.stream_chat(payload):
        if first_chunk_ms is None:
            first_chunk_ms = round((time.perf_counter() - started) * 1000, 2)
        assembler.add(chunk)
        if write is not None:
            write(chunk)
    return first_chunk_ms


def _streamed(
    backend: Backend,
    payload: dict[str, Any],
    started: float,
    assembler: StreamAssembler,
    first_chunk_ms: float | None,
    response: dict[str, Any],
) -> dict[str, Any]:
    """The update for a stream read to its end: the assembled completion and the step."""
    step = step_record(
        "generate", backend, CHAT_PATH, payload["messages"], started,
        content=assembler.text, reasoning=assembler.reasoning_text, usage=assembler.usage,
        model=assembler.model, extra={"ttft_ms": first_chunk_ms, "chunks": assembler.chunks},
    )
    return {"response": response, "served_model": assembler.model, "error": None, "steps": [step]}


def _failure(
    backend: Backend,
    payload: dict[str, Any],
    started: float,
    error: BackendError,
    *,
    after_first_byte: bool,
    assembler: StreamAssembler | None = None,
) -> dict[str, Any]:
    """The update for a failed call: the error, the failed backend, the step."""
    step = step_record(
        "generate", backend, CHAT_PATH, payload["messages"], started, error=error,
        content=assembler.text if assembler else None,
        extra={"after_first_byte": after_first_byte},
    )
    return {
        "error": {
            "message": error.message,
            "status_code": error.status_code,
            "backend": backend.name,
            "kind": error.kind,
            "retry_after": error.retry_after,
            "after_first_byte": after_first_byte,
        },
        "failed_backends": [backend.name],
        "steps": [step],
    }
