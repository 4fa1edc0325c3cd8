"""Template index for META detection: word-shingle containment against known task templates.

The index is data: ``core/routing/meta_templates.json``, generated from the catalogue in
``evals/meta_catalogue`` (``python -m evals.meta_catalogue.build_index``). It lists, per known
template, its client, task, where the client puts it (the ``last`` message or the ``system``
message) and its literal text split at the client's placeholders. At import the literal parts
are cut into 3-token shingles (lower-case words; each CJK character is one token) and an
inverted index shingle -> templates is built, so a request costs one pass over its bounded
window.

``TemplateIndex.clients`` also names the clients whose hand-written exact rules in
``meta_detect`` are enabled: an index built without a client (the held-out evaluation) turns
that client's exact rules off too, and only the generic parts of the detector remain.

This module imports nothing from the rest of the project.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "IndexedTemplate",
    "SimilarityMatch",
    "TemplateIndex",
    "DEFAULT_INDEX_PATH",
    "tokenize",
    "default_index",
]

DEFAULT_INDEX_PATH = Path(__file__).with_name("meta_templates.json")

#: Shingle length in tokens.
K = 3
#: Characters of a template's literal text that can count (a request is only read in a window).
TEMPLATE_HEAD_CHARS = 2000
TEMPLATE_TAIL_CHARS = 500
#: Fewer distinct shingles than this: the template is too short to be matched by similarity.
MIN_SHINGLES = 6

_TOKEN = re.compile(r"[a-z0-9]+|[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")


def tokenize(low: str) -> list[str]:
    """Tokens of an already lower-cased text."""
    return _TOKEN.findall(low)


Shingle = tuple[str, str, str]


def _shingles(tokens: list[str]) -> list[Shingle]:
    return list(zip(tokens, tokens[1:], tokens[2:], strict=False))


def _token_span(low: str, first: int, last: int) -> tuple[int, int]:
    """Start offset of token ``first`` and end offset of token ``last`` (reads only up to ``last``)."""
    start = end = 0
    for j, m in enumerate(_TOKEN.finditer(low)):
        if j == first:
            start = m.start()
        if j == last:
            end = m.end()
            break
    return start, end


@dataclass(frozen=True)
class IndexedTemplate:
    """One known template, as the detector sees it."""

    id: str
    client: str
    task: str
    where: str  # "last" or "system"
    shingles: frozenset[Shingle]
    starts_literal: bool  # the template begins with fixed text (not with a placeholder)
    tail_literal: str  # lower-cased fixed text after the last placeholder ("" if it ends with one)
    slotless: bool  # no placeholder at all: the message is the template
    lead: str = ""  # lower-cased fixed text before the first placeholder, when too short to shingle
    needs: str = (
        ""  # "history": sent after the chat's own messages; "transcript": over a transcript in the user turn
    )
    fixed: bool = False  # the client sends the text as is (users cannot edit it): its fixed tail must be there


@dataclass(frozen=True)
class SimilarityMatch:
    """The known template a text resembles, and how much of it the text contains."""

    template: IndexedTemplate
    containment: float
    first_offset: int  # character offset of the first matching shingle in the examined text
    last_offset: int  # character offset just after the last matching shingle


@dataclass
class TemplateIndex:
    """Known templates, an inverted shingle index and the decision threshold."""

    templates: list[IndexedTemplate]
    clients: frozenset[str]
    threshold: float = 0.5
    placeholders: tuple[str, ...] = ()
    _by_shingle: dict[Shingle, tuple[int, ...]] = field(default_factory=dict, repr=False)
    _placeholder_re: re.Pattern[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        """Build the inverted index from shingles to templates."""
        inv: dict[Shingle, list[int]] = {}
        for i, t in enumerate(self.templates):
            for s in t.shingles:
                inv.setdefault(s, []).append(i)
        self._by_shingle = {s: tuple(v) for s, v in inv.items()}
        phs = sorted({p.lower() for p in self.placeholders if len(p) >= 4}, key=len, reverse=True)
        self._placeholder_re = re.compile("|".join(re.escape(p) for p in phs)) if phs else None

    # ---------------------------------------------------------------- build

    @classmethod
    def from_data(cls, data: Mapping[str, Any], threshold: float | None = None) -> TemplateIndex:
        """Build an index from its data (what ``meta_templates.json`` holds)."""
        templates: list[IndexedTemplate] = []
        placeholders: set[str] = set(data.get("placeholders", ()))
        for t in data["templates"]:
            parts: list[str] = t["parts"]
            literal = "\x00".join(parts)
            # Only the part of a long template that a bounded window of the request can show.
            head = literal[:TEMPLATE_HEAD_CHARS]
            tail = parts[-1][-TEMPLATE_TAIL_CHARS:] if len(literal) > TEMPLATE_HEAD_CHARS else ""
            shingles: set[Shingle] = set()
            for chunk in (head, tail):
                for seg in chunk.split("\x00"):
                    shingles.update(_shingles(tokenize(seg.lower())))
            if len(shingles) < MIN_SHINGLES:
                continue
            templates.append(
                IndexedTemplate(
                    id=t["id"],
                    client=t["client"],
                    task=t["task"],
                    where=t["where"],
                    shingles=frozenset(shingles),
                    starts_literal=len(tokenize(parts[0].lower())) >= K,
                    tail_literal=parts[-1].strip().lower() if len(parts) > 1 else "",
                    slotless=len(parts) == 1,
                    needs=t.get("needs", ""),
                    fixed=bool(t.get("fixed", False)),
                    lead=parts[0].strip().lower() if len(parts) > 1 else "",
                )
            )
        return cls(
            templates=templates,
            clients=frozenset(data.get("clients", ())),
            threshold=float(data.get("threshold", 0.5) if threshold is None else threshold),
            placeholders=tuple(sorted(placeholders)),
        )

    @classmethod
    def load(cls, path: Path = DEFAULT_INDEX_PATH) -> TemplateIndex:
        """Read an index file (plain JSON)."""
        return cls.from_data(json.loads(path.read_text(encoding="utf-8")))

    def with_threshold(self, threshold: float) -> TemplateIndex:
        """The same templates with another containment threshold."""
        return TemplateIndex(self.templates, self.clients, threshold, self.placeholders)

    def rules_enabled(self, client: str) -> bool:
        """Whether the hand-written exact rules of ``client`` apply with this index."""
        return client in self.clients or "*" in self.clients

    def template_clients(self) -> set[str]:
        """The clients whose templates the index holds."""
        return {t.client for t in self.templates}

    # ---------------------------------------------------------------- match

    def placeholder_at(self, low: str) -> int:
        """Offset of the first known template variable in ``low``, or -1."""
        if self._placeholder_re is None:
            return -1
        m = self._placeholder_re.search(low)
        return -1 if m is None else m.start()

    def has_placeholder(self, low: str) -> bool:
        """Whether ``low`` still holds a known template variable (an unrendered, pasted template)."""
        return self._placeholder_re is not None and self._placeholder_re.search(low) is not None

    def scan(self, low: str) -> Scan:
        """Count, per template, the distinct shingles of ``low`` it contains (one pass)."""
        shingles = _shingles(tokenize(low))
        counts: dict[int, int] = {}
        by = self._by_shingle
        get = by.get
        for s in set(shingles):
            ids = get(s)
            if ids is not None:
                for i in ids:
                    counts[i] = counts.get(i, 0) + 1
        return Scan(self, low, shingles, counts)

    def best(
        self, low: str, where: str | None, needs: frozenset[str] | None = frozenset({""})
    ) -> SimilarityMatch | None:
        """The template that ``low`` contains most, if at or over the threshold (see :meth:`Scan.best`)."""
        return self.scan(low).best(where, needs)

    def covered_fraction(self, low: str, template: IndexedTemplate) -> float:
        """Share of the text's tokens that lie inside a shingle of ``template``."""
        toks = tokenize(low)
        if not toks:
            return 0.0
        covered = [False] * len(toks)
        for j, s in enumerate(_shingles(toks)):
            if s in template.shingles:
                for k in range(j, j + K):
                    covered[k] = True
        return sum(covered) / len(toks)


@dataclass
class Scan:
    """One text's shingles and its per-template hit counts."""

    index: TemplateIndex
    low: str
    shingles: list[Shingle]
    counts: dict[int, int]

    def best(
        self, where: str | None, needs: frozenset[str] | None = frozenset({""})
    ) -> SimilarityMatch | None:
        """The best-contained template at or over the index's threshold, if any.

        Only templates placed at ``where`` (any place if ``None``) and needing only what
        ``needs`` allows (anything if ``None``) are considered.
        """
        best_i, best_c = -1, 0.0
        templates = self.index.templates
        for i, c in self.counts.items():
            t = templates[i]
            if (where is not None and t.where != where) or (needs is not None and t.needs not in needs):
                continue
            score = c / len(t.shingles)
            # Ties go to the template listed first: the answer must not depend on set order
            # (string hashing differs between processes).
            if score > best_c or (score == best_c and i < best_i):
                best_i, best_c = i, score
        if best_i < 0 or best_c < self.index.threshold:
            return None
        t = templates[best_i]
        first = last = lone = -1
        shingles = self.shingles
        for j, s in enumerate(shingles):
            if s in t.shingles:
                if lone < 0:
                    lone = j
                # The template starts where two shingles in a row match: one common phrase
                # ("here is the") in a person's own words before it does not count.
                if first < 0 and j + 1 < len(shingles) and shingles[j + 1] in t.shingles:
                    first = j
                last = j
        if first < 0:
            first = lone
        start, end = _token_span(self.low, first, last + K - 1)
        return SimilarityMatch(t, best_c, start, end)


def index_data(
    entries: Iterable[Mapping[str, Any]], threshold: float, exclude_clients: Iterable[str] = ()
) -> dict[str, Any]:
    """Index data (what ``meta_templates.json`` holds) from catalogue entries.

    ``entries`` are catalogue entries (``client``, ``id``, ``task``, ``delivery``, ``template``,
    ``slots``, optional ``user_template`` and ``editable``: users can edit the client's prompts).
    Entries of ``exclude_clients`` are left out, and so are those clients' exact rules
    (``clients`` lists the clients that remain).
    """
    excluded = set(exclude_clients)
    templates: list[dict[str, Any]] = []
    placeholders: set[str] = set()
    clients: set[str] = set()
    for e in entries:
        if e["client"] in excluded:
            continue
        clients.add(e["client"])
        slots = list(e.get("slots", {}))
        placeholders.update(slots)
        delivery = e["delivery"]
        where = "system" if delivery.startswith("system+") else "last"
        needs = ""
        if delivery.startswith(("history+", "roleplay+")):
            needs = "history"
        elif delivery == "system+user" and any(
            v.startswith("history:") for k, v in e.get("slots", {}).items() if k in e.get("user_template", "")
        ):
            needs = "transcript"  # the user turn carries the conversation
        templates.append(
            {
                "id": e["id"],
                "client": e["client"],
                "task": e["task"],
                "where": where,
                "needs": needs,
                "fixed": not e.get("editable", False),
                "parts": _split(e["template"], slots),
            }
        )
        user_turn = e["delivery"] in ("system+user", "system+fewshot+user", "system+history+user")
        if user_turn and e.get("user_template"):
            parts = _split(e["user_template"], slots)
            if sum(len(p.strip()) for p in parts) >= 12:  # too short to shingle is dropped by from_data
                templates.append(
                    {
                        "id": e["id"] + "#user",
                        "client": e["client"],
                        "task": e["task"],
                        "where": "last",
                        "fixed": not e.get("editable", False),
                        "parts": parts,
                    }
                )
    return {
        "threshold": threshold,
        "clients": sorted(clients),
        "placeholders": sorted(placeholders),
        "templates": templates,
    }


def _split(template: str, slots: list[str]) -> list[str]:
    if not slots:
        return [template]
    pattern = re.compile("|".join(re.escape(s) for s in sorted(slots, key=len, reverse=True)))
    return pattern.split(template)


_DEFAULT: TemplateIndex | None = None


def default_index() -> TemplateIndex:
    """The shipped index (loaded once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = (
            TemplateIndex.load() if DEFAULT_INDEX_PATH.exists() else TemplateIndex([], frozenset({"*"}), 1.0)
        )
    return _DEFAULT
