"""A SQLite index of the session records, kept beside the session folder, for the review desk.

The JSON records stay the source of truth: the index holds a few columns of each record (what
the desk filters, sorts and sums on) and is rebuilt from the records whenever it is missing,
unreadable or of an older layout. Syncing is incremental: it lists the folder, parses only the
records that are new or rewritten since (a feedback rewrites its record), and drops the rows of
records that rotation removed. Labels come from the labels file (`EVAL_LABELS_FILE`), the same
store `python -m evals.label set` writes.

A sync parses JSON, which is CPU work: the desk runs it as a child process
(`python -m core.http.desk.index DB SESSIONS LABELS`) so the router's event loop never waits on
it; the router only reads the index (SQLite readers do not block a writer in WAL mode).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

LAYOUT = 2
"""Bump when the columns change: an index of another layout is rebuilt from the records."""

_COLUMNS = (
    "name", "session_id", "ts", "mtime_ns", "endpoint", "route_label", "route_reason", "backend", "served_model",
    "status_code", "error", "degraded", "failed_steps", "local_label", "local_probability", "local_decided",
    "client_key", "user_agent", "user_query", "total_ms", "overhead_ms", "cost_usd", "all_xai_cost_usd",
    "prompt_tokens", "completion_tokens", "feedback_count", "feedback_score", "synthetic", "dry_run",
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sessions (
    name TEXT PRIMARY KEY, session_id TEXT NOT NULL, ts REAL NOT NULL, mtime_ns INTEGER NOT NULL,
    endpoint TEXT, route_label TEXT, route_reason TEXT, backend TEXT, served_model TEXT, status_code INTEGER,
    error TEXT, degraded TEXT, failed_steps INTEGER, local_label TEXT, local_probability REAL,
    local_decided INTEGER, client_key TEXT, user_agent TEXT, user_query TEXT, total_ms REAL, overhead_ms REAL,
    cost_usd REAL, all_xai_cost_usd REAL, prompt_tokens INTEGER, completion_tokens INTEGER,
    feedback_count INTEGER, feedback_score REAL, synthetic INTEGER, dry_run INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_id ON sessions (session_id);
CREATE INDEX IF NOT EXISTS sessions_ts ON sessions (ts);
CREATE INDEX IF NOT EXISTS sessions_route ON sessions (route_label, name);
CREATE INDEX IF NOT EXISTS sessions_backend ON sessions (backend, name);
CREATE INDEX IF NOT EXISTS sessions_client ON sessions (client_key, name);
CREATE TABLE IF NOT EXISTS labels (
    session_id TEXT PRIMARY KEY, expected_route TEXT, rating REAL, comment TEXT, labelled_at TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
INSERT OR IGNORE INTO meta VALUES ('layout', '{LAYOUT}');
"""
_BATCH = 2000  # rows per transaction while building: readers see progress, memory stays flat


def index_path(session_dir: Path) -> Path:
    """Where the index of `session_dir` lives: beside it, never inside (rotation owns the folder)."""
    return session_dir.with_name(f"{session_dir.name}.index.sqlite3")


def stamp_epoch(name: str) -> float | None:
    """Epoch seconds of a record's file name (`20261125T145409.736048Z_<id>.json`), or None."""
    try:
        return datetime.strptime(name.split("_", 1)[0], "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def row_of(name: str, mtime_ns: int, record: dict[str, Any]) -> tuple[Any, ...]:
    """The index row of one record."""
    steps = [s for s in record.get("steps") or [] if isinstance(s, dict)]
    local = _object(record.get("local_classification"))
    usage = _object(record.get("usage"))
    client = _object(record.get("client"))
    feedback = [f for f in record.get("feedback") or [] if isinstance(f, dict)]
    ts = stamp_epoch(name) or 0.0
    return (
        name, str(record.get("session_id") or name.split("_", 1)[-1].removesuffix(".json")), ts, mtime_ns,
        record.get("endpoint"), record.get("route_label"), record.get("route_reason"), record.get("backend"),
        record.get("served_model"), record.get("status_code"), record.get("error"), record.get("degraded"),
        sum(1 for s in steps if s.get("status") == "error"), local.get("label"), local.get("probability"),
        int(bool(local.get("decided"))) if local else None, client.get("key"), client.get("user_agent"),
        (record.get("user_query") or "")[:500], record.get("total_ms"), record.get("overhead_ms"),
        usage.get("cost_usd"), usage.get("all_xai_cost_usd"), usage.get("prompt_tokens"),
        usage.get("completion_tokens"), len(feedback), feedback[-1].get("score") if feedback else None,
        int(bool(record.get("synthetic"))), int(bool(record.get("dry_run"))),
    )


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the index (WAL, so the desk reads while a sync writes)."""
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5, check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    db.row_factory = sqlite3.Row
    return db


def _layout_ok(db: sqlite3.Connection) -> bool:
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'layout'").fetchone()
    except sqlite3.DatabaseError:
        return False
    return row is not None and row[0] == str(LAYOUT)


def open_for_writing(path: Path) -> sqlite3.Connection:
    """Open the index to sync it; an unreadable index or one of another layout is started afresh."""
    try:
        db = connect(path)
        fresh = db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'meta'").fetchone()[0] == 0
        if fresh or _layout_ok(db):
            db.executescript(_SCHEMA)
            return db
        db.close()
    except sqlite3.DatabaseError:
        pass
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db = connect(path)
    db.executescript(_SCHEMA)
    return db


@dataclass
class SyncResult:
    """What one sync did."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    labels: int = 0
    seconds: float = 0.0


def _listing(folder: Path) -> dict[str, int]:
    """Record file name -> modification time (ns); files rotated away meanwhile are skipped."""
    found: dict[str, int] = {}
    if not folder.is_dir():
        return found
    for entry in os.scandir(folder):
        if entry.name.startswith(".") or not entry.name.endswith(".json"):
            continue
        try:
            found[entry.name] = entry.stat().st_mtime_ns
        except OSError:
            continue
    return found


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None  # rotated away, or half written by a writer that does not rename: next sync
    return data if isinstance(data, dict) else None


def sync(db_path: Path, session_dir: Path, labels_file: Path | None) -> SyncResult:
    """Bring the index up to date with the records and the labels file; return what changed."""
    started = time.perf_counter()
    result = SyncResult()
    db = open_for_writing(db_path)
    try:
        known = dict(db.execute("SELECT name, mtime_ns FROM sessions").fetchall())
        on_disk = _listing(session_dir)
        gone = [name for name in known if name not in on_disk]
        for start in range(0, len(gone), _BATCH):
            with db:
                db.executemany("DELETE FROM sessions WHERE name = ?", [(n,) for n in gone[start:start + _BATCH]])
        result.removed = len(gone)
        todo = sorted((n for n, m in on_disk.items() if known.get(n) != m), reverse=True)  # newest first
        placeholders = ",".join("?" * len(_COLUMNS))
        for start in range(0, len(todo), _BATCH):
            rows = []
            for name in todo[start:start + _BATCH]:
                record = _read(session_dir / name)
                if record is not None:
                    rows.append(row_of(name, on_disk[name], record))
                    if name in known:
                        result.updated += 1
                    else:
                        result.added += 1
            with db:
                db.executemany(f"INSERT OR REPLACE INTO sessions ({','.join(_COLUMNS)}) VALUES ({placeholders})",
                               rows)
        result.labels = sync_labels(db, labels_file)
    finally:
        db.close()
    result.seconds = time.perf_counter() - started
    return result


def sync_labels(db: sqlite3.Connection, labels_file: Path | None) -> int:
    """Copy the labels file into the index when it changed since the last copy; return the labels held."""
    stamp = ""
    labels: dict[str, Any] = {}
    if labels_file is not None and labels_file.is_file():
        try:
            stamp = str(labels_file.stat().st_mtime_ns)
            loaded = orjson.loads(labels_file.read_bytes() or b"{}")
            labels = loaded if isinstance(loaded, dict) else {}
        except (OSError, orjson.JSONDecodeError):
            return -1  # being replaced right now: the next sync takes it
    row = db.execute("SELECT value FROM meta WHERE key = 'labels_mtime'").fetchone()
    if row is not None and row[0] == stamp:
        return int(db.execute("SELECT count(*) FROM labels").fetchone()[0])
    with db:
        db.execute("DELETE FROM labels")
        db.executemany(
            "INSERT INTO labels VALUES (?, ?, ?, ?, ?)",
            [(sid, v.get("expected_route"), v.get("rating"), v.get("comment"), v.get("labelled_at"))
             for sid, v in labels.items() if isinstance(v, dict)],
        )
        db.execute("INSERT OR REPLACE INTO meta VALUES ('labels_mtime', ?)", (stamp,))
    return len(labels)


def put_labels(db_path: Path, labels: dict[str, dict[str, Any]]) -> None:
    """Copy labels just written to the labels file into the index at once (the next sync re-reads the file)."""
    if not db_path.is_file():
        return  # the first sync builds it, labels included
    try:
        db = connect(db_path)
    except sqlite3.Error:
        return
    try:
        if _layout_ok(db):
            with db:
                db.executemany("INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?)",
                               [(sid, v.get("expected_route"), v.get("rating"), v.get("comment"),
                                 v.get("labelled_at")) for sid, v in labels.items()])
    except sqlite3.Error:
        pass  # busy or damaged: the sync that follows the labels file's change catches up
    finally:
        db.close()


# --- reading -------------------------------------------------------------------------------------


@dataclass
class Filters:
    """What the sessions list is narrowed to; every field is optional."""

    route: str | None = None
    """The route label (SIMPLE, MODERATE, …), not the backend."""
    backend: str | None = None
    since: float | None = None
    until: float | None = None
    reviewed: str | None = None
    """`feedback`, `label`, `either`, or `none` (neither)."""
    problems: bool = False
    """Errors, failed backend calls (retries, fallbacks) or a degraded decision."""
    disagree: bool = False
    """The local classifier predicted another route than the one decided."""
    client: str | None = None
    q: str | None = None
    synthetic: bool | None = None
    """None: both; False: real traffic only; True: synthetic only."""


_SELECT = ("SELECT s.*, l.expected_route AS label, l.rating AS label_rating "
           "FROM sessions s LEFT JOIN labels l ON l.session_id = s.session_id")


def _where(filters: Filters) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    values: list[Any] = []
    if filters.route:
        clauses.append("s.route_label = ?")
        values.append(filters.route)
    if filters.backend:
        clauses.append("s.backend = ?")
        values.append(filters.backend)
    if filters.since is not None:
        clauses.append("s.ts >= ?")
        values.append(filters.since)
    if filters.until is not None:
        clauses.append("s.ts < ?")
        values.append(filters.until)
    if filters.reviewed == "feedback":
        clauses.append("s.feedback_count > 0")
    elif filters.reviewed == "label":
        clauses.append("l.session_id IS NOT NULL")
    elif filters.reviewed == "either":
        clauses.append("(s.feedback_count > 0 OR l.session_id IS NOT NULL)")
    elif filters.reviewed == "none":
        clauses.append("(s.feedback_count = 0 AND l.session_id IS NULL)")
    if filters.problems:
        clauses.append("(s.error IS NOT NULL OR s.failed_steps > 0 OR s.degraded IS NOT NULL)")
    if filters.disagree:
        clauses.append("(s.local_label IS NOT NULL AND s.route_label IS NOT NULL AND s.local_label != s.route_label)")
    if filters.client:
        clauses.append("s.client_key = ?")
        values.append(filters.client)
    if filters.q:
        escaped = filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append("(s.user_query LIKE ? ESCAPE '\\' OR s.session_id LIKE ? ESCAPE '\\')")
        values += [f"%{escaped}%", f"%{escaped}%"]
    if filters.synthetic is not None:
        clauses.append("s.synthetic = ?")
        values.append(int(filters.synthetic))
    return clauses, values


class IndexReader:
    """Queries over the index (one read-only connection per call: cheap, and safe across threads)."""

    def __init__(self, path: Path) -> None:
        """Read the index at `path` (it may not exist yet: every query then answers empty)."""
        self.path = path

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection | None]:
        if not self.path.is_file():
            yield None
            return
        try:
            db = connect(self.path, readonly=True)
        except sqlite3.OperationalError:
            yield None
            return
        try:
            if not _layout_ok(db):
                yield None
                return
            yield db
        finally:
            db.close()

    def page(self, filters: Filters, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of sessions, newest first, and the cursor of the next page (None at the end)."""
        with self._db() as db:
            if db is None:
                return [], None
            clauses, values = _where(filters)
            if cursor:
                clauses.append("s.name < ?")
                values.append(cursor)
            where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
            rows = db.execute(f"{_SELECT}{where} ORDER BY s.name DESC LIMIT ?", [*values, limit + 1]).fetchall()
        items = [dict(r) for r in rows[:limit]]
        return items, (items[-1]["name"] if len(rows) > limit else None)

    def find(self, session_id: str) -> dict[str, Any] | None:
        """The index row of one session (its file name among the columns), or None."""
        with self._db() as db:
            if db is None:
                return None
            row = db.execute(f"{_SELECT} WHERE s.session_id = ? ORDER BY s.name DESC LIMIT 1",
                             (session_id,)).fetchone()
        return dict(row) if row is not None else None

    def count(self) -> int:
        """Rows in the index."""
        with self._db() as db:
            return 0 if db is None else int(db.execute("SELECT count(*) FROM sessions").fetchone()[0])

    def choices(self) -> dict[str, list[str]]:
        """The backends and client keys seen, for the filter menus."""
        with self._db() as db:
            if db is None:
                return {"backends": [], "clients": []}
            backends = [r[0] for r in db.execute("SELECT DISTINCT backend FROM sessions WHERE backend IS NOT NULL "
                                                 "ORDER BY 1")]
            clients = [r[0] for r in db.execute("SELECT DISTINCT client_key FROM sessions "
                                                "WHERE client_key IS NOT NULL ORDER BY 1")]
        return {"backends": backends, "clients": clients}

    def overview(self, filters: Filters) -> dict[str, Any]:
        """Figures for a window: requests, route shares, agreement, problems, spend, savings, p50 overhead."""
        with self._db() as db:
            if db is None:
                return {"requests": 0, "routes": {}, "backends": {}}
            clauses, values = _where(filters)
            where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
            base = f"FROM sessions s LEFT JOIN labels l ON l.session_id = s.session_id{where}"
            totals = db.execute(
                "SELECT count(*) AS requests, "
                "sum(s.error IS NOT NULL) AS errors, sum(s.failed_steps > 0) AS with_failed_calls, "
                "sum(s.degraded IS NOT NULL) AS degraded, "
                "sum(s.local_label IS NOT NULL AND s.route_label IS NOT NULL) AS compared, "
                "sum(s.local_label IS NOT NULL AND s.local_label = s.route_label) AS agreed, "
                "sum(coalesce(s.cost_usd, 0)) AS spend_usd, "
                "sum(coalesce(s.all_xai_cost_usd, 0)) AS all_xai_usd, "
                "sum(s.feedback_count > 0) AS with_feedback, sum(l.session_id IS NOT NULL) AS labelled "
                f"{base}", values).fetchone()
            routes = dict(db.execute(f"SELECT coalesce(s.route_label, '(none)'), count(*) {base} "
                                     "GROUP BY 1 ORDER BY 2 DESC", values).fetchall())
            backends = dict(db.execute(f"SELECT coalesce(s.backend, '(none)'), count(*) {base} "
                                       "GROUP BY 1 ORDER BY 2 DESC", values).fetchall())
            measured = f"{base}{' AND' if where else ' WHERE'} s.overhead_ms IS NOT NULL"
            n = db.execute(f"SELECT count(*) {measured}", values).fetchone()[0]
            p50 = (db.execute(f"SELECT s.overhead_ms {measured} ORDER BY s.overhead_ms LIMIT 1 OFFSET ?",
                              [*values, (n - 1) // 2]).fetchone()[0] if n else None)
        figures = dict(totals)
        requests = figures["requests"] or 0
        spend = figures["spend_usd"] or 0.0
        return {
            **{k: v or 0 for k, v in figures.items()},
            "routes": routes,
            "route_shares": {k: v / requests for k, v in routes.items()} if requests else {},
            "backends": backends,
            "agreement": (figures["agreed"] or 0) / figures["compared"] if figures["compared"] else None,
            "spend_usd": spend,
            "savings_usd": max(0.0, (figures["all_xai_usd"] or 0.0) - spend),
            "overhead_p50_ms": p50,
        }


def main(argv: list[str] | None = None) -> int:
    """Sync an index from the command line (the desk runs this as its child process)."""
    parser = argparse.ArgumentParser(prog="python -m core.http.desk.index", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sessions", type=Path, help="session folder (SESSION_LOG_DIR)")
    parser.add_argument("--db", type=Path, help="index file (default: beside the session folder)")
    parser.add_argument("--labels", type=Path, help="labels file (EVAL_LABELS_FILE)")
    args = parser.parse_args(argv)
    if hasattr(os, "nice"):
        os.nice(10)  # behind the router's own work on a busy machine
    result = sync(args.db or index_path(args.sessions), args.sessions, args.labels)
    sys.stdout.write(orjson.dumps(result.__dict__).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
