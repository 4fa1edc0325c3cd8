"""The services one router process shares across runs: settings, backend clients, caches, models.

Built once at the edge (the server's lifespan; an eval or a test with its own settings) and
handed to the graph in each run's `RouterContext.services`; nodes never build a client.
A run that brings no services (Studio's `langgraph dev`, LangServe's `/graph` routes) uses the
process's default services: the ones the server installed at start-up, else built from the
environment on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from core.backends.client import Backends, build_backends
from core.caches import Caches, build_caches
from core.context import RouterContext
from core.routing.local_model import LocalModel, load_local_model
from core.settings import Settings
from core.shared.state import SharedState, build_shared


@dataclass
class Services:
    """Everything a run needs besides its own request."""

    settings: Settings
    backends: Backends
    caches: Caches
    shared: SharedState | None = None
    """State shared with other replicas through Redis; None without REDIS_URL (per process)."""

    @cached_property
    def local_model(self) -> LocalModel | None:
        """The local route classifier, read on first use; None when its file cannot be read."""
        return load_local_model(self.settings.local_classifier_model_path)

    async def aclose(self) -> None:
        """Close the backend clients (their pools belong to the event loop that opened them)."""
        await self.backends.aclose()
        if self.shared is not None:
            await self.shared.aclose()


def build_services(settings: Settings) -> Services:
    """Build the services `settings` describe (no network I/O happens here).

    With REDIS_URL set, the breakers and caches are the fleet's (`core.shared`).
    """
    backends, caches = build_backends(settings), build_caches(settings)
    if not settings.redis_url:
        return Services(settings, backends, caches)
    shared, caches = build_shared(settings, backends, caches)
    return Services(settings, backends, caches, shared)


_default: Services | None = None


def install_default_services(services: Services | None) -> None:
    """Make `services` the default for runs that bring none (the server does at start-up)."""
    global _default
    _default = services


def default_services() -> Services:
    """The process's default services, built from the environment on first use (Studio)."""
    global _default
    if _default is None:
        _default = build_services(Settings())
    return _default


def run_scope(context: RouterContext | None) -> tuple[Services, RouterContext]:
    """The services and the resolved context of a run, as its nodes see them."""
    context = context or RouterContext()
    services = context.services or default_services()
    return services, context.with_defaults(services.settings)
