"""The local route classifier: a linear model over n-grams, static embeddings and shape features.

`python -m evals.train` learns it (scikit-learn) and exports it to one JSON file:
the vocabulary, the idf weights, the coefficients of the n-gram part and of the dense part
(the query's and the history's static sentence embeddings, `core.routing.embedding`, and a
few shape features: length, code, LaTeX, numbers, recency, question and proof words), a
calibration temperature and the per-route thresholds chosen out of source. This module only
reads that file, so the router needs neither scikit-learn nor pickle at run time: loading is
a `json.load` (no code runs from the file), and a prediction is a tokenisation, one mean of
embedding rows and one small matrix product (well under a millisecond for a chat message).

The features are built from the conversation exactly as the LLM classifier sees it:
the last human turn and the bounded history of `core.messages.routing_view`.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import gc
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
from core.routing.embedding import EMBEDDING_NAME, shared_embedder

log = logging.getLogger("ai_router.local_classifier")

MODEL_FORMAT = "ai-router-linear-v2"
"""The `format` field a newly written model file carries."""
READABLE_FORMATS = ("ai-router-linear-v1", MODEL_FORMAT)
"""Formats this module reads (v1: n-grams only, one threshold); a file of another is refused."""

MIN_KNOWN_SHARE = 0.3
"""Share of a query's n-grams the vocabulary must know before the model may decide: on text
unlike anything it was trained on (gibberish, another language, a long paste of symbols) a
linear model still answers, and its confidence then only reflects the length feature."""

QUERY_CHARS = 600
"""Characters of the query turned into character n-grams (words use all of it): a long
pasted text says little more in its 3000th character than in its 600th, and it bounds the
cost of a prediction."""

MAX_HISTORY_EMBED = 1000
"""Characters of the history (its newest end) that are embedded."""

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


_CODE_RE = re.compile(r"```|\bdef \w+\(|\bclass \w+|\bimport \w+|#include|\bfunction\b|=>|\breturn\b|"
                      r"\bprint\(|[{};]\s*$|\bconsole\.|\bpublic static\b|\bSELECT\b", re.MULTILINE)
_LATEX_RE = re.compile(r"\$[^$]+\$|\\(?:frac|sqrt|sum|int|lim|cdot|le|ge|mathbb|mathrm|left|right|pi|infty|"
                       r"alpha|beta|theta|begin)\b|\^\{|_\{|\\\(|\\\[")
_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)?")
_MATH_RE = re.compile(r"[=+*/^<>\u00b1\u221a\u2211\u222b\u2264\u2265\u00d7\u00f7]")
_RECENCY_RE = re.compile(
    r"\b(?:today|tonight|tomorrow|yesterday|now|right now|currently|current|latest|recent|recently|news|"
    r"headlines?|price|prices|stock|stocks|shares|weather|forecast|temperature|score|scores|traffic|"
    r"this (?:week|weekend|month|year|morning|evening)|next (?:week|weekend)|live|open now|showtimes?|"
    r"schedule|playing|exchange rate|20(?:2[3-9]|3\d))\b")
_QUESTION_RE = re.compile(r"^\s*(?:what|who|whom|whose|when|where|why|how|which|is|are|was|were|can|could|do|"
                          r"does|did|will|would|should)\b")
_PROOF_RE = re.compile(r"\b(?:prove|proof|proves|derive|derivation|show that|theorem|lemma|corollary|rigorous|"
                       r"rigorously|suppose|let \w+ be|if and only if|iff|for all|there exists|converges?|"
                       r"integral|eigen\w*|homomorphism|topolog\w*)\b")
_TASK_RE = re.compile(r"\b(?:write|implement|refactor|debug|fix|code|program|script|algorithm|function|class|"
                      r"complexity|optimi[sz]e|design|architecture|analy[sz]e|compare|explain)\b")
_OPTIONS_RE = re.compile(r"(?:^|\s)\(?[A-E][).:]\s")

SHAPE_NAMES = (
    "chars_log", "words_log", "lines_log", "code", "latex", "numbers_log", "digit_share", "math_share",
    "recency", "question_word", "question_mark", "proof_words", "task_words", "options", "history",
    "history_chars_log", "history_recency",
)
"""The shape features, in the order `shape_features` returns them."""


def shape_features(query: str, history: str) -> np.ndarray:
    """Hand-made features the n-grams see poorly: length, code, LaTeX, numbers, recency, intent words."""
    text = query[:4000]
    lower = text.lower()
    chars = max(len(text), 1)
    words = len(_WORD_RE.findall(lower))
    digits = sum(c.isdigit() for c in text)
    return np.array([
        math.log1p(len(text)) / 8.0,
        math.log1p(words) / 6.0,
        math.log1p(text.count("\n")) / 4.0,
        min(len(_CODE_RE.findall(text)), 5) / 5.0,
        min(len(_LATEX_RE.findall(text)), 5) / 5.0,
        math.log1p(len(_NUMBER_RE.findall(text))) / 4.0,
        digits / chars,
        min(len(_MATH_RE.findall(text)) / chars * 10, 1.0),
        min(len(_RECENCY_RE.findall(lower)), 3) / 3.0,
        float(bool(_QUESTION_RE.match(lower))),
        float("?" in text),
        min(len(_PROOF_RE.findall(lower)), 3) / 3.0,
        min(len(_TASK_RE.findall(lower)), 3) / 3.0,
        float(len(_OPTIONS_RE.findall(text)) >= 3),
        float(bool(history)),
        math.log1p(len(history)) / 8.0,
        min(len(_RECENCY_RE.findall(history[-2000:].lower())), 3) / 3.0,
    ], dtype=np.float64)


def dense_features(query: str, history: str, embedder: Any, *, history_embedding: bool = True,
                   shape: bool = True) -> np.ndarray:
    """The dense features of one request, unscaled: query embedding, history embedding, shape.

    The training and the router use this same function (`embedder` None: no embeddings).
    """
    parts = []
    if embedder is not None:
        parts.append(embedder.embed(query))
        if history_embedding:
            parts.append(embedder.embed(history[-MAX_HISTORY_EMBED:]))
    if shape:
        parts.append(shape_features(query, history))
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)


def encode_array(values: Any) -> dict[str, Any]:
    """A float array as JSON: little-endian float32 bytes in base64, with its shape.

    Parsing a list of a million JSON numbers makes a million Python floats (and a memory peak far
    above the array's size); one base64 string decodes straight into the array.
    """
    array = np.ascontiguousarray(np.asarray(values, dtype="<f4"))
    return {"dtype": "float32", "shape": list(array.shape), "base64": base64.b64encode(array.tobytes()).decode()}


def decode_array(value: Any) -> np.ndarray:
    """`encode_array`'s output (or a plain JSON list, as v1 files have) as a float64 array."""
    if isinstance(value, dict):
        if value.get("dtype") != "float32":
            raise ValueError(f"array dtype {value.get('dtype')!r}, expected 'float32'")
        raw = np.frombuffer(base64.b64decode(value["base64"]), dtype="<f4")
        return raw.reshape(value["shape"]).astype(np.float64)
    return np.asarray(value, dtype=np.float64)


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

    def __init__(self, data: dict[str, Any], path: Path | None = None, embedder: Any = None) -> None:
        """Build the model from the parsed model file.

        Args:
            data: the parsed model file.
            path: where it was read from (for messages).
            embedder: the static embedder (`core.routing.embedding.StaticEmbedder`); by default
                the shared one, loaded when the model has a dense part that needs it.

        Raises:
            ValueError: the file is not a model this module reads, or is inconsistent.
            FileNotFoundError: the model needs static embeddings and `wordllama` is not installed.
        """
        if data.get("format") not in READABLE_FORMATS:
            raise ValueError(f"{path}: model format {data.get('format')!r}, expected one of {READABLE_FORMATS}")
        self.path = path
        self.version: str = data["version"]
        self.labels: list[str] = list(data["labels"])
        self.threshold: float = float(data["threshold"])
        thresholds = data.get("thresholds") or {}
        self.thresholds: dict[str, float] = {label: float(thresholds.get(label, self.threshold))
                                             for label in self.labels}
        self.temperature: float = float(data["temperature"])
        self.context_budget: int = int(data["context_budget"])
        vocabulary: list[str] = data["vocabulary"]
        self.index: dict[str, int] = {term: i for i, term in enumerate(vocabulary)}
        self.idf = decode_array(data["idf"])
        # (features, labels): one row per feature, so a request's rows are a contiguous gather.
        coef = decode_array(data["coef"]).reshape(len(self.labels), len(vocabulary))
        self.coef = coef.T.copy()
        self.intercept = decode_array(data["intercept"])
        if len(self.idf) != len(vocabulary) or len(self.intercept) != len(self.labels):
            raise ValueError(f"{path}: vocabulary, idf and coefficients do not line up")
        self.min_known_share: float = float(data.get("min_known_share", MIN_KNOWN_SHARE))
        self.metadata: dict[str, Any] = data.get("metadata") or {}
        dense = data.get("dense") or None
        self.embedder: Any = None
        self.history_embedding = False
        self.shape = False
        if dense:
            if dense.get("embedding"):
                if dense["embedding"] != EMBEDDING_NAME:
                    raise ValueError(f"{path}: trained on embedding {dense['embedding']!r}, have {EMBEDDING_NAME!r}")
                self.embedder = embedder or shared_embedder()
                self.history_embedding = bool(dense.get("history_embedding"))
            self.shape = list(dense.get("shape") or []) == list(SHAPE_NAMES)
            if dense.get("shape") and not self.shape:
                raise ValueError(f"{path}: shape features {dense.get('shape')} differ from this code's")
            self.dense_mean = decode_array(dense["mean"])
            self.dense_scale = decode_array(dense["scale"])
            self.dense_coef = decode_array(dense["coef"]).T.copy()  # (features, labels)
            if self.dense_coef.shape != (len(self.dense_mean), len(self.labels)):
                raise ValueError(f"{path}: dense coefficients do not line up")

    @classmethod
    def load(cls, path: Path) -> LocalModel:
        """Read a model file (plain JSON: nothing in it is executed)."""
        return cls(json.loads(path.read_text(encoding="utf-8")), path)

    def dense_vector(self, query: str, history: str) -> np.ndarray | None:
        """The dense part of the features, standardised as in training (None: the model has none)."""
        if self.embedder is None and not self.shape:
            return None
        return (dense_features(query, history, self.embedder, history_embedding=self.history_embedding,
                               shape=self.shape) - self.dense_mean) * self.dense_scale

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
        dense = self.dense_vector(query, history)
        if dense is not None:
            logits += dense @ self.dense_coef
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
            known_share=known_share(tokens, index) if index else 1.0,
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
    except (OSError, ValueError, KeyError, TypeError, ImportError) as error:
        log.error("local classifier not loaded (%s): every request goes to the LLM classifier", error)
        return None
    release_freed_memory()
    log.info("local classifier %s loaded from %s", model.version, path)
    return model


def release_freed_memory() -> None:
    """Hand the memory freed after loading back to the system (glibc's `malloc_trim`; elsewhere a no-op).

    Parsing the 4 MB model file builds a few hundred thousand short-lived Python objects; once
    they are freed, glibc keeps the pages, and the router's RSS stays about 16 MB above what the
    model needs (measured on the shipped model: +68 MB after loading, +52 MB after the trim).
    """
    gc.collect()
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return
    trim(0)
