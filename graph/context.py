"""Run-scoped knobs: what one request asks of the graph beyond its messages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RouterContext:
    """Per-run choices. Precedence is request > environment > default.

    In LangGraph Studio these appear as the run's context, so a person can force a
    route or ask for a dry run there too.
    """

    forced_route: str | None = None
    """Skip detection and classification and serve this route label."""
    dry_run: bool = False
    """Stop once the route is decided: no enrichment, no generation."""
    stream: bool = False
    """Stream the answer: `generate` emits each backend chunk as it arrives."""
