"""Per-key daily budgets, counted from the usage of finished requests.

The HTTP edge (`core.http.access.BudgetMiddleware`) asks `Budgets.admit` before a request and
refuses it with 429 `budget_exceeded` when a budget is used up; the session of every finished
request adds its tokens (`Budgets.spend_tokens`):

- `KEY_BUDGET_REQUESTS_PER_DAY`: requests a client may send per day (in `TZ`); the first
  N of a day are admitted, every later one refused.
- `KEY_BUDGET_TOKENS_PER_DAY`: once a client's finished requests of the day used this many
  tokens, its next requests are refused (the request that crosses the line is answered).

The counts live in memory (one process), or in Redis when `REDIS_URL` is set, so every
worker and replica shares them as it shares the rate limits. If Redis cannot be reached the
budget is not enforced for that request (the router keeps answering) and the log says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from core.settings import Settings
from core.shared.link import RedisLink

log = logging.getLogger("ai_router")

_DAY_S = 86_400


class BudgetCounter(Protocol):
    """Counts per key and day, shared however the implementation shares them."""

    async def take(self, key: str, limit: int) -> bool:
        """Count one request under `key`; False (and not counted) when `limit` is already reached."""
        ...

    async def add(self, key: str, amount: int) -> None:
        """Add `amount` (tokens) under `key`."""
        ...

    async def used(self, key: str) -> int:
        """What `key` has counted so far."""
        ...


class MemoryBudgetCounter:
    """Counts in this process (one worker, one replica)."""

    def __init__(self) -> None:
        """Start with nothing counted."""
        self.counts: dict[str, int] = {}

    async def take(self, key: str, limit: int) -> bool:
        """Count one under `key` unless `limit` is reached."""
        if self.counts.get(key, 0) >= limit:
            return False
        self.counts[key] = self.counts.get(key, 0) + 1
        return True

    async def add(self, key: str, amount: int) -> None:
        """Add `amount` under `key`."""
        self.counts[key] = self.counts.get(key, 0) + amount

    async def used(self, key: str) -> int:
        """The count under `key`."""
        return self.counts.get(key, 0)

    def prune(self, keep: Callable[[str], bool]) -> None:
        """Forget the keys `keep` rejects (yesterday's)."""
        self.counts = {k: v for k, v in self.counts.items() if keep(k)}


# INCR, and undo it when past the limit, atomically: replicas racing for the last request
# of a budget cannot both get it.
_TAKE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then redis.call('DECR', KEYS[1]) return 0 end
return 1
"""


class RedisBudgetCounter:
    """Counts in Redis (`REDIS_URL`), shared by every worker and replica; keys expire after two days.

    Calls go through the process's one `RedisLink` (its deadline, its degraded state and its
    reconnect backoff): while Redis is down, `take` admits (budgets are not enforced, the link
    and `/health` say so) and counts are lost, never a request.
    """

    def __init__(self, link: RedisLink) -> None:
        """Count through `link`, under its key prefix."""
        self.link = link

    def _key(self, key: str) -> str:
        return self.link.key("budget", key)

    async def take(self, key: str, limit: int) -> bool:
        """Count one under `key` unless `limit` is reached (atomic across replicas)."""
        name = self._key(key)
        return bool(await self.link.call(lambda client: client.eval(_TAKE, 1, name, limit, 2 * _DAY_S), 1))

    async def add(self, key: str, amount: int) -> None:
        """Add `amount` under `key`."""
        name = self._key(key)

        async def work(client: Any) -> None:
            async with client.pipeline(transaction=True) as pipe:
                await pipe.incrby(name, amount).expire(name, 2 * _DAY_S).execute()

        await self.link.call(work, None)

    async def used(self, key: str) -> int:
        """The count under `key` (0 while Redis is down)."""
        name = self._key(key)
        value = await self.link.call(lambda client: client.get(name), None)
        return int(value or 0)


class Budgets:
    """The budgets of one router process: limits from settings, counts in a `BudgetCounter`."""

    def __init__(self, settings: Settings, day: Callable[[], str], counter: BudgetCounter | None = None,
                 link: RedisLink | None = None) -> None:
        """Read the limits; count through `link` (the shared Redis, when `REDIS_URL` is set), else in memory."""
        self.requests_per_day = settings.key_budget_requests_per_day
        self.tokens_per_day = settings.key_budget_tokens_per_day
        self.day = day
        self.tz = ZoneInfo(settings.tz)
        if counter is None:
            counter = RedisBudgetCounter(link) if link is not None else MemoryBudgetCounter()
        self.counter = counter
        self._pending: set[asyncio.Task[None]] = set()

    def seconds_to_renewal(self) -> int:
        """Seconds until the budgets renew (midnight in `TZ`)."""
        now = datetime.now(self.tz)
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=self.tz)
        return max(1, int((midnight - now).total_seconds()))

    @property
    def enabled(self) -> bool:
        """Whether any budget is set."""
        return self.requests_per_day > 0 or self.tokens_per_day > 0

    async def admit(self, client: str) -> str | None:
        """None when `client` may send one more request now; else the message of the refusal."""
        day = self.day()
        if isinstance(self.counter, MemoryBudgetCounter):
            self.counter.prune(lambda key: key.endswith(f":{day}"))
        try:
            if self.tokens_per_day > 0 and await self.counter.used(f"tokens:{client}:{day}") >= self.tokens_per_day:
                return (f"Daily token budget of {self.tokens_per_day} tokens for this key is used up "
                        "(KEY_BUDGET_TOKENS_PER_DAY); it renews tomorrow.")
            if self.requests_per_day > 0 and not await self.counter.take(f"requests:{client}:{day}",
                                                                         self.requests_per_day):
                return (f"Daily budget of {self.requests_per_day} requests for this key is used up "
                        "(KEY_BUDGET_REQUESTS_PER_DAY); it renews tomorrow.")
        except Exception as exc:  # Redis down: keep serving, say so
            log.warning("per-key budget not enforced (shared state unreachable): %s", type(exc).__name__)
        return None

    def spend_tokens(self, client: str, tokens: int) -> None:
        """Add a finished request's tokens to `client`'s day (in the background when shared)."""
        if self.tokens_per_day <= 0 or tokens <= 0:
            return
        key = f"tokens:{client}:{self.day()}"
        if isinstance(self.counter, MemoryBudgetCounter):
            self.counter.counts[key] = self.counter.counts.get(key, 0) + tokens
            return
        task = asyncio.get_running_loop().create_task(self._add(key, tokens))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _add(self, key: str, tokens: int) -> None:
        try:
            await self.counter.add(key, tokens)
        except Exception as exc:
            log.warning("per-key token budget not updated (shared state unreachable): %s", type(exc).__name__)
