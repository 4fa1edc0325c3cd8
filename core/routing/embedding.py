"""Static sentence embeddings for the local route classifier, read from the `wordllama` wheel.

The `wordllama` package ships a 256-dimensional static token-embedding matrix
(`weights/l2_supercat_256.safetensors`, 32,000 x 256 float16, 16 MB) and its tokenizer
(`tokenizers/l2_supercat_tokenizer_config.json`) inside its wheel. This module reads those
two files directly, without importing `wordllama` (its loader looks for the tokenizer in the
wrong folder and then tries to download): the tokenizer with `tokenizers`, the matrix with
`safetensors.numpy` (a plain tensor format; nothing in it is executed). A sentence vector is
the mean of its tokens' rows, l2-normalised: what WordLlama's own `embed(norm=True)` computes.
"""

from __future__ import annotations

import importlib.util
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

EMBEDDING_NAME = "wordllama:l2_supercat_256"
"""The embedding the model files name; a model trained on another is refused."""
EMBEDDING_DIM = 256
MAX_CHARS = 2000
"""Characters of a text that are embedded: the mean of a long paste hardly moves after that,
and it bounds the tokeniser's cost."""
_WEIGHTS = "weights/l2_supercat_256.safetensors"
_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"


def package_dir() -> Path | None:
    """The installed `wordllama` package folder, found without importing it."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


class StaticEmbedder:
    """Mean-pooled static token embeddings (WordLlama l2_supercat, 256 dimensions)."""

    name = EMBEDDING_NAME
    dim = EMBEDDING_DIM

    def __init__(self, folder: Path | None = None) -> None:
        """Load the tokenizer and the embedding matrix from the `wordllama` package.

        Raises:
            FileNotFoundError: `wordllama` is not installed or its files are missing.
        """
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = folder or package_dir()
        if folder is None or not (folder / _WEIGHTS).is_file() or not (folder / _TOKENIZER).is_file():
            raise FileNotFoundError("the wordllama package (static embeddings) is not installed")
        self.tokenizer: Any = Tokenizer.from_file(str(folder / _TOKENIZER))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        matrix = load_file(str(folder / _WEIGHTS))["embedding.weight"]
        if matrix.shape[1] != self.dim:
            raise ValueError(f"embedding matrix has {matrix.shape[1]} dimensions, expected {self.dim}")
        # Kept as float16 (16 MB); a request's few rows are widened to float32 before they are averaged.
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float16)

    def _pool(self, ids: list[int]) -> np.ndarray:
        if not ids:
            return np.zeros(self.dim, dtype=np.float32)
        index = np.asarray(ids, dtype=np.intp)
        np.clip(index, 0, len(self.matrix) - 1, out=index)
        vector = self.matrix[index].astype(np.float32).mean(axis=0)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def embed(self, text: str) -> np.ndarray:
        """The l2-normalised mean token embedding of `text` (zeros for an empty text)."""
        if not text.strip():
            return np.zeros(self.dim, dtype=np.float32)
        return self._pool(self.tokenizer.encode(text[:MAX_CHARS], add_special_tokens=False).ids)

    def embed_many(self, texts: list[str]) -> np.ndarray:
        """`embed` of many texts (batched tokenisation, for training)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encoded = self.tokenizer.encode_batch([t[:MAX_CHARS] for t in texts], add_special_tokens=False)
        for row, (text, encoding) in enumerate(zip(texts, encoded, strict=True)):
            if text.strip():
                out[row] = self._pool(encoding.ids)
        return out


_lock = threading.Lock()


@lru_cache(maxsize=1)
def _shared() -> StaticEmbedder:
    return StaticEmbedder()


def shared_embedder() -> StaticEmbedder:
    """One embedder per process (the matrix is 16 MB; load it once)."""
    with _lock:
        return _shared()
