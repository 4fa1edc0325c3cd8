"""How well the local classifier agrees with the LLM classifier on this deployment's own traffic.

`LOCAL_CLASSIFIER=auto` lets the local model decide a route only where it has earned it here.
Each *sample* is one request where the local model predicted a route at or above that route's
threshold and the LLM classifier also classified it (in shadow, in auto below the bar, or as an
audit of a local decision). The reference is a person's label where one exists (the labels file
that `python -m evals.label` writes, or feedback with `expected_route`), else the LLM's answer.
Agreement is backend level (`serving`): SIMPLE and MODERATE are both served by the primary
model, so a mix-up between them costs nothing.

A route is *promoted* (the local model decides it) when, over its recent window, it has at least
`LOCAL_CLASSIFIER_AUTO_MIN_SAMPLES` samples and the Wilson 95 % lower bound of its agreement is
at least `LOCAL_CLASSIFIER_AUTO_MIN_AGREEMENT`; it is *demoted* by the first sample that takes
the bound under the bar. Costly misses (`is_costly`: a prediction that would keep a request away
from xAI or from search, e.g. SIMPLE where the reference says COMPLEX or ENRICH) count
`LOCAL_CLASSIFIER_AUTO_COSTLY_WEIGHT` times (3 by default: `evals.loso.Costs` prices such a miss
at 10 and a needless escalation at 3). So a route that keeps requests on the primary clears a
stricter bar whenever its misses are the costly kind, and the same bar when they are not.

The counts per route are kept incrementally (a sample in, a sample out of the window), so
`observe` and `promoted` cost microseconds on the request path. `AgreementTracker` persists
through a `StateBackend`: a JSON file next to the session records (one process), or Redis
(`REDIS_URL`: the whole fleet shares one window, one set of labels, one counter of calls saved).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import math
import os
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from core.routes import ROUTES

if TYPE_CHECKING:
    from core.shared.link import RedisLink

log = logging.getLogger("ai_router.local_classifier")

Z_95 = 1.959963984540054
"""The two-sided 95 % normal quantile of the Wilson interval."""


def wilson_lower(successes: float, n: int, z: float = Z_95) -> float:
    """The Wilson score interval's lower bound of a proportion (0.0 with no samples).

    With every sample agreeing it is n / (n + z²): at 0.97 a route needs 125 agreeing samples.
    """
    if n <= 0:
        return 0.0
    p = min(max(successes / n, 0.0), 1.0)
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z2 / n))


def serving(route: str) -> tuple[str, str]:
    """What serving `route` means for agreement: its backend and its node (ENRICH searches first)."""
    spec = ROUTES.get(route)
    return (spec.backend, spec.node) if spec is not None else (route, "")


def is_costly(predicted: str, reference: str) -> bool:
    """Whether deciding `predicted` keeps a request the reference sends to xAI or to search away from it."""
    want, got = ROUTES.get(reference), ROUTES.get(predicted)
    if want is None or got is None:
        return False
    return (want.backend == "xai" and got.backend != "xai") or (want.node == "enrich" and got.node != "enrich")


def samples_needed(min_agreement: float, min_samples: int) -> int:
    """Agreeing samples (none disagreeing) a route needs before it can be promoted."""
    n = max(min_samples, 1)
    while wilson_lower(n, n) < min_agreement and n < 1_000_000:
        n += 1
    return n


@dataclass(frozen=True)
class AutoPolicy:
    """The bar a route clears to be decided locally, and how the measurement is kept."""

    min_agreement: float = 0.97
    min_samples: int = 200
    window: int = 1000
    """Latest samples kept per route: older agreement ages out as new traffic comes in."""
    max_age_s: float = 14 * 86400
    """Samples older than this are dropped even when traffic is slow."""
    costly_weight: float = 3.0
    audit_share: float = 0.05


@dataclass
class Sample:
    """One request both classifiers saw: when, which session, what each said."""

    at: float
    session: str
    predicted: str
    teacher: str
    audit: bool = False

    def row(self) -> list[Any]:
        """The compact JSON form (file and Redis)."""
        return [round(self.at, 3), self.session, self.predicted, self.teacher, int(self.audit)]

    @classmethod
    def from_row(cls, row: list[Any]) -> Sample:
        """Read `row()`'s form back."""
        return cls(float(row[0]), str(row[1]), str(row[2]), str(row[3]), bool(row[4]) if len(row) > 4 else False)


@dataclass
class _Route:
    """One route's window and its running counts (kept in step with the window)."""

    samples: deque[Sample] = field(default_factory=deque)
    agree: int = 0
    costly: int = 0
    promoted_since: float | None = None
    saved: int = 0
    """LLM classifier calls this process saved on the route (the fleet's are in Redis)."""


class StateBackend(Protocol):
    """Where the tracker's state outlives the process."""

    async def load(self) -> dict[str, Any] | None:
        """The last saved state (None: nothing saved yet)."""

    async def sync(self, tracker: AgreementTracker) -> None:
        """Save this process's news and read the shared state back (a tick)."""

    async def aclose(self, tracker: AgreementTracker) -> None:
        """A last save on shutdown."""


class AgreementTracker:
    """Per-route agreement of the local model with its reference, and which routes are promoted."""

    def __init__(self, policy: AutoPolicy, backend: StateBackend | None = None, *,
                 labels_file: Path | None = None, refresh_s: float = 1.0,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None) -> None:
        """Start empty; `start()` loads the saved state and begins the background tick.

        Args:
            policy: the promotion bar, window and audit share.
            backend: where state is kept (None: memory only, e.g. in a unit test).
            labels_file: a person's labels by session id (`EVAL_LABELS_FILE`), read when it changes.
            refresh_s: how often the tick saves, reads the fleet's state and the labels file.
            clock: the time source (tests hand in their own).
            rng: chooses which local decisions are audited.
        """
        self.policy = policy
        self.backend = backend
        self.labels_file = labels_file
        self.refresh_s = refresh_s
        self.clock = clock
        self.rng = rng or random.Random()
        self.routes: dict[str, _Route] = {}
        self.labels: dict[str, str] = {}
        """A person's route by session id (only sessions still in some window matter)."""
        self.pending: list[Sample] = []
        """Samples not yet handed to the backend (Redis pushes them, the file saves all)."""
        self.pending_labels: dict[str, str] = {}
        self.dirty = False
        self.fleet_saved: dict[str, int] | None = None
        """Calls saved per route as the store last said (every worker or replica); None before a sync."""
        self.saved_flushed: dict[str, int] = {}
        """Calls saved by this process that the store already counts."""
        self.loaded = False
        """Whether the saved state was read (`load_saved` at start-up, or `start`)."""
        self._labels_mtime: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._audits: set[asyncio.Task[Any]] = set()
        self._ticking = asyncio.Lock()  # one tick at a time: a sync reads, then counts what it flushed

    # --- the measurement ---------------------------------------------------------------

    def _route(self, route: str) -> _Route:
        state = self.routes.get(route)
        if state is None:
            state = self.routes[route] = _Route()
        return state

    def reference(self, sample: Sample) -> str:
        """A person's label for the sample's session, else the LLM's answer."""
        return self.labels.get(sample.session) or sample.teacher

    def _score(self, sample: Sample) -> tuple[int, int]:
        reference = self.reference(sample)
        agree = serving(sample.predicted) == serving(reference)
        return int(agree), int(not agree and is_costly(sample.predicted, reference))

    def _add(self, state: _Route, sample: Sample) -> None:
        state.samples.append(sample)
        agree, costly = self._score(sample)
        state.agree += agree
        state.costly += costly
        while len(state.samples) > self.policy.window:
            self._drop_oldest(state)

    def _drop_oldest(self, state: _Route) -> None:
        old = state.samples.popleft()
        agree, costly = self._score(old)
        state.agree -= agree
        state.costly -= costly

    def observe(self, predicted: str, teacher: str, session: str, *, audit: bool = False) -> None:
        """Count one request where the local model was confident and the LLM classifier answered."""
        self.ensure_started()
        sample = Sample(self.clock(), session, predicted, teacher, audit)
        state = self._route(predicted)
        self._add(state, sample)
        self.pending.append(sample)
        self.dirty = True
        self._update(predicted)

    def label(self, session: str, route: str) -> None:
        """A person's route for a session: it counts instead of the LLM's answer from now on."""
        route = route.upper()
        if self.labels.get(session) == route:
            return
        touched = {name: [s for s in state.samples if s.session == session] for name, state in self.routes.items()}
        touched = {name: samples for name, samples in touched.items() if samples}
        self._rescore(touched, -1)  # take the samples' old scores out...
        self.labels[session] = route
        self._rescore(touched, +1)  # ...and their new ones in
        for name in touched:
            self._update(name)
        self.pending_labels[session] = route
        self.dirty = True

    def _rescore(self, samples: dict[str, list[Sample]], sign: int) -> None:
        for name, rows in samples.items():
            state = self.routes[name]
            for sample in rows:
                agree, costly = self._score(sample)
                state.agree += sign * agree
                state.costly += sign * costly

    def figures(self, route: str) -> dict[str, Any]:
        """Samples, agreement, its weighted Wilson lower bound, costly misses of one route."""
        state = self.routes.get(route) or _Route()
        n = len(state.samples)
        misses = n - state.agree
        # A costly miss counts `costly_weight` times: it already counts once among the misses.
        weighted = max(0.0, state.agree - (self.policy.costly_weight - 1) * state.costly)
        return {
            "samples": n,
            "agreeing": state.agree,
            "misses": misses,
            "costly_misses": state.costly,
            "agreement": round(state.agree / n, 4) if n else None,
            "wilson_lower": round(wilson_lower(weighted, n), 4),
        }

    def meets_bar(self, route: str) -> bool:
        """Whether `route`'s recent agreement clears the bar now."""
        state = self.routes.get(route)
        if state is None or len(state.samples) < self.policy.min_samples:
            return False
        weighted = max(0.0, state.agree - (self.policy.costly_weight - 1) * state.costly)
        return wilson_lower(weighted, len(state.samples)) >= self.policy.min_agreement

    def _update(self, route: str) -> None:
        """Promote or demote `route` after its counts changed."""
        state = self._route(route)
        ok = self.meets_bar(route)
        if ok and state.promoted_since is None:
            state.promoted_since = self.clock()
            log.info("local classifier promoted on %s: %s", route, self.figures(route))
            self.dirty = True
        elif not ok and state.promoted_since is not None:
            state.promoted_since = None
            log.warning("local classifier demoted on %s: %s", route, self.figures(route))
            self.dirty = True

    def promoted(self, route: str) -> bool:
        """Whether the local model decides `route` now."""
        self.ensure_started()
        state = self.routes.get(route)
        return state is not None and state.promoted_since is not None

    def any_promoted(self) -> bool:
        """Whether any route is promoted (else auto behaves as shadow)."""
        self.ensure_started()
        return any(state.promoted_since is not None for state in self.routes.values())

    def count_saved(self, route: str) -> None:
        """One LLM classifier call saved: the local model decided a promoted route."""
        self._route(route).saved += 1
        self.dirty = True

    def calls_saved(self, route: str) -> int:
        """LLM calls saved on `route`: the store's count (all workers or replicas) plus this process's news."""
        state = self.routes.get(route) or _Route()
        if self.fleet_saved is None:
            return state.saved
        return self.fleet_saved.get(route, 0) + state.saved - self.saved_flushed.get(route, 0)

    def should_audit(self) -> bool:
        """Whether this promoted decision is also classified by the LLM (off the request path)."""
        return self.rng.random() < self.policy.audit_share

    def audit(self, work: Any) -> None:
        """Run an audit coroutine in the background; it must call `observe(..., audit=True)` itself."""
        task = asyncio.get_running_loop().create_task(work)
        self._audits.add(task)
        task.add_done_callback(self._audits.discard)

    # --- state: load, age out, snapshot ------------------------------------------------

    def replace(self, samples: Mapping[str, Iterable[Sample]], labels: dict[str, str],
                promoted_since: dict[str, float] | None = None) -> None:
        """Take a whole state (loaded from disk or read from the fleet) and recount every route."""
        self.labels = dict(labels)
        previous = dict(self.routes)
        self.routes = {}
        for route, rows in samples.items():
            state = self._route(route)
            old = previous.get(route)
            if old is not None:
                state.saved, state.promoted_since = old.saved, old.promoted_since
            for sample in rows:
                self._add(state, sample)
        for route, old in previous.items():
            if route not in self.routes:
                self.routes[route] = _Route(saved=old.saved, promoted_since=old.promoted_since)
        for route, since in (promoted_since or {}).items():
            if route in self.routes and self.meets_bar(route):
                self.routes[route].promoted_since = since
        for route in list(self.routes):
            self._update(route)

    def age_out(self) -> None:
        """Drop samples older than the policy's age limit, then re-check every route."""
        oldest = self.clock() - self.policy.max_age_s
        for route, state in self.routes.items():
            dropped = False
            while state.samples and state.samples[0].at < oldest:
                self._drop_oldest(state)
                dropped = True
            if dropped:  # not `dirty`: a reader (an eval replay) must never write the state back
                self._update(route)

    def sessions_in_window(self) -> set[str]:
        """Every session some window still holds."""
        return {s.session for state in self.routes.values() for s in state.samples}

    def to_state(self) -> dict[str, Any]:
        """Everything worth keeping, as JSON-ready data."""
        live = self.sessions_in_window()
        return {
            "format": "ai-router-agreement-v1",
            "samples": {route: [s.row() for s in state.samples] for route, state in self.routes.items()},
            "labels": {sid: route for sid, route in self.labels.items() if sid in live},
            "promoted_since": {r: s.promoted_since for r, s in self.routes.items() if s.promoted_since is not None},
            "saved": {route: state.saved for route, state in self.routes.items()},
        }

    def load_state(self, data: dict[str, Any]) -> None:
        """Take a state written by `to_state` (a file from an earlier run)."""
        samples = {route: [Sample.from_row(row) for row in rows] for route, rows in (data.get("samples") or {}).items()}
        for route, count in (data.get("saved") or {}).items():
            self._route(route).saved = self.saved_flushed[route] = int(count)
        self.replace(samples, data.get("labels") or {}, data.get("promoted_since") or {})
        self.dirty = False

    def snapshot(self) -> dict[str, Any]:
        """Per route: samples, agreement, Wilson lower bound, promoted and since when, calls saved.

        What `/stats` shows under `local_classifier.agreement`, and what a review page can render.
        """
        self.ensure_started()
        policy = self.policy
        routes = {}
        for route in sorted(self.routes):
            state = self.routes[route]
            since = state.promoted_since
            routes[route] = {
                **self.figures(route),
                "promoted": since is not None,
                "promoted_since": since,
                "promoted_since_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)) if since else None,
                "llm_calls_saved": self.calls_saved(route),
                "audits": sum(sample.audit for sample in state.samples),  # in the window
            }
        return {
            "policy": {
                "min_agreement": policy.min_agreement, "min_samples": policy.min_samples,
                "window": policy.window, "max_age_days": round(policy.max_age_s / 86400, 3),
                "costly_weight": policy.costly_weight, "audit_share": policy.audit_share,
                "agreeing_samples_needed": samples_needed(policy.min_agreement, policy.min_samples),
            },
            "store": getattr(self.backend, "kind", None),
            "shared": getattr(self.backend, "kind", None) == "redis",
            "labels": len(self.labels),
            "routes": routes,
        }

    # --- the person's labels file ------------------------------------------------------

    def read_labels_file(self) -> dict[str, str] | None:
        """The labels file's routes by session id when it changed since the last read (blocking I/O)."""
        path = self.labels_file
        if path is None:
            return None
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        if mtime == self._labels_mtime:
            return None
        self._labels_mtime = mtime
        try:
            data = json.loads(path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError) as error:
            log.warning("labels file %s not read: %s", path, error)
            return None
        if not isinstance(data, dict):
            return None
        return {sid: str(entry["expected_route"]).upper() for sid, entry in data.items()
                if isinstance(entry, dict) and entry.get("expected_route")}

    def apply_labels(self, labels: dict[str, str]) -> None:
        """Apply a person's labels to the sessions still in a window."""
        live = self.sessions_in_window()
        for session, route in labels.items():
            if session in live:
                self.label(session, route)

    # --- the background tick -----------------------------------------------------------

    def ensure_started(self) -> None:
        """Start the background tick if it is not running (the first call inside an event loop does)."""
        if self._task is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a unit test, a script): nothing runs in the background
            return
        self._task = loop.create_task(self._background())

    async def start(self) -> None:
        """Load the saved state (unless already loaded), then tick in the background."""
        if self.backend is not None and not self.loaded:
            self.loaded = True
            data = await self.backend.load()
            if data:
                self.load_state(data)
        self.ensure_started()

    async def tick(self) -> None:
        """One round: age out, read the labels file if it changed, sync with the backend."""
        async with self._ticking:
            self.age_out()
            labels = await asyncio.to_thread(self.read_labels_file)
            if labels:
                self.apply_labels(labels)
            if self.backend is not None:
                await self.backend.sync(self)

    async def _background(self) -> None:
        while True:
            try:
                await self.tick()  # at once first: a replica joining a fleet reads its state now
            except Exception as exc:  # noqa: BLE001 - the loop must outlive one bad tick
                log.warning("local classifier agreement tick failed: %r", exc)
            await asyncio.sleep(self.refresh_s)

    async def aclose(self) -> None:
        """Stop the tick and the audits; save once more."""
        for task in [*self._audits, *([self._task] if self._task else [])]:
            task.cancel()
        for task in [*self._audits, *([self._task] if self._task else [])]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = None
        if self.backend is not None:
            async with self._ticking:
                await self.backend.aclose(self)


class FileBackend:
    """The state in one JSON file next to the session records, shared by the workers of one host.

    Each tick that has news locks the file (`fcntl.flock`), reads it, appends this process's new
    samples, labels and calls saved, trims each route to the window, writes it atomically and
    takes the merged state back, the way `RedisBackend` does with Redis: several workers
    (`WORKERS=N`) pool their measurements, and a restart finds them all.
    """

    kind = "file"

    def __init__(self, path: Path, window: int = 1000) -> None:
        """Remember the file; nothing is read until `read` or `load`."""
        self.path = path
        self.window = window
        self._seen: float | None = None

    def _read(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            log.warning("local classifier agreement state %s not read (%s): starting empty", self.path, error)
            return None
        return data if isinstance(data, dict) else None

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(orjson.dumps(data))
        temporary.replace(self.path)  # a crash mid-write leaves the previous state, never half of one

    def _mtime(self) -> float | None:
        try:
            return self.path.stat().st_mtime_ns / 1e9
        except OSError:
            return None

    def read(self) -> dict[str, Any] | None:
        """The saved state, if any (blocking: read once at start-up)."""
        return self._read()

    async def load(self) -> dict[str, Any] | None:
        """The saved state, if any."""
        return await asyncio.to_thread(self.read)

    def _exchange(self, pending: list[Sample], labels: dict[str, str], saved: dict[str, int],
                  promoted: dict[str, float], changed: bool) -> dict[str, Any]:
        """Under the file lock: merge this process's news into the file; return the merged state."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.with_name(f".{self.path.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read() or {}
            if changed:
                samples: dict[str, list[Any]] = data.get("samples") or {}
                for sample in pending:
                    samples.setdefault(sample.predicted, []).append(sample.row())
                samples = {route: rows[-self.window:] for route, rows in samples.items()}
                live = {row[1] for rows in samples.values() for row in rows}
                merged_labels = {**(data.get("labels") or {}), **labels}
                totals = dict(data.get("saved") or {})
                for route, count in saved.items():
                    totals[route] = int(totals.get(route, 0)) + count
                known = data.get("promoted_since") or {}
                data = {
                    "format": "ai-router-agreement-v1",
                    "samples": samples,
                    "labels": {sid: route for sid, route in merged_labels.items() if sid in live},
                    "promoted_since": {route: known.get(route, since) for route, since in promoted.items()},
                    "saved": totals,
                }
                self._write(data)
            self._seen = self._mtime()
            return data

    async def sync(self, tracker: AgreementTracker) -> None:
        """Merge this process's news into the file (when there is any) and take the merged state back."""
        changed = tracker.dirty
        if not changed and self._mtime() == self._seen:
            return  # nothing new here, nothing written by another worker
        pending, labels = list(tracker.pending), dict(tracker.pending_labels)
        saved = {route: state.saved - tracker.saved_flushed.get(route, 0) for route, state in tracker.routes.items()}
        promoted = {route: state.promoted_since for route, state in tracker.routes.items()
                    if state.promoted_since is not None}
        tracker.dirty = False
        try:
            data = await asyncio.to_thread(self._exchange, pending, labels, saved, promoted, changed)
        except OSError as error:
            tracker.dirty = True
            log.warning("local classifier agreement state not written to %s: %s", self.path, error)
            return
        del tracker.pending[:len(pending)]
        for session in labels:
            tracker.pending_labels.pop(session, None)
        for route, count in saved.items():
            tracker.saved_flushed[route] = tracker.saved_flushed.get(route, 0) + count
        samples = {route: [Sample.from_row(row) for row in rows] for route, rows in (data.get("samples") or {}).items()}
        for sample in tracker.pending:  # observed during this exchange: written on the next tick
            samples.setdefault(sample.predicted, []).append(sample)
        tracker.replace(samples, {**(data.get("labels") or {}), **tracker.pending_labels},
                        {route: float(since) for route, since in (data.get("promoted_since") or {}).items()})
        tracker.fleet_saved = {route: int(n) for route, n in (data.get("saved") or {}).items()}

    async def aclose(self, tracker: AgreementTracker) -> None:
        """Merge what is still pending, a last time."""
        tracker.dirty = True
        await self.sync(tracker)


class RedisBackend:
    """The fleet's state in Redis: one list of samples per route, the labels, the calls saved.

    `kind` "redis": `/stats` says the figures are the fleet's.

    Each replica pushes its own samples and labels, then reads the whole fleet's window back, so
    every replica promotes and demotes on the same numbers (at most one tick apart). While Redis
    is down the replica keeps measuring on its own and pushes what it gathered once it is back.
    """

    kind = "redis"

    def __init__(self, link: RedisLink, window: int, ttl_s: float) -> None:
        """Keys live under the link's prefix (`<prefix>:agreement:*`) and fade `ttl_s` after the last write."""
        self.link = link
        self.window = window
        self.ttl = max(60, int(ttl_s))

    def _key(self, *parts: str) -> str:
        return self.link.key("agreement", *parts)

    async def load(self) -> dict[str, Any] | None:
        """Nothing to load: the first tick reads the fleet's state."""
        return None

    async def sync(self, tracker: AgreementTracker) -> None:
        """Push this replica's samples, labels and counts; read the fleet's back and recount."""
        pending, labels = list(tracker.pending), dict(tracker.pending_labels)
        saved = {route: state.saved - tracker.saved_flushed.get(route, 0) for route, state in tracker.routes.items()}
        routes = sorted({*tracker.routes, *(s.predicted for s in pending)})

        async def exchange(client: Any) -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                for sample in pending:
                    key = self._key("samples", sample.predicted)
                    pipe.rpush(key, orjson.dumps(sample.row()))
                for route in {s.predicted for s in pending}:
                    pipe.ltrim(self._key("samples", route), -self.window, -1)
                    pipe.expire(self._key("samples", route), self.ttl)
                    pipe.sadd(self._key("routes"), route)
                    pipe.expire(self._key("routes"), self.ttl)
                if labels:
                    pipe.hset(self._key("labels"), mapping=labels)
                    pipe.expire(self._key("labels"), self.ttl)
                for route, count in saved.items():
                    if count:
                        pipe.hincrby(self._key("saved"), route, count)
                if any(saved.values()):
                    pipe.expire(self._key("saved"), self.ttl)
                pipe.hgetall(self._key("labels"))
                pipe.hgetall(self._key("saved"))
                pipe.hgetall(self._key("promoted"))
                for route in routes:
                    pipe.lrange(self._key("samples", route), 0, -1)
                pipe.smembers(self._key("routes"))
                return list(await pipe.execute())

        result = await self.link.call(exchange, None)
        if result is None:
            return  # Redis is down: keep measuring here; the pending samples go out on a later tick
        del tracker.pending[:len(pending)]
        for session in labels:
            tracker.pending_labels.pop(session, None)
        for route, count in saved.items():
            tracker.saved_flushed[route] = tracker.saved_flushed.get(route, 0) + count
        tail = result[-(len(routes) + 4):]
        fleet_labels, fleet_saved, fleet_promoted = (_decoded(tail[i]) for i in range(3))
        lists = dict(zip(routes, tail[3:3 + len(routes)], strict=True))
        other = sorted(_text(route) for route in tail[-1] or ())
        missing = [route for route in other if route not in lists]
        if missing:
            extra = await self.link.call(lambda client: _lranges(client, [self._key("samples", r) for r in missing]),
                                         None)
            if extra is not None:
                lists.update(zip(missing, extra, strict=True))
        samples = {route: [Sample.from_row(orjson.loads(raw)) for raw in rows or ()] for route, rows in lists.items()}
        for sample in tracker.pending:  # observed during this exchange: counted here until the next tick pushes it
            samples.setdefault(sample.predicted, []).append(sample)
        tracker.replace(samples, {**fleet_labels, **tracker.pending_labels},
                        {route: float(since) for route, since in fleet_promoted.items()})
        tracker.fleet_saved = {route: int(count) for route, count in fleet_saved.items()}
        promoted = {route: state.promoted_since for route, state in tracker.routes.items()
                    if state.promoted_since is not None}
        stale = [route for route in fleet_promoted if route not in promoted]

        async def note(client: Any) -> None:
            async with client.pipeline(transaction=False) as pipe:
                for route, since in promoted.items():
                    pipe.hsetnx(self._key("promoted"), route, since)
                if stale:
                    pipe.hdel(self._key("promoted"), *stale)
                pipe.expire(self._key("promoted"), self.ttl)
                await pipe.execute()

        if promoted or stale:
            await self.link.call(note, None)

    async def aclose(self, tracker: AgreementTracker) -> None:
        """Push what is still pending."""
        await self.sync(tracker)


async def _lranges(client: Any, keys: list[str]) -> list[Any]:
    async with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.lrange(key, 0, -1)
        return list(await pipe.execute())


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decoded(mapping: Any) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in (mapping or {}).items()}


def agreement_metrics(snapshot: dict[str, Any], replica: str | None = None) -> bytes:
    """Prometheus lines for `AgreementTracker.snapshot()`: per route samples, agreement, bound, promotion."""
    where = f'replica="{replica}",' if replica else ""
    gauges = (
        ("samples", "Recent samples (confident local prediction + LLM or person's answer) per route.", "samples"),
        ("agreement", "Backend-level agreement of those samples with their reference.", "agreement"),
        ("wilson_lower", "Wilson 95 % lower bound of the agreement (costly misses weighted).", "wilson_lower"),
        ("promoted", "Whether the local classifier decides the route (LOCAL_CLASSIFIER=auto).", "promoted"),
        ("promoted_since_seconds", "When the route was promoted (epoch seconds; 0: not promoted).", "promoted_since"),
    )
    lines = []
    routes = snapshot.get("routes") or {}
    for name, help_text, key in gauges:
        metric = f"ai_router_local_classifier_{name}"
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
        for route, figures in routes.items():
            value = figures.get(key)
            lines.append(f'{metric}{{{where}route="{route}"}} {float(value or 0):g}')
    metric = "ai_router_local_classifier_llm_calls_saved_total"
    lines += [f"# HELP {metric} LLM classifier calls saved by promoted local decisions.", f"# TYPE {metric} counter"]
    for route, figures in routes.items():
        lines.append(f'{metric}{{{where}route="{route}"}} {int(figures.get("llm_calls_saved") or 0)}')
    return ("\n".join(lines) + "\n").encode()
