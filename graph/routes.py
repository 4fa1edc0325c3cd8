"""The route table: every route the router knows, declared in one place.

Adding a route is one `RouteSpec` entry here, one prompt file under `prompts/`, and
(for routes the classifier may choose) one line in `prompts/routing/system.md`.
The graph's nodes and edges read this table; none of them names a route in code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ai_router.settings import Settings

BackendName = Literal["primary", "classifier", "xai"]
"""Backends the router can call; each is configured by `<NAME>_BASE_URL` and `<NAME>_MODEL`."""

TargetNode = Literal["generate", "enrich"]
"""The node a route continues to once it is decided."""


@dataclass(frozen=True)
class RouteSpec:
    """How one route is served."""

    backend: BackendName
    """Backend that generates the answer."""
    prompt: str
    """System prompt (a name under `prompts/`) injected into the request."""
    node: TargetNode = "generate"
    """Node that runs once the route is decided (`enrich` first fetches fresh context)."""
    classifiable: bool = True
    """Whether the LLM classifier may answer with this label (META is decided by rules only)."""
    path: str = "primary"
    """The backend path recorded in sessions (`primary`, `xai`, `enrich`, `meta`, …)."""
    fallback: BackendName | None = None
    """Backend used when `backend` is not configured or fails before the first byte."""
    takes_tools: bool = True
    """Whether requests on this route may carry `tools` to the backend."""
    min_max_tokens_setting: str | None = None
    """Name of a setting that floors `max_tokens` on this route (reasoning models need room)."""


ROUTES: dict[str, RouteSpec] = {
    "META": RouteSpec(
        backend="primary", prompt="meta/system", classifiable=False, path="meta", takes_tools=False
    ),
    "SIMPLE": RouteSpec(backend="primary", prompt="primary/system"),
    "MODERATE": RouteSpec(backend="primary", prompt="primary/system"),
    "COMPLEX": RouteSpec(
        backend="xai",
        prompt="xai/system",
        path="xai",
        fallback="primary",
        min_max_tokens_setting="xai_min_max_tokens",
    ),
    "ENRICH": RouteSpec(
        backend="primary", prompt="primary/system", node="enrich", path="enrich"
    ),
}

DEFAULT_ROUTE = "MODERATE"
"""The route taken when the classifier fails, times out or answers nothing usable."""


def classifiable_labels() -> list[str]:
    """Labels the LLM classifier may answer with, in table order."""
    return [label for label, spec in ROUTES.items() if spec.classifiable]


def backend_configured(backend: BackendName, settings: Settings) -> bool:
    """Whether `backend` can be called with the current settings (xAI needs a key)."""
    if backend == "xai":
        return settings.xai_configured
    return True


def serving_backend(label: str, settings: Settings) -> tuple[BackendName, str | None]:
    """Return the backend that serves `label`, and why it differs from the table, if it does.

    SIMPLE may be answered by the classifier model itself (`SIMPLE_TO_CLASSIFIER`), and a
    route whose backend is not configured degrades to its fallback (COMPLEX without an xAI
    key goes to the primary model).
    """
    spec = ROUTES[label]
    if label == "SIMPLE" and settings.simple_to_classifier:
        return "classifier", "SIMPLE_TO_CLASSIFIER is on"
    if spec.node == "enrich" and not settings.xai_configured:
        return spec.backend, "no xAI key configured: answered by the primary model without search"
    if not backend_configured(spec.backend, settings):
        fallback = spec.fallback or "primary"
        return fallback, f"no {spec.backend} key configured: degraded to {fallback}"
    return spec.backend, None


def decide(label: str, reason: str, settings: Settings) -> dict[str, object]:
    """The state update that records a decision for `label`, degraded where it must be.

    Raises:
        ValueError: `label` is not in the route table (the message lists the valid ones).
    """
    if label not in ROUTES:
        raise ValueError(f"Unknown route {label!r}. Expected one of: {list(ROUTES)}")
    backend, note = serving_backend(label, settings)
    degraded = note if note and note.startswith("no ") else None
    return {
        "route": label,
        "route_reason": f"{reason}; {note}" if note else reason,
        "backend": backend,
        "degraded": degraded,
    }


def fallback_backend(state: dict) -> BackendName | None:
    """The backend to try after a failed generation, or None when there is none left.

    The chain is the route's own (`COMPLEX`: xAI, then the primary), then, for the
    primary, `PRIMARY_FALLBACK` when set. Only a failure before the first byte reached the
    client may fall back: once a stream has started, switching models would splice two
    answers together.
    """
    from ai_router.settings import get_settings

    error = state.get("error")
    if not error or error.get("after_first_byte"):
        return None
    spec = ROUTES[state["route"]]
    current = state.get("backend")
    failed = state.get("failed_backends") or []
    chain: list[str | None] = []
    if current == spec.backend:
        chain.append(spec.fallback)
    chain.append(get_settings().primary_fallback or None)
    for candidate in chain:
        if candidate and candidate != current and candidate not in failed:
            return candidate  # type: ignore[return-value]
    return None
