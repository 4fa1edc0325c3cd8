"""What keeps a failing backend from taking the router down: retries, breaker, concurrency bound.

Retries use tenacity (exponential backoff with jitter, `Retry-After` honoured). The circuit
breaker is a few lines of our own: the Python breaker libraries are thread- or
tornado-oriented, and ours needs only consecutive-failure counting, a cooldown and a
single half-open probe, readable in `/health` and `/stats`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from tenacity import RetryCallState


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


@dataclass
class RetryPolicy:
    """How often and how patiently a backend call is retried."""

    attempts: int = 2
    """Retries after the first try (0 = no retry)."""
    backoff_s: float = 0.25
    """First backoff; doubles each retry, with jitter."""
    backoff_max_s: float = 4.0
    retry_after_max_s: float = 10.0
    """A `Retry-After` longer than this is not waited for: the caller falls back or fails."""

    def wait(self, state: RetryCallState) -> float:
        """Tenacity wait: the backend's `Retry-After` when it gave one, else jittered backoff."""
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return retry_after
        base = min(self.backoff_max_s, self.backoff_s * 2 ** (state.attempt_number - 1))
        return base / 2 + _jitter() * base / 2

    def should_retry(self, error: BaseException) -> bool:
        """Retry connect errors, 5xx and 429, never a client error (4xx) nor a deadline spent waiting.

        The error says whether it is retryable: a first-token, idle or total timeout is not
        (a hung backend would hold the client once more per retry).
        """
        if not getattr(error, "retryable", False):
            return False
        retry_after = getattr(error, "retry_after", None)
        return retry_after is None or retry_after <= self.retry_after_max_s


def _jitter() -> float:
    import random

    return random.random()


@dataclass
class CircuitBreaker:
    """Skip a backend after repeated failures, for a cooldown, then let one probe through."""

    failure_threshold: int = 5
    cooldown_s: float = 30.0
    consecutive_failures: int = 0
    opened_at: float | None = None
    probing: bool = False
    total_failures: int = 0
    times_opened: int = 0

    @property
    def state(self) -> str:
        """`closed` (normal), `open` (skipped) or `half_open` (one probe allowed)."""
        if self.opened_at is None:
            return "closed"
        if time.monotonic() - self.opened_at >= self.cooldown_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """Whether a call may go to the backend now."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self.probing:
            self.probing = True  # exactly one probe at a time
            return True
        return False

    def retry_in_s(self) -> float:
        """Seconds until the breaker lets a probe through."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.cooldown_s - (time.monotonic() - self.opened_at))

    def success(self) -> None:
        """A call succeeded: close the breaker."""
        self.consecutive_failures = 0
        self.opened_at = None
        self.probing = False

    def failure(self) -> None:
        """A call failed in a way that says the backend is unwell."""
        self.total_failures += 1
        self.consecutive_failures += 1
        self.probing = False
        if self.opened_at is not None or self.consecutive_failures >= self.failure_threshold:
            if self.opened_at is None or self.state == "half_open":
                self.times_opened += 1
            self.opened_at = time.monotonic()

    def snapshot(self) -> dict[str, Any]:
        """The breaker as `/health` and `/stats` show it."""
        return {
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "total_failures": self.total_failures,
            "times_opened": self.times_opened,
            "retry_in_s": round(self.retry_in_s(), 1),
        }


@dataclass
class ConcurrencyLimit:
    """At most `limit` calls in flight to one backend; the rest wait up to `queue_timeout_s`."""

    limit: int = 64
    queue_timeout_s: float = 30.0
    _semaphores: dict[int, asyncio.Semaphore] = field(default_factory=dict, repr=False)
    rejected: int = 0

    @property
    def semaphore(self) -> asyncio.Semaphore:
        """The semaphore of the running loop (asyncio primitives are loop-bound)."""
        loop_id = id(asyncio.get_running_loop())
        semaphore = self._semaphores.get(loop_id)
        if semaphore is None:
            semaphore = self._semaphores[loop_id] = asyncio.Semaphore(self.limit)
        return semaphore

    def in_flight(self) -> int:
        """Calls running now (on the current loop's semaphore, if any)."""
        return sum(self.limit - s._value for s in self._semaphores.values())  # noqa: SLF001
