"""The services one router process shares across runs: settings, backend clients, caches, models.

Built once at the edge (the server's lifespan; an eval or a test with its own settings) and
handed to the graph in each run's `RouterContext.services`; nodes never build a client.
A run that brings no services (Studio's `langgraph dev`, LangServe's `/graph` routes) uses the
process's default services: the ones the server installed at start-up, else built from the
environment on first use.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from core.backends.client import Backends, build_backends
from core.caches import Caches, build_caches
from core.context import RouterContext
from core.routing.agreement import AgreementTracker, AutoPolicy, FileBackend, RedisBackend, StateBackend
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
    agreement: AgreementTracker | None = field(default=None)
    """The local classifier's measured agreement with the LLM (shadow and auto); None when off."""

    @cached_property
    def local_model(self) -> LocalModel | None:
        """The local route classifier, read on first use; None when its file cannot be read."""
        return load_local_model(self.settings.local_classifier_model_path)

    @cached_property
    def local_executor(self) -> ThreadPoolExecutor:
        """The one thread that runs local predictions alongside the LLM classifier call."""
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-classifier")

    async def start(self) -> None:
        """Start what runs in the background (the agreement state: load, save, fleet sync)."""
        if self.agreement is not None:
            await self.agreement.start()

    async def aclose(self) -> None:
        """Close the backend clients (their pools belong to the event loop that opened them)."""
        if self.agreement is not None:
            await self.agreement.aclose()  # saves the agreement state (through Redis: before the link closes)
        if "local_executor" in self.__dict__:
            self.local_executor.shutdown(wait=False, cancel_futures=True)
        await self.backends.aclose()
        if self.shared is not None:
            await self.shared.aclose()


def build_services(settings: Settings) -> Services:
    """Build the services `settings` describe (no network I/O happens here).

    With REDIS_URL set, the breakers and caches are the fleet's (`core.shared`).
    """
    backends, caches = build_backends(settings), build_caches(settings)
    if not settings.redis_url:
        return Services(settings, backends, caches, agreement=build_agreement(settings, None))
    shared, caches = build_shared(settings, backends, caches)
    return Services(settings, backends, caches, shared, build_agreement(settings, shared))


def build_agreement(settings: Settings, shared: SharedState | None) -> AgreementTracker | None:
    """The agreement tracker `settings` describe: in Redis with REDIS_URL, else in a file by the sessions.

    Built in shadow mode too, so an operator sees what auto would promote before turning it on.
    """
    if settings.local_classifier not in ("shadow", "auto"):
        return None
    policy = AutoPolicy(
        min_agreement=settings.local_classifier_auto_min_agreement,
        min_samples=settings.local_classifier_auto_min_samples,
        window=settings.local_classifier_auto_window,
        max_age_s=settings.local_classifier_auto_max_age_days * 86400,
        costly_weight=settings.local_classifier_auto_costly_weight,
        audit_share=settings.local_classifier_auto_audit,
    )
    backend: StateBackend
    if shared is not None:
        backend = RedisBackend(shared.link, policy.window, policy.max_age_s)
    else:
        path = settings.local_classifier_auto_state_file or str(
            Path(settings.session_log_dir) / "state" / "local_classifier_agreement.json")
        backend = FileBackend(Path(path))
    tracker = AgreementTracker(policy, backend, labels_file=Path(settings.eval_labels_file),
                               refresh_s=settings.local_classifier_auto_refresh_s)
    if isinstance(backend, FileBackend):
        # Read now (start-up), so the first request already sees the routes promoted before a restart.
        saved = backend.read()
        if saved:
            tracker.load_state(saved)
        tracker.loaded = True
    return tracker


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
