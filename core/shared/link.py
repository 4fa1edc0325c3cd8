"""One Redis connection for the whole process, with a deadline on every call and a degraded mode.

Every call goes through `RedisLink.call`: it runs under `REDIS_TIMEOUT_S`, and a failure
(refused, reset, an error reply, or `TIMEOUTS_TO_DOWN` timeouts in a row: one late answer on
a busy event loop is not an outage) marks Redis *down*; a failed call returns its default. While it is down, calls are
skipped at once (the caller uses its per-process state), except one probe at a time after a
backoff that doubles from `REDIS_RETRY_S` to `REDIS_RETRY_MAX_S`; the first probe that works
marks Redis *up* again, and sharing resumes by itself. A dead Redis therefore costs a request
at most one `REDIS_TIMEOUT_S`, and only the request that happens to probe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger("ai_router")
T = TypeVar("T")
TIMEOUTS_TO_DOWN = 3
OUTAGES_KEPT = 50


class RedisLink:
    """The process's Redis client, its health, and its reconnect backoff."""

    def __init__(self, url: str, *, timeout_s: float = 0.25, retry_s: float = 1.0, retry_max_s: float = 15.0,
                 prefix: str = "ai-router") -> None:
        """Remember where Redis is; nothing connects until the first call."""
        self.url = url
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self.retry_max_s = retry_max_s
        self.prefix = prefix
        self.up: bool | None = None  # None: not tried yet
        self.last_error: str | None = None
        self.down_since: float | None = None
        self.outages: deque[tuple[float, float]] = deque(maxlen=OUTAGES_KEPT)
        """The latest periods (epoch start, end) this process worked without Redis: its rate-limit
        decisions were its own then (the soak leaves those windows out of its exact check)."""
        self.failures = 0
        self.skipped = 0
        self.recoveries = 0
        self._backoff = retry_s
        self._next_try = 0.0
        self._probing = False
        self._timeouts_in_row = 0
        self._clients: dict[int, Any] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def key(self, *parts: str) -> str:
        """A key under the fleet's prefix: `ai-router:part:part`."""
        return ":".join((self.prefix, *parts))

    @property
    def client(self) -> Any:
        """The `redis.asyncio.Redis` of the running loop (imported only when Redis is configured)."""
        loop_id = id(asyncio.get_running_loop())
        client = self._clients.get(loop_id)
        if client is None:
            import redis.asyncio
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            client = redis.asyncio.Redis.from_url(
                self.url, socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s,
                retry=Retry(NoBackoff(), 0), health_check_interval=0, max_connections=256,
            )
            self._clients[loop_id] = client
        return client

    def available(self) -> bool:
        """Whether a call may go to Redis now (up, or time for one probe)."""
        if self.up is not False:
            return True
        return not self._probing and time.monotonic() >= self._next_try

    async def call(self, work: Callable[[Any], Awaitable[T]], default: T) -> T:
        """Run `work(client)` under the deadline; `default` when Redis is down or the call fails."""
        if self.up is False:
            if self._probing or time.monotonic() < self._next_try:
                self.skipped += 1
                return default
            self._probing = True
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await work(self.client)
        except asyncio.CancelledError:
            self._probing = False
            raise
        except TimeoutError as exc:
            self._timeouts_in_row += 1
            if self.up is False or self._timeouts_in_row >= TIMEOUTS_TO_DOWN:
                self._failed(exc)
            else:
                self.failures += 1  # late, not gone: this call uses per-process state, the next tries again
            return default
        except Exception as exc:  # noqa: BLE001 - any failure means "use per-process state"
            self._failed(exc)
            return default
        self._succeeded()
        return result

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc or 'no answer within REDIS_TIMEOUT_S'}"[:200]
        if self.up is not False:
            log.warning("Redis unreachable (%s): using per-process state until it returns", self.last_error)
            self.down_since = time.time()
            self._backoff = self.retry_s
        else:
            self._backoff = min(self.retry_max_s, self._backoff * 2)
        self.up = False
        self._probing = False
        self._next_try = time.monotonic() + self._backoff

    def _succeeded(self) -> None:
        self._timeouts_in_row = 0
        if self.up is False:
            log.warning("Redis is back: sharing state again")
            self.recoveries += 1
            if self.down_since is not None:
                self.outages.append((self.down_since, time.time()))
        self.up = True
        self.down_since = None
        self._probing = False
        self._backoff = self.retry_s

    def fire(self, work: Callable[[Any], Awaitable[Any]]) -> None:
        """Run `work(client)` in the background (writes nobody waits for); skipped while Redis is down."""
        if not self.available():
            self.skipped += 1
            return
        task = asyncio.get_running_loop().create_task(self.call(work, None))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def ping(self) -> bool:
        """Whether Redis answers PING now (a probe; counts like any call)."""
        return bool(await self.call(lambda client: client.ping(), False))

    def status(self) -> dict[str, Any]:
        """What `/health` and `/stats` show about Redis."""
        return {
            "configured": True,
            "state": {True: "ok", False: "degraded", None: "unknown"}[self.up],
            "error": self.last_error if self.up is False else None,
            "down_since": self.down_since,
            "outages": [[round(start, 3), round(end, 3)] for start, end in self.outages],
            "failures": self.failures,
            "skipped_calls": self.skipped,
            "recoveries": self.recoveries,
        }

    async def aclose(self) -> None:
        """Close the clients' pools."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            try:
                await client.aclose()
            except Exception:  # noqa: BLE001 - closing a dead connection may fail; nothing to do
                pass
