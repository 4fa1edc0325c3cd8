"""In-memory caches: routing decisions, tool loops' routes, and (opt-in) whole responses.

All three are bounded (`cachetools` LRU with a TTL) and live in the router process, so a
restart empties them; nothing here needs a database. With REDIS_URL set, `core.shared.caches`
extends each with Redis behind the local copy, so every replica sees what one learned; the
nodes read through the `a…` methods, which are the plain lookups here. They are built once from settings
(`core.services`) and read by the graph's nodes and the HTTP edge.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from cachetools import TTLCache

from core.settings import Settings


class DecisionCache:
    """Classifier answers by classified text: the same text gets the same route, once asked.

    The key is what the classifier really sees (the last human message and the history
    left after `CLASSIFY_CONTEXT_BUDGET`) plus the digest of the prompts, so an edited
    routing prompt never reuses an answer given to the old one.
    """

    def __init__(self, size: int, ttl_s: float) -> None:
        """Hold up to `size` decisions for `ttl_s` seconds each; size 0 turns the cache off."""
        self._cache: TTLCache[tuple[str, str, str], tuple[str, str]] | None = (
            TTLCache(maxsize=size, ttl=ttl_s) if size > 0 else None
        )
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        """Whether decisions are cached at all (ROUTE_CACHE_SIZE > 0)."""
        return self._cache is not None

    def get(self, query: str, history: str, prompts_digest: str) -> tuple[str, str] | None:
        """The cached `(label, raw classifier answer)` for this text and prompts, counting the hit or miss."""
        if self._cache is None:
            return None
        found = self._cache.get((prompts_digest, history, query))
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    async def aget(self, query: str, history: str, prompts_digest: str) -> tuple[str, str] | None:
        """`get`, for callers that may be served by a shared (Redis) cache."""
        return self.get(query, history, prompts_digest)

    def put(self, query: str, history: str, prompts_digest: str, label: str, raw: str) -> None:
        """Remember a classifier answer that named a valid route (failures are never cached)."""
        if self._cache is not None:
            self._cache[(prompts_digest, history, query)] = (label, raw)

    def snapshot(self) -> dict[str, Any]:
        """Counters for `/stats`."""
        size = len(self._cache) if self._cache is not None else 0
        return {"enabled": self.enabled, "hits": self.hits, "misses": self.misses, "size": size}


class ToolLoopRoutes:
    """The route each tool call was made on, so the loop's next request stays on it."""

    def __init__(self, size: int, ttl_s: float) -> None:
        """Remember up to `size` tool-call ids for `ttl_s` seconds each."""
        self._cache: TTLCache[str, str] = TTLCache(maxsize=size, ttl=ttl_s)
        self.hits = 0

    def remember(self, response: dict[str, Any] | None, route: str) -> None:
        """Record the ids of the tool calls in `response` (a chat completion) against `route`."""
        for choice in (response or {}).get("choices") or ():
            for call in ((choice or {}).get("message") or {}).get("tool_calls") or ():
                if isinstance(call, dict) and isinstance(call.get("id"), str):
                    self._cache[call["id"]] = route

    def route_of(self, call_ids: list[str]) -> tuple[str, str] | None:
        """The `(route, call id)` of the first remembered id, or None when none is known."""
        for call_id in call_ids:
            route = self._cache.get(call_id)
            if route is not None:
                self.hits += 1
                return route, call_id
        return None

    async def aroute_of(self, call_ids: list[str]) -> tuple[str, str] | None:
        """`route_of`, for callers that may be served by a shared (Redis) memory of tool loops."""
        return self.route_of(call_ids)

    def snapshot(self) -> dict[str, Any]:
        """Counters for `/stats`."""
        return {"hits": self.hits, "size": len(self._cache)}


# Request fields that change how an answer is delivered, not what it says.
_DELIVERY_FIELDS = frozenset({"stream", "stream_options", "user", "metadata", "store"})


@dataclass
class CachedResponse:
    """A completion kept by the response cache, with the decision that produced it."""

    body: bytes
    """The completion as JSON (its `id` and `model` are rewritten on each hit)."""
    decision: dict[str, Any]
    """`route`, `route_reason`, `backend`, `served_model` of the run that answered."""


class ResponseCache:
    """Exact-match answers for deterministic requests, per client key (RESPONSE_CACHE=on).

    Only requests with `temperature: 0` or a `seed` are cached: any other request asks
    for a sample, and replaying one sample would change what the client asked for. The
    key is the client's request minus delivery fields (`stream`, …), the forced route,
    the prompts digest, and a hash of the client's `Authorization` header, so one
    client's answers are never served to another key.
    """

    def __init__(self, max_entries: int, max_bytes: int, ttl_s: float) -> None:
        """Bound the cache by entries and by bytes of stored JSON."""
        self.max_entries = max_entries
        self._cache: TTLCache[str, CachedResponse] = TTLCache(
            maxsize=max_bytes, ttl=ttl_s, getsizeof=lambda item: len(item.body)
        )
        self.hits = 0
        self.misses = 0
        self.stores = 0

    @staticmethod
    def cacheable(body: dict[str, Any]) -> bool:
        """Whether a request is deterministic enough to be answered from the cache."""
        return body.get("temperature") == 0 or body.get("seed") is not None

    @staticmethod
    def key(body: dict[str, Any], client_key: str | None, forced_route: str | None, prompts_digest: str) -> str:
        """The cache key of a request (a SHA-256 hex digest; nothing readable is kept); one client's never another's."""
        request = {k: v for k, v in body.items() if k not in _DELIVERY_FIELDS}
        digest = hashlib.sha256()
        digest.update(hashlib.sha256((client_key or "").encode()).digest())
        digest.update(f"{forced_route or ''}\0{prompts_digest}\0".encode())
        digest.update(orjson.dumps(request, option=orjson.OPT_SORT_KEYS))
        return digest.hexdigest()

    def get(self, key: str) -> CachedResponse | None:
        """The cached answer for `key`, counting the hit or miss."""
        found = self._cache.get(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    async def aget(self, key: str) -> CachedResponse | None:
        """`get`, for callers that may be served by a shared (Redis) cache."""
        return self.get(key)

    def put(self, key: str, response: dict[str, Any], decision: dict[str, Any]) -> None:
        """Keep `response`; the least recently used entries make room, by count and by bytes."""
        item = CachedResponse(orjson.dumps(response), decision)
        if len(item.body) > self._cache.maxsize:
            return  # larger than the whole cache: not worth evicting everything for
        while len(self._cache) >= self.max_entries:
            self._cache.popitem()
        self._cache[key] = item
        self.stores += 1

    def snapshot(self) -> dict[str, Any]:
        """Counters for `/stats`."""
        return {
            "enabled": True,
            "hits": self.hits,
            "misses": self.misses,
            "stores": self.stores,
            "size": len(self._cache),
            "bytes": self._cache.currsize,
        }


@dataclass
class Caches:
    """Every cache of the process."""

    decisions: DecisionCache
    tool_routes: ToolLoopRoutes
    responses: ResponseCache | None
    """None unless RESPONSE_CACHE=on."""

    def snapshot(self) -> dict[str, Any]:
        """What `/stats` shows under `caches`."""
        return {
            "route_decisions": self.decisions.snapshot(),
            "tool_loops": self.tool_routes.snapshot(),
            "responses": self.responses.snapshot() if self.responses else {"enabled": False},
        }


def build_caches(settings: Settings) -> Caches:
    """Build the caches `settings` ask for."""
    return Caches(
        decisions=DecisionCache(settings.route_cache_size, settings.route_cache_ttl_s),
        tool_routes=ToolLoopRoutes(settings.tool_loop_cache_size, settings.route_cache_ttl_s),
        responses=ResponseCache(
            settings.response_cache_max_entries,
            settings.response_cache_max_bytes,
            settings.response_cache_ttl_s,
        )
        if settings.response_cache
        else None,
    )
