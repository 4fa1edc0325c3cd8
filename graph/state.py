"""The routing graph's state: what enters, what the nodes add, what leaves."""

from __future__ import annotations

import operator
from typing import Annotated, Any

from typing_extensions import NotRequired, TypedDict

Message = dict[str, Any]
"""One OpenAI chat message, exactly as the client sent it."""


class InputState(TypedDict):
    """A chat request, as an OpenAI client sends it."""

    messages: list[Message]
    """The conversation; the last user message is what gets routed."""
    params: NotRequired[dict[str, Any]]
    """Every other request field (temperature, max_tokens, tools, response_format…), passed through."""


class Decision(TypedDict, total=False):
    """The routing decision and how it was reached (what `/api/route` dry runs return)."""

    route: str
    """Route label from the route table: SIMPLE, MODERATE, COMPLEX, ENRICH, META, …"""
    route_reason: str
    """Why: `meta rule openwebui.title`, `classifier`, `forced`, `fallback: …`."""
    backend: str
    """Backend that serves the route (`primary`, `xai`, `classifier`), after degradation."""
    degraded: str | None
    """Set when the route could not be served as the table says (e.g. no xAI key), and why."""
    classification_raw: str | None
    """The classifier's answer, verbatim (None when no classifier was asked)."""
    classification_ms: float | None
    """How long the classifier call took."""
    classification_failure: str | None
    """Why the classifier gave no route (failed, timed out, answered garbage); `default_route` decides then."""
    meta_task: str | None
    """For META: the client's task (title, tags, follow_ups, queries, autocomplete…)."""
    local_classification: dict[str, Any] | None
    """The local classifier's prediction: `label`, `probability`, `threshold`, `model_version`,
    `decided` (whether it settled the route), `ms`, and `note` when it could not decide."""


class RouterState(InputState, Decision, total=False):
    """Everything a run knows; nodes return partial updates of it."""

    enrichment: str | None
    """Context fetched by `enrich`, injected into the primary request."""
    citations: list[str]
    """Source URLs found by `enrich`."""
    response: dict[str, Any] | None
    """The backend's completion (non-streaming), or the assembled one (streaming)."""
    served_model: str | None
    """The model name the backend really answered with."""
    error: dict[str, Any] | None
    """Set when generation failed: `{"message", "status_code", "backend", "kind"}`."""
    failed_backends: Annotated[list[str], operator.add]
    """Backends that failed this run before any byte reached the client (for fallbacks)."""
    steps: Annotated[list[dict[str, Any]], operator.add]
    """Backend calls in order, as recorded for the session log."""


class OutputState(Decision, total=False):
    """What a run returns: the decision, the answer, and the calls made."""

    enrichment: str | None
    citations: list[str]
    response: dict[str, Any] | None
    served_model: str | None
    error: dict[str, Any] | None
    steps: list[dict[str, Any]]
