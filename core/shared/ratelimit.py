"""Rate limits with the `limits` library: a moving window per client, in memory or in Redis.

The window holds `min(RATE_LIMIT_BURST, RATE_LIMIT_PER_MINUTE)` requests over the time they
take at the rate (3 per 30 s for `6` and burst `3`; 10 per minute for `10` and burst `20`).
With REDIS_URL set, the window lives in Redis, and `limits` updates it atomically (a Lua
script), so N replicas admit exactly what one would. Every admission is also counted in the
process's own window, so when Redis goes away each replica goes on limiting with the history
it has (each then admits up to the limit by itself; see the README).

Buckets are bounded (`max_buckets` identities). An identity is forgotten only once its window
is empty (it could not be limited any more anyway); when every remembered identity is still
live, new identities share one overflow bucket instead of pushing live ones out, so a flood
of new addresses cannot reset the limit of the clients already counted.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

if TYPE_CHECKING:
    from core.shared.link import RedisLink

OVERFLOW = "overflow"


class RateLimiter:
    """Admit or refuse one request of one client identity."""

    def __init__(self, per_minute: float, burst: int, link: RedisLink | None = None,
                 max_buckets: int = 10_000) -> None:
        """A moving window of `min(burst, per_minute)` requests over the time they take at the rate."""
        amount = max(1, min(int(burst), math.floor(per_minute) or 1))
        self.period_s = max(1, round(60 * amount / per_minute))
        self.item = RateLimitItemPerSecond(amount, self.period_s)
        self.per_minute = per_minute
        self.memory = MovingWindowRateLimiter(MemoryStorage())
        self.link = link
        self._shared: MovingWindowRateLimiter | None = None
        self._seen: OrderedDict[str, float] = OrderedDict()
        self.max_buckets = max_buckets
        self.admitted = 0
        self.rejected = 0
        self.shared_decisions = 0
        self.local_decisions = 0

    def _bucket(self, identity: str) -> str:
        """The bucket of `identity`, keeping at most `max_buckets` live ones (see the module doc)."""
        now = time.monotonic()
        if identity in self._seen:
            self._seen[identity] = now
            self._seen.move_to_end(identity)
            return identity
        while len(self._seen) >= self.max_buckets:
            oldest, last = next(iter(self._seen.items()))
            if now - last <= self.period_s:
                return OVERFLOW  # all live: never reset one of them for a newcomer
            del self._seen[oldest]  # its window is empty: forgetting it changes nothing
        self._seen[identity] = now
        return identity

    def _shared_limiter(self) -> MovingWindowRateLimiter:
        if self._shared is None:
            from limits.aio.storage import RedisStorage

            assert self.link is not None
            storage = RedisStorage(
                "async+" + self.link.url, implementation="redispy", key_prefix=self.link.key("ratelimit"),
                socket_timeout=self.link.timeout_s, socket_connect_timeout=self.link.timeout_s,
            )
            self._shared = MovingWindowRateLimiter(storage)
        return self._shared

    async def hit(self, identity: str) -> tuple[bool, float]:
        """`(admitted, seconds to wait when refused)` for one request of `identity`."""
        bucket = self._bucket(identity)
        admitted: bool | None = None
        limiter = self.memory
        if self.link is not None:
            shared = self._shared_limiter()
            admitted = await self.link.call(lambda _: shared.hit(self.item, bucket), None)
            if admitted is not None:
                self.shared_decisions += 1
                limiter = shared
                if admitted:
                    await self.memory.hit(self.item, bucket)  # local history for when Redis is gone
        if admitted is None:
            self.local_decisions += 1
            admitted = await self.memory.hit(self.item, bucket)
        if admitted:
            self.admitted += 1
            return True, 0.0
        self.rejected += 1
        return False, await self._retry_after(limiter, bucket)

    async def _retry_after(self, limiter: MovingWindowRateLimiter, bucket: str) -> float:
        async def stats(_: Any) -> float:
            window = await limiter.get_window_stats(self.item, bucket)
            return max(1.0, math.ceil(window.reset_time - time.time()))

        fallback = max(1.0, round(60 / self.per_minute))
        if limiter is self.memory or self.link is None:
            return await stats(None)
        return await self.link.call(stats, fallback)

    def snapshot(self) -> dict[str, Any]:
        """This process's counts, for `/stats`."""
        return {
            "limit": f"{self.item.amount} per {self.period_s} s",
            "admitted": self.admitted,
            "rejected": self.rejected,
            "decided_in_redis": self.shared_decisions,
            "decided_locally": self.local_decisions,
            "buckets": len(self._seen),
        }
