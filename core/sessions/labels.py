"""The labels file: the route a session should have taken, and a rating, keyed by session id.

One JSON object (`EVAL_LABELS_FILE`, default `logs/labels.json`):
`{"chatcmpl-…": {"expected_route": "ENRICH", "rating": 2, "comment": …, "labelled_at": …}}`.
`python -m evals.label`, `POST /v1/feedback` readers and the review desk all use these helpers,
so every writer replaces the file atomically and validates the route the same way.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.routes import ROUTES


def load_labels(path: Path) -> dict[str, dict[str, Any]]:
    """The labels file as a dict (empty when the file does not exist yet).

    Raises:
        ValueError: the file holds something other than a JSON object.
    """
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8") or "{}")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object keyed by session id, got {type(data).__name__}")
    return data


def save_labels(path: Path, labels: dict[str, dict[str, Any]]) -> None:
    """Write the labels file atomically (a half-written file would lose every label)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(
        json.dumps(labels, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    temporary.replace(path)


def set_label(
    labels: dict[str, dict[str, Any]],
    session_id: str,
    route: str | None,
    rating: float | None = None,
    comment: str | None = None,
) -> dict[str, Any]:
    """Record a label in `labels` and return it.

    Raises:
        ValueError: `route` is not a known route (the message lists the valid ones).
    """
    if route is not None and route.upper() not in ROUTES:
        raise ValueError(f"Unknown route {route!r}. Expected one of: {list(ROUTES)}")
    entry = {
        "expected_route": route.upper() if route else None,
        "rating": rating,
        "comment": comment,
        "labelled_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    labels[session_id] = entry
    return entry
