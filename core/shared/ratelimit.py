"""Rate limits: a moving window per client, in memory (the `limits` library) or in Redis.

The window holds `min(RATE_LIMIT_BURST, RATE_LIMIT_PER_MINUTE)` requests over the time they
take at the rate (3 per 30 s for `6` and burst `3`; 10 per minute for `10` and burst `20`).
With REDIS_URL set, the window lives in Redis and one Lua script admits or refuses atomically,
on Redis's own clock, so N replicas admit exactly what one would. Our own script rather than
`limits`' Redis storage: that one stamps each request with the router's clock before the
round trip, so a replica whose clock lags, or a request that waited on a busy event loop,
writes an entry that looks older than it is; it leaves the window early and the fleet admits
more than the limit (the soak once saw 303 in a window of 300).

Every admission is also counted in the process's own window, so when Redis is *down* each
replica goes on limiting with the history it has (each then admits up to the limit by itself;
see the README). A single late or failed answer while Redis is up is not an outage: the
request is refused (Retry-After 1 s), since only Redis knows whether the fleet is at its limit
and this process's history holds only its own share of the fleet's requests.

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

# KEYS[1]: the client's window, a list of admission times (µs on Redis's clock), newest first.
# ARGV: the limit, the period in µs. Returns -1 (admitted) or the µs until a slot frees.
_WINDOW_SCRIPT = """
redis.replicate_commands()
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local limit = tonumber(ARGV[1])
local period_us = tonumber(ARGV[2])
local oldest = redis.call('LINDEX', KEYS[1], limit - 1)
if oldest and now_us - tonumber(oldest) < period_us then
    return tonumber(oldest) + period_us - now_us
end
redis.call('LPUSH', KEYS[1], now[1] .. string.format('%06d', tonumber(now[2])))
redis.call('LTRIM', KEYS[1], 0, limit - 1)
redis.call('PEXPIRE', KEYS[1], math.ceil(period_us / 1000))
return -1
"""


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
        self._scripts: dict[int, Any] = {}  # the window script, registered per Redis client (one per loop)
        self._seen: OrderedDict[str, float] = OrderedDict()
        self.max_buckets = max_buckets
        self.admitted = 0
        self.rejected = 0
        self.shared_decisions = 0
        self.local_decisions = 0
        self.refused_unanswered = 0
        """Refused because Redis, though up, did not answer in time (see the module doc)."""

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

    async def _shared_hit(self, client: Any, bucket: str) -> int:
        """Run the window script for `bucket`: -1 when admitted, else the µs until a slot frees."""
        script = self._scripts.get(id(client))
        if script is None:
            script = self._scripts[id(client)] = client.register_script(_WINDOW_SCRIPT)
        assert self.link is not None
        key = self.link.key("ratelimit", f"{self.item.amount}per{self.period_s}s", bucket)
        return int(await script(keys=[key], args=[self.item.amount, self.period_s * 1_000_000]))

    async def hit(self, identity: str) -> tuple[bool, float]:
        """`(admitted, seconds to wait when refused)` for one request of `identity`."""
        bucket = self._bucket(identity)
        if self.link is not None:
            link = self.link
            wait_us = await link.call(lambda client: self._shared_hit(client, bucket), None)
            if wait_us is not None:
                self.shared_decisions += 1
                if wait_us < 0:
                    await self.memory.hit(self.item, bucket)  # local history for when Redis is gone
                    self.admitted += 1
                    return True, 0.0
                self.rejected += 1
                return False, max(1.0, math.ceil(wait_us / 1_000_000))
            if link.up is not False:
                # Up, but late or failed this once: the script may even have run. Admitting on this
                # process's history (its share of the fleet's requests only) would exceed the limit.
                self.refused_unanswered += 1
                self.rejected += 1
                return False, 1.0
        self.local_decisions += 1
        if await self.memory.hit(self.item, bucket):
            self.admitted += 1
            return True, 0.0
        self.rejected += 1
        return False, await self._retry_after(bucket)

    async def _retry_after(self, bucket: str) -> float:
        """Seconds until this process's window for `bucket` has room again."""
        window = await self.memory.get_window_stats(self.item, bucket)
        return max(1.0, math.ceil(window.reset_time - time.time()))

    def snapshot(self) -> dict[str, Any]:
        """This process's counts, for `/stats`."""
        return {
            "limit": f"{self.item.amount} per {self.period_s} s",
            "admitted": self.admitted,
            "rejected": self.rejected,
            "decided_in_redis": self.shared_decisions,
            "decided_locally": self.local_decisions,
            "refused_redis_unanswered": self.refused_unanswered,
            "buckets": len(self._seen),
        }
