"""Circuit breakers the whole fleet agrees on: a backend one replica opens, every replica skips.

Each replica keeps deciding with its own `CircuitBreaker` (no Redis call per request). What
changes is published: when a breaker opens, re-opens after a failed probe, or closes after a
good one, the replica writes `{state, at}` (wall-clock time) to `<prefix>:breaker:<backend>`.
Before a call, a replica reads that key at most every BREAKER_SYNC_S and adopts a newer
state: an `open` newer than its own makes it skip the backend for the rest of that cooldown;
a `closed` newer than its own opening closes it. After a cooldown every replica lets one
probe through (so a fleet of N sends at most N probes per cooldown).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from core.backends.resilience import CircuitBreaker

if TYPE_CHECKING:
    from core.shared.link import RedisLink


def _opened_wall(breaker: CircuitBreaker) -> float | None:
    """When the breaker opened, in wall-clock seconds (its own clock is monotonic)."""
    if breaker.opened_at is None:
        return None
    return time.time() - (time.monotonic() - breaker.opened_at)


class SharedBreaker:
    """The fleet's state of one backend's breaker, in Redis."""

    def __init__(self, link: RedisLink, backend: str, sync_s: float) -> None:
        """Share the breaker of `backend` through `link`, reading it at most every `sync_s`."""
        self.link = link
        self.backend = backend
        self.key = link.key("breaker", backend)
        self.sync_s = sync_s
        self._next_sync = 0.0
        self._seen_at = 0.0  # the newest fleet state this replica has applied or published
        self.adopted_opens = 0
        self.adopted_closes = 0

    def publish(self, breaker: CircuitBreaker) -> None:
        """Tell the fleet this replica's breaker opened or closed (in the background)."""
        opened = _opened_wall(breaker)
        at = opened if opened is not None else time.time()
        state = {"state": "open" if opened is not None else "closed", "at": at}
        self._seen_at = at
        ttl = max(60, int(breaker.cooldown_s * 10))
        value = orjson.dumps(state)
        self.link.fire(lambda client: client.set(self.key, value, ex=ttl))

    async def sync(self, breaker: CircuitBreaker) -> None:
        """Adopt a newer fleet state, at most every `sync_s` (cheap: one GET)."""
        now = time.monotonic()
        if now < self._next_sync or not self.link.available():
            return
        self._next_sync = now + self.sync_s
        raw = await self.link.call(lambda client: client.get(self.key), None)
        if raw is None:
            return
        self.apply(breaker, orjson.loads(raw))

    def apply(self, breaker: CircuitBreaker, state: dict[str, Any]) -> None:
        """Apply one fleet state to the local breaker when it is newer than what this replica knows."""
        at = float(state.get("at") or 0)
        if at <= self._seen_at:
            return
        self._seen_at = at
        local = _opened_wall(breaker)
        if state.get("state") == "open":
            age = time.time() - at
            if age >= breaker.cooldown_s or (local is not None and local >= at):
                return  # already over, or this replica's own opening is as recent
            breaker.opened_at = time.monotonic() - max(0.0, age)
            breaker.consecutive_failures = max(breaker.consecutive_failures, breaker.failure_threshold)
            breaker.probing = False
            self.adopted_opens += 1
        elif local is not None and at > local:
            breaker.success()  # another replica's probe found the backend well again
            self.adopted_closes += 1

    async def fleet_state(self) -> dict[str, Any] | None:
        """The state the fleet last published (for `/stats`), None when none or Redis is down."""
        raw = await self.link.call(lambda client: client.get(self.key), None)
        if raw is None:
            return None
        state = orjson.loads(raw)
        if state.get("state") == "open":
            state["age_s"] = round(time.time() - float(state["at"]), 1)
        return state
