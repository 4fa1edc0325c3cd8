"""The review desk's pages and JSON API (server-rendered Jinja2, a little plain JavaScript).

Pages: overview, sessions (filters, paging on the server, bulk labels), a session in full,
evals (background jobs with progress, past runs, their reports), review (a proposed prompt edit,
its diff and the eval before and after; apply behind the gate; history and revert). The JSON
API under `/review/api/` serves the same data; the README lists it.

Reads go through the SQLite index (`index.py`), which a child process keeps in step with the
records; a session's detail is read from its JSON record, the source of truth. Labels are
written to the labels file (`core.sessions.labels`), feedback through the session writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from core.http.desk.auth import (
    COOKIE_PATH,
    CSRF_COOKIE,
    SESSION_COOKIE,
    Verdict,
    csrf_ok,
    csrf_token,
    issue_cookie,
    judge,
    judge_request,
)
from core.http.desk.index import Filters, IndexReader, index_path, put_labels
from core.http.desk.jobs import Job, JobRunner
from core.http.errors import error_body
from core.http.keys import Keys
from core.redact import redact
from core.routes import ROUTES
from core.sessions.labels import load_labels, save_labels, set_label
from core.sessions.reading import read_jsonl, read_record
from core.settings import Settings
from prompts.overlay import PromptOverlay, ShippedPromptsError

log = logging.getLogger("ai_router.desk")

HERE = Path(__file__).parent
WINDOWS = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "all": None}
_ID = re.compile(r"^[\w.-]{1,200}$")
_RUN = re.compile(r"^[\w.-]{1,100}$")
LOGIN_FAILURES = 10
"""Wrong keys one address may type into the login form per minute before it gets 429."""
LOGIN_WINDOW_S = 60.0
PROMPT_WATCH_S = 3.0
"""How often the desk looks for prompt edits made elsewhere (another worker, the CLI)."""


@dataclass
class DeskDeps:
    """What the desk is built from: handed in, never read from process globals."""

    settings: Settings
    keys: Keys | None = None
    """Who may use it: the router's one key check (default: built from `settings`)."""
    add_feedback: Callable[[str, dict[str, Any]], Awaitable[bool]] | None = None
    """Attach feedback to a session record through the session writer (None: feedback is read-only)."""
    on_prompts_changed: Callable[[], None] | None = None
    """Called after an overlay edit or revert, so the router reads its prompts again."""
    local_classifier: Callable[[], dict[str, Any]] | None = None
    """The local classifier's mode and measured agreement per route (what `/stats` shows), for the overview."""
    cwd: Path | None = None
    """Working folder of the jobs' child processes (default: this process's)."""
    python: str = sys.executable
    job_env: dict[str, str] = field(default_factory=dict)
    """Extra environment for the jobs (the desk already passes its folders)."""


def _abs(path: str | Path, cwd: Path | None) -> Path:
    path = Path(path)
    return path if path.is_absolute() else (cwd or Path.cwd()) / path


class Desk:
    """The desk's state (index, jobs, prompt overlay) and its routes."""

    def __init__(self, deps: DeskDeps) -> None:
        """Build the desk from `deps`; nothing runs until a request comes."""
        settings = deps.settings
        self.deps = deps
        self.settings = settings
        self.keys = deps.keys or Keys(settings)
        cwd = deps.cwd
        self.session_dir = _abs(settings.session_log_dir, cwd)
        self.trace_dir = _abs(settings.trace_log_dir, cwd) if settings.traces == "local" else None
        self.labels_file = _abs(settings.eval_labels_file, cwd)
        self.index_file = index_path(self.session_dir)
        self.reader = IndexReader(self.index_file)
        self.work_dir = _abs(settings.review_desk_work_dir, cwd)
        self.evals_dir = self.work_dir / "evals"
        self.reviews_dir = self.work_dir / "reviews"
        self.overlay: PromptOverlay | None = None
        self.overlay_note = ""
        if settings.prompts_dir:
            try:
                self.overlay = PromptOverlay(_abs(settings.prompts_dir, cwd))
            except ShippedPromptsError as error:
                self.overlay_note = str(error)
        else:
            self.overlay_note = "PROMPTS_DIR is empty: edits cannot be applied (the shipped prompts are never written)."
        env = {
            "SESSION_LOG_DIR": str(self.session_dir),
            "TRACE_LOG_DIR": str(self.trace_dir or _abs(settings.trace_log_dir, cwd)),
            "EVAL_LABELS_FILE": str(self.labels_file),
            **({"PROMPTS_DIR": str(self.overlay.folder)} if self.overlay is not None else {}),
            **deps.job_env,
        }
        self.jobs = JobRunner(self.work_dir, env, cwd=cwd, python=deps.python, on_done=self._job_done)
        self.templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                                     autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
        self.templates.globals.update(routes=list(ROUTES), windows=list(WINDOWS))
        self.templates.filters.update(when=self._when, ms=_ms, usd=_usd, pct=_pct)
        self._sync: asyncio.subprocess.Process | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._synced_mark: tuple[int, int] | None = None
        self._labels_lock = asyncio.Lock()
        self._failed_logins: dict[str, list[float]] = {}
        self._watch: asyncio.Task[None] | None = None
        self.router = self._routes()

    # --- helpers ------------------------------------------------------------------------------

    def _when(self, epoch: float | None) -> str:
        if not epoch:
            return ""
        return datetime.fromtimestamp(epoch, ZoneInfo(self.settings.tz)).strftime("%Y-%m-%d %H:%M:%S")

    def _mark(self) -> tuple[int, int]:
        """What a sync depends on: the session folder's and the labels file's modification times."""
        def mtime(path: Path) -> int:
            try:
                return path.stat().st_mtime_ns
            except OSError:
                return 0
        return mtime(self.session_dir), mtime(self.labels_file)

    def kick_sync(self) -> None:
        """Start the index sync (a child process) when the records or labels changed and none runs."""
        if self._sync_task is not None and not self._sync_task.done():
            return
        mark = self._mark()
        if mark == self._synced_mark and self.index_file.is_file():
            return
        self._sync_task = asyncio.get_running_loop().create_task(self._run_sync(mark), name="desk-index-sync")

    async def _run_sync(self, mark: tuple[int, int]) -> None:
        try:
            self._sync = await asyncio.create_subprocess_exec(
                self.deps.python, "-m", "core.http.desk.index", str(self.session_dir), "--db", str(self.index_file),
                "--labels", str(self.labels_file), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(Path(__file__).parents[3]),
            )
            out, err = await self._sync.communicate()
            if self._sync.returncode == 0:
                self._synced_mark = mark
            else:
                log.error("desk index sync failed: %s", redact(err.decode(errors="replace")[-500:]))
        except OSError as error:
            log.error("desk index sync could not start: %s", redact(repr(error)))
        finally:
            self._sync = None

    async def sync_now(self, timeout: float = 120.0) -> bool:
        """Sync the index and wait for it (bounded); True when the index matches the records."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.kick_sync()
            task = self._sync_task
            if task is not None and not task.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), max(0.1, deadline - time.monotonic()))
            if self._synced_mark == self._mark():
                return True
        return False

    def start(self, interval_s: float = PROMPT_WATCH_S) -> None:
        """Watch the operator's prompt folder (the lifespan calls this).

        An edit applied elsewhere (another worker, `python -m evals.review --apply`, a revert) is
        read within `interval_s`.
        """
        if self.overlay is not None and self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(self._watch_prompts(interval_s),
                                                                 name="desk-prompt-watch")

    async def _watch_prompts(self, interval_s: float) -> None:
        assert self.overlay is not None
        history = self.overlay.folder / ".history.jsonl"

        def stamp() -> int:
            try:
                return history.stat().st_mtime_ns
            except OSError:
                return 0

        seen = stamp()
        while True:
            await asyncio.sleep(interval_s)
            now = stamp()  # one stat every few seconds, off the request path
            if now != seen:
                seen = now
                self.prompts_changed()

    async def aclose(self) -> None:
        """Stop the prompt watch, the sync child and the jobs (their children are terminated)."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._sync is not None and self._sync.returncode is None:
            self._sync.terminate()
        await self.jobs.aclose()

    def _page(self, request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        token, new = csrf_token(request)
        html = self.templates.get_template(template).render(
            request=request, csrf=token, open_desk=not self.keys.configured, path=request.url.path, **values)
        response = HTMLResponse(html, status_code=status)
        if new:
            response.set_cookie(CSRF_COOKIE, token, path=COOKIE_PATH, samesite="strict",
                                secure=request.url.scheme == "https", httponly=False)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def _refusal(self, request: Request, verdict: Verdict, page: bool) -> Response:
        if verdict is Verdict.MISSING and page:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/review/login?{urlencode({'next': target})}", status_code=303)
        status = 403 if verdict is Verdict.FORBIDDEN else 401
        message = {
            Verdict.FORBIDDEN: "A client key cannot open the review desk; use ADMIN_API_KEY.",
            Verdict.INVALID: "Invalid admin key.",
            Verdict.MISSING: "The review desk needs the admin key (Authorization: Bearer …, or log in at "
                             "/review/login).",
        }[verdict]
        if page:
            return self._page(request, "error.html", status=status, title="Not allowed", message=message)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(status, message, code="invalid_api_key" if status == 401 else "forbidden"),
                            status_code=status, headers=headers)

    async def _guard(self, request: Request, page: bool, csrf: str | None = None) -> Response | None:
        """None when the request may go on; else the answer that refuses it."""
        verdict, by_bearer = judge_request(self.keys, request)
        if verdict is not Verdict.ALLOWED:
            return self._refusal(request, verdict, page)
        if request.method not in ("GET", "HEAD") and not by_bearer:
            sent = csrf if csrf is not None else request.headers.get("x-csrf-token")
            if not csrf_ok(request, sent):
                message = "Cross-site request refused: reload the page and try again (missing or wrong CSRF token)."
                if page:
                    return self._page(request, "error.html", status=403, title="Refused", message=message)
                return JSONResponse(error_body(403, message, code="csrf"), status_code=403)
        return None

    @staticmethod
    def _error(status: int, message: str, param: str | None = None) -> JSONResponse:
        return JSONResponse(error_body(status, message, param=param), status_code=status)

    # --- data ---------------------------------------------------------------------------------

    def filters_from(self, query: dict[str, str]) -> tuple[Filters, dict[str, str]]:
        """Filters from query parameters (unknown or empty values ignored), and the values kept."""
        kept = {k: v.strip() for k, v in query.items() if v and v.strip()}
        route = kept.get("route", "").upper() or None
        window = kept.get("window")
        since = None
        if window in WINDOWS and WINDOWS[window] is not None:
            since = time.time() - float(WINDOWS[window] or 0)
        synthetic = {"real": False, "synthetic": True}.get(kept.get("traffic", ""))
        filters = Filters(
            route=route, backend=kept.get("backend"), since=since,
            reviewed=kept.get("reviewed") if kept.get("reviewed") in ("feedback", "label", "either", "none") else None,
            problems=kept.get("problems") in ("1", "on", "true"), disagree=kept.get("disagree") in ("1", "on", "true"),
            client=kept.get("client"), q=kept.get("q"), synthetic=synthetic,
        )
        return filters, kept

    def summary(self, row: dict[str, Any]) -> dict[str, Any]:
        """A session as the list shows it (and the API returns it)."""
        return {
            "id": row["session_id"],
            "timestamp": datetime.fromtimestamp(row["ts"], UTC).isoformat(timespec="milliseconds"),
            "route": row["route_label"],
            "label": row.get("label"),
            "backend": row["backend"],
            "served_model": row["served_model"],
            "endpoint": row["endpoint"],
            "query": row["user_query"],
            "status_code": row["status_code"],
            "error": row["error"],
            "degraded": row["degraded"],
            "failed_calls": row["failed_steps"],
            "local": None if row["local_label"] is None else {
                "label": row["local_label"], "probability": row["local_probability"],
                "decided": bool(row["local_decided"])},
            "total_ms": row["total_ms"],
            "overhead_ms": row["overhead_ms"],
            "cost_usd": row["cost_usd"],
            "feedback_count": row["feedback_count"],
            "client_key": row["client_key"],
            "synthetic": bool(row["synthetic"]),
        }

    async def list_sessions(self, query: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        """One page of the sessions list (newest first) and the filters it was asked with."""
        self.kick_sync()
        filters, kept = self.filters_from(query)
        try:
            limit = max(1, min(200, int(kept.get("limit", "50"))))
        except ValueError:
            limit = 50
        cursor = kept.get("cursor")
        rows, following = await asyncio.to_thread(self.reader.page, filters, limit, cursor)
        return {"sessions": [self.summary(r) for r in rows], "next": following,
                "indexing": self._sync_task is not None and not self._sync_task.done()}, kept

    def _locate(self, session_id: str) -> Path | None:
        row = self.reader.find(session_id)
        if row is not None and (self.session_dir / row["name"]).is_file():
            return self.session_dir / row["name"]
        matches = sorted(self.session_dir.glob(f"*_{session_id}.json")) if _ID.match(session_id) else []
        return matches[-1] if matches else None

    def _detail(self, session_id: str) -> dict[str, Any] | None:
        path = self._locate(session_id)
        record = read_record(path) if path is not None else None
        if path is None or record is None:
            return None
        labels = self._labels()
        label = labels.get(session_id)
        trace = None
        if self.trace_dir is not None:
            trace = read_jsonl(self.trace_dir / path.name.replace(".json", ".jsonl"))
        local = record.get("local_classification") or None
        steps = record.get("steps") or []
        feedback = record.get("feedback") or []
        return {
            "id": session_id,
            "file": path.name,
            "timestamp": record.get("timestamp"),
            "route": record.get("route_label"),
            "label": (label or {}).get("expected_route"),
            "label_detail": label,
            "route_reason": record.get("route_reason"),
            "classification_raw": record.get("classification_raw"),
            "classification_ms": record.get("classification_ms"),
            "local": local,
            "backend": record.get("backend"),
            "served_model": record.get("served_model"),
            "usage": record.get("usage"),
            "error": record.get("error"),
            "degraded": record.get("degraded"),
            "failed_calls": [s for s in steps if s.get("status") == "error"],
            "feedback": feedback,
            "graph_path": graph_path(trace, steps),
            "conversation": conversation(trace, record),
            "answer": next((st.get("response_content") for st in reversed(steps)
                            if st.get("node") == "generate" and st.get("response_content")), None),
            "synthetic": bool(record.get("synthetic")),
            "record": record,
            "trace": trace,
        }

    def _labels(self) -> dict[str, dict[str, Any]]:
        try:
            return load_labels(self.labels_file)
        except (ValueError, OSError) as error:
            log.error("labels file unreadable: %s", redact(str(error)))
            return {}

    async def label(self, ids: list[str], route: str, rating: float | None = None,
                    comment: str | None = None) -> dict[str, Any]:
        """Label sessions (the same file and validation as `evals.label set`).

        Raises:
            ValueError: an unknown route.
            LookupError: an id names no session.
        """
        route = route.strip().upper()
        if route not in ROUTES:
            raise ValueError(f"Unknown route {route!r}. Expected one of: {list(ROUTES)}")
        missing = [i for i in ids if await asyncio.to_thread(self._locate, i) is None]
        if missing:
            raise LookupError(f"No session {missing[0]!r} in {self.session_dir}.")
        async with self._labels_lock:
            labels = await asyncio.to_thread(self._labels)
            entries = {i: set_label(labels, i, route, rating, comment) for i in ids}
            await asyncio.to_thread(save_labels, self.labels_file, labels)
            await asyncio.to_thread(put_labels, self.index_file, entries)  # shown at once, before the sync
        self.kick_sync()
        return entries

    def eval_runs(self) -> list[dict[str, Any]]:
        """Past eval runs (newest first): when, dataset, accuracy, examples, whether a report exists."""
        runs: list[dict[str, Any]] = []
        if not self.evals_dir.is_dir():
            return runs
        for folder in sorted((p for p in self.evals_dir.iterdir() if p.is_dir()), reverse=True)[:200]:
            try:
                summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            metrics = summary.get("metrics") or {}
            runs.append({
                "run": folder.name,
                "created_at": summary.get("created_at"),
                "dataset": (summary.get("config") or {}).get("dataset"),
                "examples": summary.get("examples"),
                "accuracy": metrics.get("route_accuracy_overall"),
                "report": (folder / "report.html").is_file(),
            })
        return runs

    def reviews(self) -> list[dict[str, Any]]:
        """Past reviews, newest first."""
        found: list[dict[str, Any]] = []
        if not self.reviews_dir.is_dir():
            return found
        for folder in sorted((p for p in self.reviews_dir.iterdir() if p.is_dir()), reverse=True)[:100]:
            if (folder / "review.md").is_file():
                found.append({"name": folder.name, "patch": (folder / "proposed.patch").is_file(),
                              "applied": (folder / "apply" / "review.md").is_file()})
        return found

    def review_detail(self, name: str) -> dict[str, Any] | None:
        """One review: its text, the proposed patch, and the gated apply's outcome if it ran."""
        if not _RUN.match(name):
            return None
        folder = self.reviews_dir / name
        try:
            text = (folder / "review.md").read_text(encoding="utf-8")
        except OSError:
            return None
        patch = (folder / "proposed.patch").read_text(encoding="utf-8") if (folder / "proposed.patch").is_file() else ""
        applied = None
        apply_md = folder / "apply" / "review.md"
        if apply_md.is_file():
            body = apply_md.read_text(encoding="utf-8")
            match = re.search(r"## Applied with --apply\s+(.+?)\n", body)
            applied = {"outcome": match.group(1).strip() if match else "the gate did not run (see the job's log)",
                       "before": _accuracy(folder / "apply" / "eval" / "before" / "summary.json"),
                       "after": _accuracy(folder / "apply" / "eval" / "after" / "summary.json"),
                       "kept": bool(match and "kept" in match.group(1))}
        return {"name": name, "text": text, "patch": patch, "applied": applied}

    def start_eval(self, dataset: str) -> Job:
        """Start an eval job over the regression set or the labelled sessions.

        Raises:
            ValueError: an unknown dataset choice.
        """
        job_id = self.jobs.new_id("eval")
        out = self.evals_dir / job_id.split("-")[0]
        folder = self.jobs.jobs_dir / job_id
        if dataset == "regression":
            steps = [["evals.run", "--out", str(out), "--no-progress"]]
            title, source = "Eval: the regression set", str(Path(__file__).parents[3] / "evals" / "datasets"
                                                             / "routing_regression.jsonl")
            job = Job(job_id, "eval", title, steps, str(out), dataset=source)
            job.total = _lines(Path(source))
        elif dataset == "labelled":
            data = folder / "labelled.jsonl"
            steps = [["evals.build_dataset", "build", "--out", str(data), "--labelled-only"],
                     ["evals.run", "--dataset", str(data), "--out", str(out), "--no-progress"]]
            job = Job(job_id, "eval", "Eval: the labelled sessions", steps, str(out), dataset=str(data))
        else:
            raise ValueError(f"Unknown dataset {dataset!r}. Expected one of: ['regression', 'labelled']")
        return self.jobs.start(job)

    def start_review(self) -> Job:
        """Start a review job: the agent reads recent sessions and proposes one prompt edit."""
        job_id = self.jobs.new_id("review")
        out = self.reviews_dir / job_id.split("-")[0]
        return self.jobs.start(Job(job_id, "review", "Review: propose a prompt edit",
                                   [["evals.review", "--out", str(out)]], str(out)))

    def start_apply(self, name: str) -> Job:
        """Gate a review's proposed edit with the regression eval; it lands in the overlay only if kept.

        Raises:
            LookupError: no such review or it proposed no edit.
            ValueError: no operator prompt folder to write to.
        """
        detail = self.review_detail(name)
        if detail is None or not detail["patch"]:
            raise LookupError(f"No proposed edit in review {name!r}.")
        if self.overlay is None:
            raise ValueError(self.overlay_note)
        folder = self.reviews_dir / name
        job_id = self.jobs.new_id("apply")
        return self.jobs.start(Job(job_id, "apply", f"Apply review {name} behind the regression eval",
                                   [["evals.review", "--proposal", str(folder / "proposed.patch"), "--apply",
                                     "--out", str(folder / "apply")]], str(folder / "apply")))

    def prompts_state(self) -> dict[str, Any]:
        """The overlay: where it is, what it holds, and its history (texts left out)."""
        if self.overlay is None:
            return {"folder": None, "note": self.overlay_note, "edited": [], "history": []}
        history = self.overlay.history()
        undone = {e.get("reverts") for e in history if e.get("action") == "revert"}
        return {
            "folder": str(self.overlay.folder),
            "note": "",
            "edited": self.overlay.edited(),
            "history": [{k: v for k, v in e.items() if k not in ("before", "after")}
                        | {"reverted": e.get("id") in undone} for e in history],
        }

    def revert(self, change_id: int | None) -> dict[str, Any]:
        """Undo one overlay change and tell the router to read its prompts again.

        Raises:
            ValueError: no overlay.
            LookupError: nothing to revert.
        """
        if self.overlay is None:
            raise ValueError(self.overlay_note)
        entry = self.overlay.revert(change_id)
        self.prompts_changed()
        return {k: v for k, v in entry.items() if k not in ("before", "after")}

    def _job_done(self, job: Job) -> None:
        if job.kind == "apply":  # the child may have written the operator's prompts
            self.prompts_changed()

    def prompts_changed(self) -> None:
        """Tell the router its prompts changed (after an apply or a revert)."""
        if self.deps.on_prompts_changed is not None:
            self.deps.on_prompts_changed()

    def overview(self, window: str) -> dict[str, Any]:
        """The overview figures for a window (real traffic and synthetic alike, counted apart)."""
        filters, _ = self.filters_from({"window": window})
        figures = self.reader.overview(filters)
        figures["synthetic"] = self.reader.overview(Filters(since=filters.since, synthetic=True))["requests"]
        figures["window"] = window
        return figures

    # --- routes -------------------------------------------------------------------------------

    def _routes(self) -> APIRouter:  # noqa: C901 - one flat list of routes reads best
        router = APIRouter(prefix="/review", include_in_schema=False)
        desk = self

        @router.get("/static/{name}")
        async def static(name: str) -> Response:
            path = HERE / "static" / name
            if not _RUN.match(name) or not path.is_file():
                return desk._error(404, f"No static file {name!r}.")
            return FileResponse(path, headers={"Cache-Control": "max-age=300"})

        @router.get("/login")
        async def login_page(request: Request, next: str = "/review") -> Response:  # noqa: A002
            if not desk.keys.configured:
                return RedirectResponse(_safe_next(next), status_code=303)
            return desk._page(request, "login.html", title="Log in", next=_safe_next(next), message=None)

        @router.post("/login")
        async def login(request: Request) -> Response:
            form = await request.form()
            target = _safe_next(str(form.get("next") or "/review"))
            if not csrf_ok(request, str(form.get("csrf") or "")):
                return desk._page(request, "login.html", status=403, title="Log in", next=target,
                                  message="The form expired or came from another site: try again.")
            address = request.client.host if request.client else "?"
            if desk.login_throttled(address):
                return desk._page(request, "login.html", status=429, title="Log in", next=target,
                                  message="Too many wrong keys from this address: wait a minute and try again.")
            verdict = judge(desk.keys, str(form.get("key") or "").strip() or None)
            if verdict is not Verdict.ALLOWED:
                desk.login_failed(address)
                message = ("A client key cannot open the review desk; use the admin key."
                           if verdict is Verdict.FORBIDDEN else "That is not the admin key.")
                return desk._page(request, "login.html", status=403 if verdict is Verdict.FORBIDDEN else 401,
                                  title="Log in", next=target, message=message)
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(SESSION_COOKIE, issue_cookie(desk.keys, desk.settings.review_desk_cookie_hours),
                                max_age=int(desk.settings.review_desk_cookie_hours * 3600), path=COOKIE_PATH,
                                httponly=True, samesite="strict", secure=request.url.scheme == "https")
            return response

        @router.post("/logout")
        async def logout(request: Request) -> Response:
            form = await request.form()
            refused = await desk._guard(request, page=True, csrf=str(form.get("csrf") or ""))
            if refused is not None:
                return refused
            response = RedirectResponse("/review/login", status_code=303)
            response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
            return response

        # --- pages ---

        @router.get("")
        @router.get("/")
        async def overview_page(request: Request, window: str = "24h") -> Response:
            if (refused := await desk._guard(request, page=True)) is not None:
                return refused
            desk.kick_sync()
            window = window if window in WINDOWS else "24h"
            figures = await asyncio.to_thread(desk.overview, window)
            local = desk.deps.local_classifier() if desk.deps.local_classifier is not None else None
            return desk._page(request, "overview.html", title="Overview", figures=figures, window=window,
                              indexed=await asyncio.to_thread(desk.reader.count), local=local)

        @router.get("/sessions")
        async def sessions_page(request: Request) -> Response:
            if (refused := await desk._guard(request, page=True)) is not None:
                return refused
            page, kept = await desk.list_sessions(dict(request.query_params))
            choices = await asyncio.to_thread(desk.reader.choices)
            following = None
            if page["next"]:
                following = "?" + urlencode({**{k: v for k, v in kept.items() if k != "cursor"},
                                             "cursor": page["next"]})
            return desk._page(request, "sessions.html", title="Sessions", page=page, kept=kept, choices=choices,
                              following=following, first="?" + urlencode(
                                  {k: v for k, v in kept.items() if k != "cursor"}) if kept.get("cursor") else None,
                              done=request.query_params.get("done"))

        @router.get("/sessions/{session_id}")
        async def session_page(request: Request, session_id: str) -> Response:
            if (refused := await desk._guard(request, page=True)) is not None:
                return refused
            detail = await asyncio.to_thread(desk._detail, session_id)
            if detail is None:
                return desk._page(request, "error.html", status=404, title="No such session",
                                  message=f"No session {session_id!r} in {desk.session_dir}.")
            return desk._page(request, "session.html", title=f"Session {session_id[:24]}", s=detail,
                              record_json=json.dumps(detail["record"], indent=2, ensure_ascii=False),
                              trace_json=json.dumps(detail["trace"], indent=2, ensure_ascii=False)
                              if detail["trace"] is not None else None,
                              feedback_on=desk.deps.add_feedback is not None,
                              done=request.query_params.get("done"))

        @router.post("/sessions/{session_id}/label")
        async def label_form(request: Request, session_id: str) -> Response:
            form = await request.form()
            if (refused := await desk._guard(request, page=True, csrf=str(form.get("csrf") or ""))) is not None:
                return refused
            try:
                rating = _number(form.get("rating"))
                await desk.label([session_id], str(form.get("route") or ""), rating,
                                 str(form.get("comment") or "").strip() or None)
            except (ValueError, LookupError) as error:
                return desk._page(request, "error.html", status=404 if isinstance(error, LookupError) else 400,
                                  title="Not labelled", message=str(error))
            return RedirectResponse(f"/review/sessions/{session_id}?done=label", status_code=303)

        @router.post("/sessions/{session_id}/feedback")
        async def feedback_form(request: Request, session_id: str) -> Response:
            form = await request.form()
            if (refused := await desk._guard(request, page=True, csrf=str(form.get("csrf") or ""))) is not None:
                return refused
            try:
                await desk.feedback(session_id, _number(form.get("score")), str(form.get("comment") or "") or None)
            except (ValueError, LookupError) as error:
                return desk._page(request, "error.html", status=404 if isinstance(error, LookupError) else 400,
                                  title="No feedback recorded", message=str(error))
            return RedirectResponse(f"/review/sessions/{session_id}?done=feedback", status_code=303)

        @router.post("/labels")
        async def bulk_label_form(request: Request) -> Response:
            form = await request.form()
            if (refused := await desk._guard(request, page=True, csrf=str(form.get("csrf") or ""))) is not None:
                return refused
            ids = [str(v) for v in form.getlist("ids")]
            back = _safe_next(str(form.get("back") or "/review/sessions"))
            if not ids:
                return desk._page(request, "error.html", status=400, title="Nothing labelled",
                                  message="Tick at least one session first.")
            try:
                await desk.label(ids, str(form.get("route") or ""))
            except (ValueError, LookupError) as error:
                return desk._page(request, "error.html", status=404 if isinstance(error, LookupError) else 400,
                                  title="Not labelled", message=str(error))
            separator = "&" if "?" in back else "?"
            return RedirectResponse(f"{back}{separator}done=labelled-{len(ids)}", status_code=303)

        @router.get("/evals")
        async def evals_page(request: Request) -> Response:
            if (refused := await desk._guard(request, page=True)) is not None:
                return refused
            runs = await asyncio.to_thread(desk.eval_runs)
            jobs = [desk.jobs.progress(j) for j in desk.jobs.list(20) if j.kind == "eval"]
            return desk._page(request, "evals.html", title="Evals", runs=runs, jobs=jobs,
                              chart=accuracy_chart(runs), labelled=len(await asyncio.to_thread(desk._labels)))

        @router.post("/evals")
        async def start_eval_form(request: Request) -> Response:
            form = await request.form()
            if (refused := await desk._guard(request, page=True, csrf=str(form.get("csrf") or ""))) is not None:
                return refused
            try:
                job = desk.start_eval(str(form.get("dataset") or "regression"))
            except ValueError as error:
                return desk._page(request, "error.html", status=400, title="No eval started", message=str(error))
            return RedirectResponse(f"/review/jobs/{job.id}", status_code=303)

        @router.get("/evals/{run}/report")
        async def report(request: Request, run: str) -> Response:
            if (refused := await desk._guard(request, page=True)) is not None:
                return refused
            path = desk.evals_dir / run / "report.html"
            if not _RUN.match(run) or not path.is_file():
                return desk._page(request, "error.html", status=404, title="No such report",
                                  message=f"No report for run {run!r} in {desk.evals_dir}.")
            # The report is the eval's own self-contained page (inline SVG and styles, no script);
            # an empty icon keeps the browser from asking the router for /favicon.ico.
            html = (await asyncio.to_thread(path.read_text, encoding="utf-8")).replace(
                "<head>", "<head><link rel='icon' href='data:,'>", 1)
            return HTMLResponse(html, headers={
                "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'",
                "Cache-Control": "no-store"})

        @router.get("/jobs/{job_id}")
        async def job_page(request: Request, job_id: str) -> Response:
            if (refused := await desk._guard(request, page=True)) is not None:
                return refused
            job = desk.jobs.get(job_id)
            if job is None:
                return desk._page(request, "error.html", status=404, title="No such job",
                                  message=f"No job {job_id!r}.")
            return desk._page(request, "job.html", title=job.title, job=desk.jobs.progress(job),
                              link=_job_link(job))

        @router.get("/prompts")
        async def review_page(request: Request) -> Response:
            if (refused := await desk._guard(request, page=True)) is not None:
                return refused
            jobs = [desk.jobs.progress(j) for j in desk.jobs.list(20) if j.kind in ("review", "apply")]
            return desk._page(request, "prompts.html", title="Review and prompts", reviews=desk.reviews(),
                              prompts=desk.prompts_state(), jobs=jobs, done=request.query_params.get("done"))

        @router.post("/prompts/review")
        async def start_review_form(request: Request) -> Response:
            form = await request.form()
            if (refused := await desk._guard(request, page=True, csrf=str(form.get("csrf") or ""))) is not None:
                return refused
            job = desk.start_review()
            return RedirectResponse(f"/review/jobs/{job.id}", status_code=303)

        @router.get("/prompts/reviews/{name}")
        async def review_detail_page(request: Request, name: str) -> Response:
            if (refused := await desk._guard(request, page=True)) is not None:
                return refused
            detail = await asyncio.to_thread(desk.review_detail, name)
            if detail is None:
                return desk._page(request, "error.html", status=404, title="No such review",
                                  message=f"No review {name!r} in {desk.reviews_dir}.")
            return desk._page(request, "review.html", title=f"Review {name}", r=detail,
                              can_apply=desk.overlay is not None, overlay_note=desk.overlay_note)

        @router.post("/prompts/reviews/{name}/apply")
        async def apply_form(request: Request, name: str) -> Response:
            form = await request.form()
            if (refused := await desk._guard(request, page=True, csrf=str(form.get("csrf") or ""))) is not None:
                return refused
            try:
                job = desk.start_apply(name)
            except (LookupError, ValueError) as error:
                return desk._page(request, "error.html", status=400, title="Not applied", message=str(error))
            return RedirectResponse(f"/review/jobs/{job.id}", status_code=303)

        @router.post("/prompts/revert")
        async def revert_form(request: Request) -> Response:
            form = await request.form()
            if (refused := await desk._guard(request, page=True, csrf=str(form.get("csrf") or ""))) is not None:
                return refused
            try:
                number = _number(form.get("id"))
                entry = desk.revert(int(number) if number is not None else None)
            except (LookupError, ValueError) as error:
                return desk._page(request, "error.html", status=400, title="Nothing reverted", message=str(error))
            return RedirectResponse(f"/review/prompts?done=reverted-{entry['reverts']}", status_code=303)

        # --- JSON API ---

        @router.get("/api/sessions")
        async def api_sessions(request: Request) -> Response:
            if (refused := await desk._guard(request, page=False)) is not None:
                return refused
            route = request.query_params.get("route")
            if route and route.upper() not in ROUTES:
                return desk._error(400, f"Unknown route {route!r}. Expected one of: {list(ROUTES)}", "route")
            page, _ = await desk.list_sessions(dict(request.query_params))
            return JSONResponse(page)

        @router.get("/api/sessions/{session_id}")
        async def api_session(request: Request, session_id: str) -> Response:
            if (refused := await desk._guard(request, page=False)) is not None:
                return refused
            detail = await asyncio.to_thread(desk._detail, session_id)
            if detail is None:
                return desk._error(404, f"No session {session_id!r}.")
            return JSONResponse(detail)

        @router.post("/api/sessions/{session_id}/label")
        async def api_label(request: Request, session_id: str) -> Response:
            if (refused := await desk._guard(request, page=False)) is not None:
                return refused
            body = await _json(request)
            if not isinstance(body, dict) or not isinstance(body.get("route"), str):
                return desk._error(400, 'Expected a JSON object like {"route": "COMPLEX"}.', "route")
            try:
                entry = await desk.label([session_id], body["route"], _number(body.get("rating")),
                                         body.get("comment") if isinstance(body.get("comment"), str) else None)
            except LookupError as error:
                return desk._error(404, str(error))
            except ValueError as error:
                return desk._error(400, str(error), "route")
            return JSONResponse({"id": session_id, "label": entry[session_id]["expected_route"],
                                 "label_detail": entry[session_id]})

        @router.post("/api/labels")
        async def api_bulk_label(request: Request) -> Response:
            if (refused := await desk._guard(request, page=False)) is not None:
                return refused
            body = await _json(request)
            ids = body.get("ids") if isinstance(body, dict) else None
            if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids) or not isinstance(
                    body.get("route"), str):
                return desk._error(400, 'Expected {"ids": ["chatcmpl-…", …], "route": "COMPLEX"}.')
            try:
                entries = await desk.label(ids, body["route"])
            except LookupError as error:
                return desk._error(404, str(error))
            except ValueError as error:
                return desk._error(400, str(error), "route")
            return JSONResponse({"labelled": len(entries), "route": body["route"].upper()})

        @router.post("/api/sessions/{session_id}/feedback")
        async def api_feedback(request: Request, session_id: str) -> Response:
            if (refused := await desk._guard(request, page=False)) is not None:
                return refused
            body = await _json(request)
            if not isinstance(body, dict):
                return desk._error(400, 'Expected {"score": 1, "comment": "…"}.')
            try:
                entry = await desk.feedback(session_id, _number(body.get("score")),
                                            body.get("comment") if isinstance(body.get("comment"), str) else None)
            except LookupError as error:
                return desk._error(404, str(error))
            except ValueError as error:
                return desk._error(400, str(error), "score")
            return JSONResponse({"id": session_id, "feedback": entry})

        @router.get("/api/overview")
        async def api_overview(request: Request, window: str = "24h") -> Response:
            if (refused := await desk._guard(request, page=False)) is not None:
                return refused
            if window not in WINDOWS:
                return desk._error(400, f"Unknown window {window!r}. Expected one of: {list(WINDOWS)}", "window")
            desk.kick_sync()
            return JSONResponse(await asyncio.to_thread(desk.overview, window))

        @router.get("/api/evals")
        async def api_evals(request: Request) -> Response:
            if (refused := await desk._guard(request, page=False)) is not None:
                return refused
            return JSONResponse({"runs": await asyncio.to_thread(desk.eval_runs),
                                 "jobs": [desk.jobs.progress(j) for j in desk.jobs.list(20)]})

        @router.post("/api/evals")
        async def api_start_eval(request: Request) -> Response:
            if (refused := await desk._guard(request, page=False)) is not None:
                return refused
            body = await _json(request)
            try:
                job = desk.start_eval(str((body or {}).get("dataset") or "regression")
                                      if isinstance(body, dict) or body is None else "?")
            except ValueError as error:
                return desk._error(400, str(error), "dataset")
            return JSONResponse(desk.jobs.progress(job), status_code=202)

        @router.get("/api/jobs/{job_id}")
        async def api_job(request: Request, job_id: str) -> Response:
            if (refused := await desk._guard(request, page=False)) is not None:
                return refused
            job = desk.jobs.get(job_id)
            if job is None:
                return desk._error(404, f"No job {job_id!r}.")
            return JSONResponse({**desk.jobs.progress(job), "link": _job_link(job)})

        @router.post("/api/reviews")
        async def api_start_review(request: Request) -> Response:
            if (refused := await desk._guard(request, page=False)) is not None:
                return refused
            return JSONResponse(desk.jobs.progress(desk.start_review()), status_code=202)

        @router.get("/api/reviews")
        async def api_reviews(request: Request) -> Response:
            if (refused := await desk._guard(request, page=False)) is not None:
                return refused
            return JSONResponse({"reviews": await asyncio.to_thread(desk.reviews),
                                 "jobs": [desk.jobs.progress(j) for j in desk.jobs.list(20)
                                          if j.kind in ("review", "apply")]})

        @router.get("/api/reviews/{name}")
        async def api_review(request: Request, name: str) -> Response:
            if (refused := await desk._guard(request, page=False)) is not None:
                return refused
            detail = await asyncio.to_thread(desk.review_detail, name)
            if detail is None:
                return desk._error(404, f"No review {name!r}.")
            return JSONResponse(detail)

        @router.post("/api/reviews/{name}/apply")
        async def api_apply(request: Request, name: str) -> Response:
            if (refused := await desk._guard(request, page=False)) is not None:
                return refused
            try:
                job = desk.start_apply(name)
            except LookupError as error:
                return desk._error(404, str(error))
            except ValueError as error:
                return desk._error(409, str(error))
            return JSONResponse(desk.jobs.progress(job), status_code=202)

        @router.get("/api/prompts")
        async def api_prompts(request: Request) -> Response:
            if (refused := await desk._guard(request, page=False)) is not None:
                return refused
            return JSONResponse(desk.prompts_state())

        @router.post("/api/prompts/revert")
        async def api_revert(request: Request) -> Response:
            if (refused := await desk._guard(request, page=False)) is not None:
                return refused
            body = await _json(request)
            try:
                number = _number(body.get("id")) if isinstance(body, dict) else None
                entry = desk.revert(int(number) if number is not None else None)
            except LookupError as error:
                return desk._error(404, str(error))
            except ValueError as error:
                return desk._error(409, str(error))
            return JSONResponse(entry)

        return router

    def login_throttled(self, address: str, now: float | None = None) -> bool:
        """Whether `address` typed a wrong key too often in the last minute (guessing the admin key)."""
        now = time.monotonic() if now is None else now
        recent = [t for t in self._failed_logins.get(address, []) if now - t < LOGIN_WINDOW_S]
        if recent:
            self._failed_logins[address] = recent
        else:
            self._failed_logins.pop(address, None)
        return len(recent) >= LOGIN_FAILURES

    def login_failed(self, address: str) -> None:
        """Count a wrong key from `address` (at most 10,000 addresses remembered)."""
        if len(self._failed_logins) >= 10_000 and address not in self._failed_logins:
            self._failed_logins.pop(next(iter(self._failed_logins)))
        self._failed_logins.setdefault(address, []).append(time.monotonic())

    async def feedback(self, session_id: str, score: float | None, comment: str | None) -> dict[str, Any]:
        """Attach feedback to a session through the session writer, as `POST /v1/feedback` does.

        Raises:
            ValueError: no score, or feedback cannot be written here.
            LookupError: no such session.
        """
        if score is None:
            raise ValueError("A score is needed: -1 or 1 (thumbs), or 0-10.")
        if self.deps.add_feedback is None:
            raise ValueError("Session logs are off: there is no record to attach feedback to.")
        if await asyncio.to_thread(self._locate, session_id) is None:
            raise LookupError(f"No session {session_id!r}.")
        entry = {"score": score, "comment": comment, "expected_route": None, "source": "review desk",
                 "received_at": datetime.now(ZoneInfo(self.settings.tz)).isoformat(timespec="seconds")}
        if not await self.deps.add_feedback(session_id, entry):
            raise LookupError(f"No session {session_id!r} is known to this router.")
        return entry


def build_desk(deps: DeskDeps) -> Desk:
    """The review desk built from `deps`: mount `desk.router`, and `await desk.aclose()` on shutdown."""
    return Desk(deps)


def graph_path(trace: list[dict[str, Any]] | None, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The nodes a request went through, in order, with their time (from the trace; else the backend calls)."""
    if trace:
        root = next((r for r in trace if not r.get("parent_run_id")), None)
        nodes = [r for r in trace if root is not None and r.get("parent_run_id") == root.get("id")]
        nodes.sort(key=lambda r: r.get("dotted_order") or "")
        path = []
        for node in nodes:
            path.append({"node": node.get("name"), "ms": _span_ms(node), "kind": node.get("run_type"),
                         "error": node.get("error")})
        if path:
            return path
    return [{"node": s.get("node"), "ms": s.get("duration_ms"), "kind": "llm", "error": s.get("error")}
            for s in steps]


def conversation(trace: list[dict[str, Any]] | None, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages the client sent, as logged: the trace's root inputs, else the record's question."""
    root = next((r for r in trace or [] if not r.get("parent_run_id")), None)
    messages = ((root or {}).get("inputs") or {}).get("messages")
    if isinstance(messages, list) and messages:
        return [m for m in messages if isinstance(m, dict)]
    return [{"role": "user", "content": record.get("user_query") if record.get("user_query") is not None
             else f"(content not logged: {record.get('user_query_chars', 0)} characters)"}]


def _span_ms(run: dict[str, Any]) -> float | None:
    try:
        start = datetime.fromisoformat(str(run["start_time"]))
        end = datetime.fromisoformat(str(run["end_time"]))
    except (KeyError, TypeError, ValueError):
        return None
    return round((end - start).total_seconds() * 1000, 2)


def accuracy_chart(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Points of accuracy over time for an inline SVG: y from 0 to 1, x by run time, oldest left."""
    points = [(r["run"], r["accuracy"], r.get("dataset") or "") for r in reversed(runs)
              if r.get("accuracy") is not None]
    if not points:
        return None
    width, height, left, bottom = 640, 220, 48, 28
    span = max(1, len(points) - 1)
    plotted = []
    for index, (run, accuracy, dataset) in enumerate(points):
        x = left + (width - left - 16) * (index / span if len(points) > 1 else 0.5)
        y = 10 + (height - bottom - 10) * (1 - min(1.0, max(0.0, accuracy)))
        plotted.append({"x": round(x, 1), "y": round(y, 1), "run": run, "accuracy": accuracy,
                        "dataset": Path(dataset).name})
    ticks = [{"y": round(10 + (height - bottom - 10) * (1 - v), 1), "label": f"{v:.0%}"} for v in (0, 0.25, 0.5,
                                                                                                    0.75, 1)]
    return {"width": width, "height": height, "left": left, "bottom": height - bottom, "points": plotted,
            "ticks": ticks, "line": " ".join(f"{p['x']},{p['y']}" for p in plotted)}


def _accuracy(path: Path) -> float | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))["metrics"].get("route_accuracy_overall")
    except (OSError, json.JSONDecodeError, KeyError, AttributeError):
        return None


def _lines(path: Path) -> int | None:
    try:
        return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except OSError:
        return None


def _job_link(job: Job) -> str | None:
    """Where a finished job's result is shown."""
    if job.status != "done":
        return None
    out = Path(job.out)
    if job.kind == "eval":
        return f"/review/evals/{out.name}/report"
    if job.kind == "review":
        return f"/review/prompts/reviews/{out.name}"
    return f"/review/prompts/reviews/{out.parent.name}"


def _safe_next(target: str) -> str:
    """A redirect target inside the desk only (never another site)."""
    return target if target.startswith("/review") and not target.startswith("//") else "/review"


def _number(value: Any) -> float | None:
    """A number from a form or JSON value (None when empty).

    Raises:
        ValueError: not a finite number.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"Expected a number, got {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Expected a number, got {value!r}.") from None
    if not math.isfinite(number):
        raise ValueError(f"Expected a finite number, got {value!r}.")
    return number


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return None


def _real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ms(value: Any) -> str:
    return f"{value:.1f} ms" if _real(value) else ""


def _usd(value: Any) -> str:
    return f"${value:.4f}" if _real(value) and value else "$0"


def _pct(value: Any) -> str:
    return f"{value:.1%}" if _real(value) else "n/a"
