"""Write session records and traces to disk, off the request path, and rotate them.

One writer thread owns the files: requests hand it their data and return at once; it
builds the record, redacts secrets, writes `<utc stamp>_<session id>.json` atomically
(temporary file, then rename), writes the trace next to it under the traces folder, and
removes files past their age or count. Feedback goes through the same thread, so it can
never race the record it attaches to.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import orjson

from ai_router.redact import redact
from ai_router.sessions.record import SessionData, build_record, utc_stamp
from ai_router.sessions.traces import build_run_tree, flatten

log = logging.getLogger("ai_router.sessions")

_STOP = object()
_ROTATE_EVERY = 200  # writes between rotations: keeps the listing cost negligible


def write_atomic(path: Path, content: bytes) -> None:
    """Write `content` to `path` so that readers see the old file or the new, never half."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def rotate(folder: Path, max_age_days: float, max_files: int, now: float | None = None) -> int:
    """Remove files older than `max_age_days`, then the oldest beyond `max_files`; return how many."""
    if not folder.is_dir():
        return 0
    now = time.time() if now is None else now
    entries = sorted((e for e in os.scandir(folder) if e.is_file() and not e.name.startswith(".")),
                     key=lambda e: e.name)
    removed = 0
    keep = []
    for entry in entries:
        if now - entry.stat().st_mtime > max_age_days * 86400:
            Path(entry.path).unlink(missing_ok=True)
            removed += 1
        else:
            keep.append(entry)
    for entry in keep[: max(0, len(keep) - max_files)]:
        Path(entry.path).unlink(missing_ok=True)
        removed += 1
    return removed


class SessionStore:
    """The session and trace files of one router process."""

    def __init__(
        self,
        session_dir: Path,
        trace_dir: Path | None,
        *,
        tz: str,
        content_mode: str = "full",
        truncate_chars: int = 2000,
        max_age_days: float = 7,
        max_files: int = 5000,
    ) -> None:
        """Create the folders and start the writer thread."""
        self.session_dir = session_dir
        self.trace_dir = trace_dir
        self.tz = tz
        self.content_mode = content_mode
        self.truncate_chars = truncate_chars
        self.max_age_days = max_age_days
        self.max_files = max_files
        session_dir.mkdir(parents=True, exist_ok=True)
        if trace_dir is not None:
            trace_dir.mkdir(parents=True, exist_ok=True)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._recent: OrderedDict[str, str] = OrderedDict()  # session id -> file name, bounded
        self._lock = threading.Lock()
        self._writes = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="session-writer", daemon=True)
        self._thread.start()
        self._queue.put(("rotate", None))

    # --- called from requests (must be cheap) ----------------------------------------

    def submit(self, data: SessionData) -> None:
        """Queue one finished request for writing."""
        name = f"{utc_stamp(data.started_at)}_{data.session_id}.json"
        with self._lock:
            self._recent[data.session_id] = name
            if len(self._recent) > 10000:
                self._recent.popitem(last=False)
        self._queue.put(("session", (name, data)))

    def locate(self, session_id: str) -> str | None:
        """The file name of a session, if it is queued or on disk."""
        with self._lock:
            name = self._recent.get(session_id)
        if name:
            return name
        matches = sorted(self.session_dir.glob(f"*_{session_id}.json"))
        return matches[-1].name if matches else None

    def add_feedback(self, session_id: str, feedback: dict[str, Any]) -> bool:
        """Queue feedback for a session; False when no such session is known."""
        name = self.locate(session_id)
        if name is None:
            return False
        self._queue.put(("feedback", (name, feedback)))
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is on disk."""
        done = threading.Event()
        self._queue.put(("flush", done))
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    # --- the writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            kind, payload = item
            try:
                if kind == "session":
                    self._write_session(*payload)
                elif kind == "feedback":
                    self._write_feedback(*payload)
                elif kind == "flush":
                    payload.set()
                elif kind == "rotate":
                    self._rotate()
            except Exception as exc:  # the writer must survive any one bad record
                self.failures += 1
                log.error("session writer: %s failed: %s", kind, redact(repr(exc)))

    def _write_session(self, name: str, data: SessionData) -> None:
        record = build_record(data, tz=self.tz, mode=self.content_mode, limit=self.truncate_chars)
        write_atomic(self.session_dir / name, redact(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode()).encode())
        if self.trace_dir is not None and data.trace_id:
            rows = flatten(build_run_tree(data, record, self.content_mode, self.truncate_chars))
            lines = b"".join(orjson.dumps(row) + b"\n" for row in rows)
            write_atomic(self.trace_dir / name.replace(".json", ".jsonl"), redact(lines.decode()).encode())
        self._writes += 1
        if self._writes % _ROTATE_EVERY == 0:
            self._rotate()

    def _write_feedback(self, name: str, feedback: dict[str, Any]) -> None:
        path = self.session_dir / name
        record = orjson.loads(path.read_bytes())
        record.setdefault("feedback", []).append(feedback)
        write_atomic(path, redact(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode()).encode())

    def _rotate(self) -> None:
        removed = rotate(self.session_dir, self.max_age_days, self.max_files)
        if self.trace_dir is not None:
            removed += rotate(self.trace_dir, self.max_age_days, self.max_files)
        if removed:
            log.info("session rotation removed %d files", removed)
