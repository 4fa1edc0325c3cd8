"""The committed routing corpus (issue #17): schema, counts, card agreement, multi-turn shape.

Offline and fast: reads evals/corpus/routing_corpus.jsonl, card.json and DATA_CARD.md only.
Each check is a function that returns the problems it found; the tests assert there are none,
and the `test_checks_catch_*` tests feed broken items to the same functions to show that every
check can fail.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from evals.corpus import build
from evals.corpus.sources import SOURCES

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "evals" / "corpus" / "routing_corpus.jsonl"
CARD_JSON = ROOT / "evals" / "corpus" / "card.json"
CARD_MD = ROOT / "evals" / "corpus" / "DATA_CARD.md"
REGRESSION = ROOT / "evals" / "datasets" / "routing_regression.jsonl"

ROUTES = {"SIMPLE", "MODERATE", "COMPLEX", "ENRICH"}
KEYS = {"id", "messages", "route", "acceptable", "source", "source_label", "rule"}
NOT_INDEPENDENT = {"handwritten", "composed"}
DECLARED_RULES = {r for s in SOURCES for r in s.rules} | set(build.COMPOSED)


@pytest.fixture(scope="module")
def raw() -> str:
    return CORPUS.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def items(raw) -> list[dict]:
    return [json.loads(line) for line in raw.splitlines()]


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads(CARD_JSON.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- checks


def schema_problems(items: list[dict]) -> list[str]:
    bad = []
    for it in items:
        iid = it.get("id")
        if set(it) != KEYS:
            bad.append(f"{iid}: keys {sorted(it)}")
            continue
        if not isinstance(iid, str) or not iid:
            bad.append(f"{iid!r}: id")
        for k in ("source", "source_label", "rule"):
            if not isinstance(it[k], str) or not it[k]:
                bad.append(f"{iid}: {k}")
        if it["route"] not in ROUTES:
            bad.append(f"{iid}: route {it['route']!r}")
        acc = it["acceptable"]
        if not isinstance(acc, list) or any(a not in ROUTES for a in acc) or len(set(acc)) != len(acc):
            bad.append(f"{iid}: acceptable {acc!r}")
        elif it["route"] in acc:
            bad.append(f"{iid}: route in acceptable")
        if it["rule"] not in DECLARED_RULES:
            bad.append(f"{iid}: undeclared rule {it['rule']!r}")
        msgs = it["messages"]
        if not isinstance(msgs, list) or not msgs:
            bad.append(f"{iid}: messages")
            continue
        for m in msgs:
            if set(m) != {"role", "content"} or m["role"] not in ("user", "assistant", "system"):
                bad.append(f"{iid}: message {m!r:.80}")
            elif not isinstance(m["content"], str) or not m["content"].strip():
                bad.append(f"{iid}: empty content")
            elif len(m["content"]) > build.MAX_USER_CHARS + 10:
                bad.append(f"{iid}: content of {len(m['content'])} chars")
        if msgs[-1].get("role") != "user":
            bad.append(f"{iid}: does not end on a user message")
    return bad


def multi_turn_problems(items: list[dict]) -> list[str]:
    bad = []
    for it in items:
        msgs = it["messages"]
        if len(msgs) == 1:
            continue
        roles = [m["role"] for m in msgs]
        if len(msgs) < 3:
            bad.append(f"{it['id']}: {len(msgs)} messages")
        if roles[-1] != "user" or "assistant" not in roles or roles.count("user") < 2:
            bad.append(f"{it['id']}: no earlier turns before the last user message")
        if any(a == b for a, b in zip(roles, roles[1:], strict=False)):
            bad.append(f"{it['id']}: roles do not alternate")
    return bad


def count_problems(items: list[dict]) -> list[str]:
    bad = []
    single = sum(1 for it in items if len(it["messages"]) == 1)
    multi = len(items) - single
    routes = Counter(it["route"] for it in items)
    by_source = Counter(it["source"] for it in items)
    independent = [s for s in by_source if s not in NOT_INDEPENDENT]
    handwritten = by_source["handwritten"]
    if single < 5000:
        bad.append(f"single-turn {single} < 5000")
    if multi < 300:
        bad.append(f"multi-turn {multi} < 300")
    if len(independent) < 15:
        bad.append(f"{len(independent)} sources < 15")
    for r in sorted(ROUTES):
        if routes[r] < 800:
            bad.append(f"{r}: {routes[r]} < 800")
    if handwritten > 0.10 * len(items):
        bad.append(f"handwritten {handwritten} > 10 %")
    for s, n in by_source.items():
        if n > build.SOURCE_CAP:
            bad.append(f"{s}: {n} items > cap {build.SOURCE_CAP}")
    return bad


def id_problems(items: list[dict]) -> list[str]:
    ids = [it["id"] for it in items]
    dup = [i for i, n in Counter(ids).items() if n > 1]
    bad = [f"duplicate id {i}" for i in dup]
    if ids != sorted(ids):
        bad.append("items are not sorted by id")
    return bad


def card_problems(items: list[dict], card: dict, md: str) -> list[str]:
    bad = []
    counts: dict[str, Counter] = defaultdict(Counter)
    for it in items:
        counts[it["source"]][it["route"]] += 1
    card_sources = {s["id"]: s for s in card["sources"]}
    for sid in counts:
        if sid not in card_sources and sid != "handwritten":
            bad.append(f"{sid} is not in card.json")
    for sid, s in card_sources.items():
        for r in ROUTES:
            if s["counts"][r] != counts[sid][r]:
                bad.append(f"card.json {sid} {r}: {s['counts'][r]} != {counts[sid][r]}")
        if s["total"] != sum(counts[sid].values()):
            bad.append(f"card.json {sid} total")
        for k in ("repository", "commit", "licence", "paths", "rules"):
            if not s.get(k):
                bad.append(f"card.json {sid}: no {k}")
    for r in ROUTES:
        if card["handwritten"]["counts"][r] != counts["handwritten"][r]:
            bad.append(f"card.json handwritten {r}")
    if card["items"] != len(items):
        bad.append("card.json items")
    if card["multi_turn"] != sum(1 for it in items if len(it["messages"]) > 1):
        bad.append("card.json multi_turn")
    route_counts = Counter(it["route"] for it in items)
    if card["routes"] != {r: route_counts[r] for r in ROUTES}:
        bad.append("card.json routes")
    # Markdown table: | id | repo | commit | licence | SIMPLE | MODERATE | COMPLEX | ENRICH | total | multi |
    rows = {}
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 10 and re.fullmatch(r"\d+", cells[4] or ""):
            rows[cells[0]] = [int(c) for c in cells[4:9]]
    for sid in set(card_sources) | {"handwritten"}:
        want = [counts[sid][r] for r in ("SIMPLE", "MODERATE", "COMPLEX", "ENRICH")]
        want.append(sum(want))
        if rows.get(sid) != want:
            bad.append(f"DATA_CARD.md row {sid}: {rows.get(sid)} != {want}")
    return bad


def regression_problems(items: list[dict]) -> list[str]:
    reg = build.load_regression()
    return [it["id"] for it in items if build.conv_key(it["messages"]) in reg]


# ----------------------------------------------------------------------------- the corpus passes


def test_file_format(raw, items):
    assert raw.endswith("\n") and "\r" not in raw
    for line, it in zip(raw.splitlines(), items, strict=True):
        assert line == json.dumps(it, sort_keys=True, ensure_ascii=False)


def test_schema(items):
    assert schema_problems(items) == []


def test_counts(items):
    assert count_problems(items) == []


def test_ids_unique_and_sorted(items):
    assert id_problems(items) == []


def test_multi_turn_items_have_earlier_turns(items):
    assert multi_turn_problems(items) == []


def test_card_agrees_with_corpus(items, card):
    assert card_problems(items, card, CARD_MD.read_text(encoding="utf-8")) == []


def test_card_lists_every_source_of_the_table(card):
    assert [s["id"] for s in card["sources"]] == [s.id for s in SOURCES]
    assert all(len(s.commit) == 40 for s in SOURCES)


def test_no_regression_set_prompt_in_corpus(items):
    assert REGRESSION.exists()
    assert regression_problems(items) == []


def test_build_without_snapshots_reproduces_committed_files(tmp_path):
    """No snapshot at all: every unit keeps its committed items, so the output is unchanged."""
    corpus, card_text, md, missing = build.build(tmp_path, strict=False)
    assert len(missing) == len(SOURCES)
    assert corpus == CORPUS.read_text(encoding="utf-8")
    assert card_text == CARD_JSON.read_text(encoding="utf-8")
    assert md == CARD_MD.read_text(encoding="utf-8")
    with pytest.raises(SystemExit):
        build.build(tmp_path, strict=True)


@pytest.mark.skipif(
    not os.environ.get("CORPUS_SNAPSHOTS"), reason="set CORPUS_SNAPSHOTS to rebuild from snapshots"
)
def test_rebuild_from_snapshots_is_byte_identical():
    corpus, card_text, md, missing = build.build(Path(os.environ["CORPUS_SNAPSHOTS"]), strict=True)
    assert missing == []
    assert corpus == CORPUS.read_text(encoding="utf-8")
    assert card_text == CARD_JSON.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- the checks can fail


def test_checks_catch_schema_errors(items):
    it = copy.deepcopy(items[0])
    broken = []
    for mutate in (
        lambda x: x.update(route="CLOUD"),
        lambda x: x.update(acceptable=[x["route"]]),
        lambda x: x.update(acceptable=["NOPE"]),
        lambda x: x.pop("source_label"),
        lambda x: x.update(rule="made.up"),
        lambda x: x["messages"].append({"role": "assistant", "content": "hi"}),
        lambda x: x["messages"][0].update(content=" "),
        lambda x: x["messages"][0].update(content="x" * 5000),
    ):
        y = copy.deepcopy(it)
        mutate(y)
        broken.append(schema_problems([y]))
    assert all(broken), broken


def test_checks_catch_bad_multi_turn_and_ids(items):
    two = {**items[0], "messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]}
    assert multi_turn_problems([two])
    same = {**items[0], "messages": [{"role": "user", "content": "a"}] * 3}
    assert multi_turn_problems([same])
    assert id_problems([items[0], items[0]])
    assert id_problems([items[1], items[0]])


def test_checks_catch_bad_counts(items):
    assert count_problems(items[:4000])
    assert count_problems([it for it in items if it["route"] != "ENRICH"])
    assert count_problems([it for it in items if len(it["messages"]) == 1])
    few_sources = [it for it in items if it["source"] in {"nq_open", "sgd", "gsm8k"}]
    assert any("sources" in p for p in count_problems(few_sources))
    hw = [{**it, "source": "handwritten"} for it in items[:1000]] + items
    assert any("handwritten" in p for p in count_problems(hw))


def test_checks_catch_card_mismatch(items, card):
    md = CARD_MD.read_text(encoding="utf-8")
    assert card_problems(items[1:], card, md)
    card2 = copy.deepcopy(card)
    card2["sources"][0]["counts"]["SIMPLE"] += 1
    assert card_problems(items, card2, md)
    sid = card["sources"][0]["id"]
    md2 = re.sub(
        rf"^\| {sid} \|(.*?)\| (\d+) \|",
        lambda m: f"| {sid} |{m.group(1)}| {int(m.group(2)) + 1} |",
        md,
        count=1,
        flags=re.M,
    )
    assert md2 != md and card_problems(items, card, md2)


def test_checks_catch_regression_duplicates(items):
    line = REGRESSION.read_text(encoding="utf-8").splitlines()[0]
    msgs = json.loads(line)["inputs"]["messages"]
    assert regression_problems([{**items[0], "messages": msgs}])
