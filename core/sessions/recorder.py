"""One request's session: its id, its clock, and the single record it writes."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from langsmith import uuid7

from core.backends.client import elapsed_ms
from core.backends.steps import overhead_ms
from core.sessions.record import SessionData
from core.sessions.store import SessionStore
from core.stats import Stats

if TYPE_CHECKING:
    from core.usage import UsageLedger


class RequestSession:
    """Created when a request arrives; `finish` is called on every way out, and writes once.

    Whatever happens (success, bad input, backend failure, a crash in a node, a client
    that disconnects mid-stream), the request's handler or stream ends by calling
    `finish`, and only the first call counts: exactly one record per request.
    """

    def __init__(self, store: SessionStore | None, stats: Stats, endpoint: str, user_agent: str | None,
                 prompt_version: str) -> None:
        """Start the clock and name the session."""
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.trace_id = str(uuid7()) if store is not None and store.trace_dir is not None else None
        self.started = time.perf_counter()
        self.started_at = time.time()
        self.endpoint = endpoint
        self.user_agent = user_agent
        self.prompt_version = prompt_version
        self.body: dict[str, Any] | None = None
        self.stream = False
        self.dry_run = False
        self.ttft_ms: float | None = None
        self.node_times: list[tuple[str, float, dict[str, Any]]] = []
        self._store = store
        self._stats = stats
        self._finished = False
        self.client = "anonymous"
        """Who sent it (`core.usage.client_name`), for usage per key."""
        self.synthetic = False
        """Test or benchmark traffic: marked in the record, never a dataset or training example."""
        self.usage: UsageLedger | None = None
        self.budgets: Any = None
        """The per-key budgets (`core.http.budgets.Budgets`) the request's tokens count against."""

    def mark_first_byte(self) -> None:
        """Note the time the first streamed byte left for the client."""
        if self.ttft_ms is None:
            self.ttft_ms = elapsed_ms(self.started)

    def finish(self, state: dict[str, Any], *, status_code: int, error: str | None) -> None:
        """Count the request in `/stats` and queue its record (first call only)."""
        if self._finished:
            return
        self._finished = True
        total = elapsed_ms(self.started)
        overhead = overhead_ms(state, total)
        route = state.get("route") or "UNROUTED"
        self._stats.record(
            route, total_ms=total, error=error is not None, streamed=self.stream,
            classification_ms=state.get("classification_ms"), overhead_ms=overhead,
            # Refused before any routing for the client's own fault: not a route's error.
            client_error=error is not None and not state.get("route") and 400 <= status_code < 500,
        )
        usage = None
        if self.usage is not None:
            usage = self.usage.record(self.client, route, state.get("steps") or [])
            if self.budgets is not None:
                self.budgets.spend_tokens(self.client, usage.total_tokens)
        if state.get("failed_backends") and error is None:
            self._stats.fallbacks += 1
        self._stats.count_model_mismatches(state.get("steps") or [])
        if self._store is None:
            return
        self._store.submit(SessionData(
            session_id=self.id, started_at=self.started_at, endpoint=self.endpoint, user_agent=self.user_agent,
            body=self.body, state=state, total_ms=total, status_code=status_code, error=error,
            stream=self.stream, dry_run=self.dry_run, ttft_ms=self.ttft_ms, node_times=self.node_times,
            prompt_version=self.prompt_version, trace_id=self.trace_id, client_key=self.client,
            synthetic=self.synthetic, overhead_ms=overhead, usage=usage.as_record() if usage else None,
        ))
