"""The classifier cascade in an eval: local classifier + LLM classifier against the LLM classifier alone.

`evals.run` replays the dataset twice: once as configured (the cascade, `LOCAL_CLASSIFIER=on`)
and once with `LOCAL_CLASSIFIER=off` (LLM-only). `cascade_section` turns both replays into the
report's "Cascade" section:

- share of classifiable requests (not META, not VISION) the local model decided, and how
  many of those it got right;
- end-to-end route accuracy of the cascade against LLM-only on the same labelled examples;
- classification time saved: the LLM-only arm's classifier time on the requests the cascade
  decided locally (what those calls cost), against the local model's own time;
- agreement of the local prediction with the LLM classifier where the local model did not
  decide: in the replay and on logged sessions (shadow mode);
- a cross-validated cascade accuracy. The shipped model is trained on the regression set
  itself, so its accuracy there is in-sample and optimistic. The cross-validated figure
  gives every labelled example a local prediction from a model trained without it (same
  learner, C, seed, folds and target accuracy as the shipped model, via `evals.train`),
  with each fold's threshold chosen on the other folds, and the LLM-only arm's route where
  that model would not decide. It needs scikit-learn (the `dev`/`train` extras).

`cascade_gate` is the CI rule: the cascade may not be more than `EVAL_CASCADE_MARGIN` below
LLM-only accuracy, measured and (when computed) cross-validated.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evals.evaluators import percentile

_REPO = Path(__file__).resolve().parent.parent  # where the card's relative dataset paths point


def _label(example: dict[str, Any]) -> str | None:
    route = (example.get("outputs") or {}).get("route")
    return route.upper() if isinstance(route, str) else None


def _local(result: dict[str, Any]) -> dict[str, Any] | None:
    local = result.get("local_classification")
    return local if isinstance(local, dict) else None


def _classified(result: dict[str, Any]) -> bool:
    """Whether the route came from a classifier (LLM or local), not from a rule (META, VISION) or an error."""
    reason = result.get("route_reason") or ""
    return reason.startswith(("classifier", "local classifier", "fallback"))


def _accuracy(
    examples: Sequence[dict[str, Any]], routes: Sequence[str | None]
) -> tuple[float | None, int, int]:
    """(accuracy, right, labelled) of `routes` against the examples' labels."""
    pairs = [
        (route, label) for example, route in zip(examples, routes, strict=True) if (label := _label(example))
    ]
    right = sum(1 for route, label in pairs if route == label)
    return (right / len(pairs) if pairs else None), right, len(pairs)


def model_card(model_path: str | Path) -> dict[str, Any] | None:
    """The cross-validated figures `evals.train` wrote next to the model (`card.json`), if there."""
    path = Path(model_path).with_name("card.json")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return {
        "version": card.get("version"),
        "examples": card.get("examples"),
        "threshold": card.get("threshold"),
        "held_out": card.get("held_out"),
        "dataset_only": card.get("dataset_only"),
        "trained_on": (card.get("sources") or {}).get("dataset_path"),
    }


def _conversation_key(messages: Any) -> str:
    return json.dumps(messages, sort_keys=True, ensure_ascii=False)


def training_overlap(examples: Sequence[dict[str, Any]], trained_on: str) -> tuple[int, int, bool]:
    """How many labelled examples are in the datasets the card says the model was trained on.

    Args:
        examples: The evaluated dataset rows.
        trained_on: The card's `sources.dataset_path`: backquoted paths, comma separated,
            relative to the working directory or to the repository.

    Returns:
        (examples found in training data, labelled examples, whether any training file was read).
    """
    keys: set[str] = set()
    readable = False
    for name in (part.strip().strip("`") for part in trained_on.split(",")):
        if not name:
            continue
        for candidate in (Path(name), _REPO / name):
            if candidate.is_file():
                readable = True
                for line in candidate.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        keys.add(_conversation_key((json.loads(line).get("inputs") or {}).get("messages")))
                break
    labelled = [e for e in examples if _label(e)]
    seen = sum(1 for e in labelled if _conversation_key(e["inputs"].get("messages")) in keys)
    return seen, len(labelled), readable


def _model_metadata(model_path: str | Path) -> dict[str, Any]:
    try:
        return dict(json.loads(Path(model_path).read_text(encoding="utf-8")).get("metadata") or {})
    except (OSError, json.JSONDecodeError):
        return {}


def cross_validated_routes(
    examples: Sequence[dict[str, Any]],
    llm_only: Sequence[dict[str, Any]],
    *,
    c: float = 3.0,
    seed: int = 0,
    n_folds: int = 5,
    target: float = 0.96,
    budget: int = 2000,
) -> dict[str, Any]:
    """The cascade's routes had the local model never seen the example (k-fold, `evals.train`'s code).

    Every labelled example whose LLM-only route came from the classifier gets an out-of-fold
    prediction and a decision against a threshold chosen on the other folds; where it would
    decide, that label is the cascade's route, else the LLM-only route stands. Rule-decided
    examples (META, VISION) keep their LLM-only route: the cascade does not touch them.

    Raises:
        ImportError: scikit-learn is not installed.
        ValueError: too few labelled examples per route for the folds.
    """
    from sklearn.model_selection import StratifiedKFold

    from core.routing.local_model import document
    from core.messages import routing_view
    from evals.train import choose_threshold, out_of_fold_logits, softmax
    from evals.train import fit_temperature as fit
    from core.routes import classifiable_labels

    allowed = set(classifiable_labels())
    rows = [
        i
        for i, (example, result) in enumerate(zip(examples, llm_only, strict=True))
        if _label(example) in allowed and _classified(result)
    ]
    labels = sorted({_label(examples[i]) for i in rows})  # type: ignore[type-var]
    if len(labels) < 2:
        raise ValueError(f"need labelled examples of two routes or more, got {labels}")
    y = np.array([labels.index(_label(examples[i])) for i in rows])
    smallest = int(np.bincount(y).min())
    if smallest < 2:
        raise ValueError("a route has fewer than 2 labelled examples: no folds possible")
    folds_wanted = max(2, min(n_folds, smallest))
    docs = [document(*routing_view(examples[i]["inputs"]["messages"], budget)) for i in rows]
    splitter = StratifiedKFold(n_splits=folds_wanted, shuffle=True, random_state=seed)
    folds = [test for _, test in splitter.split(docs, y)]
    logits, familiar = out_of_fold_logits(docs, y, labels, c, folds, seed)
    probs = softmax(logits, fit(logits, y))
    confidence = np.where(familiar, probs.max(axis=1), 0.0)
    predicted = probs.argmax(axis=1)
    correct = predicted == y
    decided = np.zeros(len(rows), dtype=bool)
    for test in folds:  # each fold's threshold is chosen on the other folds only (as in the model card)
        rest = np.setdiff1d(np.arange(len(rows)), test)
        decided[test] = confidence[test] >= choose_threshold(confidence[rest], correct[rest], target)
    routes = [r.get("route") for r in llm_only]
    for k, i in enumerate(rows):
        if decided[k]:
            routes[i] = labels[predicted[k]]
    accuracy, right, labelled = _accuracy(examples, routes)
    count = int(decided.sum())
    return {
        "accuracy": accuracy,
        "right": right,
        "labelled": labelled,
        "items": len(rows),
        "folds": folds_wanted,
        "local_share": count / len(rows),
        "local_accuracy": float(correct[decided].mean()) if count else None,
        "local_decided": count,
        "settings": {"C": c, "seed": seed, "target_accuracy": target},
    }


def cascade_section(
    examples: Sequence[dict[str, Any]],
    cascade: Sequence[dict[str, Any]],
    llm_only: Sequence[dict[str, Any]] | None,
    *,
    model_path: str | Path,
    budget: int = 2000,
    cross_validate: bool = True,
    llm_only_note: str | None = None,
) -> dict[str, Any] | None:
    """The report's "Cascade" section from the cascade replay and (if run) the LLM-only replay.

    Args:
        examples: The dataset rows, aligned with both replays.
        cascade: Results of the replay as configured (the local classifier on or in shadow).
        llm_only: Results of the `LOCAL_CLASSIFIER=off` replay, or None when it was not run.
        model_path: The local model file (its `card.json` and training settings sit beside it).
        budget: `CLASSIFY_CONTEXT_BUDGET`, for the cross-validation's view of the conversation.
        cross_validate: Compute the cross-validated cascade accuracy (needs the LLM-only arm).
        llm_only_note: Why the LLM-only arm was not run, shown instead of the comparison.

    Returns:
        None when no replayed request went through the local classifier (it is off).
    """
    locals_ = [_local(r) for r in cascade]
    ran = [
        (example, result, local)
        for example, result, local in zip(examples, cascade, locals_, strict=True)
        if local is not None
    ]
    if not ran:
        return None
    decided = [(example, result, local) for example, result, local in ran if local.get("decided")]
    scored = [(local.get("label"), label) for example, _, local in decided if (label := _label(example))]
    local_right = sum(1 for got, want in scored if got == want)
    versions = sorted({str(local.get("model_version")) for _, _, local in ran})
    if decided:
        mode = "on"
    elif any(local.get("note") == "shadow mode" for _, _, local in ran):
        mode = "shadow"
    else:
        mode = "on (nothing decided)"
    undecided = [
        int(local["label"] == result.get("route"))
        for _, result, local in ran
        if not local.get("decided")
        and local.get("label")
        and (result.get("route_reason") or "").startswith("classifier")
    ]
    card = model_card(model_path)
    seen, labelled_texts, readable = training_overlap(examples, (card or {}).get("trained_on") or "")
    section: dict[str, Any] = {
        "mode": mode,
        "model_versions": versions,
        "classified": len(ran),
        "local_decided": len(decided),
        "local_share": len(decided) / len(ran),
        "local_labelled": len(scored),
        "local_right": local_right,
        "local_accuracy": local_right / len(scored) if scored else None,
        "local_ms_p50": percentile(
            [float(local["ms"]) for _, _, local in ran if local.get("ms") is not None], 50
        ),
        "undecided_agreement": sum(undecided) / len(undecided) if undecided else None,
        "undecided_compared": len(undecided),
        "in_sample": seen > 0,
        "in_training_data": seen,
        "caveat": (
            f"{seen} of the {labelled_texts} labelled examples here are in the model's training data "
            f"({(card or {}).get('trained_on')}): its accuracy on them is in-sample and optimistic; "
            "the cross-validated figures below are the honest ones"
            if seen
            else "none of the labelled examples here is in the model's training dataset(s) (sessions it "
            "learnt from are not checked)"
            if readable
            else "the model card names no readable training dataset: whether the model saw these examples "
            "is unknown"
        ),
        "card": card,
    }
    cascade_accuracy, cascade_right, labelled = _accuracy(examples, [r.get("route") for r in cascade])
    section["cascade"] = {"accuracy": cascade_accuracy, "right": cascade_right, "labelled": labelled}
    if llm_only is None:
        section["llm_only"] = None
        section["llm_only_note"] = llm_only_note or "not run"
        return section
    llm_accuracy, llm_right, _ = _accuracy(examples, [r.get("route") for r in llm_only])
    section["llm_only"] = {"accuracy": llm_accuracy, "right": llm_right, "labelled": labelled}
    section["delta"] = (
        None if cascade_accuracy is None or llm_accuracy is None else cascade_accuracy - llm_accuracy
    )
    # The classifier calls the cascade did not make, priced at what the LLM-only arm paid for them.
    avoided = [
        float(other["classification_ms"])
        for result, other in zip(cascade, llm_only, strict=True)
        if (_local(result) or {}).get("decided") and other.get("classification_ms") is not None
    ]
    local_ms = sum(float(local["ms"]) for _, _, local in ran if local.get("ms") is not None)
    section["time_saved"] = {
        "calls_avoided": len(avoided),
        "ms_sum": sum(avoided),
        "ms_mean": sum(avoided) / len(avoided) if avoided else None,
        "llm_ms_p50": percentile(
            [float(o["classification_ms"]) for o in llm_only if o.get("classification_ms") is not None], 50
        ),
        "local_ms_sum": local_ms,
        "net_ms_sum": sum(avoided) - local_ms,
    }
    fixed, broken = [], []
    for example, result, other in zip(examples, cascade, llm_only, strict=True):
        label = _label(example)
        if label is None or result.get("route") == other.get("route"):
            continue
        item = {
            "example_id": example["metadata"]["example_id"],
            "expected": label,
            "cascade": result.get("route"),
            "llm_only": other.get("route"),
        }
        if result.get("route") == label:
            fixed.append(item)
        elif other.get("route") == label:
            broken.append(item)
    section["fixed_by_cascade"], section["broken_by_cascade"] = fixed, broken
    if cross_validate:
        meta = _model_metadata(model_path)
        try:
            section["cross_validated"] = cross_validated_routes(
                examples,
                llm_only,
                c=float(meta.get("C", 3.0)),
                seed=int(meta.get("seed", 0)),
                n_folds=int(meta.get("folds", 5)),
                target=float(meta.get("target_accuracy", 0.96)),
                budget=budget,
            )
        except ImportError:
            section["cross_validated"] = {"skipped": "scikit-learn not installed (pip install -e '.[train]')"}
        except ValueError as error:
            section["cross_validated"] = {"skipped": str(error)}
    return section


def cascade_gate(section: dict[str, Any] | None, margin: float) -> tuple[bool, str]:
    """Whether the cascade is within `margin` of LLM-only accuracy (measured and cross-validated).

    No cascade (the local classifier off) or no LLM-only arm: nothing to compare, the gate holds
    and says so.
    """
    if section is None:
        return True, "no local classifier in this replay: nothing to compare"
    llm = (section.get("llm_only") or {}).get("accuracy")
    if llm is None:
        return True, f"no LLM-only accuracy ({section.get('llm_only_note') or 'no labels'}): not compared"
    figures = [("cascade", section["cascade"]["accuracy"])]
    cv = section.get("cross_validated") or {}
    if cv.get("accuracy") is not None:
        figures.append(("cross-validated cascade", cv["accuracy"]))
    sentences, ok = [], True
    for name, value in figures:
        within = value is not None and value >= llm - margin
        ok = ok and within
        shown = "n/a" if value is None else f"{value:.3f}"
        sentences.append(
            f"{name} {shown} vs LLM-only {llm:.3f}: {'within' if within else 'below'} the margin"
        )
    return ok, "; ".join(sentences) + f" of {margin:.3f}"
