"""Leave-one-source-out evaluation of the local classifier: no leak of the held-out source, the gate.

Small subsets of the committed routing corpus keep these fast (the full run is `make train-router`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.routing.local_model import LocalModel, dense_features
from evals import loso as loso_module
from evals import train
from evals.loso import Costs, Features, FeatureSet, Item, loso, select_operating_point
from tests.conftest import ROOT

CORPUS = ROOT / "evals" / "corpus" / "routing_corpus.jsonl"
SOURCES = ("clinc150", "gsm8k", "olympiadbench", "snips", "humaneval", "proofnet")
NGRAMS = FeatureSet("ngrams", ngrams=True)


def _rows(per_source: int = 30) -> list[dict]:
    rows, counts = [], dict.fromkeys(SOURCES, 0)
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["source"] in counts and counts[row["source"]] < per_source:
            counts[row["source"]] += 1
            rows.append(row)
    return rows


@pytest.fixture(scope="module")
def items() -> list[Item]:
    from core.messages import routing_view

    out = []
    for row in _rows():
        query, history = routing_view(row["messages"], 2000)
        out.append(Item(query, history, row["route"], tuple(row.get("acceptable") or ()), row["source"]))
    return out


@pytest.fixture(scope="module")
def features(items) -> Features:
    return Features(items, NGRAMS)


def test_the_held_out_source_is_absent_from_every_model_that_predicts_it(items, features, monkeypatch):
    """Every prediction (outer and nested) comes from a model whose training rows lack the predicted sources."""
    seen: list[tuple[set[str], set[str]]] = []
    real_logits = loso_module.logits

    def spy(features_, fitted, rows):
        trained = {items[r].source for r in fitted.train_rows}
        predicted = {items[r].source for r in rows}
        seen.append((trained, predicted))
        return real_logits(features_, fitted, rows)

    monkeypatch.setattr(loso_module, "logits", spy)
    result = loso(items, NGRAMS, features=features, workers=1)
    sources = set(SOURCES)
    assert len(seen) == len(sources) + len(sources) * (len(sources) - 1)  # outer + both sides of every pair
    for trained, predicted in seen:
        assert len(predicted) == 1 and not trained & predicted
    outer = [(t, p) for t, p in seen if len(t) == len(sources) - 1]
    assert {next(iter(p)) for _, p in outer} == sources
    assert result.figures["per_source"].keys() == sources


def test_thresholds_are_chosen_only_on_training_sources(items, features):
    """The selection never receives the held-out source's rows, and its labels do not move its thresholds."""
    calls: list[set[str]] = []

    def recording(scores, familiar, chosen, labels, costs):
        calls.append({i.source for i in chosen})
        return select_operating_point(scores, familiar, chosen, labels, costs)

    first = loso(items, NGRAMS, features=features, select=recording, workers=1)
    assert sorted(len(c) for c in calls) == [len(SOURCES) - 1] * len(SOURCES)
    assert {frozenset(set(SOURCES) - c) for c in calls} == {frozenset({s}) for s in SOURCES}
    # Relabel the held-out source (every gsm8k item becomes ENRICH): its operating point must not move.
    relabelled = [Item(i.query, i.history, "ENRICH" if i.source == "gsm8k" else i.route, i.acceptable, i.source)
                  for i in items]
    second = loso(relabelled, NGRAMS, features=features, workers=1)
    assert second.points["gsm8k"] == first.points["gsm8k"]
    assert any(second.points[s] != first.points[s] for s in SOURCES if s != "gsm8k")  # others do see it


def test_cost_aware_thresholds_are_stricter_where_mistakes_cost_more():
    """Same scores, same errors: a route whose errors are costly gets a higher threshold."""
    rng = np.random.default_rng(0)
    labels = ["COMPLEX", "MODERATE"]
    items, scores = [], []
    for k in range(400):
        gold = labels[k % 2]
        right = rng.random() < 0.9
        predicted = gold if right else labels[1 - k % 2]
        margin = rng.random() * 3
        scores.append([margin, 0.0] if predicted == "COMPLEX" else [0.0, margin])
        items.append(Item(f"q{k}", "", gold, (), "s"))
    point = select_operating_point(np.array(scores), np.ones(400, dtype=bool), items, labels,
                                   Costs(max_complex_kept=1.0, max_enrich_missed=1.0, min_backend=0.0))
    # A MODERATE prediction that is wrong keeps a COMPLEX request on the primary (costly); a wrong
    # COMPLEX prediction is a needless escalation (cheaper): MODERATE needs more confidence.
    assert point["thresholds"]["MODERATE"] > point["thresholds"]["COMPLEX"]


def test_training_features_are_the_runtimes(items):
    embedded = FeatureSet("all", ngrams=False, embedding=True, history_embedding=True, shape=True)
    some = items[:5] + [Item("and tomorrow?", "USER: weather in Oslo today\nASSISTANT: Sunny.", "ENRICH", (), "x")]
    built = Features(some, embedded)
    from core.routing.embedding import shared_embedder

    for row, item in enumerate(some):
        runtime = dense_features(item.query, item.history, shared_embedder())
        assert np.allclose(built.dense[row], runtime, atol=1e-6)


# --- the training command: the gate --------------------------------------------------------------


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows(25)), encoding="utf-8")
    return path


def _args(corpus: Path, out: Path) -> list[str]:
    fixture = ROOT / "tests" / "fixtures" / "router_train" / "small.jsonl"
    return ["--corpus", str(corpus), "--dataset", str(fixture), "--no-sessions", "--features", "ngrams",
            "--no-plot", "--quiet", "--workers", "1", "--out", str(out)]


def test_a_retrained_model_that_is_worse_is_refused_unless_forced(small_corpus, tmp_path, capsys):
    out = tmp_path / "model"
    assert train.main(_args(small_corpus, out)) == 0
    card = json.loads((out / "card.json").read_text())
    model_bytes = (out / "model.json").read_bytes()
    LocalModel.load(out / "model.json")  # what was written loads
    # The same data again: not worse, accepted.
    assert train.main(_args(small_corpus, out)) == 0
    # Pretend the shipped model was much better: the new one is refused and nothing is replaced.
    better = {**card, "loso": {**card["loso"], "pooled": {**card["loso"]["pooled"], "coverage": 0.99,
                                                          "backend": 0.999}}}
    (out / "card.json").write_text(json.dumps(better))
    (out / "model.json").write_bytes(b"{}")
    capsys.readouterr()
    assert train.main(_args(small_corpus, out)) == 3
    printed = capsys.readouterr()
    assert "WORSE" in printed.out and "refused" in printed.err
    assert (out / "model.json").read_bytes() == b"{}"
    assert train.main([*_args(small_corpus, out), "--force"]) == 0
    assert (out / "model.json").read_bytes() == model_bytes


def test_compare_cards_puts_old_and_new_side_by_side():
    new = {"loso": {"pooled": {"coverage": 0.5, "strict": 0.8, "backend": 0.96, "complex_kept_share": 0.01,
                               "enrich_without_search_share": 0.0}}}
    assert train.compare_cards(None, new)[0] is True
    assert train.compare_cards(new, new)[0] is True
    costlier = {"loso": {"pooled": {**new["loso"]["pooled"], "complex_kept_share": 0.03}}}
    accept, lines = train.compare_cards(new, costlier)
    assert accept is False and any("complex_kept_share" in line and "WORSE" in line for line in lines)


def test_eval_report_renders_the_loso_section_as_html_tables(items, features):
    from evals.report import local_classifier_markdown, markdown_to_html

    result = loso(items, NGRAMS, features=features, workers=1)
    card = {"version": "rc-test", "thresholds": {"SIMPLE": 0.7}, "loso": {"nested": True, **result.figures},
            "comparisons": [{"feature_set": {"name": "ngrams"}, "oracle_coverage_at_95_backend": 0.5}],
            "in_sample": {"coverage": 0.9, "backend": 0.99}}
    text = "\n".join(local_classifier_markdown(card))
    assert "| **pooled** |" in text and "| gsm8k |" in text
    page = markdown_to_html("# Report <script>x</script>\n" + text)
    assert "<h1>" in page and "<h2>" in page and page.count("<table>") == 4  # sources, routes, confusion, sets
    assert "<td>gsm8k</td>" in page and "|---|" not in page
    assert "<script>" not in page  # the report's text is escaped, not injected


def test_eval_report_has_its_confusion_matrix_as_a_table(tmp_path):
    from evals.evaluators import evaluate_offline
    from evals.report import write_report
    from tests.test_evals_evaluators import res

    examples = [{"inputs": {"messages": [{"role": "user", "content": q}]}, "outputs": {"route": r},
                 "metadata": {"example_id": i}} for i, q, r in (("a", "hi", "SIMPLE"), ("b", "news", "ENRICH"))]
    results = [res("a", "SIMPLE"), res("b", "MODERATE")]
    write_report(tmp_path, examples, results, evaluate_offline(results, examples), {"dataset": "x", "mode": "routing"})
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Confusion matrix" in page and "<th>expected \\ replayed</th>" in page
    assert "<td>ENRICH</td>" in page and "|---|" not in page
