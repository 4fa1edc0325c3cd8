"""Rate limits count the right client, stay bounded, and a dead Redis costs next to nothing.

Unit tests of `core.shared.ratelimit`, `core.http.access.client_address` and
`core.shared.link` (no router process; the Redis is a closed port or a real `redis-server`).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from core.http.access import client_address, trusted_networks
from core.shared.link import RedisLink
from core.shared.ratelimit import OVERFLOW, RateLimiter
from tests.conftest import free_port
from tests.redis_server import RedisServer


def scope(peer: str, forwarded: str | None = None) -> dict:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return {"type": "http", "client": (peer, 5000), "headers": headers}


def test_the_client_is_the_peer_unless_a_trusted_proxy_forwarded_it():
    trusted = trusted_networks("10.0.0.0/8, 192.168.1.5")
    assert client_address(scope("203.0.113.9", "1.2.3.4"), trusted) == "203.0.113.9"  # untrusted peer: ignored
    assert client_address(scope("10.1.2.3", "1.2.3.4"), trusted) == "1.2.3.4"
    # A client can put anything on the left; the right-most untrusted hop is the one a proxy saw.
    assert client_address(scope("10.1.2.3", "6.6.6.6, 1.2.3.4, 192.168.1.5"), trusted) == "1.2.3.4"
    assert client_address(scope("10.1.2.3"), trusted) == "10.1.2.3"  # no header: the proxy itself
    assert client_address(scope("10.1.2.3", "1.2.3.4"), []) == "10.1.2.3"  # off by default


def test_the_window_is_burst_over_the_time_it_takes_at_the_rate():
    assert (RateLimiter(6, 3).item.amount, RateLimiter(6, 3).period_s) == (3, 30)
    assert (RateLimiter(10, 20).item.amount, RateLimiter(10, 20).period_s) == (10, 60)


def test_a_flood_of_new_clients_cannot_reset_a_live_bucket():
    async def run() -> None:
        limiter = RateLimiter(2, 2, max_buckets=3)
        for name in ("a", "b", "c"):
            assert (await limiter.hit(name))[0]
            assert (await limiter.hit(name))[0]
        assert not (await limiter.hit("a"))[0]
        # Newcomers while every bucket is live share the overflow bucket...
        assert limiter._bucket("newcomer-1") == OVERFLOW
        assert [(await limiter.hit(f"new-{i}"))[0] for i in range(4)] == [True, True, False, False]
        # ...and the old clients are still limited: nothing was evicted.
        assert not (await limiter.hit("a"))[0] and not (await limiter.hit("c"))[0]
        assert len(limiter._seen) == 3

    asyncio.run(run())


def test_a_bucket_is_forgotten_only_once_its_window_is_empty(monkeypatch: pytest.MonkeyPatch):
    limiter = RateLimiter(60, 1, max_buckets=1)  # 1 per second
    now = [1000.0]
    monkeypatch.setattr("core.shared.ratelimit.time.monotonic", lambda: now[0])
    assert limiter._bucket("old") == "old"
    assert limiter._bucket("new") == OVERFLOW
    now[0] += limiter.period_s + 0.1
    assert limiter._bucket("new") == "new" and list(limiter._seen) == ["new"]


def test_a_dead_redis_costs_one_deadline_then_nothing_until_the_backoff_ends():
    async def run() -> None:
        # Refused at once: down after one call (a generous deadline, so a busy machine cannot turn it into a timeout).
        link = RedisLink(f"redis://127.0.0.1:{free_port()}/0", timeout_s=2.0, retry_s=5, retry_max_s=10)
        started = time.monotonic()
        assert await link.call(lambda client: client.get("k"), "default") == "default"
        assert time.monotonic() - started < 2.5 and link.status()["state"] == "degraded"
        started = time.monotonic()
        for _ in range(100):
            assert await link.call(lambda client: client.get("k"), "default") == "default"
        assert time.monotonic() - started < 0.05 and link.skipped == 100  # skipped, not tried
        await link.aclose()

    asyncio.run(run())


def test_sharing_resumes_by_itself_when_redis_returns(tmp_path):
    server = RedisServer(workdir=tmp_path)
    url = server.url  # a port nothing listens on yet

    async def run() -> None:
        link = RedisLink(url, timeout_s=0.2, retry_s=0.05, retry_max_s=0.1)
        assert not await link.ping()
        await asyncio.to_thread(server.start)
        deadline = time.monotonic() + 5
        while not await link.ping():
            assert time.monotonic() < deadline, "never reconnected"
            await asyncio.sleep(0.02)
        assert link.status()["state"] == "ok" and link.recoveries == 1
        limiter = RateLimiter(3, 3, link)
        assert [(await limiter.hit("x"))[0] for _ in range(4)] == [True, True, True, False]
        assert limiter.shared_decisions == 4
        await link.aclose()

    try:
        asyncio.run(run())
    finally:
        server.close()
