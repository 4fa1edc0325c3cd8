"""HTTP clients for the OpenAI-compatible backends (vLLM, xAI), built once per process.

Generation goes through `aiohttp` rather than `ChatOpenAI`: the router must pass the
backend's answer through untouched (vLLM's `reasoning_content` deltas, streamed
`tool_calls` fragments, fields LangChain does not model), and `ChatOpenAI` drops
`reasoning_content` when streaming (see shared/STACK-NOTES.md). One pooled
`aiohttp.ClientSession` per backend is reused by every request. aiohttp rather than httpx:
its C HTTP parser reads a stream for a fraction of httpx's cost (pure-Python h11 plus an
anyio timeout per read took a third of the router's CPU with 64 streams in the profile of
benchmarks/results).

Every call is bounded: a connect timeout, a first-token timeout and an idle timeout between
chunks for streams (a stream that keeps producing is never cut, however long it runs), a total
deadline for calls that are not streamed, at most `limit` calls in flight (then a queue with a
timeout), retries with backoff before the first byte only (connect errors, 5xx, 429, a broken
start; never a first-token or idle timeout: a silent backend is not asked again), and a circuit
breaker that skips a failing backend (shared by every replica when REDIS_URL is set: `core.shared`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from core.backends.resilience import CircuitBreaker, ConcurrencyLimit, RetryPolicy, parse_retry_after
from core.redact import redact
from core.settings import Settings

JSON = dict[str, Any]
_JSON_HEADERS = {"Content-Type": "application/json"}


class _OnSent:
    """A request's `on_sent` callback, called once (a retried request is sent again)."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback: Callable[[], None] | None = callback

    def fire(self) -> None:
        callback, self.callback = self.callback, None
        if callback is not None:
            # After the current step: aiohttp's writer still has the end of the request to flush.
            asyncio.get_running_loop().call_soon(callback)


async def _body_sent(_session: Any, context: Any, _params: Any) -> None:
    """Fire a request's `on_sent` (aiohttp's signal that its body reached the transport), if it has one."""
    hook = context.trace_request_ctx
    if isinstance(hook, _OnSent):
        hook.fire()


_SENT_TRACE = aiohttp.TraceConfig()
_SENT_TRACE.on_request_chunk_sent.append(_body_sent)
_SSE_HEADERS = {"Content-Type": "application/json", "Accept": "text/event-stream"}


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
    idle_timeout_s: float | None = None
    """Streams: longest silence between two chunks once the first has come (None: no limit)."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    concurrency: ConcurrencyLimit = field(default_factory=ConcurrencyLimit)
    shared_breaker: Any = field(default=None, repr=False)
    """The fleet's view of this breaker (`core.shared.breakers.SharedBreaker`), or None (per process)."""
    _sessions: dict[int, aiohttp.ClientSession] = field(default_factory=dict, repr=False)

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled session for the running event loop (HTTP clients are loop-bound)."""
        loop_id = id(asyncio.get_running_loop())
        session = self._sessions.get(loop_id)
        if session is None or session.closed:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            session = aiohttp.ClientSession(
                headers=headers,
                connector=aiohttp.TCPConnector(limit=self.concurrency.limit + 8, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=None, connect=self.connect_timeout_s),
                skip_auto_headers=("User-Agent",),
                trace_configs=[_SENT_TRACE],
            )
            self._sessions[loop_id] = session
        return session

    def url(self, path: str) -> str:
        """Full URL of `path` on this backend (recorded in session steps)."""
        return f"{self.base_url.rstrip('/')}{path}"

    async def aclose(self) -> None:
        """Close every pooled session."""
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    async def probe(self, timeout_s: float = 3.0) -> str | None:
        """GET `/models` once, outside the guards; None when it answered, else why not."""
        try:
            async with self.session.get(self.url("/models"), timeout=aiohttp.ClientTimeout(total=timeout_s)) as answer:
                return None if answer.status < 400 else f"HTTP {answer.status}"
        except (TimeoutError, aiohttp.ClientError) as exc:
            return type(exc).__name__

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
        if self.shared_breaker is not None:
            await self.shared_breaker.sync(self.breaker)
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
        was_open = self.breaker.opened_at
        if error is None:
            self.breaker.success()
        elif error.unhealthy:
            self.breaker.failure()
        else:
            self.breaker.probing = False  # the backend answered: a client error says nothing of its health
        if self.shared_breaker is not None and self.breaker.opened_at != was_open:
            self.shared_breaker.publish(self.breaker)  # opened, re-opened or closed: tell the fleet

    # --- calls -------------------------------------------------------------------------

    async def post_json(self, path: str, payload: JSON, timeout_s: float | None = None,
                        on_sent: Callable[[], None] | None = None) -> JSON:
        """POST `payload` as JSON and return the decoded answer, retrying what may be retried.

        `on_sent` is called once, as soon as the request body is on the wire (the local
        classifier starts its prediction then, so it never delays the request going out).

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
                        result = await self._post_once(path, content, deadline, on_sent)
            except BackendError as error:
                self._record(error)
                raise
            self._record(None)
            return result

    async def _post_once(self, path: str, content: bytes, deadline: float,
                         on_sent: Callable[[], None] | None = None) -> JSON:
        remaining = max(0.01, deadline - time.monotonic())
        try:
            async with self.session.post(
                self.url(path), data=content, headers=_JSON_HEADERS,
                timeout=aiohttp.ClientTimeout(total=remaining, connect=min(remaining, self.connect_timeout_s)),
                trace_request_ctx=_OnSent(on_sent) if on_sent is not None else None,
            ) as response:
                body = await response.read()
                status, retry_after = response.status, response.headers.get("Retry-After")
        except aiohttp.ServerTimeoutError as exc:
            raise BackendError(self.name, f"{self.name} unreachable: connect timed out", 502, "connect",
                               retryable=True) from exc
        except TimeoutError as exc:
            # The call's whole deadline is spent: nothing is left to retry with.
            raise BackendError(self.name, f"{self.name} timed out after {remaining:.1f} s", 504, "timeout") from exc
        except aiohttp.ClientError as exc:
            raise BackendError(self.name, f"{self.name} unreachable: {type(exc).__name__}", 502, "connect",
                               retryable=True) from exc
        if status >= 400:
            raise _error_from_response(self.name, status, body, retry_after)
        try:
            return orjson.loads(body)
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
            response: aiohttp.ClientResponse | None = None
            lines: AsyncIterator[JSON] | None = None
            try:
                async for attempt in self._retrying(deadline):
                    with attempt:
                        response, lines, first = await self._open_stream(path, content, deadline)
            except BackendError as error:
                self._record(error)
                raise
            assert response is not None and lines is not None
            complete = False
            try:
                self._record(None)
                yield first
                # No total deadline from here on: an answer that keeps producing is never cut;
                # a silent one ends after IDLE timeout (`_chunks`).
                async for chunk in lines:
                    yield chunk
                complete = True
            except BackendError as error:
                self._record(error)
                raise
            finally:
                # A finished stream hands its connection back to the pool; an abandoned one
                # (client gone, error) is closed, which is what tells the backend to stop.
                response.release() if complete else response.close()

    async def _open_stream(
        self, path: str, content: bytes, deadline: float
    ) -> tuple[aiohttp.ClientResponse, AsyncIterator[JSON], JSON]:
        """Send the request and wait for the first chunk (within the first-token timeout)."""
        first_token_s = min(self.first_token_timeout_s or self.timeout_s, max(0.01, deadline - time.monotonic()))
        first_token_by = time.monotonic() + first_token_s
        response: aiohttp.ClientResponse | None = None
        try:
            response = await asyncio.wait_for(
                self.session.post(
                    self.url(path), data=content, headers=_SSE_HEADERS,
                    # No socket-read timeout: silences are bounded by the first-token deadline,
                    # then by the idle timeout (`_chunks`), never by the total of a non-streamed call.
                    timeout=aiohttp.ClientTimeout(total=None, connect=self.connect_timeout_s),
                ),
                first_token_s,
            )
            if response.status >= 400:
                body = await response.read()
                raise _error_from_response(self.name, response.status, body, response.headers.get("Retry-After"))
            lines = self._chunks(response, first_token_by)
            first = await asyncio.wait_for(anext(lines), max(0.01, first_token_by - time.monotonic()))
            return response, lines, first
        except StopAsyncIteration:
            response.close()  # type: ignore[union-attr]
            raise BackendError(self.name, f"{self.name} stream ended before any chunk", 502, "cut",
                               retryable=True) from None
        except aiohttp.ServerTimeoutError as exc:
            # The connect timeout (no socket-read timeout is set here): quick, and worth a retry.
            if response is not None:
                response.close()
            raise BackendError(self.name, f"{self.name} unreachable: connect timed out", 502, "connect",
                               retryable=True) from exc
        except TimeoutError as exc:
            # Connected, then silent for the whole first-token deadline: a hung backend, not a
            # transient fault. Asking it again would hold the client for that deadline once
            # per retry (3 x 120 s by default); fail now, so the caller falls back or answers 504.
            if response is not None:
                response.close()
            raise BackendError(self.name, f"{self.name} sent no first token within {first_token_s:.1f} s", 504,
                               "timeout") from exc
        except aiohttp.ClientError as exc:
            if response is not None:
                response.close()
            raise BackendError(self.name, f"{self.name} unreachable: {type(exc).__name__}", 502, "connect",
                               retryable=True) from exc
        except BackendError as error:
            if response is not None:
                response.close()
            error.retryable = error.retryable or error.kind in ("cut", "protocol")
            raise

    async def _chunks(self, response: aiohttp.ClientResponse, first_token_by: float) -> AsyncIterator[JSON]:
        """The SSE data chunks of `response`, decoded, up to `[DONE]`.

        Until a chunk carries output (text, reasoning, a tool call, a finish reason, usage),
        the first-token deadline `first_token_by` bounds the wait (a role-only first chunk
        does not start the clock of a model that thinks silently); after that, each silence
        between two reads is bounded by the idle timeout.

        Lines are split from each network read in one go (`bytes.split`), so a read that
        carries several chunks costs one pass, and no line-length limit applies.
        """
        pending = b""
        idle = self.idle_timeout_s
        started = False  # no output yet: the first-token deadline applies
        try:
            while True:
                if started:
                    if idle is None:
                        data = await response.content.readany()
                    else:
                        async with asyncio.timeout(idle):
                            data = await response.content.readany()
                else:
                    async with asyncio.timeout_at(_loop_time(first_token_by)):
                        data = await response.content.readany()
                if not data:
                    break
                lines = (pending + data).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if not line.startswith(b"data:"):
                        continue  # SSE comments, event names and blank separators
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        return
                    try:
                        chunk = orjson.loads(payload)
                    except orjson.JSONDecodeError as exc:
                        raise BackendError(self.name, f"{self.name} sent a stream chunk that is not JSON", 502,
                                           "protocol") from exc
                    if isinstance(chunk, dict) and "error" in chunk and "choices" not in chunk:
                        raise BackendError(self.name, f"{self.name} stream error: {_error_message(chunk)}", 502,
                                           "http")
                    started = started or _carries_output(chunk)
                    yield chunk
        except TimeoutError as exc:
            if not started:
                raise BackendError(self.name, f"{self.name} sent no first token in time (stream stalled)", 504,
                                   "timeout") from exc
            raise BackendError(self.name, f"{self.name} sent nothing for {idle or 0:.1f} s (stream stalled)", 504,
                               "timeout") from exc
        except aiohttp.ClientError as exc:
            raise BackendError(self.name, f"{self.name} stream broke: {type(exc).__name__}", 502, "cut") from exc
        raise BackendError(self.name, f"{self.name} stream ended without [DONE]", 502, "cut")


def _carries_output(chunk: Any) -> bool:
    """Whether a stream chunk holds part of the answer (not only a role or an empty delta)."""
    if not isinstance(chunk, dict):
        return False
    if chunk.get("usage") and not chunk.get("choices"):
        return True
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict) or "delta" not in choice:
            return True  # not a chat delta (legacy completions' `text`): any chunk is output
        delta = choice.get("delta") or {}
        if (choice.get("finish_reason") or delta.get("content") or delta.get("reasoning_content")
                or delta.get("reasoning") or delta.get("tool_calls")):
            return True
    return False


def _loop_time(monotonic_deadline: float) -> float:
    """A `time.monotonic()` deadline on the running loop's clock (`asyncio.timeout_at`)."""
    return asyncio.get_running_loop().time() + (monotonic_deadline - time.monotonic())


def _error_message(body: Any) -> str:
    """Pull the human message out of an OpenAI-style error body."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or error)[:500]
        return str(error)[:500]
    return str(body)[:500]


def _error_from_response(backend: str, status: int, content: bytes, retry_after_header: str | None) -> BackendError:
    """Turn a backend's error answer into a `BackendError` with a client-facing status."""
    try:
        message = _error_message(orjson.loads(content))
    except orjson.JSONDecodeError:
        message = content[:200].decode("utf-8", "replace")
    retry_after = parse_retry_after(retry_after_header)
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
            "idle_timeout_s": settings.stream_idle_timeout_s,
        }

    by_name = {
        "primary": Backend(
            "primary", settings.primary_base_url, settings.primary_model, secret(settings.primary_api_key),
            settings.primary_timeout_s, first_token_timeout_s=settings.primary_first_token_timeout_s,
            **guards(settings.primary_max_concurrency),
        ),
        "classifier": Backend(
            "classifier", settings.classifier_base_url, settings.classifier_model,
            # The total is for answers it writes (SIMPLE_TO_CLASSIFIER); `classify` passes its own
            # shorter deadline, CLASSIFIER_TIMEOUT_S, on each classification call.
            secret(settings.classifier_api_key), settings.classifier_answer_timeout_s,
            first_token_timeout_s=settings.classifier_timeout_s,
            **guards(settings.classifier_max_concurrency),
        ),
    }
    if settings.xai_configured:
        by_name["xai"] = Backend(
            "xai", settings.xai_base_url, settings.xai_model, secret(settings.xai_api_key), settings.xai_timeout_s,
            first_token_timeout_s=settings.xai_first_token_timeout_s,
            **guards(settings.xai_max_concurrency),
        )
    if settings.vision_base_url and settings.vision_model:
        by_name["vision"] = Backend(
            "vision", settings.vision_base_url, settings.vision_model, secret(settings.vision_api_key),
            settings.vision_timeout_s,
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


def elapsed_ms(start: float) -> float:
    """Milliseconds since `start` (a `time.perf_counter()` value), rounded to 0.01 ms."""
    return round((time.perf_counter() - start) * 1000, 2)
