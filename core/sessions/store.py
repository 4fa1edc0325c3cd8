"""Write session records and traces to disk, off the request path, and rotate them.

A writer process owns the files: requests hand it their data and return at once; it
builds the record, redacts secrets, writes `<utc stamp>_<session id>.json` atomically
(temporary file, then rename), writes the trace next to it under the traces folder, and
removes files past their age or count. Feedback goes through the same single worker, in
order, so it can never race the record it attaches to.

A process rather than a thread: building and serialising a record is CPU work, and in a
thread it contends for the GIL with the event loop, which added about a millisecond to
every request's latency here (measured, logs on vs off). The hand-over is one pickle
written to a pipe by the event loop itself (an asyncio pipe transport, which buffers when
the writer is behind): no helper threads to wake per request. The writer runs at the
lowest CPU priority, so on a busy machine records wait rather than requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import multiprocessing
import os
import pickle
import struct
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from core.redact import redact, register_secret
from core.sessions.record import SessionData, build_record, utc_stamp
from core.sessions.traces import build_run_tree, flatten

log = logging.getLogger("ai_router.sessions")

_ROTATE_EVERY = 200  # writes between rotations: keeps the listing cost negligible
SESSION_ID_LENGTH = len("chatcmpl-") + 32
"""A full session id (`chatcmpl-` and 32 hex digits); shorter ones are prefixes."""


class AmbiguousSessionId(ValueError):
    """A session id prefix that several sessions start with."""

    def __init__(self, prefix: str, matches: int) -> None:
        """Say which prefix and how many sessions it matched."""
        super().__init__(f"{prefix!r} is the start of {matches} session ids: give more of the id.")
        self.prefix = prefix
        self.matches = matches


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


@dataclass
class WriterConfig:
    """What the writer process needs to know (picklable)."""

    session_dir: Path
    trace_dir: Path | None
    tz: str
    content_mode: str
    truncate_chars: int
    max_age_days: float
    max_files: int
    secrets: list[str]


class _Writer:
    """The writer process's state: its configuration and a write counter for rotation."""

    def __init__(self, config: WriterConfig) -> None:
        self.config = config
        self.writes = 0
        for secret in config.secrets:  # the parent's registry does not cross the process boundary
            register_secret(secret)

    def session(self, name: str, data: SessionData) -> None:
        config = self.config
        record = build_record(data, tz=config.tz, mode=config.content_mode, limit=config.truncate_chars)
        # The trace first: once a record is on disk, the trace it links to is too.
        if config.trace_dir is not None and data.trace_id:
            rows = flatten(build_run_tree(data, record, config.content_mode, config.truncate_chars))
            lines = b"".join(orjson.dumps(row) + b"\n" for row in rows)
            write_atomic(config.trace_dir / name.replace(".json", ".jsonl"), redact(lines.decode()).encode())
        text = orjson.dumps(record, option=orjson.OPT_INDENT_2).decode()
        write_atomic(config.session_dir / name, redact(text).encode())
        self.writes += 1
        if self.writes % _ROTATE_EVERY == 0:
            self.rotate()

    def feedback(self, name: str, feedback: dict[str, Any]) -> None:
        path = self.config.session_dir / name
        record = orjson.loads(path.read_bytes())
        record.setdefault("feedback", []).append(feedback)
        write_atomic(path, redact(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode()).encode())

    def rotate(self) -> int:
        config = self.config
        removed = rotate(config.session_dir, config.max_age_days, config.max_files)
        if config.trace_dir is not None:
            removed += rotate(config.trace_dir, config.max_age_days, config.max_files)
        return removed


_STOP = b""  # an empty frame tells the writer to finish


def _writer_main(reader: Connection, config: WriterConfig) -> None:
    """The writer process: read jobs from the pipe and do them, in order, until told to stop."""
    os.nice(19)
    writer = _Writer(config)
    writer.rotate()
    while True:
        try:
            frame = reader.recv_bytes()
        except (EOFError, OSError):
            return
        if frame == _STOP:
            return
        kind, args = pickle.loads(frame)
        try:
            getattr(writer, kind)(*args)
        except Exception as exc:  # the writer survives any one bad job; the router log says so
            # The writer is its own process, with no log handler: stderr is the router's terminal.
            print(f"ai_router session writer: {kind} failed: {redact(repr(exc))}", file=sys.stderr, flush=True)  # noqa: T201


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
        secrets: list[str] | None = None,
    ) -> None:
        """Create the folders and start the writer process (it rotates old files first)."""
        self.session_dir = session_dir
        self.trace_dir = trace_dir
        session_dir.mkdir(parents=True, exist_ok=True)
        if trace_dir is not None:
            trace_dir.mkdir(parents=True, exist_ok=True)
        config = WriterConfig(session_dir, trace_dir, tz, content_mode, truncate_chars, max_age_days, max_files,
                              [s for s in secrets or [] if s])
        # spawn, not fork: the router process has an event loop and threads running.
        context = multiprocessing.get_context("spawn")
        reader, self._pipe = context.Pipe(duplex=False)
        self._process = context.Process(target=_writer_main, args=(reader, config), name="session-writer",
                                        daemon=True)
        self._process.start()
        reader.close()
        self._transport: asyncio.WriteTransport | None = None
        self._closed: asyncio.Future[None] | None = None
        self._recent: OrderedDict[str, str] = OrderedDict()  # session id -> file name, bounded

    async def open(self) -> None:
        """Connect the pipe to the event loop (call once, from the server's lifespan)."""
        loop = asyncio.get_running_loop()
        closed = self._closed = loop.create_future()

        class _Watch(asyncio.Protocol):
            def connection_lost(self, exc: Exception | None) -> None:
                if not closed.done():
                    closed.set_result(None)

        pipe = os.fdopen(os.dup(self._pipe.fileno()), "wb", buffering=0)
        self._pipe.close()
        self._transport, _ = await loop.connect_write_pipe(_Watch, pipe)

    def _send(self, kind: str, *args: Any) -> None:
        if self._transport is None or self._transport.is_closing():
            log.error("session writer is not open: %s dropped", kind)
            return
        payload = pickle.dumps((kind, args), protocol=pickle.HIGHEST_PROTOCOL)
        # The framing of multiprocessing.Connection: a 4-byte big-endian length, then the bytes.
        self._transport.write(struct.pack("!i", len(payload)) + payload)

    # --- called from requests (must be cheap) ----------------------------------------

    def submit(self, data: SessionData) -> None:
        """Queue one finished request for writing."""
        name = f"{utc_stamp(data.started_at)}_{data.session_id}.json"
        self._recent[data.session_id] = name
        if len(self._recent) > 10000:
            self._recent.popitem(last=False)
        self._send("session", name, data)

    def locate(self, session_id: str) -> str | None:
        """The file name of a session, if it is queued or on disk.

        A shorter id is taken as a prefix (as people copy ids from listings) when exactly
        one session starts with it.

        Raises:
            AmbiguousSessionId: several sessions start with the prefix.
        """
        name = self._recent.get(session_id)
        if name:
            return name
        if len(session_id) >= SESSION_ID_LENGTH:
            matches = sorted(self.session_dir.glob(f"*_{glob.escape(session_id)}.json"))
            return matches[-1].name if matches else None
        found = {sid: name for sid, name in self._recent.items() if sid.startswith(session_id)}
        for path in sorted(self.session_dir.glob(f"*_{glob.escape(session_id)}*.json")):
            found.setdefault(path.stem.split("_", 1)[-1], path.name)
        if len(found) > 1:
            raise AmbiguousSessionId(session_id, len(found))
        return next(iter(found.values()), None)

    def add_feedback(self, session_id: str, feedback: dict[str, Any]) -> str | None:
        """Queue feedback for a session (its id or a unique prefix); its full id, or None when unknown.

        Raises:
            AmbiguousSessionId: several sessions start with the prefix.
        """
        name = self.locate(session_id)
        if name is None:
            return None
        self._send("feedback", name, feedback)
        return Path(name).stem.split("_", 1)[-1]

    async def aclose(self, timeout: float = 30.0) -> None:
        """Hand over everything queued, let the writer finish it, and stop the writer process."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(struct.pack("!i", 0))  # _STOP
            self._transport.close()  # flushes the buffer first
            assert self._closed is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed, timeout)
        await asyncio.to_thread(self._process.join, timeout)
        if self._process.is_alive():
            log.error("session writer did not finish within %.0f s; stopping it", timeout)
            self._process.terminate()
