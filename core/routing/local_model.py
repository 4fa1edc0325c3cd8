"""The local route classifier: a linear model over word and character n-grams, run in numpy.

`python -m evals.train` learns it (scikit-learn) and exports it to one JSON file:
the vocabulary, the idf weights, the coefficients, a calibration temperature and the
threshold chosen on held-out data. This module only reads that file, so the router needs
neither scikit-learn nor pickle at run time: loading is a `json.load` (no code runs from
the file), and a prediction is a tokenisation plus one small matrix product (well under a
millisecond for a chat message).

The features are built from the conversation exactly as the LLM classifier sees it:
the last human turn and the bounded history of `core.messages.routing_view`.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.messages import routing_view

log = logging.getLogger("ai_router.local_classifier")

MODEL_FORMAT = "ai-router-linear-v1"
"""The `format` field the model file must carry; a file of another format is refused."""

MIN_KNOWN_SHARE = 0.3
"""Share of a query's n-grams the vocabulary must know before the model may decide: on text
unlike anything it was trained on (gibberish, another language, a long paste of symbols) a
linear model still answers, and its confidence then only reflects the length feature."""

QUERY_CHARS = 600
"""Characters of the query turned into character n-grams (words use all of it): a long
pasted text says little more in its 3000th character than in its 600th, and it bounds the
cost of a prediction."""

# Each CJK character is a word of its own: those scripts put no spaces between words, and one
# 30-character "word" would look like a one-word greeting to the length feature.
_CJK = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORD_RE = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
_SEPARATOR = "\x1f"  # joins query and history into the one string scikit-learn's vectorizer passes around


def _length_bucket(words: int) -> str:
    """A coarse length feature: greetings are short, research questions are long."""
    for limit, name in ((2, "1-2"), (5, "3-5"), (12, "6-12"), (30, "13-30"), (80, "31-80")):
        if words <= limit:
            return name
    return "81+"


def features(query: str, history: str) -> list[str]:
    """The n-gram tokens of one request (the training and the router use this same function).

    Word unigrams and bigrams of the query (`w:`), character 3- to 5-grams inside the
    query's words (`c:`, as scikit-learn's `char_wb`, robust to typos and inflections),
    word unigrams of the history (`h:`, so a follow-up like "and today?" can lean on what
    came before), a length bucket and whether there is history at all.
    """
    text = query.lower()
    words = _WORD_RE.findall(text)
    tokens = [f"w:{w}" for w in words]
    tokens += [f"w:{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    for chunk in text[:QUERY_CHARS].split():
        padded = f" {chunk} "
        size = len(padded)
        for n in (3, 4, 5):
            if n > size:
                break
            tokens += [f"c:{padded[i:i + n]}" for i in range(size - n + 1)]
    tokens.append(f"len:{_length_bucket(len(words))}")  # the query's n-grams end here (see known_share)
    if history:
        tokens += [f"h:{w}" for w in _WORD_RE.findall(history.lower())]
        tokens.append("hist:yes")
    else:
        tokens.append("hist:no")
    return tokens


def known_share(tokens: list[str], vocabulary: dict[str, int] | set[str]) -> float:
    """Share of the query's n-gram tokens (`w:`, `c:`) the vocabulary knows (1.0 for an empty query)."""
    query_tokens = [t for t in tokens if t[:2] in ("w:", "c:")]
    if not query_tokens:
        return 1.0
    return sum(t in vocabulary for t in query_tokens) / len(query_tokens)


def document(query: str, history: str) -> str:
    """Pack (query, history) into the one string the training's vectorizer is given."""
    return f"{query}{_SEPARATOR}{history}"


def document_features(doc: str) -> list[str]:
    """`features` of a packed `document` (the analyzer handed to scikit-learn)."""
    query, _, history = doc.partition(_SEPARATOR)
    return features(query, history)


@dataclass(frozen=True)
class LocalPrediction:
    """What the local model says about one request."""

    label: str
    """The most probable route among those the model was trained on."""
    probability: float
    """Its calibrated probability."""
    probabilities: dict[str, float]
    """Every trained label's calibrated probability."""
    ms: float
    """How long the prediction took."""
    known_share: float
    """Share of the query's word and character n-grams found in the model's vocabulary."""


class LocalModel:
    """A loaded model file: predicts a route and a calibrated probability for a conversation."""

    def __init__(self, data: dict[str, Any], path: Path | None = None) -> None:
        """Build the model from the parsed model file.

        Raises:
            ValueError: the file is not an `ai-router-linear-v1` model or is inconsistent.
        """
        if data.get("format") != MODEL_FORMAT:
            raise ValueError(f"{path}: model format {data.get('format')!r}, expected {MODEL_FORMAT!r}")
        self.path = path
        self.version: str = data["version"]
        self.labels: list[str] = list(data["labels"])
        self.threshold: float = float(data["threshold"])
        self.temperature: float = float(data["temperature"])
        self.context_budget: int = int(data["context_budget"])
        vocabulary: list[str] = data["vocabulary"]
        self.index: dict[str, int] = {term: i for i, term in enumerate(vocabulary)}
        self.idf = np.asarray(data["idf"], dtype=np.float64)
        # (features, labels): one row per feature, so a request's rows are a contiguous gather.
        self.coef = np.asarray(data["coef"], dtype=np.float64).T.copy()
        self.intercept = np.asarray(data["intercept"], dtype=np.float64)
        if self.coef.shape != (len(vocabulary), len(self.labels)) or len(self.idf) != len(vocabulary):
            raise ValueError(f"{path}: vocabulary, idf and coefficients do not line up")
        self.min_known_share: float = float(data.get("min_known_share", MIN_KNOWN_SHARE))
        self.metadata: dict[str, Any] = data.get("metadata") or {}

    @classmethod
    def load(cls, path: Path) -> LocalModel:
        """Read a model file (plain JSON: nothing in it is executed)."""
        return cls(json.loads(path.read_text(encoding="utf-8")), path)

    def predict_text(self, query: str, history: str) -> LocalPrediction:
        """Predict from the routing view of a conversation (query and bounded history)."""
        started = time.perf_counter()
        counts: dict[int, int] = {}
        index = self.index
        tokens = features(query, history)
        for token in tokens:
            position = index.get(token)
            if position is not None:
                counts[position] = counts.get(position, 0) + 1
        logits = self.intercept.copy()
        if counts:
            positions = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
            # Sublinear tf times idf, then l2-normalised: what TfidfVectorizer computed in training.
            weights = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts))))
            weights *= self.idf[positions]
            weights /= math.sqrt(float(weights @ weights))
            logits += weights @ self.coef[positions]
        scaled = logits / self.temperature
        scaled -= scaled.max()
        exp = np.exp(scaled)
        probs = exp / exp.sum()
        best = int(probs.argmax())
        return LocalPrediction(
            label=self.labels[best],
            probability=float(probs[best]),
            probabilities={label: float(p) for label, p in zip(self.labels, probs, strict=True)},
            ms=(time.perf_counter() - started) * 1000,
            known_share=known_share(tokens, index),
        )

    def predict(self, messages: list[dict[str, Any]]) -> LocalPrediction:
        """Predict the route of a chat conversation, seen as the LLM classifier sees it."""
        query, history = routing_view(messages, self.context_budget)
        return self.predict_text(query, history)


def load_local_model(path: str) -> LocalModel | None:
    """The model at `path`; None (logged) when it cannot be read.

    A missing or broken model file must not take the router down: every request then goes
    to the LLM classifier, as with `LOCAL_CLASSIFIER=off`.
    """
    try:
        model = LocalModel.load(Path(path))
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.error("local classifier not loaded (%s): every request goes to the LLM classifier", error)
        return None
    log.info("local classifier %s loaded from %s", model.version, path)
    return model
