"""Conversation state for the Responses API: what `previous_response_id` continues.

With `store` (the default) the router keeps each answer's conversation: the earlier turns,
this turn's input items and its output items, and the Responses object itself. The next
request that names it as `previous_response_id` replays that conversation to whichever route
and backend answers it; `GET /v1/responses/{id}` returns the object, `DELETE` forgets it.

- Bounded by `RESPONSES_STORE_MAX_ENTRIES` (the oldest go first) and
  `RESPONSES_STORE_MAX_AGE_S` (older ones cannot be read or continued).
- Owned: each record keeps a digest of the client key that created it (`owner_of`); another
  key (or none) gets the same 404 as an unknown id, so ids reveal nothing.
- Shared: with REDIS_URL the records live in Redis (`<prefix>:response:<id>`, expiring after
  the max age, with an index that enforces the count), so any replica continues any
  conversation. A record that Redis could not take (down, or slower than REDIS_TIMEOUT_S) is
  kept in this process instead, so the conversation still continues here.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from core.shared.link import RedisLink

ANONYMOUS = "anonymous"


def owner_of(key: str | None) -> str:
    """Who owns a stored response: a digest of the client's key, or `anonymous` without one."""
    return hashlib.sha256(key.encode()).hexdigest()[:32] if key else ANONYMOUS


class ConversationStore:
    """Stored Responses API answers, in this process or in the fleet's Redis."""

    def __init__(self, max_entries: int, max_age_s: float, link: RedisLink | None = None) -> None:
        """Keep at most `max_entries` records for `max_age_s` seconds; in Redis when `link` is given."""
        self.max_entries = max_entries
        self.max_age_s = max_age_s
        self.link = link
        self._local: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self.stored = 0
        self.kept_locally = 0

    @property
    def enabled(self) -> bool:
        """Whether anything is kept at all (`RESPONSES_STORE_MAX_ENTRIES` > 0)."""
        return self.max_entries > 0

    def _prune(self, now: float) -> None:
        while self._local:
            oldest_id, (expires, _) = next(iter(self._local.items()))
            if expires > now and len(self._local) <= self.max_entries:
                break
            del self._local[oldest_id]

    async def put(self, record: dict[str, Any]) -> None:
        """Keep `record` (`id`, `owner`, `response`, `items`, …) for the max age."""
        if not self.enabled:
            return
        now = time.time()
        record = {**record, "stored_at": now}
        self.stored += 1
        if self.link is not None and await self._put_shared(record["id"], orjson.dumps(record), now):
            return
        self.kept_locally += int(self.link is not None)
        self._local[record["id"]] = (now + self.max_age_s, record)
        self._local.move_to_end(record["id"])
        self._prune(now)

    async def _put_shared(self, response_id: str, raw: bytes, now: float) -> bool:
        assert self.link is not None
        link, key, index = self.link, self.link.key("response", response_id), self.link.key("responses")
        ttl, limit = max(1, int(self.max_age_s)), self.max_entries

        async def write(client: Any) -> bool:
            async with client.pipeline(transaction=False) as pipe:
                pipe.set(key, raw, ex=ttl)
                pipe.zadd(index, {response_id: now})
                pipe.zremrangebyscore(index, "-inf", now - self.max_age_s)
                pipe.zcard(index)
                pipe.expire(index, ttl)
                results = await pipe.execute()
            excess = int(results[3]) - limit
            if excess > 0:  # the fleet holds too many: drop the oldest
                oldest = await client.zpopmin(index, excess)
                names = [name.decode() if isinstance(name, bytes) else str(name) for name, _ in oldest]
                if names:
                    await client.delete(*(link.key("response", name) for name in names))
            return True

        return await link.call(write, False)

    async def get(self, response_id: str, owner: str) -> dict[str, Any] | None:
        """The record of `response_id` when `owner` created it and it has not expired, else None."""
        record: dict[str, Any] | None = None
        if self.link is not None:
            key = self.link.key("response", response_id)
            raw = await self.link.call(lambda client: client.get(key), None)
            if raw is not None:
                record = orjson.loads(raw)
        if record is None:
            entry = self._local.get(response_id)
            if entry is not None and entry[0] > time.time():
                record = entry[1]
        if record is None or record.get("owner") != owner:
            return None
        if time.time() - float(record.get("stored_at") or 0) > self.max_age_s:
            return None
        return record

    async def delete(self, response_id: str, owner: str) -> bool:
        """Forget `response_id` when `owner` created it; False when there was nothing to delete."""
        if await self.get(response_id, owner) is None:
            return False
        self._local.pop(response_id, None)
        if self.link is not None:
            key, index = self.link.key("response", response_id), self.link.key("responses")

            async def remove(client: Any) -> bool:
                async with client.pipeline(transaction=False) as pipe:
                    pipe.delete(key)
                    pipe.zrem(index, response_id)
                    await pipe.execute()
                return True

            await self.link.call(remove, False)
        return True

    def snapshot(self) -> dict[str, Any]:
        """Counters for `/stats`."""
        return {"max_entries": self.max_entries, "max_age_s": self.max_age_s, "stored": self.stored,
                "in_process": len(self._local), "shared": self.link is not None,
                "kept_locally_redis_down": self.kept_locally}
