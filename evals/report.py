"""Write the report of one eval run: `summary.json`, `report.md` and a self-contained `report.html`.

The summary keeps every metric, the confusion matrix, latency and cost tables, the route each
example took (so a later run can be compared with this one as its baseline), the examples whose
route disagrees with their label, and those whose route changed since the session was logged.
The HTML page inlines its plots as SVG (matplotlib, Agg backend), so it opens anywhere offline.
"""

from __future__ import annotations

import html
import io
import json
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402

from core.messages import last_user_text  # noqa: E402
from evals.evaluators import Evaluation, cost_table, latency_table  # noqa: E402
from evals.spend import spend_markdown, spend_section  # noqa: E402

ROUTE_ORDER = ["META", "SIMPLE", "MODERATE", "COMPLEX", "ENRICH"]
_FIXED_SHOWN = 20  # examples the cascade fixed, listed in the report (all are in summary.json)


def _order(labels: set[str]) -> list[str]:
    known = [r for r in ROUTE_ORDER if r in labels]
    return known + sorted(labels - set(known))


def _query(example: dict[str, Any], limit: int = 140) -> str:
    text = last_user_text(example["inputs"]["messages"]).replace("\n", " ").strip()
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _rate(evaluation: Evaluation, key: str) -> tuple[float | None, int]:
    scores = [row[key]["score"] for row in evaluation.rows if key in row and row[key]["score"] is not None]
    return (sum(scores) / len(scores) if scores else None), len(scores)


def summarise(
    examples: list[dict[str, Any]],
    results: list[dict[str, Any]],
    evaluation: Evaluation,
    config: dict[str, Any],
    baseline: dict[str, Any] | None = None,
    cascade: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the report shows, as one JSON-ready dict (saved as `summary.json`).

    `cascade` is `evals.cascade.cascade_section`'s comparison with the LLM-only replay, if any.
    """
    confusion: dict[str, Counter[str]] = {}
    disagreements, changed = [], []
    for example, result, row in zip(examples, results, evaluation.rows, strict=True):
        meta = example.get("metadata") or {}
        got = result.get("route") or "(error)"
        item = {
            "example_id": meta["example_id"],
            "session_id": meta.get("session_id"),
            "query": _query(example),
            "route": got,
            "reason": result.get("route_reason"),
            "classifier": result.get("classification_raw"),
            "error": result.get("error"),
        }
        expected = (example.get("outputs") or {}).get("route")
        if expected:
            confusion.setdefault(expected, Counter())[got] += 1
            if row["route_accuracy"]["score"] == 0:
                disagreements.append({**item, "expected": expected, "category": meta.get("category")})
        if row["logged_agreement"]["score"] == 0:
            changed.append(
                {**item, "logged": meta.get("logged_route"), "logged_reason": meta.get("logged_reason")}
            )
    agreement, agreement_n = _rate(evaluation, "logged_agreement")
    health, health_n = _rate(evaluation, "enrichment_health")
    metrics = {
        **evaluation.summary,
        "logged_agreement": agreement,
        "logged_agreement_n": agreement_n,
        "enrichment_health": health,
        "enrichment_health_n": health_n,
    }
    summary: dict[str, Any] = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config,
        "examples": len(examples),
        "labelled": sum(1 for e in examples if (e.get("outputs") or {}).get("route")),
        "errors": sum(1 for r in results if r.get("error")),
        "metrics": metrics,
        "confusion": {k: dict(v) for k, v in confusion.items()},
        "latency": latency_table([_Run(r) for r in results]),
        "cost": cost_table([_Run(r) for r in results]),
        "spend": spend_section(results),
        "routes": {
            e["metadata"]["example_id"]: r.get("route") for e, r in zip(examples, results, strict=True)
        },
        "disagreements": disagreements,
        "changed_vs_logged": changed,
        "enrichment_problems": [
            {
                "example_id": e["metadata"]["example_id"],
                "session_id": e["metadata"].get("session_id"),
                "query": _query(e),
                "comment": row["enrichment_health"]["comment"],
            }
            for e, row in zip(examples, evaluation.rows, strict=True)
            if row["enrichment_health"]["score"] == 0
        ],
        "timeline": [
            (e["metadata"].get("timestamp"), r.get("route"))
            for e, r in zip(examples, results, strict=True)
            if e["metadata"].get("timestamp")
        ],
    }
    if cascade is not None:
        summary["cascade"] = cascade
    if baseline is not None:
        summary["baseline"] = compare(summary, baseline)
    return summary


class _Run:
    """Just enough of a LangSmith run for the table helpers: `.outputs`."""

    def __init__(self, outputs: dict[str, Any]) -> None:
        self.outputs = outputs


def compare(summary: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """This run against a saved one: accuracy delta and every example whose route moved."""
    now_acc = summary["metrics"].get("route_accuracy_overall")
    base_acc = (baseline.get("metrics") or {}).get("route_accuracy_overall")
    before = baseline.get("routes") or {}
    moved = [
        {"example_id": eid, "before": before[eid], "after": route}
        for eid, route in summary["routes"].items()
        if eid in before and before[eid] != route
    ]
    differs = [
        key
        for key in ("dataset", "mode", "backends", "classifier_model", "local_classifier")
        if (baseline.get("config") or {}).get(key) != summary["config"].get(key)
    ]
    return {
        "created_at": baseline.get("created_at"),
        "accuracy": base_acc,
        "config_differs": differs,
        "delta": None if now_acc is None or base_acc is None else now_acc - base_acc,
        "changed": moved,
        "compared": sum(1 for eid in summary["routes"] if eid in before),
    }


# --- plots -------------------------------------------------------------------------------------


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prologue so it can sit inside HTML


def plot_confusion(confusion: dict[str, dict[str, int]]) -> str | None:
    """Expected (rows) against replayed (columns) routes."""
    if not confusion:
        return None
    rows = _order(set(confusion))
    cols = _order({c for v in confusion.values() for c in v} | set(rows))
    grid = [[confusion.get(r, {}).get(c, 0) for c in cols] for r in rows]
    figure, axes = plt.subplots(figsize=(1.1 * len(cols) + 2, 0.8 * len(rows) + 1.5))
    axes.imshow(grid, cmap="Blues")
    axes.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    axes.set_yticks(range(len(rows)), rows)
    axes.set_xlabel("replayed route")
    axes.set_ylabel("expected route")
    peak = max(max(r) for r in grid) or 1
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            axes.text(
                j, i, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black"
            )
    axes.set_title("Confusion matrix")
    return _svg(figure)


def plot_latency(results: list[dict[str, Any]]) -> str | None:
    """Distribution of total (and classification) time per replayed route."""
    by_route: dict[str, list[float]] = {}
    for result in results:
        if result.get("total_ms") is not None:
            by_route.setdefault(result.get("route") or "(none)", []).append(result["total_ms"])
    if not by_route:
        return None
    routes = _order(set(by_route))
    figure, axes = plt.subplots(figsize=(7, 3.5))
    axes.boxplot([by_route[r] for r in routes], showfliers=True)
    axes.set_xticks(range(1, len(routes) + 1), routes)
    axes.set_ylabel("ms per example")
    axes.set_ylim(bottom=0)  # a time is never negative, whatever the spread
    axes.set_title("Latency per route (replay)")
    return _svg(figure)


def plot_timeline(timeline: list[tuple[str, str | None]]) -> str | None:
    """Route share per hour of the logged sessions (datasets built from sessions only)."""
    buckets: dict[str, Counter[str]] = {}
    for stamp, route in timeline:
        buckets.setdefault(stamp[:13], Counter())[route or "(none)"] += 1
    if not buckets:
        return None
    hours = sorted(buckets)
    routes = _order({r for c in buckets.values() for r in c})
    figure, axes = plt.subplots(figsize=(7, 3.5))
    bottom = [0.0] * len(hours)
    for route in routes:
        share = [buckets[h][route] / sum(buckets[h].values()) for h in hours]
        axes.bar(range(len(hours)), share, bottom=bottom, label=route)
        bottom = [b + s for b, s in zip(bottom, share, strict=True)]
    axes.set_xticks(range(len(hours)), [h.replace("T", " ") + "h" for h in hours], rotation=30, ha="right")
    axes.set_ylabel("share of sessions")
    axes.set_ylim(0, 1)
    axes.legend(fontsize="small")
    axes.set_title("Route share over time")
    return _svg(figure)


def plot_cost(cost: dict[str, Any]) -> str | None:
    """Runs per route and the estimated xAI cost of each."""
    by_route = cost.get("by_route") or {}
    if not by_route:
        return None
    routes = _order(set(by_route))
    figure, left = plt.subplots(figsize=(7, 3.5))
    left.bar(routes, [by_route[r]["runs"] for r in routes], color="#9ecae1")
    left.set_ylabel("runs")
    left.set_ylim(bottom=0)
    right = left.twinx()
    usd = [by_route[r]["usd"] for r in routes]
    right.plot(routes, usd, "o-", color="#d62728")
    right.set_ylabel("estimated xAI USD")
    # Cost never goes below zero: with every route free, matplotlib would centre the axis on 0.
    right.set_ylim(0, max(usd) * 1.15 if max(usd, default=0) > 0 else 1e-4)
    left.set_title(
        f"Cloud share {cost['cloud_share']:.0%}, estimated cost ${cost['usd']:.4f}"
        if cost.get("cloud_share") is not None
        else "Cost"
    )
    return _svg(figure)


def plot_cascade(cascade: dict[str, Any] | None) -> str | None:
    """Route accuracy of LLM-only, the cascade as replayed and the cross-validated cascade."""
    if not cascade or not cascade.get("llm_only"):
        return None
    bars = [
        ("LLM only", cascade["llm_only"]["accuracy"]),
        ("cascade (replayed)", cascade["cascade"]["accuracy"]),
    ]
    cv = cascade.get("cross_validated") or {}
    if cv.get("accuracy") is not None:
        bars.append(("cascade (cross-validated)", cv["accuracy"]))
    bars = [(name, value) for name, value in bars if value is not None]
    if not bars:
        return None
    figure, axes = plt.subplots(figsize=(7, 3))
    axes.barh(
        [b[0] for b in bars], [b[1] * 100 for b in bars], color=["#9ecae1", "#3182bd", "#31a354"][: len(bars)]
    )
    for i, (_, value) in enumerate(bars):
        axes.text(value * 100 + 0.5, i, f"{value:.1%}", va="center")
    axes.set_xlim(0, 105)
    axes.set_xlabel("route accuracy on labelled examples (%)")
    axes.set_title(f"Cascade: {cascade['local_share']:.0%} of classifiable requests decided locally")
    return _svg(figure)


def cascade_markdown(cascade: dict[str, Any]) -> list[str]:
    """The report's "Cascade" section: local share and accuracy, cascade vs LLM-only, time saved."""
    pct = lambda v: "n/a" if v is None else f"{v:.1%}"  # noqa: E731
    lines = [
        "",
        "## Cascade (local classifier → LLM classifier)",
        "",
        f"Local classifier `{', '.join(cascade['model_versions'])}`, mode `{cascade['mode']}`.",
        "",
        f"**Caveat:** {cascade['caveat']}.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| decided locally (of {cascade['classified']} non-META, non-VISION requests) | "
        f"{pct(cascade['local_share'])} ({cascade['local_decided']}) |",
        f"| accuracy of local decisions | {pct(cascade['local_accuracy'])} "
        f"({cascade['local_right']}/{cascade['local_labelled']} labelled) |",
        f"| cascade route accuracy (replayed) | {pct(cascade['cascade']['accuracy'])} "
        f"({cascade['cascade']['right']}/{cascade['cascade']['labelled']}) |",
    ]
    llm = cascade.get("llm_only")
    if llm is not None:
        lines += [
            f"| LLM-only route accuracy (`LOCAL_CLASSIFIER=off`) | {pct(llm['accuracy'])} "
            f"({llm['right']}/{llm['labelled']}) |",
            f"| cascade − LLM-only | {_fmt(cascade.get('delta'))} |",
        ]
    cv = cascade.get("cross_validated") or {}
    if cv.get("accuracy") is not None:
        lines += [
            f"| cascade route accuracy, cross-validated ({cv['folds']} folds) | {pct(cv['accuracy'])} "
            f"({cv['right']}/{cv['labelled']}) |",
            f"| decided locally / accuracy, cross-validated | {pct(cv['local_share'])} / "
            f"{pct(cv['local_accuracy'])} "
            f"({cv['local_decided']} of {cv['items']}) |",
        ]
    card = cascade.get("card") or {}
    held = card.get("held_out") or {}
    if held:
        lines.append(
            f"| model card, leave-one-source-out ({card.get('examples')} training examples) | "
            f"{pct(held.get('coverage'))} decided, {pct(held.get('accuracy'))} right (strict), "
            f"{pct(held.get('backend_accuracy'))} backend-level |"
        )
    lines.append(
        f"| local prediction = LLM decision, where the local model did not decide (this replay) | "
        f"{pct(cascade['undecided_agreement'])} ({cascade['undecided_compared']} compared) |"
    )
    saved = cascade.get("time_saved")
    if saved:
        lines.append(
            f"| classification time saved | {saved['calls_avoided']} LLM classifier calls avoided, "
            f"{saved['ms_sum']:.1f} ms in all ({_fmt(saved['ms_mean'])} ms each); the local model took "
            f"{saved['local_ms_sum']:.1f} ms over all {cascade['classified']} requests; "
            f"net {saved['net_ms_sum']:.1f} ms |"
        )
    lines.append("")
    if llm is None:
        lines.append(f"No LLM-only replay: {cascade.get('llm_only_note')}.")
    if cv.get("skipped"):
        lines.append(f"No cross-validated figure: {cv['skipped']}.")
    if cv.get("accuracy") is not None:
        lines.append(
            "Cross-validated: each labelled example's local prediction comes from a model trained "
            "without it (`evals.train`'s n-gram learner on this dataset alone, "
            f"C={cv['settings']['C']:g}, target {cv['settings']['target_accuracy']:.0%}; the shipped "
            "model's own out-of-source figures are the leave-one-source-out section below), "
            "its threshold chosen "
            "on the other folds; where it would not decide, the LLM-only route stands."
        )
    for name, key in (
        ("Fixed by the cascade", "fixed_by_cascade"),
        ("Broken by the cascade", "broken_by_cascade"),
    ):
        items = cascade.get(key)
        if items is None:
            continue
        # Every broken example is listed (that is what a reviewer must see); fixed ones up to a
        # screenful, all of them stay in summary.json.
        shown = items if key == "broken_by_cascade" else items[:_FIXED_SHOWN]
        lines += ["", f"### {name} ({len(items)})", ""]
        lines += [
            f"- `{i['example_id']}`: expected {i['expected']}, "
            f"cascade {i['cascade']}, LLM-only {i['llm_only']}"
            for i in shown
        ]
        if len(shown) < len(items):
            lines.append(f"- … and {len(items) - len(shown)} more (summary.json, `cascade.{key}`)")
    return lines


# --- writing -----------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def session_link(session_id: str | None, session_dir: Path | None, out_dir: Path) -> str | None:
    """Relative path from the report to a session's record file, if it is still on disk."""
    if not session_id or session_dir is None:
        return None
    matches = sorted(session_dir.glob(f"*_{session_id}.json"))
    return os.path.relpath(matches[-1], out_dir) if matches else None


def markdown(summary: dict[str, Any], session_dir: Path | None, out_dir: Path) -> str:
    """The report as Markdown."""
    m = summary["metrics"]
    lines = [
        f"# Eval report — {summary['config'].get('dataset', '')}",
        "",
        f"{summary['examples']} examples ({summary['labelled']} labelled), mode "
        f"`{summary['config'].get('mode')}`, {summary['errors']} errors, {summary['created_at']}.",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for key in (
        "route_accuracy_overall",
        "logged_agreement",
        "meta_precision",
        "meta_recall",
        "enrichment_health",
        "cloud_share",
        "xai_cost_usd",
    ):
        lines.append(f"| {key} | {_fmt(m.get(key))} |")
    confusion = summary.get("confusion") or {}
    if confusion:
        rows = _order(set(confusion))
        cols = _order({c for v in confusion.values() for c in v} | set(rows))
        lines += ["", "## Confusion matrix (rows: expected route, columns: replayed route)", "",
                  "| expected \\ replayed | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        lines += [f"| {r} | " + " | ".join(str(confusion.get(r, {}).get(c, 0)) for c in cols) + " |" for r in rows]
    if "baseline" in summary:
        base = summary["baseline"]
        lines += [
            "",
            "## Against the baseline",
            "",
            f"Baseline accuracy {_fmt(base['accuracy'])}, now {_fmt(m.get('route_accuracy_overall'))} "
            f"(delta {_fmt(base['delta'])}); {len(base['changed'])} of {base['compared']} examples "
            "changed route.",
            "",
        ]
        if base.get("config_differs"):
            lines += [
                f"**Careful:** the baseline ran with another {', '.join(base['config_differs'])}; "
                "the comparison mixes two setups.",
                "",
            ]
        lines += [f"- `{c['example_id']}`: {c['before']} → {c['after']}" for c in base["changed"]]
    if summary.get("cascade"):
        lines += cascade_markdown(summary["cascade"])
    lines += local_classifier_markdown(summary.get("local_classifier_card"))
    lines += [
        "",
        "## Latency per route (ms)",
        "",
        "| route | measure | p50 | p95 | n |",
        "|---|---|---|---|---|",
    ]
    for route, metrics in summary["latency"].items():
        for name, values in metrics.items():
            lines.append(
                f"| {route} | {name} | {_fmt(values['p50'])} | {_fmt(values['p95'])} | {values['n']} |"
            )
    cost = summary["cost"]
    lines += [
        "",
        "## Cloud share and cost",
        "",
        f"{cost['cloud_runs']} of {cost['runs']} runs used xAI; {cost['input_tokens']} input and "
        f"{cost['output_tokens']} output tokens, about ${cost['usd']:.4f} at "
        f"${cost['prices_usd_per_mtok']['input']}/${cost['prices_usd_per_mtok']['output']} per million "
        "(routing-only replays generate nothing, so they cost nothing).",
    ]

    if summary.get("spend"):
        lines += spend_markdown(summary["spend"])

    def who(item: dict[str, Any]) -> str:
        link = session_link(item.get("session_id"), session_dir, out_dir)
        return f"[`{item['example_id']}`]({link})" if link else f"`{item['example_id']}`"

    lines += ["", f"## Changed since logged ({len(summary['changed_vs_logged'])})", ""]
    lines += [
        f"- {who(c)}: {c['logged']} → {c['route']} — {c['query']}" for c in summary["changed_vs_logged"]
    ]
    lines += ["", f"## Disagreements with labels ({len(summary['disagreements'])})", ""]
    lines += [
        f"- {who(d)}: expected {d['expected']}, got {d['route']} ({d['reason']}) — {d['query']}"
        for d in summary["disagreements"]
    ]
    if summary["enrichment_problems"]:
        lines += ["", f"## Enrichment problems ({len(summary['enrichment_problems'])})", ""]
        lines += [f"- {who(p)}: {p['comment']} — {p['query']}" for p in summary["enrichment_problems"]]
    return "\n".join(lines) + "\n"


def markdown_to_html(md_text: str) -> str:
    """The report's own Markdown as HTML: headings, tables, lists, links (the `markdown` package, its
    `tables` extension). Raw HTML in the text is escaped first: example queries are user text."""
    import markdown as md

    safe = html.escape(md_text, quote=False).replace("&gt; ", "> ")  # keep nothing executable; `>` quotes stay
    return md.markdown(safe, extensions=["tables", "sane_lists"], output_format="html")


def html_page(summary: dict[str, Any], md_text: str, results: list[dict[str, Any]]) -> str:
    """The report as one self-contained HTML page: the Markdown rendered as HTML plus inline SVG plots."""
    plots = [
        p
        for p in (
            plot_confusion(summary["confusion"]),
            plot_latency(results),
            plot_timeline(summary["timeline"]),
            plot_cost(summary["cost"]),
            plot_cascade(summary.get("cascade")),
        )
        if p
    ]
    body = markdown_to_html(md_text)
    # The title and its summary first, then the charts, then the sections.
    split = body.find("<h2")
    head, rest = (body, "") if split < 0 else (body[:split], body[split:])
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>ai-router eval report</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
        "table{border-collapse:collapse;margin:1em 0;font-size:90%}th,td{border:1px solid #ccc;"
        "padding:3px 8px;text-align:left}th{background:#f3f3f3}code{background:#f6f6f6;padding:0 3px}"
        "svg{max-width:100%;height:auto}</style></head><body>"
        + head
        + "".join(f"<figure>{p}</figure>" for p in plots)
        + rest
        + "</body></html>"
    )


def local_classifier_markdown(card: dict[str, Any] | None) -> list[str]:
    """The shipped local classifier's leave-one-source-out figures, read from its card.json."""
    if not card or not (card.get("loso") or {}).get("pooled"):
        return []
    from evals.loso import loso_table, route_table

    loso = card["loso"]
    thresholds = ", ".join(f"{k} {v:.3f}" for k, v in (card.get("thresholds") or {}).items())
    lines = [
        "",
        f"## Local classifier: leave-one-source-out (`{card.get('version')}`)",
        "",
        "From the model card (`models/router_classifier/card.json`): each source held out in turn, the model "
        "trained on the others, per-route thresholds chosen inside the training sources "
        f"({'nested LOSO' if loso.get('nested') else 'pooled LOSO scores, not nested'}). "
        f"Shipped thresholds: {thresholds}.",
        "",
        loso_table(loso),
        "",
        route_table(loso),
    ]
    comparisons = card.get("comparisons") or []
    if comparisons:
        lines += ["", "Feature sets compared (LOSO; coverage at 95 % backend-level accuracy with a threshold "
                  "fitted on the LOSO predictions, an upper bound used for ranking):", "",
                  "| feature set | coverage at 95 % backend |", "|---|---|"]
        lines += [f"| {c['feature_set']['name']} | {c['oracle_coverage_at_95_backend']:.1%} |" for c in comparisons]
    in_sample = card.get("in_sample") or {}
    if in_sample.get("coverage") is not None:
        lines += ["", f"In-sample (not a headline: the model on its own training data): "
                  f"{in_sample['coverage']:.1%} decided, {in_sample['backend']:.1%} backend-level."]
    return lines


def _local_card(path: Path | None = None) -> dict[str, Any] | None:
    if path is None:
        from core.settings import Settings

        path = Path(Settings().local_classifier_model_path).parent / "card.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_report(
    out_dir: Path,
    examples: list[dict[str, Any]],
    results: list[dict[str, Any]],
    evaluation: Evaluation,
    config: dict[str, Any],
    baseline: dict[str, Any] | None = None,
    session_dir: Path | None = None,
    cascade: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write `summary.json`, `report.md` and `report.html` into `out_dir`; return the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarise(examples, results, evaluation, config, baseline, cascade)
    card = _local_card()
    if card is not None:
        summary["local_classifier_card"] = {k: card.get(k) for k in (
            "version", "thresholds", "loso", "comparisons", "in_sample", "feature_set")}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    md_text = markdown(summary, session_dir, out_dir)
    (out_dir / "report.md").write_text(md_text, encoding="utf-8")
    (out_dir / "report.html").write_text(html_page(summary, md_text, results), encoding="utf-8")
    return summary
