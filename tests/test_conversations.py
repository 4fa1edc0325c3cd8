"""The Responses API's conversation store on its own: bounds, owners, and Redis shared by replicas.

Redis is a real `redis-server` (tests/redis_server.py); two `ConversationStore`s with their own
links stand for two replicas.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from core.sessions.conversations import ANONYMOUS, ConversationStore, owner_of
from core.shared.link import RedisLink
from tests.redis_server import RedisServer


def _record(response_id: str, owner: str = ANONYMOUS) -> dict:
    return {"id": response_id, "owner": owner, "response": {"id": response_id, "object": "response"},
            "items": [{"type": "message", "role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(workdir=tmp_path_factory.mktemp("redis")).start()
    yield server
    server.close()


def test_owner_is_a_digest_of_the_key():
    assert owner_of(None) == ANONYMOUS and owner_of("") == ANONYMOUS
    assert owner_of("sk-a") != owner_of("sk-b") and "sk-a" not in owner_of("sk-a")


def test_memory_store_bounds_owner_and_delete():
    async def scenario() -> None:
        store = ConversationStore(max_entries=2, max_age_s=60)
        for name in ("resp_1", "resp_2", "resp_3"):
            await store.put(_record(name, owner_of("key-a")))
        assert await store.get("resp_1", owner_of("key-a")) is None  # the oldest went first
        assert (await store.get("resp_3", owner_of("key-a")))["items"][0]["content"] == "hi"
        assert await store.get("resp_3", owner_of("key-b")) is None  # another key sees nothing
        assert await store.get("resp_3", ANONYMOUS) is None
        assert not await store.delete("resp_3", owner_of("key-b"))
        assert await store.delete("resp_3", owner_of("key-a"))
        assert await store.get("resp_3", owner_of("key-a")) is None
        assert not await store.delete("resp_3", owner_of("key-a"))

    asyncio.run(scenario())


def test_memory_store_age_bound():
    async def scenario() -> None:
        store = ConversationStore(max_entries=10, max_age_s=0.2)
        await store.put(_record("resp_old"))
        assert await store.get("resp_old", ANONYMOUS) is not None
        deadline = time.monotonic() + 5
        while await store.get("resp_old", ANONYMOUS) is not None:  # bounded poll on the expiry
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)

    asyncio.run(scenario())


def test_zero_entries_keeps_nothing():
    async def scenario() -> None:
        store = ConversationStore(max_entries=0, max_age_s=60)
        await store.put(_record("resp_1"))
        assert await store.get("resp_1", ANONYMOUS) is None and not store.enabled

    asyncio.run(scenario())


def test_two_replicas_share_records_and_the_count_bound(redis: RedisServer):
    async def scenario() -> None:
        # A generous deadline: a late answer on a busy test machine would keep the record in process.
        first = ConversationStore(3, 60, RedisLink(redis.url, timeout_s=10, prefix="store-test"))
        second = ConversationStore(3, 60, RedisLink(redis.url, timeout_s=10, prefix="store-test"))
        await first.put(_record("resp_a", owner_of("k")))
        found = await second.get("resp_a", owner_of("k"))
        assert found is not None and found["response"]["id"] == "resp_a"
        assert await second.get("resp_a", owner_of("other")) is None
        for name in ("resp_b", "resp_c", "resp_d"):
            await second.put(_record(name, owner_of("k")))
        assert await first.get("resp_a", owner_of("k")) is None  # the fleet's bound: 3
        assert await first.get("resp_d", owner_of("k")) is not None
        assert await first.delete("resp_d", owner_of("k"))
        assert await second.get("resp_d", owner_of("k")) is None
        assert first.snapshot()["in_process"] == 0  # Redis took every record
        await first.link.aclose()
        await second.link.aclose()

    asyncio.run(scenario())


def test_redis_down_keeps_the_record_in_process():
    async def scenario() -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        store = ConversationStore(5, 60, RedisLink(f"redis://127.0.0.1:{port}", timeout_s=0.2, retry_s=60))
        await store.put(_record("resp_x"))
        assert (await store.get("resp_x", ANONYMOUS))["id"] == "resp_x"
        assert store.snapshot()["kept_locally_redis_down"] == 1
        await store.link.aclose()

    asyncio.run(scenario())
