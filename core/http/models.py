"""Model names: what `/v1/models` lists, and what a request's `model` means.

The router serves one virtual model (`VIRTUAL_MODEL`, default `ai-router`) plus aliases that
force a route (`MODEL_ALIASES`, default `ai-router-local=MODERATE,ai-router-cloud=COMPLEX`), so
a user can pick the cloud model from a client's model menu. Any other name is handled as
`MODEL_POLICY` says: `route` (the default) routes it as if it named the virtual model;
`strict` refuses it with 404 `model_not_found`, as OpenAI does.
"""

from __future__ import annotations

from typing import Any

from core.http.errors import OpenAIError
from core.routes import ROUTES
from core.settings import Settings


def model_aliases(settings: Settings) -> dict[str, str]:
    """`MODEL_ALIASES` as {model name: route label}.

    Raises:
        ValueError: an entry that is not `name=ROUTE` with a known route.
    """
    aliases: dict[str, str] = {}
    for item in settings.model_aliases.split(","):
        if not item.strip():
            continue
        name, _, route = item.partition("=")
        route = route.strip().upper()
        if not name.strip() or route not in ROUTES:
            raise ValueError(f"MODEL_ALIASES: {item.strip()!r} is not name=ROUTE (routes: {list(ROUTES)})")
        aliases[name.strip()] = route
    return aliases


def listed_models(settings: Settings) -> list[dict[str, Any]]:
    """The entries of `/v1/models`: the virtual model, its aliases, the embedding model."""
    names = [settings.virtual_model, *model_aliases(settings)]
    if settings.embeddings_configured and settings.embeddings_model:
        names.append(settings.embeddings_model)
    return [{"id": name, "object": "model", "created": 0, "owned_by": "ai-router"} for name in names]


def route_for_model(settings: Settings, model: Any) -> str | None:
    """The route a request's `model` forces (an alias), else None.

    Raises:
        OpenAIError: 404 `model_not_found` for a name the router does not serve, under
            `MODEL_POLICY=strict`.
    """
    aliases = model_aliases(settings)
    if isinstance(model, str) and model in aliases:
        return aliases[model]
    if settings.model_policy == "strict" and model != settings.virtual_model:
        served = [settings.virtual_model, *aliases]
        raise OpenAIError(404, f"The model {model!r} does not exist on this router (MODEL_POLICY=strict); "
                          f"use one of {served}.", code="model_not_found", param="model")
    return None
