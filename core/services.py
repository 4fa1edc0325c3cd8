"""The one home of what a router process holds: settings, clients, caches, counts, budgets, records.

Built once at the edge (the server's lifespan, `graph/studio.py` for `langgraph dev`, an eval
or a test with its own settings) and handed on from there: to the graph in each run's
`RouterContext.services`, to the HTTP edge through `core.http.home.services_of`. Nodes never
build a client, and nothing below the edge looks a service up by name.

A run that brings no services (Studio's `langgraph dev`, LangServe's `/graph` routes) uses the
process's default services: the ones the server installed at start-up, else built from the
environment on first use.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from core.backends.client import Backends, build_backends
from core.caches import Caches, build_caches
from core.context import RouterContext
from core.redact import known_secrets
from core.routes import ROUTES
from core.routing.agreement import AgreementTracker, AutoPolicy, FileBackend, RedisBackend, StateBackend
from core.routing.local_model import LocalModel, load_local_model
from core.sessions.conversations import ConversationStore
from core.sessions.store import SessionStore
from core.settings import Settings
from core.shared.ratelimit import RateLimiter
from core.shared.state import SharedState, build_shared
from core.stats import Stats
from core.usage.budgets import Budgets
from core.usage.ledger import UsageLedger, parse_prices

MAX_RATE_BUCKETS = 10_000
"""Distinct clients the rate limiter remembers (see `core.shared.ratelimit`)."""


@dataclass
class Services:
    """Everything a process shares across requests and runs; one instance per process."""

    settings: Settings
    backends: Backends
    caches: Caches
    shared: SharedState | None = None
    """State shared with other replicas through Redis; None without REDIS_URL (per process)."""
    stats: Stats = field(default_factory=Stats)
    """Counts and latencies per route (`/stats`, `/metrics`)."""
    usage: UsageLedger | None = None
    """Tokens and money per route, backend and client key."""
    budgets: Budgets | None = None
    """Per-key daily budgets, counted from the usage of finished requests."""
    rate_limiter: RateLimiter | None = None
    """Requests per minute per client; None while RATE_LIMIT_PER_MINUTE is 0 (the default)."""
    sessions: SessionStore | None = None
    """Where session records and traces go; set by `start` (None with SESSION_LOGS=false or before it)."""
    prompt_version: str = ""
    """Digest of the prompts and the route table behind every decision, so evals see what changed."""
    conversations: ConversationStore | None = None
    """Stored Responses API answers (`previous_response_id`, GET/DELETE /v1/responses/{id})."""
    agreement: AgreementTracker | None = None
    """The local classifier's measured agreement with the LLM (shadow and auto); None when off."""

    @cached_property
    def local_model(self) -> LocalModel | None:
        """The local route classifier, read on first use; None when its file cannot be read."""
        return load_local_model(self.settings.local_classifier_model_path)

    @cached_property
    def local_executor(self) -> ThreadPoolExecutor:
        """The one thread that runs local predictions alongside the LLM classifier call."""
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-classifier")

    async def start(self, sessions: SessionStore | None) -> None:
        """Open `sessions` (the writer process), the shared state and the agreement state (the lifespan calls this)."""
        self.sessions = sessions
        if sessions is not None:
            await sessions.open()
        if self.shared is not None:
            await self.shared.start(sessions)
        if self.agreement is not None:
            await self.agreement.start()  # the local classifier's agreement: load, save, fleet sync

    def reload_prompts(self) -> None:
        """Read the prompts again after an edit in the operator's folder (PROMPTS_DIR), and rename them."""
        RouterContext.from_settings(self.settings).prompts.reload()
        self.prompt_version = prompts_version(self.settings)

    async def aclose(self) -> None:
        """Flush the session records, save the agreement, then close the backend clients and the shared link."""
        if self.sessions is not None:
            await self.sessions.aclose()  # in-flight records reach the disk before exit
        if self.agreement is not None:
            await self.agreement.aclose()  # saves the agreement state (through Redis: before the link closes)
        if "local_executor" in self.__dict__:
            self.local_executor.shutdown(wait=False, cancel_futures=True)
        await self.backends.aclose()  # their pools belong to the event loop that opened them
        if self.shared is not None:
            await self.shared.aclose()


def build_services(settings: Settings) -> Services:
    """Build the services `settings` describe (no network I/O, no process started here).

    With REDIS_URL set, the breakers, caches, rate-limit windows and budgets are the fleet's
    (`core.shared`). The session store starts a writer process, so it is made by
    `session_store` and handed to `Services.start` by the server alone.
    """
    backends, caches = build_backends(settings), build_caches(settings)
    shared = None
    if settings.redis_url:
        shared, caches = build_shared(settings, backends, caches)
    link = shared.link if shared is not None else None
    stats = Stats()
    usage = UsageLedger(stats, parse_prices(settings.usage_prices), settings.tz)
    limiter = None
    if settings.rate_limit_per_minute > 0:
        limiter = RateLimiter(settings.rate_limit_per_minute, max(1, settings.rate_limit_burst), link,
                              MAX_RATE_BUCKETS)
        if shared is not None:
            shared.rate_limiter = limiter  # the fleet's /stats adds up every replica's counts
    return Services(
        settings, backends, caches, shared, stats=stats, usage=usage,
        budgets=Budgets(settings, usage.day, link=link), rate_limiter=limiter,
        prompt_version=prompts_version(settings),
        conversations=ConversationStore(settings.responses_store_max_entries, settings.responses_store_max_age_s,
                                        link),
        agreement=build_agreement(settings, shared),
    )


def prompts_version(settings: Settings) -> str:
    """Digest of the prompts a run reads (shipped, with the operator's edits over them) and the route table."""
    prompts = RouterContext.from_settings(settings).prompts
    return hashlib.sha256((prompts.digest + repr(sorted(ROUTES.items()))).encode()).hexdigest()[:16]


def session_store(settings: Settings) -> SessionStore | None:
    """The session store `settings` ask for (None with SESSION_LOGS=false); starts its writer process."""
    if not settings.session_logs:
        return None
    return SessionStore(
        Path(settings.session_log_dir),
        Path(settings.trace_log_dir) if settings.traces == "local" else None,
        tz=settings.tz,
        content_mode=settings.session_log_content,
        truncate_chars=settings.session_log_truncate_chars,
        max_age_days=settings.session_log_max_age_days,
        max_files=settings.session_log_max_files,
        secrets=known_secrets(),
    )


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
        backend = FileBackend(Path(path), policy.window)
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
