"""The route table: every route the router knows, declared in one place.

Adding a route is one `RouteSpec` entry here, one prompt file under `prompts/`, and
(for routes the classifier may choose) one line in `prompts/routing/system.md`.
The graph's nodes and edges read this table; none of them names a route in code. Every
function here is pure: it reads the table and the settings it is handed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.settings import Settings
from core.state import DecisionUpdate, RouterError

BackendName = Literal["primary", "classifier", "xai", "vision"]
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
    path: str | None = None
    """The path recorded in sessions and headers when it is not the serving backend (`meta`, `enrich`)."""
    fallback: BackendName | None = None
    """Backend used when `backend` is not configured or fails before the first byte."""
    takes_tools: bool = True
    """Whether requests on this route may carry `tools` to the backend (False: they are stripped).

    Whether the backend itself takes tools is a setting (`<BACKEND>_SUPPORTS_TOOLS`, read by
    `backend_takes_tools`); a request with tools is never sent to a backend that does not
    take them (see `decide`).
    """
    degrades: bool = True
    """Whether an unconfigured `backend` degrades to the fallback; False refuses the request (400)."""
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
        fallback="primary",
        min_max_tokens_setting="xai_min_max_tokens",
    ),
    "ENRICH": RouteSpec(
        backend="primary", prompt="primary/system", node="enrich", path="enrich"
    ),
    # Decided by rule (images in the conversation), never by the classifier; a text-only
    # model cannot read images, so with no vision backend the request is refused.
    "VISION": RouteSpec(
        backend="vision", prompt="vision/system", classifiable=False, degrades=False
    ),
}

DEFAULT_ROUTE = "MODERATE"
"""The route taken when the classifier fails, times out or answers nothing usable."""


def check_route(label: str) -> str:
    """Return `label` when the table has it.

    Raises:
        ValueError: an unknown route; the message lists the valid ones.
    """
    if label not in ROUTES:
        raise ValueError(f"Unknown route {label!r}. Expected one of: {list(ROUTES)}")
    return label


def route_path(label: str, backend: str | None, degraded: str | None) -> str:
    """The path a decision takes, as sessions and headers name it.

    The route's own path (`meta`; `enrich` unless degraded to an answer without search),
    else the serving backend.
    """
    path = ROUTES[label].path
    if path and not (degraded and ROUTES[label].node == "enrich"):
        return path
    return backend or "router"


def classifiable_labels() -> list[str]:
    """Labels the LLM classifier may answer with, in table order."""
    return [label for label, spec in ROUTES.items() if spec.classifiable]


def backend_configured(backend: BackendName, settings: Settings) -> bool:
    """Whether `backend` can be called with the current settings (xAI needs a key)."""
    if backend == "xai":
        return settings.xai_configured
    if backend == "vision":
        return settings.vision_configured
    return True


def backend_takes_tools(backend: BackendName, settings: Settings) -> bool:
    """Whether `backend` accepts `tools` (`<BACKEND>_SUPPORTS_TOOLS`; vision on xAI follows xAI)."""
    if backend == "vision" and not settings.vision_base_url:
        backend = "xai"
    return bool(getattr(settings, f"{backend}_supports_tools"))


def _tool_capable(label: str, serving: BackendName, settings: Settings) -> tuple[BackendName | None, str]:
    """For a request with tools: the backend that may serve `label`, and a note saying why.

    The serving backend is kept when it takes tools. Otherwise the route's own backend
    (when SIMPLE_TO_CLASSIFIER moved it away) or its fallback is used, when configured and
    tool-capable; None means no backend of this route takes tools.
    """
    if backend_takes_tools(serving, settings):
        return serving, ""
    spec = ROUTES[label]
    for candidate in (spec.backend, spec.fallback):
        if (candidate and candidate != serving and backend_configured(candidate, settings)
                and backend_takes_tools(candidate, settings)):
            setting = f"{serving.upper()}_SUPPORTS_TOOLS=false"
            return candidate, f"{serving} takes no tools ({setting}): served by {candidate}"
    return None, f"{serving} takes no tools ({serving.upper()}_SUPPORTS_TOOLS=false)"


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
    if not backend_configured(spec.backend, settings) and spec.degrades:
        fallback = spec.fallback or "primary"
        return fallback, f"no {spec.backend} key configured: degraded to {fallback}"
    return spec.backend, None


def decide(label: str, reason: str, settings: Settings, *, tools: bool = False) -> DecisionUpdate:
    """The state update that records a decision for `label`, degraded where it must be.

    `tools` says the request carries `tools`. On a route that takes them, they must reach
    a backend that does: the decision moves to a tool-capable backend of the route, or,
    when there is none, carries a 400 `error` and the graph ends without generating.
    A route whose backend is missing and may not degrade (VISION) is refused the same way.

    Raises:
        ValueError: `label` is not in the route table (the message lists the valid ones).
    """
    spec = ROUTES[check_route(label)]
    if not backend_configured(spec.backend, settings) and not spec.degrades:
        return _decision(label, reason, spec.backend, None, error=_refusal(
            f"Route {label} needs a {spec.backend} backend and none is configured"
            + (": set VISION_BASE_URL and VISION_MODEL (or XAI_API_KEY; Grok accepts images)."
               if spec.backend == "vision" else "."),
            "backend_not_configured",
        ))
    backend, note = serving_backend(label, settings)
    degraded = note if note and note.startswith("no ") else None
    if tools and spec.takes_tools:
        capable, tools_note = _tool_capable(label, backend, settings)
        if capable is None:
            return _decision(label, f"{reason}; {tools_note}", backend, degraded, error=_refusal(
                f"This request carries tools, and route {label} is served by a backend that does not "
                f"take them ({tools_note}). Send it without tools, or enable tools on that backend.",
                "tools_not_supported",
            ))
        if tools_note:
            backend, note = capable, f"{note}; {tools_note}" if note else tools_note
    return _decision(label, f"{reason}; {note}" if note else reason, backend, degraded)


def _decision(label: str, reason: str, backend: BackendName, degraded: str | None,
              error: RouterError | None = None) -> DecisionUpdate:
    update: DecisionUpdate = {
        "route": label, "route_reason": reason, "backend": backend, "degraded": degraded,
        "path": route_path(label, backend, degraded),
    }
    if error is not None:
        update["error"] = error
    return update


def _refusal(message: str, kind: str) -> RouterError:
    """The `error` of a decision the router refuses to serve (the client gets a 400)."""
    return {"message": message, "status_code": 400, "kind": kind, "backend": None, "after_first_byte": False}


def fallback_backend(
    route: str, backend: str | None, error: RouterError | None, failed: list[str], tools: bool, settings: Settings
) -> BackendName | None:
    """The backend to try after a failed generation, or None when there is none left.

    The chain is the route's own (`COMPLEX`: xAI, then the primary), then, for the
    primary, `PRIMARY_FALLBACK` when set. Only a failure before the first byte reached the
    client may fall back: once a stream has started, switching models would splice two
    answers together.
    """
    if not error or error.get("after_first_byte"):
        return None
    spec = ROUTES[route]
    chain: list[BackendName | None] = []
    if backend == spec.backend:
        chain.append(spec.fallback)
    chain.append(settings.primary_fallback or None)
    for candidate in chain:
        if candidate and candidate != backend and candidate not in failed:
            if tools and spec.takes_tools and not backend_takes_tools(candidate, settings):
                continue  # tools never go to a backend that does not take them
            return candidate
    return None


def carries_tools(params: dict | None) -> bool:
    """Whether a request's parameters offer the model tools (or legacy functions)."""
    return bool(params and (params.get("tools") or params.get("functions")))
