"""Counts and latencies per route since the router started (served at `/stats` and `/metrics`).

One worker (the default) keeps exact figures in memory. With several workers
(`WORKERS=N`), each worker also writes Prometheus counters and histograms into the shared
`PROMETHEUS_MULTIPROC_DIR` (memory-mapped files, a few microseconds per request), and
`/stats` and `/metrics` add those up, so whichever worker answers sees every worker's
requests. Counts are then exact; latency percentiles are read from histogram buckets.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger("ai_router")

_WINDOW = 2048  # latest latencies kept per route: enough for stable p95s, bounded memory
# Histogram bounds in ms: fine below 10 ms where router overhead lives, coarse up to 10 min.
_BUCKETS_MS = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 25, 50, 75, 100, 250, 500, 1000, 2500, 5000,
               10000, 30000, 60000, 120000, 300000, 600000, math.inf)


def multiprocess_dir() -> str | None:
    """The directory workers share metrics through, when the router runs several workers."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


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
    """Requests the router or a backend failed."""
    client_errors: int = 0
    """Requests refused before routing for the client's own fault (4xx: bad input, auth, rate limit, gone)."""
    streamed: int = 0
    latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=_WINDOW))
    classification_ms: deque[float] = field(default_factory=lambda: deque(maxlen=_WINDOW))
    overhead_ms: deque[float] = field(default_factory=lambda: deque(maxlen=_WINDOW))


class Stats:
    """Request statistics: in memory for one worker, merged across workers when shared."""

    def __init__(self) -> None:
        """Start counting now; also write to the shared metrics directory if there is one."""
        self.started = time.time()
        self.routes: dict[str, RouteStats] = defaultdict(RouteStats)
        self._fallbacks = 0
        self._model_mismatches = 0
        self.shared_dir = multiprocess_dir()
        # Own registry per instance: the metrics are this object's, and tests may build several.
        self.registry = CollectorRegistry()
        # `error` is "true" (the router or a backend failed), "client" (refused before routing:
        # a 4xx for the client's own fault) or "false".
        self._requests = Counter("ai_router_requests", "Finished requests.", ["route", "streamed", "error"],
                                 registry=self.registry)
        self._latency = Histogram("ai_router_request_ms", "Total request time (ms).", ["route"],
                                  buckets=_BUCKETS_MS, registry=self.registry)
        self._overhead = Histogram("ai_router_overhead_ms", "Router time outside backend calls (ms).",
                                   ["route"], buckets=_BUCKETS_MS, registry=self.registry)
        self._classification = Histogram("ai_router_classification_ms", "Classifier call time (ms).",
                                         ["route"], buckets=_BUCKETS_MS, registry=self.registry)
        self._fallbacks_total = Counter("ai_router_fallbacks", "Generations that fell back.",
                                        registry=self.registry)
        self._mismatches_total = Counter("ai_router_model_mismatches",
                                         "Answers from a model other than the configured one.",
                                         registry=self.registry)

    # Plain attributes for callers (`stats.fallbacks += 1`); the setter mirrors the step
    # into the shared counter so other workers' `/stats` see it too.
    @property
    def fallbacks(self) -> int:
        """Generations that succeeded on a fallback backend (this worker)."""
        return self._fallbacks

    @fallbacks.setter
    def fallbacks(self, value: int) -> None:
        if value > self._fallbacks:
            self._fallbacks_total.inc(value - self._fallbacks)
        self._fallbacks = value

    @property
    def model_mismatches(self) -> int:
        """Answers whose model differed from the configured one (this worker)."""
        return self._model_mismatches

    @model_mismatches.setter
    def model_mismatches(self, value: int) -> None:
        if value > self._model_mismatches:
            self._mismatches_total.inc(value - self._model_mismatches)
        self._model_mismatches = value

    def record(
        self,
        label: str,
        *,
        total_ms: float,
        error: bool,
        streamed: bool,
        classification_ms: float | None = None,
        overhead_ms: float | None = None,
        client_error: bool = False,
    ) -> None:
        """Count one finished request.

        `client_error` marks a request refused before routing for the client's own fault (a
        4xx): it is counted apart, never as one of the route's `errors`.
        """
        error = error and not client_error
        stats = self.routes[label]
        stats.count += 1
        stats.errors += int(error)
        stats.client_errors += int(client_error)
        stats.streamed += int(streamed)
        stats.latency_ms.append(total_ms)
        if classification_ms is not None:
            stats.classification_ms.append(classification_ms)
        if overhead_ms is not None:
            stats.overhead_ms.append(overhead_ms)
        self._requests.labels(label, str(streamed).lower(), "client" if client_error else str(error).lower()).inc()
        self._latency.labels(label).observe(total_ms)
        if classification_ms is not None:
            self._classification.labels(label).observe(classification_ms)
        if overhead_ms is not None:
            self._overhead.labels(label).observe(overhead_ms)

    def _collector_registry(self) -> CollectorRegistry:
        """The registry to expose: every worker's files when shared, else this process's."""
        if not self.shared_dir:
            return self.registry
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.shared_dir)
        return merged

    def prometheus_text(self) -> bytes:
        """The Prometheus exposition served at `/metrics`."""
        return generate_latest(self._collector_registry())

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
        """The JSON served at `/stats` (added up across workers when they share metrics)."""
        if self.shared_dir:
            return self._shared_snapshot()

        def summary(values: deque[float]) -> dict[str, float | None]:
            data = list(values)
            return {"p50": percentile(data, 0.5), "p95": percentile(data, 0.95), "n": len(data)}

        return {
            "uptime_s": round(time.time() - self.started, 1),
            "requests": sum(s.count for s in self.routes.values()),
            "errors": sum(s.errors for s in self.routes.values()),
            "client_errors": sum(s.client_errors for s in self.routes.values()),
            "fallbacks": self.fallbacks,
            "model_mismatches": self.model_mismatches,
            "routes": {
                label: {
                    "count": s.count,
                    "errors": s.errors,
                    "client_errors": s.client_errors,
                    "streamed": s.streamed,
                    "latency_ms": summary(s.latency_ms),
                    "classification_ms": summary(s.classification_ms),
                    "overhead_ms": summary(s.overhead_ms),
                }
                for label, s in sorted(self.routes.items())
            },
        }

    def _shared_snapshot(self) -> dict[str, Any]:
        """`/stats` added up from every worker's metric files (percentiles from buckets)."""
        samples = _merged_samples(self._collector_registry())
        routes: dict[str, dict[str, Any]] = {}

        def route(label: str) -> dict[str, Any]:
            return routes.setdefault(label, {"count": 0, "errors": 0, "client_errors": 0, "streamed": 0})

        for sample in samples.get("ai_router_requests", []):
            if not sample.name.endswith("_total"):
                continue
            entry = route(sample.labels["route"])
            count = int(sample.value)
            entry["count"] += count
            entry["errors"] += count if sample.labels["error"] == "true" else 0
            entry["client_errors"] += count if sample.labels["error"] == "client" else 0
            entry["streamed"] += count if sample.labels["streamed"] == "true" else 0
        for key, metric in (
            ("latency_ms", "ai_router_request_ms"),
            ("classification_ms", "ai_router_classification_ms"),
            ("overhead_ms", "ai_router_overhead_ms"),
        ):
            buckets: dict[str, list[tuple[float, float]]] = defaultdict(list)
            for sample in samples.get(metric, []):
                if sample.name.endswith("_bucket"):
                    buckets[sample.labels["route"]].append((float(sample.labels["le"]), sample.value))
            for label in routes:
                series = sorted(buckets.get(label, []))
                n = int(series[-1][1]) if series else 0
                routes[label][key] = {"p50": _bucket_percentile(series, 0.5), "p95": _bucket_percentile(series, 0.95),
                                      "n": n, "approximate": True}

        def total(name: str) -> int:
            return int(sum(s.value for s in samples.get(name, []) if s.name.endswith("_total")))

        return {
            "uptime_s": round(time.time() - self.started, 1),
            "workers_shared": True,
            "requests": sum(r["count"] for r in routes.values()),
            "errors": sum(r["errors"] for r in routes.values()),
            "client_errors": sum(r["client_errors"] for r in routes.values()),
            "fallbacks": total("ai_router_fallbacks"),
            "model_mismatches": total("ai_router_model_mismatches"),
            "routes": dict(sorted(routes.items())),
        }


def _bucket_percentile(buckets: list[tuple[float, float]], fraction: float) -> float | None:
    """Estimate a percentile from cumulative `(upper bound, count)` pairs: the bucket's bound."""
    if not buckets or buckets[-1][1] == 0:
        return None
    target = fraction * buckets[-1][1]
    finite = [bound for bound, _ in buckets if bound != math.inf]
    for bound, count in buckets:
        if count >= target and count > 0:
            return bound if bound != math.inf else (finite[-1] if finite else None)
    return None


def _merged_samples(registry: CollectorRegistry) -> dict[str, list[Any]]:
    return {metric.name: metric.samples for metric in registry.collect()}
