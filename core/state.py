"""The routing graph's state: what enters, what the nodes add, what leaves."""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired, get_args, get_origin, get_type_hints

from typing_extensions import TypedDict

Message = dict[str, Any]
"""One OpenAI chat message, exactly as the client sent it."""


ROUTER_REQUEST_FIELDS = frozenset({"route", "dry_run"})
"""Fields of the router's own API (`/api/route`): never generation parameters, never forwarded."""
SET_BY_ROUTER = frozenset({"model", "stream", "stream_options"})
"""Fields the router writes itself into every backend request (the client's are replaced)."""


def request_params(body: dict[str, Any]) -> dict[str, Any]:
    """A chat request's generation parameters (`InputState.params`).

    Every field but the conversation, the model, the delivery mode and the router's own fields.
    """
    skip = ROUTER_REQUEST_FIELDS | {"messages", "model", "stream"}
    return {k: v for k, v in body.items() if k not in skip}


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
    path: str
    """The path as sessions and headers name it: `meta`, `enrich`, or the serving backend."""
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


class RouterError(TypedDict, total=False):
    """Why a run produced no answer: a refused decision (400) or a failed backend call."""

    message: str
    status_code: int
    kind: str
    """`backend_not_configured`, `tools_not_supported`, or the backend failure's kind."""
    backend: str | None
    retry_after: float | None
    after_first_byte: bool
    """Whether bytes had already reached the client (then no fallback may follow)."""


class DecisionUpdate(Decision, total=False):
    """What deciding a route adds to the state: the decision, or a refusal as `error`."""

    error: RouterError


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
    error: RouterError | None
    """Set when the decision was refused or generation failed."""
    fallback_to: str | None
    """Set with a generation `error`: the backend to try next (the `fall_back` edge), if any is left."""
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
    error: RouterError | None
    steps: list[dict[str, Any]]


DECISION_KEYS: tuple[str, ...] = tuple(Decision.__annotations__)
"""The fields of a decision, in declaration order (what dry runs, caches and replays project)."""


def decision_of(state: dict[str, Any]) -> dict[str, Any]:
    """The decision fields of a run's state (missing ones as None)."""
    return {key: state.get(key) for key in DECISION_KEYS}


def accumulated_keys() -> frozenset[str]:
    """State keys with a reducer (`Annotated[list, operator.add]`): updates add to them."""
    hints = get_type_hints(RouterState, include_extras=True)
    return frozenset(
        key for key, hint in hints.items() if get_origin(hint) is Annotated and operator.add in get_args(hint)
    )
