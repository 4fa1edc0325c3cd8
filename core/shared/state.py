"""Everything several router processes share through Redis, built once when REDIS_URL is set.

`SharedState` holds the Redis link, this replica's name, and the pieces that use them: the
fleet's rate-limit windows (`ratelimit`), breakers (`breakers`), caches (`caches`), and the
hand-over of feedback for a session another replica served. A background task (every
FEEDBACK_POLL_S, at most every second) flushes this replica's counters into the fleet's,
says the replica is alive, and collects feedback addressed to it.

Feedback: each replica keeps its session records on its own disk. When a request starts, the
replica notes `<prefix>:owner:<session id>` = its name. A rating posted to another replica
is pushed onto `<prefix>:feedback:<owner>`; the owner pops it and attaches it to the record
(retrying for a minute while the record is still being written).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from core.caches import Caches
from core.shared.breakers import SharedBreaker
from core.shared.caches import SharedDecisionCache, SharedResponseCache, SharedToolLoopRoutes
from core.shared.link import RedisLink

if TYPE_CHECKING:
    from core.backends.client import Backends
    from core.sessions.store import SessionStore
    from core.settings import Settings
    from core.shared.ratelimit import RateLimiter

log = logging.getLogger("ai_router")
_FEEDBACK_RETRY_S = 60.0  # feedback whose record is not on disk yet is retried this long
_REPLICA_SEEN_S = 30.0  # a replica not heard from for this long is left out of /stats
_COUNTERS_TTL_S = 7 * 86400  # fleet counters and the replica list fade a week after the fleet stops


def replica_name(settings: Settings) -> str:
    """REPLICA_ID, else host name + a digest of the session folder (stable across restarts)."""
    if settings.replica_id:
        return settings.replica_id
    folder = str(Path(settings.session_log_dir).resolve())
    return f"{socket.gethostname()}-{hashlib.sha256(folder.encode()).hexdigest()[:8]}"


class SharedState:
    """The fleet's state as this replica sees it."""

    def __init__(self, settings: Settings) -> None:
        """Describe the link; nothing connects until the first call."""
        self.settings = settings
        self.link = RedisLink(settings.redis_url, timeout_s=settings.redis_timeout_s, retry_s=settings.redis_retry_s,
                              retry_max_s=settings.redis_retry_max_s, prefix=settings.redis_prefix)
        self.replica = replica_name(settings)
        self.breakers: dict[str, SharedBreaker] = {}
        self.rate_limiter: RateLimiter | None = None  # set by the access middleware when limits are on
        self.feedback_forwarded = 0
        self.feedback_collected = 0
        self._flushed = {"admitted": 0, "rejected": 0}
        self._owner_ttl = max(60, int(settings.session_log_max_age_days * 86400))
        self._task: asyncio.Task[None] | None = None
        self._store: SessionStore | None = None

    # --- wiring -------------------------------------------------------------------------

    def share_backends(self, backends: Backends) -> None:
        """Give every backend's breaker its fleet state (an alias shares its target's)."""
        for backend in {id(b): b for b in backends.by_name.values()}.values():
            backend.shared_breaker = self.breakers[backend.name] = SharedBreaker(
                self.link, backend.name, self.settings.breaker_sync_s
            )

    def share_caches(self, caches: Caches) -> Caches:
        """The caches with Redis behind them, same sizes and TTLs."""
        s = self.settings
        responses = (
            SharedResponseCache(s.response_cache_max_entries, s.response_cache_max_bytes, s.response_cache_ttl_s,
                                self.link)
            if caches.responses is not None else None
        )
        return Caches(
            decisions=SharedDecisionCache(s.route_cache_size, s.route_cache_ttl_s, self.link),
            tool_routes=SharedToolLoopRoutes(s.tool_loop_cache_size, s.route_cache_ttl_s, self.link),
            responses=responses,
        )

    async def start(self, store: SessionStore | None) -> None:
        """Start the background task (counters, heartbeat, feedback for this replica's sessions)."""
        self._store = store
        await self.link.ping()
        if self.link.up is False:
            log.warning("REDIS_URL is set but Redis does not answer: per-process state until it does")
        self._task = asyncio.get_running_loop().create_task(self._background())

    async def aclose(self) -> None:
        """Stop the background task, flush the counters once more, close the link."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            await self._flush_counters()  # not the feedback: the session store may be closed already
        await self.link.aclose()

    # --- feedback -----------------------------------------------------------------------

    def note_session(self, session_id: str) -> None:
        """Record that this replica holds the record of `session_id` (in the background)."""
        key, ttl = self.link.key("owner", session_id), self._owner_ttl
        self.link.fire(lambda client: client.set(key, self.replica, ex=ttl))

    async def forward_feedback(self, session_id: str, entry: dict[str, Any]) -> bool:
        """Hand feedback to the replica that served `session_id`; False when no replica is known."""
        owner = await self.link.call(lambda client: client.get(self.link.key("owner", session_id)), None)
        if owner is None:
            return False
        queue = self.link.key("feedback", owner.decode() if isinstance(owner, bytes) else str(owner))
        item = orjson.dumps({"session_id": session_id, "entry": entry, "queued_at": time.time()})

        async def push(client: Any) -> bool:
            async with client.pipeline(transaction=False) as pipe:
                pipe.rpush(queue, item)
                pipe.expire(queue, self._owner_ttl)
                await pipe.execute()
            return True

        pushed = await self.link.call(push, False)
        self.feedback_forwarded += int(pushed)
        return pushed

    async def _collect_feedback(self) -> None:
        store = self._store
        if store is None:
            return
        queue = self.link.key("feedback", self.replica)
        items = await self.link.call(lambda client: client.lpop(queue, 100), None)
        later = []
        for raw in items or ():
            item = orjson.loads(raw)
            if store.add_feedback(item["session_id"], item["entry"]):
                self.feedback_collected += 1
            elif time.time() - item.get("queued_at", 0) < _FEEDBACK_RETRY_S:
                later.append(raw)  # the record is still on its way to the disk
            else:
                log.warning("feedback for %s dropped: no such record here", item["session_id"])
        if later:
            await self.link.call(lambda client: client.rpush(queue, *later), None)

    # --- counters -----------------------------------------------------------------------

    async def _background(self) -> None:
        interval = min(self.settings.feedback_poll_s, 1.0)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._tick()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any one bad tick
                log.warning("shared-state tick failed: %r", exc)

    async def _tick(self) -> None:
        await self._flush_counters()
        await self._collect_feedback()

    async def _flush_counters(self) -> None:
        limiter = self.rate_limiter
        admitted = (limiter.admitted if limiter else 0) - self._flushed["admitted"]
        rejected = (limiter.rejected if limiter else 0) - self._flushed["rejected"]
        heartbeat = orjson.dumps({"pid": os.getpid(), "seen": time.time()})

        async def write(client: Any) -> bool:
            async with client.pipeline(transaction=False) as pipe:
                pipe.hset(self.link.key("replicas"), self.replica, heartbeat)
                pipe.expire(self.link.key("replicas"), _COUNTERS_TTL_S)
                if admitted or rejected:
                    stats = self.link.key("stats", "rate_limit")
                    pipe.hincrby(stats, "admitted", admitted)
                    pipe.hincrby(stats, "rejected", rejected)
                    pipe.hincrby(stats, f"admitted@{self.replica}", admitted)
                    pipe.hincrby(stats, f"rejected@{self.replica}", rejected)
                    pipe.expire(stats, _COUNTERS_TTL_S)
                await pipe.execute()
            return True

        if await self.link.call(write, False):
            self._flushed["admitted"] += admitted
            self._flushed["rejected"] += rejected

    # --- /health, /stats, /metrics ------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        """Redis's state after one PING (bounded by REDIS_TIMEOUT_S)."""
        await self.link.ping()
        return {**self.link.status(), "replica": self.replica}

    async def snapshot(self) -> dict[str, Any]:
        """This replica's and the fleet's view, for `/stats` (fleet parts empty while Redis is down)."""
        stats = await self.link.call(lambda client: client.hgetall(self.link.key("stats", "rate_limit")), None)
        replicas = await self.link.call(lambda client: client.hgetall(self.link.key("replicas")), None)
        fleet_limits = {
            (k.decode() if isinstance(k, bytes) else k): int(v) for k, v in (stats or {}).items()
        }
        alive = {}
        for name, raw in (replicas or {}).items():
            beat = orjson.loads(raw)
            if time.time() - beat.get("seen", 0) < _REPLICA_SEEN_S:
                alive[name.decode() if isinstance(name, bytes) else name] = beat
        breakers = {name: await breaker.fleet_state() for name, breaker in self.breakers.items()}
        return {
            "replica": self.replica,
            "redis": self.link.status(),
            "replicas_alive": sorted(alive),
            "rate_limit": {
                "replica": self.rate_limiter.snapshot() if self.rate_limiter else None,
                "fleet": {
                    "admitted": fleet_limits.get("admitted", 0),
                    "rejected": fleet_limits.get("rejected", 0),
                    "by_replica": {k: v for k, v in fleet_limits.items() if "@" in k},
                } if stats is not None else None,
            },
            "breakers": {
                "fleet": breakers,
                "adopted": {name: {"opens": b.adopted_opens, "closes": b.adopted_closes}
                            for name, b in self.breakers.items()},
            },
            "feedback": {"forwarded": self.feedback_forwarded, "collected": self.feedback_collected},
        }


def build_shared(settings: Settings, backends: Backends, caches: Caches) -> tuple[SharedState, Caches]:
    """The shared state for REDIS_URL, with the backends' breakers shared and the caches wrapped."""
    shared = SharedState(settings)
    shared.share_backends(backends)
    return shared, shared.share_caches(caches)
