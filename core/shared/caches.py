"""The caches with Redis behind them: what one replica learned, every replica can use.

Each keeps the per-process cache of `core.caches` in front (a hit there costs no Redis
call), reads Redis on a local miss (under REDIS_TIMEOUT_S; a dead Redis is a miss), and
writes Redis in the background on every put, with the same TTL as the local entry. Keys are
SHA-256 digests under `<prefix>:`, so no text of a conversation is readable in Redis except
the cached answers themselves (RESPONSE_CACHE=on).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import orjson

from core.caches import CachedResponse, DecisionCache, ResponseCache, ToolLoopRoutes

if TYPE_CHECKING:
    from core.shared.link import RedisLink


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class SharedDecisionCache(DecisionCache):
    """Routing decisions, shared by the fleet."""

    def __init__(self, size: int, ttl_s: float, link: RedisLink) -> None:
        """The local LRU (`size`, `ttl_s`) in front of Redis."""
        super().__init__(size, ttl_s)
        self.link = link
        self.ttl_s = ttl_s
        self.shared_hits = 0

    def _key(self, query: str, history: str, prompts_digest: str) -> str:
        return self.link.key("decision", _digest(prompts_digest, history, query))

    async def aget(self, query: str, history: str, prompts_digest: str) -> tuple[str, str] | None:
        """The local answer, else the fleet's (kept locally from then on)."""
        if self._cache is None:
            return None
        found = self._cache.get((prompts_digest, history, query))
        if found is None:
            raw = await self.link.call(lambda client: client.get(self._key(query, history, prompts_digest)), None)
            if raw is not None:
                label, answer = orjson.loads(raw)
                found = (label, answer)
                self._cache[(prompts_digest, history, query)] = found
                self.shared_hits += 1
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, query: str, history: str, prompts_digest: str, label: str, raw: str) -> None:
        """Remember locally and, in the background, for the fleet."""
        if self._cache is None:
            return
        super().put(query, history, prompts_digest, label, raw)
        key, value, ttl = self._key(query, history, prompts_digest), orjson.dumps([label, raw]), int(self.ttl_s)
        self.link.fire(lambda client: client.set(key, value, ex=max(1, ttl)))

    def snapshot(self) -> dict[str, Any]:
        """Counters for `/stats`, with the hits Redis answered."""
        return {**super().snapshot(), "shared": True, "shared_hits": self.shared_hits}


class SharedToolLoopRoutes(ToolLoopRoutes):
    """Tool-call id -> route, shared: a loop's next request keeps its route on any replica."""

    def __init__(self, size: int, ttl_s: float, link: RedisLink) -> None:
        """The local LRU in front of Redis."""
        super().__init__(size, ttl_s)
        self.link = link
        self.ttl_s = ttl_s
        self.shared_hits = 0

    def remember(self, response: dict[str, Any] | None, route: str) -> None:
        """Record locally and, in the background, for the fleet."""
        super().remember(response, route)
        new = [
            call["id"]
            for choice in (response or {}).get("choices") or ()
            for call in ((choice or {}).get("message") or {}).get("tool_calls") or ()
            if isinstance(call, dict) and isinstance(call.get("id"), str)
        ]
        if not new:
            return
        ttl = max(1, int(self.ttl_s))

        async def write(client: Any) -> None:
            async with client.pipeline(transaction=False) as pipe:
                for call_id in new:
                    pipe.set(self.link.key("toolcall", _digest(call_id)), route, ex=ttl)
                await pipe.execute()

        self.link.fire(write)

    async def aroute_of(self, call_ids: list[str]) -> tuple[str, str] | None:
        """The route of the first known id, locally, else in Redis."""
        found = self.route_of(call_ids)
        if found is not None or not call_ids:
            return found
        keys = [self.link.key("toolcall", _digest(call_id)) for call_id in call_ids]
        routes = await self.link.call(lambda client: client.mget(keys), None)
        for call_id, route in zip(call_ids, routes or (), strict=False):
            if route is not None:
                label = route.decode() if isinstance(route, bytes) else str(route)
                self._cache[call_id] = label
                self.hits += 1
                self.shared_hits += 1
                return label, call_id
        return None

    def snapshot(self) -> dict[str, Any]:
        """Counters for `/stats`."""
        return {**super().snapshot(), "shared": True, "shared_hits": self.shared_hits}


class SharedResponseCache(ResponseCache):
    """Whole answers (RESPONSE_CACHE=on), shared by the fleet; Redis's own memory cap evicts."""

    def __init__(self, max_entries: int, max_bytes: int, ttl_s: float, link: RedisLink) -> None:
        """The local cache in front of Redis."""
        super().__init__(max_entries, max_bytes, ttl_s)
        self.link = link
        self.ttl_s = ttl_s
        self.shared_hits = 0

    async def aget(self, key: str) -> CachedResponse | None:
        """The local answer, else the fleet's."""
        found = self._cache.get(key)
        if found is None:
            raw = await self.link.call(lambda client: client.get(self.link.key("response", key)), None)
            if raw is not None:
                item = orjson.loads(raw)
                found = CachedResponse(item["body"].encode(), item["decision"])
                self._cache[key] = found
                self.shared_hits += 1
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, key: str, response: dict[str, Any], decision: dict[str, Any]) -> None:
        """Keep locally and, in the background, for the fleet."""
        stores = self.stores
        super().put(key, response, decision)
        if self.stores == stores:
            return  # too large for the cache
        value = orjson.dumps({"body": self._cache[key].body.decode(), "decision": decision})
        ttl = max(1, int(self.ttl_s))
        self.link.fire(lambda client: client.set(self.link.key("response", key), value, ex=ttl))

    def snapshot(self) -> dict[str, Any]:
        """Counters for `/stats`."""
        return {**super().snapshot(), "shared": True, "shared_hits": self.shared_hits}
