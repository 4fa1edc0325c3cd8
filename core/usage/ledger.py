"""Tokens, money and usage per client key: what the traffic cost, and what it would have cost on xAI.

Every finished request hands its backend calls (the `steps` of its state) to `UsageLedger.record`.
Tokens come from the backends' own `usage` (streamed or not; the router always asks streams
for it); a call that returned none is estimated from its text (about 4 characters a token) and
marked `estimated`. Each call is priced with `USAGE_PRICES` (USD per million input/output tokens
per backend; a backend not named costs nothing). Next to what was spent, the ledger keeps what
the same traffic would have cost had every request gone to xAI: each request's answering call
(`generate`, legacy `complete`) priced at xAI's price, plus the xAI calls it made anyway (an
ENRICH search); classifier calls are not needed then and are left out.

The figures are Prometheus counters in the `Stats` registry, so several workers sharing
`PROMETHEUS_MULTIPROC_DIR` add up in `/stats` and `/metrics` like the request counts, and
`/stats` reads them back from the same samples (one code path for one or many workers).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, Counter, Gauge

from core.stats import Stats

CHARS_PER_TOKEN = 4
"""Characters per token when a backend reports no usage (a rough rule for English text)."""
ANSWER_NODES = frozenset({"generate", "complete"})
"""Nodes whose call answers the request (what an all-xAI router would have sent to xAI)."""
CLOUD_BACKEND = "xai"
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Price:
    """USD per million tokens, in and out."""

    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for this many tokens."""
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


FREE = Price(0.0, 0.0)


def parse_prices(text: str) -> dict[str, Price]:
    """Read `USAGE_PRICES`: `backend=input/output` pairs, comma-separated (`xai=0.20/0.50`).

    Raises:
        ValueError: a pair that is not `name=number/number`.
    """
    prices: dict[str, Price] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, pair = item.partition("=")
        given, _, taken = pair.partition("/")
        try:
            prices[name.strip()] = Price(float(given), float(taken))
        except ValueError:
            raise ValueError(f"USAGE_PRICES: {item!r} is not backend=input/output (USD per million tokens)") from None
    return prices


def key_id(token: str) -> str:
    """The name a client key is shown under: `key-` and 8 hex digits of its SHA-256.

    The key itself is never kept or shown; the operator can compute the same name from the key.
    """
    return "key-" + hashlib.sha256(token.encode()).hexdigest()[:8]


def _text_chars(value: Any) -> int:
    """Characters of text in a message list, a string or content parts."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_chars(item) for item in value)
    if isinstance(value, dict):
        if "content" in value:
            return _text_chars(value.get("content"))
        if isinstance(value.get("text"), str):
            return len(value["text"])
    return 0


def _estimate(chars: int) -> int:
    return (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def step_tokens(step: dict[str, Any]) -> tuple[int, int, bool] | None:
    """Prompt tokens, completion tokens and whether they are estimated, for one backend call.

    The backend's `usage` (`prompt_tokens`/`completion_tokens`, or the Responses API's
    `input_tokens`/`output_tokens`) when it sent one; else an estimate from the text sent and
    received; None for a failed call that reported nothing (nothing was generated).
    """
    usage = step.get("usage")
    if isinstance(usage, dict):
        prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
        completion = usage.get("completion_tokens", usage.get("output_tokens")) or 0
        if isinstance(prompt, int) and isinstance(completion, int):
            return prompt, completion, False
    if step.get("status") != "ok":
        return None
    completion_chars = (_text_chars(step.get("response_content")) + _text_chars(step.get("reasoning_content"))
                        or int(step.get("response_chars") or 0))  # an eval result keeps sizes only
    return _estimate(_text_chars(step.get("messages_sent"))), _estimate(completion_chars), True


@dataclass
class RequestUsage:
    """The tokens and cost of one request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False
    cost_usd: float = 0.0
    xai_cost_usd: float = 0.0
    all_xai_cost_usd: float = 0.0
    calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def as_record(self) -> dict[str, Any]:
        """The `usage` block of a session record."""
        return {
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "estimated": self.estimated, "cost_usd": round(self.cost_usd, 8),
            "xai_cost_usd": round(self.xai_cost_usd, 8), "all_xai_cost_usd": round(self.all_xai_cost_usd, 8),
        }


def request_usage(steps: list[dict[str, Any]], prices: dict[str, Price]) -> RequestUsage:
    """Count and price the backend calls of one request (see the module's docstring)."""
    cloud = prices.get(CLOUD_BACKEND, FREE)
    total = RequestUsage()
    for step in steps:
        tokens = step_tokens(step)
        if tokens is None:
            continue
        prompt, completion, estimated = tokens
        backend = str(step.get("provider") or "unknown")
        cost = prices.get(backend, FREE).cost(prompt, completion)
        total.prompt_tokens += prompt
        total.completion_tokens += completion
        total.estimated |= estimated
        total.cost_usd += cost
        if backend == CLOUD_BACKEND:
            total.xai_cost_usd += cost
        if step.get("node") in ANSWER_NODES:
            total.all_xai_cost_usd += cloud.cost(prompt, completion)
        elif backend == CLOUD_BACKEND:
            total.all_xai_cost_usd += cost
        total.calls.append({"backend": backend, "prompt": prompt, "completion": completion,
                            "estimated": estimated, "cost": cost})
    return total


class UsageLedger:
    """Tokens, spend and per-client figures since start, per day too, as Prometheus counters."""

    def __init__(self, stats: Stats, prices: dict[str, Price], tz: str = "UTC") -> None:
        """Register the counters in `stats`' registry (shared across workers when it is)."""
        self.stats = stats
        self.prices = prices
        self.tz = ZoneInfo(tz)
        registry = stats.registry
        self._tokens = Counter("ai_router_tokens", "Tokens of backend calls.",
                               ["route", "backend", "client", "kind", "estimated"], registry=registry)
        self._spend = Counter("ai_router_spend_usd", "USD spent on backend calls (USAGE_PRICES).",
                              ["backend", "day"], registry=registry)
        self._all_xai = Counter("ai_router_all_xai_usd",
                                "USD the same traffic would have cost had every request gone to xAI.",
                                ["day"], registry=registry)
        self._client_requests = Counter("ai_router_client_requests", "Finished requests per client key.",
                                        ["client"], registry=registry)
        self._client_spend = Counter("ai_router_client_spend_usd", "USD spent per client key.",
                                     ["client"], registry=registry)
        self._rate_limited = Counter("ai_router_rate_limited", "Requests refused by the rate limit.",
                                     ["client"], registry=registry)
        self._budget_refused = Counter("ai_router_budget_refused", "Requests refused by a per-key budget.",
                                       ["client", "budget"], registry=registry)
        self._last_seen = Gauge("ai_router_client_last_seen_seconds", "When a client key was last seen (epoch).",
                                ["client"], registry=registry, multiprocess_mode="max")

    def day(self, epoch: float | None = None) -> str:
        """The day (in `TZ`) that `epoch` (default: now) falls on, as YYYY-MM-DD."""
        return datetime.fromtimestamp(time.time() if epoch is None else epoch, self.tz).strftime("%Y-%m-%d")

    def record(self, client: str, route: str, steps: list[dict[str, Any]]) -> RequestUsage:
        """Count one finished request of `client` on `route`; returns its usage for the record."""
        usage = request_usage(steps, self.prices)
        day = self.day()
        for call in usage.calls:
            estimated = str(call["estimated"]).lower()
            self._tokens.labels(route, call["backend"], client, "prompt", estimated).inc(call["prompt"])
            self._tokens.labels(route, call["backend"], client, "completion", estimated).inc(call["completion"])
            self._spend.labels(call["backend"], day).inc(call["cost"])
        self._all_xai.labels(day).inc(usage.all_xai_cost_usd)
        self._client_requests.labels(client).inc()
        self._client_spend.labels(client).inc(usage.cost_usd)
        self._last_seen.labels(client).set(time.time())
        return usage

    def rate_limited(self, client: str) -> None:
        """Count a request the rate limiter refused."""
        self._rate_limited.labels(client).inc()
        self._last_seen.labels(client).set(time.time())

    def budget_refused(self, client: str, budget: str) -> None:
        """Count a request a per-key budget refused (`requests` or `tokens`)."""
        self._budget_refused.labels(client, budget).inc()
        self._last_seen.labels(client).set(time.time())

    def snapshot(self) -> dict[str, Any]:
        """The `usage` block of `/stats`: tokens, spend and savings (total and per day), per client."""
        samples = _samples(self.stats._collector_registry())
        tokens: dict[str, Any] = {"prompt": 0, "completion": 0, "estimated": 0}
        by_route: dict[str, dict[str, int]] = {}
        by_backend: dict[str, dict[str, int]] = {}
        clients: dict[str, dict[str, Any]] = {}

        def client(name: str) -> dict[str, Any]:
            return clients.setdefault(name, {
                "requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "spend_usd": 0.0,
                "rate_limited": 0, "budget_refused": 0, "last_seen": None,
            })

        for labels, value in samples.get("ai_router_tokens_total", []):
            count = int(value)
            kind = labels["kind"]
            tokens[kind] += count
            if labels["estimated"] == "true":
                tokens["estimated"] += count
            for table, key in ((by_route, labels["route"]), (by_backend, labels["backend"])):
                counts = table.setdefault(key, {"prompt": 0, "completion": 0})
                counts[kind] += count
            client(labels["client"])[f"{kind}_tokens"] += count
        days: dict[str, dict[str, float]] = {}
        spend_by_backend: dict[str, float] = {}
        for labels, value in samples.get("ai_router_spend_usd_total", []):
            day = days.setdefault(labels["day"], {"spend_usd": 0.0, "xai_usd": 0.0, "all_xai_usd": 0.0})
            day["spend_usd"] += value
            if labels["backend"] == CLOUD_BACKEND:
                day["xai_usd"] += value
            spend_by_backend[labels["backend"]] = spend_by_backend.get(labels["backend"], 0.0) + value
        for labels, value in samples.get("ai_router_all_xai_usd_total", []):
            days.setdefault(labels["day"], {"spend_usd": 0.0, "xai_usd": 0.0, "all_xai_usd": 0.0})
            days[labels["day"]]["all_xai_usd"] += value
        for name, key in (("ai_router_client_requests_total", "requests"),
                          ("ai_router_rate_limited_total", "rate_limited"),
                          ("ai_router_budget_refused_total", "budget_refused")):
            for labels, value in samples.get(name, []):
                client(labels["client"])[key] += int(value)
        for labels, value in samples.get("ai_router_client_spend_usd_total", []):
            client(labels["client"])["spend_usd"] += value
        for labels, value in samples.get("ai_router_client_last_seen_seconds", []):
            entry = client(labels["client"])
            seen = datetime.fromtimestamp(value, self.tz).isoformat(timespec="seconds")
            entry["last_seen"] = max(entry["last_seen"] or seen, seen)
        for entry in clients.values():
            entry["spend_usd"] = round(entry["spend_usd"], 8)
        per_day = {day: _money(figures) for day, figures in sorted(days.items())}
        total = _money({key: sum(d[key] for d in days.values()) for key in ("spend_usd", "xai_usd", "all_xai_usd")})
        return {
            "tokens": {**tokens, "by_route": dict(sorted(by_route.items())),
                       "by_backend": dict(sorted(by_backend.items()))},
            "cost": {**total, "by_backend_usd": {k: round(v, 8) for k, v in sorted(spend_by_backend.items())},
                     "per_day": per_day,
                     "prices_usd_per_million": {k: [p.input, p.output] for k, p in sorted(self.prices.items())}},
            "clients": dict(sorted(clients.items())),
        }


def _money(figures: dict[str, float]) -> dict[str, float]:
    """Round USD figures and add the saving (all-xAI cost less what was spent)."""
    out = {key: round(value, 8) for key, value in figures.items()}
    out["saved_usd"] = round(figures["all_xai_usd"] - figures["spend_usd"], 8)
    return out


def _samples(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by sample name, summed over workers (a multi-process collector lists them per pid)."""
    merged: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for metric in registry.collect():
        for sample in metric.samples:
            labels = {k: v for k, v in sample.labels.items() if k != "pid"}
            key = tuple(sorted(labels.items()))
            series = merged.setdefault(sample.name, {})
            if sample.name.endswith("_last_seen_seconds"):
                series[key] = max(series.get(key, 0.0), sample.value)
            else:
                series[key] = series.get(key, 0.0) + sample.value
    return {name: [(dict(key), value) for key, value in series.items()] for name, series in merged.items()}
