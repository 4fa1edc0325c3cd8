"""HTTP clients for the OpenAI-compatible backends (vLLM, xAI), built once per process.

Generation goes through `httpx` rather than `ChatOpenAI`: the router must pass the
backend's answer through untouched (vLLM's `reasoning_content` deltas, streamed
`tool_calls` fragments, fields LangChain does not model), and `ChatOpenAI` drops
`reasoning_content` when streaming (see shared/STACK-NOTES.md). One pooled
`httpx.AsyncClient` per backend is reused by every request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from ai_router.redact import redact
from ai_router.settings import Settings

JSON = dict[str, Any]


class BackendError(Exception):
    """A backend call that failed: unreachable, timed out, or answered with an error."""

    def __init__(self, backend: str, message: str, status_code: int = 502, kind: str = "http"):
        """Record which backend failed, why, and the HTTP status to report to the client."""
        super().__init__(redact(message))
        self.backend = backend
        self.status_code = status_code
        self.kind = kind
        self.message = redact(message)


@dataclass
class Backend:
    """One OpenAI-compatible endpoint: where it is, which model, and its pooled client."""

    name: str
    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 600.0
    connect_timeout_s: float = 5.0
    _clients: dict[int, httpx.AsyncClient] = field(default_factory=dict, repr=False)

    @property
    def client(self) -> httpx.AsyncClient:
        """The pooled client for the running event loop (httpx clients are loop-bound)."""
        loop_id = id(asyncio.get_running_loop())
        client = self._clients.get(loop_id)
        if client is None:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            client = httpx.AsyncClient(
                base_url=self.base_url.rstrip("/"),
                headers=headers,
                timeout=httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s),
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            )
            self._clients[loop_id] = client
        return client

    def url(self, path: str) -> str:
        """Full URL of `path` on this backend (recorded in session steps)."""
        return f"{self.base_url.rstrip('/')}{path}"

    async def aclose(self) -> None:
        """Close every pooled client."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def post_json(self, path: str, payload: JSON, timeout_s: float | None = None) -> JSON:
        """POST `payload` as JSON and return the decoded answer, or raise `BackendError`."""
        timeout = (
            httpx.Timeout(timeout_s, connect=min(timeout_s, self.connect_timeout_s))
            if timeout_s is not None
            else httpx.USE_CLIENT_DEFAULT
        )
        try:
            response = await self.client.post(
                path,
                content=orjson.dumps(payload),
                headers={"Content-Type": "application/json"},
                timeout=timeout,
            )
        except httpx.TimeoutException as exc:
            raise BackendError(self.name, f"{self.name} timed out ({type(exc).__name__})", 504, "timeout") from exc
        except httpx.TransportError as exc:
            raise BackendError(self.name, f"{self.name} unreachable: {exc}", 502, "connect") from exc
        if response.status_code >= 400:
            raise _error_from_response(self.name, response.status_code, response.content)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise BackendError(self.name, f"{self.name} sent a body that is not JSON", 502, "protocol") from exc

    def stream_chat(self, payload: JSON) -> AsyncIterator[JSON]:
        """POST a streaming chat request and yield each SSE chunk as a dict, up to `[DONE]`."""
        return self.stream_json("/chat/completions", payload)

    async def stream_json(self, path: str, payload: JSON) -> AsyncIterator[JSON]:
        """POST a streaming request to `path` and yield each SSE data chunk, up to `[DONE]`.

        Raises:
            BackendError: before or during the stream; `kind` says which.
        """
        request = self.client.build_request(
            "POST",
            path,
            content=orjson.dumps(payload),
            headers={"Content-Type": "application/json", "Accept": "text/event-stream"},
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise BackendError(self.name, f"{self.name} timed out ({type(exc).__name__})", 504, "timeout") from exc
        except httpx.TransportError as exc:
            raise BackendError(self.name, f"{self.name} unreachable: {exc}", 502, "connect") from exc
        try:
            if response.status_code >= 400:
                raise _error_from_response(self.name, response.status_code, await response.aread())
            done = False
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue  # SSE comments, event names and blank separators
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                try:
                    chunk = orjson.loads(data)
                except orjson.JSONDecodeError as exc:
                    raise BackendError(self.name, f"{self.name} sent a stream chunk that is not JSON", 502, "protocol") from exc
                if isinstance(chunk, dict) and "error" in chunk and "choices" not in chunk:
                    raise BackendError(self.name, f"{self.name} stream error: {_error_message(chunk)}", 502, "http")
                yield chunk
            if not done:
                raise BackendError(self.name, f"{self.name} stream ended without [DONE]", 502, "cut")
        except httpx.TimeoutException as exc:
            raise BackendError(self.name, f"{self.name} stream timed out", 504, "timeout") from exc
        except httpx.TransportError as exc:
            raise BackendError(self.name, f"{self.name} stream broke: {type(exc).__name__}", 502, "cut") from exc
        finally:
            await response.aclose()


def _error_message(body: Any) -> str:
    """Pull the human message out of an OpenAI-style error body."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or error)[:500]
        return str(error)[:500]
    return str(body)[:500]


def _error_from_response(backend: str, status: int, content: bytes) -> BackendError:
    """Turn a backend's error answer into a `BackendError` with a client-facing status."""
    try:
        message = _error_message(orjson.loads(content))
    except orjson.JSONDecodeError:
        message = content[:200].decode("utf-8", "replace")
    # A backend's 4xx is the client's fault (bad parameters): report it as such. Its 5xx is
    # ours to report as a bad gateway; the client did nothing wrong.
    client_status = status if 400 <= status < 500 and status not in (401, 403, 429) else 502
    if status == 429:
        client_status = 429
    return BackendError(backend, f"{backend} answered HTTP {status}: {message}", client_status, "http")


@dataclass
class Backends:
    """Every backend the router may call, keyed by name (`primary`, `classifier`, `xai`)."""

    by_name: dict[str, Backend]

    def __getitem__(self, name: str) -> Backend:
        """Return the backend called `name`, or raise with the valid names."""
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"Unknown backend {name!r}. Expected one of: {sorted(self.by_name)}") from None

    async def aclose(self) -> None:
        """Close every backend's pooled clients."""
        for backend in self.by_name.values():
            await backend.aclose()


def build_backends(settings: Settings) -> Backends:
    """Build the backends described by `settings` (xAI only when a key is set)."""

    def secret(value: Any) -> str | None:
        return value.get_secret_value() if value is not None else None

    by_name = {
        "primary": Backend(
            "primary", settings.primary_base_url, settings.primary_model,
            secret(settings.primary_api_key), settings.primary_timeout_s, settings.connect_timeout_s,
        ),
        "classifier": Backend(
            "classifier", settings.classifier_base_url, settings.classifier_model,
            secret(settings.classifier_api_key), settings.classifier_timeout_s, settings.connect_timeout_s,
        ),
    }
    if settings.xai_configured:
        by_name["xai"] = Backend(
            "xai", settings.xai_base_url, settings.xai_model,
            secret(settings.xai_api_key), settings.xai_timeout_s, settings.connect_timeout_s,
        )
    return Backends(by_name)


_BACKENDS: Backends | None = None


def get_backends(settings: Settings | None = None) -> Backends:
    """Return the process's backends, building them from settings on first use.

    The server builds them in its lifespan; `langgraph dev` (Studio) reaches this lazily.
    """
    global _BACKENDS
    if _BACKENDS is None:
        from ai_router.settings import get_settings

        _BACKENDS = build_backends(settings or get_settings())
    return _BACKENDS


def set_backends(backends: Backends | None) -> None:
    """Install (or clear) the process's backends; used by the server lifespan."""
    global _BACKENDS
    _BACKENDS = backends


def elapsed_ms(start: float) -> float:
    """Milliseconds since `start` (a `time.perf_counter()` value), rounded to 0.01 ms."""
    return round((time.perf_counter() - start) * 1000, 2)
