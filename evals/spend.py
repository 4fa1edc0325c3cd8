"""Spend and savings of an eval run, priced as the router prices its traffic (`USAGE_PRICES`).

The same rules as `/stats` (`core.usage.ledger.request_usage`): each backend call priced at its
backend's price, the backends' own token counts (estimated from text sizes and marked when a
backend sent none), and next to the spend what the same requests would have cost had every one
gone to xAI. Routing-only replays generate nothing, so they cost nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.settings import Settings
from core.usage.ledger import Price, parse_prices, request_usage


def spend_section(results: Sequence[dict[str, Any]], prices: dict[str, Price] | None = None) -> dict[str, Any]:
    """Tokens, spend, xAI spend, all-xAI cost and the saving over `results` (replay rows with `steps`)."""
    prices = parse_prices(Settings().usage_prices) if prices is None else prices
    totals = {"prompt_tokens": 0, "completion_tokens": 0, "spend_usd": 0.0, "xai_usd": 0.0, "all_xai_usd": 0.0}
    estimated = False
    for result in results:
        usage = request_usage(result.get("steps") or [], prices)
        totals["prompt_tokens"] += usage.prompt_tokens
        totals["completion_tokens"] += usage.completion_tokens
        totals["spend_usd"] += usage.cost_usd
        totals["xai_usd"] += usage.xai_cost_usd
        totals["all_xai_usd"] += usage.all_xai_cost_usd
        estimated |= usage.estimated
    out: dict[str, Any] = {key: round(value, 8) if isinstance(value, float) else value
                           for key, value in totals.items()}
    out["saved_usd"] = round(totals["all_xai_usd"] - totals["spend_usd"], 8)
    out["estimated"] = estimated
    out["prices_usd_per_million"] = {name: [p.input, p.output] for name, p in sorted(prices.items())}
    return out


def spend_markdown(spend: dict[str, Any]) -> list[str]:
    """The report's "Spend and savings" section."""
    return [
        "",
        "## Spend and savings",
        "",
        f"Spent ${spend['spend_usd']:.6f} (xAI ${spend['xai_usd']:.6f}); the same requests all on xAI: "
        f"${spend['all_xai_usd']:.6f}; saved ${spend['saved_usd']:.6f}. Tokens: {spend['prompt_tokens']} in, "
        f"{spend['completion_tokens']} out{' (partly estimated)' if spend['estimated'] else ''}; "
        f"prices (USAGE_PRICES, USD per million in/out): {spend['prices_usd_per_million']}.",
    ]
