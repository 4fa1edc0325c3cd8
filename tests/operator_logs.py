"""The operator's log folder, as a digest: tests and benchmarks must leave it byte-for-byte unchanged."""

from __future__ import annotations

import hashlib
from pathlib import Path


def digest(folder: Path) -> dict[str, str]:
    """{relative path: SHA-256 of its bytes} of every file under `folder` (empty when it does not exist)."""
    if not folder.is_dir():
        return {}
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*")) if path.is_file()
    }


def prefill(folder: Path) -> dict[str, str]:
    """Fill `folder` as an operator's `logs/` looks after some real use; return its digest."""
    sessions, traces = folder / "sessions", folder / "traces"
    sessions.mkdir(parents=True, exist_ok=True)
    traces.mkdir(parents=True, exist_ok=True)
    for n in range(5):
        sid = f"chatcmpl-{n:032x}"
        (sessions / f"20260101T00000{n}.000000Z_{sid}.json").write_text(
            f'{{"session_id": "{sid}", "user_query": "a real question {n}", "feedback": []}}\n')
        (traces / f"20260101T00000{n}.000000Z_{sid}.jsonl").write_text('{"id": "run", "parent_run_id": null}\n')
    (folder / "labels.json").write_text('{"chatcmpl-00000000000000000000000000000001": {"expected_route": "ENRICH"}}\n')
    return digest(folder)
