"""One request's session: its id, its clock, and the single record it writes."""

from __future__ import annotations

import time
import uuid
from typing import Any

from langsmith import uuid7

from core.backends.client import elapsed_ms
from core.backends.steps import overhead_ms
from core.sessions.record import SessionData
from core.sessions.store import SessionStore
from core.stats import Stats
from core.usage.budgets import Budgets
from core.usage.ledger import UsageLedger


class RequestSession:
    """Created when a request arrives; finished once, by the edge, when the request is over.

    The ways through a request only say how it went: `state` (the graph run's state, or the
    proxy's), and `fail` for an error status. The HTTP edge finishes the session in one place
    (`core.http.chat.recorded`: after the answer, or after the last byte of a stream), so every
    request leaves exactly one record, whatever happens (success, bad input, a backend failure,
    a crash in a node, a client that disconnects mid-stream).
    """

    def __init__(self, store: SessionStore | None, stats: Stats, endpoint: str, user_agent: str | None,
                 prompt_version: str, *, usage: UsageLedger | None = None, budgets: Budgets | None = None) -> None:
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
        """Who sent it (`core.http.keys.Keys.client_name`), for usage per key."""
        self.synthetic = False
        """Test or benchmark traffic: marked in the record, never a dataset or training example."""
        self.usage = usage
        self.budgets = budgets
        """The per-key budgets the request's tokens count against."""
        self.state: dict[str, Any] = {}
        """The run's state as it stands (a live reference while the graph runs); the record is built from it."""
        self.status_code = 200
        self.error: str | None = None

    def mark_first_byte(self) -> None:
        """Note the time the first streamed byte left for the client."""
        if self.ttft_ms is None:
            self.ttft_ms = elapsed_ms(self.started)

    def fail(self, status_code: int, error: str) -> None:
        """Say how the request failed (the first failure named stands: it is the cause)."""
        if self.error is None:
            self.status_code, self.error = status_code, error

    @property
    def finished(self) -> bool:
        """Whether the record was handed to the store (and the request counted)."""
        return self._finished

    def finish(self) -> None:
        """Count the request in `/stats` and queue its record, from `state` and the outcome (once)."""
        if self._finished:
            return
        self._finished = True
        state, status_code, error = self.state, self.status_code, self.error
        total = elapsed_ms(self.started)
        overhead = overhead_ms(state, total)
        route = state.get("route") or "UNROUTED"
        self._stats.record(
            route, total_ms=total, error=error is not None, streamed=self.stream,
            classification_ms=state.get("classification_ms"), overhead_ms=overhead,
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
