"""Counts and latencies per route since the process started (served at `/stats`)."""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("ai_router")

_WINDOW = 2048  # latest latencies kept per route: enough for stable p95s, bounded memory


def percentile(values: list[float], fraction: float) -> float | None:
    """The `fraction` percentile (nearest rank) of `values`, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 2)


@dataclass
class RouteStats:
    """What one route has seen."""

    count: int = 0
    errors: int = 0
    streamed: int = 0
    latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=_WINDOW))
    classification_ms: deque[float] = field(default_factory=lambda: deque(maxlen=_WINDOW))
    overhead_ms: deque[float] = field(default_factory=lambda: deque(maxlen=_WINDOW))


class Stats:
    """In-process request statistics."""

    def __init__(self) -> None:
        """Start counting now."""
        self.started = time.time()
        self.routes: dict[str, RouteStats] = defaultdict(RouteStats)
        self.fallbacks = 0
        self.model_mismatches = 0

    def record(
        self,
        label: str,
        *,
        total_ms: float,
        error: bool,
        streamed: bool,
        classification_ms: float | None = None,
        overhead_ms: float | None = None,
    ) -> None:
        """Count one finished request."""
        stats = self.routes[label]
        stats.count += 1
        stats.errors += int(error)
        stats.streamed += int(streamed)
        stats.latency_ms.append(total_ms)
        if classification_ms is not None:
            stats.classification_ms.append(classification_ms)
        if overhead_ms is not None:
            stats.overhead_ms.append(overhead_ms)

    def count_model_mismatches(self, steps: list[dict[str, Any]]) -> None:
        """Count (and log) each call whose backend answered under another model name.

        A provider may answer a retired model name with another, dearer model; the
        configured `model` and the `served_model` the backend returned tell.
        """
        for step in steps:
            served = step.get("served_model")
            if served and served != step.get("model"):
                self.model_mismatches += 1
                log.warning("model mismatch: %s is configured as %r but answered as %r",
                            step.get("provider"), step.get("model"), served)

    def snapshot(self) -> dict[str, Any]:
        """The JSON served at `/stats`."""

        def summary(values: deque[float]) -> dict[str, float | None]:
            data = list(values)
            return {"p50": percentile(data, 0.5), "p95": percentile(data, 0.95), "n": len(data)}

        return {
            "uptime_s": round(time.time() - self.started, 1),
            "requests": sum(s.count for s in self.routes.values()),
            "errors": sum(s.errors for s in self.routes.values()),
            "fallbacks": self.fallbacks,
            "model_mismatches": self.model_mismatches,
            "routes": {
                label: {
                    "count": s.count,
                    "errors": s.errors,
                    "streamed": s.streamed,
                    "latency_ms": summary(s.latency_ms),
                    "classification_ms": summary(s.classification_ms),
                    "overhead_ms": summary(s.overhead_ms),
                }
                for label, s in sorted(self.routes.items())
            },
        }
