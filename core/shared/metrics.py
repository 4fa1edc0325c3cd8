"""Prometheus lines for the shared state: per replica and for the whole fleet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.backends.client import Backends

_STATES = {"closed": 0, "half_open": 1, "open": 2}


def shared_metrics(snapshot: dict[str, Any], backends: Backends) -> bytes:
    """Redis up, rate-limit decisions (replica and fleet) and breaker states (replica and fleet)."""
    replica = snapshot["replica"]
    lines = [
        "# HELP ai_router_redis_up Whether this replica reaches Redis (1) or runs on per-process state (0).",
        "# TYPE ai_router_redis_up gauge",
        f'ai_router_redis_up{{replica="{replica}"}} {1 if snapshot["redis"]["state"] == "ok" else 0}',
        "# HELP ai_router_replicas_alive Replicas that reported to Redis in the last 30 s.",
        "# TYPE ai_router_replicas_alive gauge",
        f"ai_router_replicas_alive {len(snapshot['replicas_alive'])}",
        "# HELP ai_router_rate_limit_total Rate-limit decisions, by outcome, for this replica and the fleet.",
        "# TYPE ai_router_rate_limit_total counter",
    ]
    limits = snapshot["rate_limit"]
    if limits["replica"]:
        for outcome in ("admitted", "rejected"):
            lines.append(f'ai_router_rate_limit_total{{scope="replica",replica="{replica}",outcome="{outcome}"}} '
                         f'{limits["replica"][outcome]}')
    if limits["fleet"]:
        for outcome in ("admitted", "rejected"):
            lines.append(f'ai_router_rate_limit_total{{scope="fleet",outcome="{outcome}"}} {limits["fleet"][outcome]}')
    lines += [
        "# HELP ai_router_breaker_state Circuit breaker: 0 closed, 1 half open, 2 open; per replica and fleet.",
        "# TYPE ai_router_breaker_state gauge",
    ]
    for name, backend in backends.by_name.items():
        if backend.name != name:
            continue
        state = _STATES[backend.breaker.state]
        lines.append(f'ai_router_breaker_state{{scope="replica",replica="{replica}",backend="{name}"}} {state}')
    for name, fleet in snapshot["breakers"]["fleet"].items():
        if fleet is not None:
            lines.append(f'ai_router_breaker_state{{scope="fleet",backend="{name}"}} '
                         f'{2 if fleet.get("state") == "open" else 0}')
    return ("\n".join(lines) + "\n").encode()
