"""The local classifier's view of one request, as `fast_classify` and `classify` record it.

`assess` predicts and says whether the prediction is *confident*: a classifiable route the model
was trained on, familiar text, probability at or above the route's threshold. Only confident
predictions may decide a route (`LOCAL_CLASSIFIER=on`, or `auto` on a promoted route), and only
they are measured against the LLM classifier (`core.routing.agreement`).
"""

from __future__ import annotations

from typing import Any

from core.routing.local_model import LocalModel

NOT_LOADED = {
    "label": None, "probability": None, "threshold": None, "model_version": None,
    "decided": False, "confident": False, "ms": 0.0, "note": "model not loaded (see the router's log)",
}
"""What is recorded when the model file could not be read."""


def assess(model: LocalModel, messages: list[dict[str, Any]], labels: list[str],
           threshold_override: float | None) -> dict[str, Any]:
    """Predict the route of `messages`; `note` says why it may not decide (None: confident).

    Args:
        model: the loaded local model.
        messages: the conversation.
        labels: the route table's classifiable labels now.
        threshold_override: `LOCAL_CLASSIFIER_THRESHOLD` (None: the model's per-route thresholds).
    """
    prediction = model.predict(messages)
    threshold = threshold_override
    if threshold is None:
        threshold = model.thresholds.get(prediction.label, model.threshold)
    untrained = [label for label in labels if label not in model.labels]
    note = None
    if untrained:
        note = f"model not trained on {', '.join(untrained)}: retrain with make train-router"
    elif prediction.label not in labels:
        note = f"predicted {prediction.label}, no longer a classifiable route"
    elif prediction.known_share < model.min_known_share:
        note = f"unfamiliar text ({prediction.known_share:.0%} of its n-grams known)"
    elif prediction.probability < threshold:
        note = "unsure"
    return {
        "label": prediction.label,
        "probability": round(prediction.probability, 4),
        "threshold": threshold,
        "model_version": model.version,
        "decided": False,
        "confident": note is None,
        "ms": round(prediction.ms, 3),
        "note": note,
    }
