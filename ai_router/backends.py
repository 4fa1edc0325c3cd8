"""HTTP clients for the OpenAI-compatible backends (vLLM, xAI), built once per process.

Generation goes through `httpx` rather than `ChatOpenAI`: the router must pass the
backend's answer through untouched (vLLM's `reasoning_content` deltas, streamed
`tool_calls` fragments, fields LangChain does not model), and `ChatOpenAI` drops
`reasoning_content` when streaming (see shared/STACK-NOTES.md). One pooled
`httpx.AsyncClient` per backend is reused by every request.

Every call is bounded: a connect timeout, a first-token timeout for streams, a total
deadline, at most `limit` calls in flight (then a queue with a timeout), retries with
backoff before the first byte only, and a circuit breaker that skips a failing backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from ai_router.redact import redact
from ai_router.resilience import CircuitBreaker, ConcurrencyLimit, RetryPolicy, parse_retry_after
from ai_router.settings import Settings

JSON = dict[str, Any]


class BackendError(Exception):
    """A backend call that failed: unreachable, timed out, saturated, or answered an error."""

    def __init__(
        self,
        backend: str,
        message: str,
        status_code: int = 502,
        kind: str = "http",
        *,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        """Record which backend failed, why, the status to report, and whether to retry."""
        super().__init__(redact(message))
        self.backend = backend
        self.status_code = status_code
        self.kind = kind
        self.message = redact(message)
        self.retryable = retryable
        self.retry_after = retry_after

    @property
    def unhealthy(self) -> bool:
        """Whether this failure says the backend is unwell (counts toward its breaker)."""
        return self.kind in ("connect", "timeout", "cut", "protocol") or (
            self.kind == "http" and self.retryable
        )


@dataclass
class Backend:
    """One OpenAI-compatible endpoint: where it is, which model, its pool and its guards."""

    name: str
    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 600.0
    """Total time one call may take, retries included."""
    connect_timeout_s: float = 5.0
    first_token_timeout_s: float | None = None
    """Streams: time allowed until the first chunk (a cold model may be slow to start)."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    concurrency: ConcurrencyLimit = field(default_factory=ConcurrencyLimit)
    takes_tools: bool = True
    """Whether the model accepts `tools` (`<NAME>_SUPPORTS_TOOLS`)."""
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
                limits=httpx.Limits(
                    max_connections=self.concurrency.limit + 8, max_keepalive_connections=self.concurrency.limit
                ),
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

    def status(self) -> dict[str, Any]:
        """Breaker and concurrency state, for `/health` and `/stats`."""
        return {
            "breaker": self.breaker.snapshot(),
            "in_flight": self.concurrency.in_flight(),
            "max_concurrency": self.concurrency.limit,
            "rejected_saturated": self.concurrency.rejected,
        }

    # --- guards ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """Hold one of the backend's concurrency slots, or fail with 503 after the queue timeout."""
        if not self.breaker.allow():
            raise BackendError(
                self.name, f"{self.name} is cooling down after repeated failures (circuit open)", 503,
                "circuit_open", retry_after=round(self.breaker.retry_in_s(), 1) or 1.0,
            )
        semaphore = self.concurrency.semaphore
        try:
            await asyncio.wait_for(semaphore.acquire(), self.concurrency.queue_timeout_s)
        except TimeoutError:
            self.concurrency.rejected += 1
            self.breaker.probing = False
            raise BackendError(
                self.name, f"{self.name} is saturated ({self.concurrency.limit} calls in flight)", 503,
                "saturated", retry_after=max(1.0, self.concurrency.queue_timeout_s / 2),
            ) from None
        try:
            yield
        finally:
            semaphore.release()

    def _retrying(self, deadline: float) -> AsyncRetrying:
        def retryable(error: BaseException) -> bool:
            return self.retry.should_retry(error) and time.monotonic() + 0.05 < deadline

        return AsyncRetrying(
            stop=stop_after_attempt(self.retry.attempts + 1),
            wait=self.retry.wait,
            retry=retry_if_exception(retryable),
            reraise=True,
        )

    def _record(self, error: BackendError | None) -> None:
        if error is None:
            self.breaker.success()
        elif error.unhealthy:
            self.breaker.failure()
        else:
            self.breaker.probing = False  # the backend answered: a client error says nothing of its health

    # --- calls -------------------------------------------------------------------------

    async def post_json(self, path: str, payload: JSON, timeout_s: float | None = None) -> JSON:
        """POST `payload` as JSON and return the decoded answer, retrying what may be retried.

        Raises:
            BackendError: the call failed for good (after retries) or the breaker is open.
        """
        total = timeout_s if timeout_s is not None else self.timeout_s
        deadline = time.monotonic() + total
        content = orjson.dumps(payload)
        async with self._slot():
            try:
                async for attempt in self._retrying(deadline):
                    with attempt:
                        result = await self._post_once(path, content, deadline)
            except BackendError as error:
                self._record(error)
                raise
            self._record(None)
            return result

    async def _post_once(self, path: str, content: bytes, deadline: float) -> JSON:
        remaining = max(0.01, deadline - time.monotonic())
        try:
            response = await asyncio.wait_for(
                self.client.post(
                    path, content=content, headers={"Content-Type": "application/json"},
                    timeout=httpx.Timeout(remaining, connect=min(remaining, self.connect_timeout_s)),
                ),
                remaining,
            )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise BackendError(self.name, f"{self.name} timed out ({type(exc).__name__})", 504, "timeout",
                               retryable=True) from exc
        except httpx.TransportError as exc:
            raise BackendError(self.name, f"{self.name} unreachable: {type(exc).__name__}", 502, "connect",
                               retryable=True) from exc
        if response.status_code >= 400:
            raise _error_from_response(self.name, response)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise BackendError(self.name, f"{self.name} sent a body that is not JSON", 502, "protocol",
                               retryable=True) from exc

    def stream_chat(self, payload: JSON) -> AsyncIterator[JSON]:
        """POST a streaming chat request and yield each SSE chunk as a dict, up to `[DONE]`."""
        return self.stream_json("/chat/completions", payload)

    async def stream_json(self, path: str, payload: JSON) -> AsyncIterator[JSON]:
        """POST a streaming request to `path` and yield each SSE data chunk, up to `[DONE]`.

        Failures before the first chunk are retried like any call; after it, none is (the
        client already has part of the answer), and the error is raised as it comes.

        Raises:
            BackendError: before or during the stream; `kind` says which.
        """
        deadline = time.monotonic() + self.timeout_s
        content = orjson.dumps(payload)
        async with self._slot():
            response: httpx.Response | None = None
            lines: AsyncIterator[JSON] | None = None
            try:
                async for attempt in self._retrying(deadline):
                    with attempt:
                        response, lines, first = await self._open_stream(path, content, deadline)
            except BackendError as error:
                self._record(error)
                raise
            assert response is not None and lines is not None
            try:
                self._record(None)
                yield first
                async for chunk in lines:
                    if time.monotonic() > deadline:
                        raise BackendError(self.name, f"{self.name} stream exceeded {self.timeout_s:.0f} s", 504,
                                           "timeout")
                    yield chunk
            except BackendError as error:
                self._record(error)
                raise
            finally:
                await response.aclose()

    async def _open_stream(
        self, path: str, content: bytes, deadline: float
    ) -> tuple[httpx.Response, AsyncIterator[JSON], JSON]:
        """Send the request and wait for the first chunk (within the first-token timeout)."""
        request = self.client.build_request(
            "POST", path, content=content,
            headers={"Content-Type": "application/json", "Accept": "text/event-stream"},
        )
        first_token_s = min(self.first_token_timeout_s or self.timeout_s, max(0.01, deadline - time.monotonic()))
        response: httpx.Response | None = None
        try:
            response = await asyncio.wait_for(self.client.send(request, stream=True), first_token_s)
            if response.status_code >= 400:
                await response.aread()
                raise _error_from_response(self.name, response)
            lines = self._chunks(response)
            first = await asyncio.wait_for(anext(lines), first_token_s)
            return response, lines, first
        except StopAsyncIteration:
            await response.aclose()  # type: ignore[union-attr]
            raise BackendError(self.name, f"{self.name} stream ended before any chunk", 502, "cut",
                               retryable=True) from None
        except (TimeoutError, httpx.TimeoutException) as exc:
            if response is not None:
                await response.aclose()
            raise BackendError(self.name, f"{self.name} sent no first token within {first_token_s:.1f} s", 504,
                               "timeout", retryable=True) from exc
        except httpx.TransportError as exc:
            if response is not None:
                await response.aclose()
            raise BackendError(self.name, f"{self.name} unreachable: {type(exc).__name__}", 502, "connect",
                               retryable=True) from exc
        except BackendError as error:
            if response is not None:
                await response.aclose()
            error.retryable = error.retryable or error.kind in ("cut", "protocol")
            raise

    async def _chunks(self, response: httpx.Response) -> AsyncIterator[JSON]:
        """The SSE data chunks of `response`, decoded, up to `[DONE]`."""
        done = False
        try:
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
                    raise BackendError(self.name, f"{self.name} sent a stream chunk that is not JSON", 502,
                                       "protocol") from exc
                if isinstance(chunk, dict) and "error" in chunk and "choices" not in chunk:
                    raise BackendError(self.name, f"{self.name} stream error: {_error_message(chunk)}", 502, "http")
                yield chunk
        except httpx.TimeoutException as exc:
            raise BackendError(self.name, f"{self.name} stream stalled", 504, "timeout") from exc
        except httpx.TransportError as exc:
            raise BackendError(self.name, f"{self.name} stream broke: {type(exc).__name__}", 502, "cut") from exc
        if not done:
            raise BackendError(self.name, f"{self.name} stream ended without [DONE]", 502, "cut")


def _error_message(body: Any) -> str:
    """Pull the human message out of an OpenAI-style error body."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or error)[:500]
        return str(error)[:500]
    return str(body)[:500]


def _error_from_response(backend: str, response: httpx.Response) -> BackendError:
    """Turn a backend's error answer into a `BackendError` with a client-facing status."""
    status = response.status_code
    try:
        message = _error_message(orjson.loads(response.content))
    except orjson.JSONDecodeError:
        message = response.content[:200].decode("utf-8", "replace")
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    text = f"{backend} answered HTTP {status}: {message}"
    if status == 429:
        return BackendError(backend, text, 429, "rate_limited", retryable=True, retry_after=retry_after)
    if status >= 500:
        return BackendError(backend, text, 502, "http", retryable=True, retry_after=retry_after)
    if status in (401, 403):
        # The router's own key for the backend is wrong: a server-side fault, not the client's.
        return BackendError(backend, text, 502, "backend_auth")
    return BackendError(backend, text, status, "http")  # the client's request was wrong: say so


@dataclass
class Backends:
    """Every backend the router may call, keyed by name (`primary`, `classifier`, `xai`, …).

    `vision` is the xAI backend itself when no VISION_BASE_URL is set (Grok takes images);
    `embeddings` exists only when EMBEDDINGS_BASE_URL is set.
    """

    by_name: dict[str, Backend]

    def __getitem__(self, name: str) -> Backend:
        """Return the backend called `name`, or raise with the valid names."""
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"Unknown backend {name!r}. Expected one of: {sorted(self.by_name)}") from None

    def __contains__(self, name: object) -> bool:
        """Whether a backend called `name` is configured."""
        return name in self.by_name

    async def aclose(self) -> None:
        """Close every backend's pooled clients (an alias is closed once)."""
        for backend in {id(b): b for b in self.by_name.values()}.values():
            await backend.aclose()


def build_backends(settings: Settings) -> Backends:
    """Build the backends described by `settings` (xAI only when a key is set, and so on)."""

    def secret(value: Any) -> str | None:
        return value.get_secret_value() if value is not None else None

    retry = RetryPolicy(
        attempts=settings.retry_attempts, backoff_s=settings.retry_backoff_s,
        backoff_max_s=settings.retry_backoff_max_s, retry_after_max_s=settings.retry_after_max_s,
    )

    def guards(limit: int) -> dict[str, Any]:
        return {
            "retry": retry,
            "breaker": CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s),
            "concurrency": ConcurrencyLimit(limit, settings.queue_timeout_s),
            "connect_timeout_s": settings.connect_timeout_s,
        }

    by_name = {
        "primary": Backend(
            "primary", settings.primary_base_url, settings.primary_model, secret(settings.primary_api_key),
            settings.primary_timeout_s, first_token_timeout_s=settings.primary_first_token_timeout_s,
            takes_tools=settings.primary_supports_tools, **guards(settings.primary_max_concurrency),
        ),
        "classifier": Backend(
            "classifier", settings.classifier_base_url, settings.classifier_model,
            secret(settings.classifier_api_key), settings.classifier_timeout_s,
            first_token_timeout_s=settings.classifier_timeout_s, takes_tools=settings.classifier_supports_tools,
            **guards(settings.classifier_max_concurrency),
        ),
    }
    if settings.xai_configured:
        by_name["xai"] = Backend(
            "xai", settings.xai_base_url, settings.xai_model, secret(settings.xai_api_key), settings.xai_timeout_s,
            first_token_timeout_s=settings.xai_first_token_timeout_s, takes_tools=settings.xai_supports_tools,
            **guards(settings.xai_max_concurrency),
        )
    if settings.vision_base_url and settings.vision_model:
        by_name["vision"] = Backend(
            "vision", settings.vision_base_url, settings.vision_model, secret(settings.vision_api_key),
            settings.vision_timeout_s, takes_tools=settings.vision_supports_tools,
            **guards(settings.vision_max_concurrency),
        )
    elif "xai" in by_name:
        by_name["vision"] = by_name["xai"]  # the same client and guards: Grok accepts images
    if settings.embeddings_base_url and settings.embeddings_model:
        by_name["embeddings"] = Backend(
            "embeddings", settings.embeddings_base_url, settings.embeddings_model,
            secret(settings.embeddings_api_key), settings.embeddings_timeout_s,
            **guards(settings.embeddings_max_concurrency),
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
