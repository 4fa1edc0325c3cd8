"""What one replica's caches learn, another's find, through a real Redis (`core.shared.caches`).

Two `RedisLink`s stand for two router processes; a cache entry put through one is read
through the other. Background writes are awaited by polling the reader (bounded).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from core.backends.resilience import CircuitBreaker
from core.shared.breakers import SharedBreaker
from core.shared.caches import SharedDecisionCache, SharedResponseCache, SharedToolLoopRoutes
from core.shared.link import RedisLink
from tests import redis_server as redis_helper

redis_server = redis_helper.redis_server  # the fixture: a real, empty redis-server per test


async def eventually(read: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while (value := await read()) is None:
        assert time.monotonic() < deadline, "never written"
        await asyncio.sleep(0.01)
    return value


def links(url: str) -> tuple[RedisLink, RedisLink]:
    return RedisLink(url, prefix="t"), RedisLink(url, prefix="t")


def test_decisions_and_responses_and_tool_loops_cross_replicas(redis_server):
    async def run() -> None:
        one, other = links(redis_server.url)
        decisions = [SharedDecisionCache(16, 60, link) for link in (one, other)]
        decisions[0].put("q", "h", "digest", "COMPLEX", "COMPLEX")
        assert await eventually(lambda: decisions[1].aget("q", "h", "digest")) == ("COMPLEX", "COMPLEX")
        assert decisions[1].snapshot()["shared_hits"] == 1
        assert await decisions[1].aget("q", "h", "other prompts") is None  # the prompts are part of the key

        responses = [SharedResponseCache(8, 1 << 20, 60, link) for link in (one, other)]
        answer = {"id": "x", "choices": [{"message": {"content": "hi"}}]}
        responses[0].put("key", answer, {"route": "SIMPLE", "route_reason": "r"})
        hit = await eventually(lambda: responses[1].aget("key"))
        assert hit.decision["route"] == "SIMPLE" and b'"hi"' in hit.body

        routes = [SharedToolLoopRoutes(16, 60, link) for link in (one, other)]
        routes[0].remember({"choices": [{"message": {"tool_calls": [{"id": "call_1"}]}}]}, "COMPLEX")
        assert await eventually(lambda: routes[1].aroute_of(["call_0", "call_1"])) == ("COMPLEX", "call_1")
        for link in (one, other):
            await link.aclose()

    asyncio.run(run())


def test_a_breaker_opened_by_one_replica_is_adopted_and_closed_by_another(redis_server):
    async def run() -> None:
        one, other = links(redis_server.url)
        shared = [SharedBreaker(link, "xai", sync_s=0.01) for link in (one, other)]
        breakers = [CircuitBreaker(failure_threshold=2, cooldown_s=30) for _ in range(2)]
        breakers[0].failure()
        breakers[0].failure()
        shared[0].publish(breakers[0])

        async def adopted() -> bool | None:
            await shared[1].sync(breakers[1])
            return True if breakers[1].state == "open" else None

        await eventually(adopted)
        assert 29 < breakers[1].retry_in_s() <= 30  # the rest of the same cooldown, not a new one
        breakers[1].success()  # the other replica's probe found it well
        shared[1].publish(breakers[1])

        async def closed() -> bool | None:
            await shared[0].sync(breakers[0])
            return True if breakers[0].state == "closed" else None

        await eventually(closed)
        for link in (one, other):
            await link.aclose()

    asyncio.run(run())
