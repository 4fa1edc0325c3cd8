"""Build ``core/routing/meta_templates.json`` (the detector's template index) from the catalogue.

``python -m evals.meta_catalogue.build_index`` after adding or changing templates. The runtime
only reads the JSON file; it never imports this package.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.routing.meta_index import DEFAULT_INDEX_PATH, TemplateIndex, index_data
from evals.meta_catalogue.render import load_catalogue

#: Shipped threshold on template containment: ``evaluate.tune_threshold`` over the whole
#: catalogue (the highest threshold with no false positive on the negatives and the best recall).
DEFAULT_THRESHOLD = 0.4


def build(
    entries: Iterable[dict[str, Any]] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    exclude_clients: Iterable[str] = (),
) -> dict[str, Any]:
    return index_data(load_catalogue() if entries is None else entries, threshold, exclude_clients)


def build_index(
    entries: Iterable[dict[str, Any]] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    exclude_clients: Iterable[str] = (),
) -> TemplateIndex:
    return TemplateIndex.from_data(build(entries, threshold, exclude_clients))


def main(argv: list[str] | None = None) -> int:
    data = build()
    Path(DEFAULT_INDEX_PATH).write_text(
        json.dumps(data, ensure_ascii=False, indent=0) + "\n", encoding="utf-8"
    )
    print(
        f"{len(data['templates'])} templates of {len(data['clients'])} clients -> {DEFAULT_INDEX_PATH}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
