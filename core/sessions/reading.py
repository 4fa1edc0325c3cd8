"""Reading session records and traces while a router writes and rotates them.

A running router writes records atomically (rename), but rotation removes old records and
traces at any moment, and a trace may be half written. Every reader (the sessions CLI, the
evals' dataset builder, review, labelling, training) goes through these helpers, which treat
a file that vanished between listing and reading, or one that is still being written, as
absent instead of failing.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def mtime(path: Path) -> float | None:
    """The file's modification time, or None when it is gone."""
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def read_record(path: Path) -> dict[str, Any] | None:
    """A session record, or None when it vanished, is unreadable or is not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def read_jsonl(path: Path) -> list[dict[str, Any]] | None:
    """The rows of a trace, or None when it vanished; a torn last line (still being written) is dropped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def records(folder: Path, *, newest_first: bool = True, since: float | None = None) -> Iterator[dict[str, Any]]:
    """Every readable record in `folder` (by file name, i.e. by time), skipping files rotated away meanwhile."""
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.json"), reverse=newest_first):
        if since is not None:
            modified = mtime(path)
            if modified is None or modified < since:
                continue
        record = read_record(path)
        if record is not None:
            yield record


def is_synthetic(record: dict[str, Any]) -> bool:
    """Whether a record is test or benchmark traffic (never a dataset, label or training example)."""
    return bool(record.get("synthetic"))


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str) -> float:
    """Epoch seconds for a duration back from now (`30m`, `12h`, `1d`, `2w`).

    Raises:
        argparse.ArgumentTypeError: not such a duration (command lines take it as `type=`).
    """
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration like 30m, 12h, 1d or 2w, got {text!r}")
    return time.time() - float(match.group(1)) * _SECONDS[match.group(2)]


def iter_records(folder: Path, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Records in `folder`, newest first, that pass the command-line filters in `args`.

    The filters: `since` (epoch seconds), `route`, `label`, `errors`, and `client` (a part of
    the user agent), each optional.
    """
    # Rotation-safe: files that vanish between listing and reading are skipped.
    for record in records(folder, since=getattr(args, "since", None) or None):
        if getattr(args, "route", None) and record.get("route") != args.route:
            continue
        if getattr(args, "label", None) and (record.get("route_label") or "").upper() != args.label.upper():
            continue
        if getattr(args, "errors", None) and not record.get("error"):
            continue
        client = getattr(args, "client", None)
        if client and client.lower() not in (record.get("client", {}).get("user_agent") or "").lower():
            continue
        yield record
