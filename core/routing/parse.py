"""Read a route label out of a classifier's answer, however messy."""

from __future__ import annotations

import re
from collections.abc import Iterable

_THINKING = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)


def parse_route(answer: str, labels: Iterable[str]) -> str | None:
    """Return the route label the classifier meant, or None if it named none.

    Accepts `SIMPLE`, `**SIMPLE**`, `Route: COMPLEX.`, `route=enrich`, and reasoning
    followed by the answer. An explicit `route:` marker wins; otherwise the last label
    mentioned wins, since models that reason first put their verdict at the end.
    Reasoning inside `<think>` blocks is ignored.
    """
    labels = list(labels)
    if not labels:
        return None
    text = _THINKING.sub(" ", answer or "")
    alternatives = "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))
    marked = re.findall(
        rf"(?i)\b(?:route|label|answer|category|classification)\s*[:=\-]\s*[*_`\"']*({alternatives})\b",
        text,
    )
    if marked:
        return marked[-1].upper()
    mentioned = re.findall(rf"(?i)(?<![A-Za-z])({alternatives})(?![A-Za-z])", text)
    if not mentioned:
        return None
    # Upper-case mentions are deliberate labels; lower-case ones may be ordinary words
    # ("a simple question"), so they count only when no upper-case label is present.
    upper = [m for m in mentioned if m.isupper()]
    return (upper or mentioned)[-1].upper()
