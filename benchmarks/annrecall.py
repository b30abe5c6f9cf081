"""Recall of an approximate neighbour search against exact search, for the benchmarks
(bench_ann.py, bench_scale.py): 1,000 sampled rows, their true 10 nearest other rows.

*Strict* recall: the share of the true 10 found. *Tie-aware*: a found neighbour counts when its
exact cosine is at least the true 10th best (on data with many equal vectors the "true 10" is
one choice among equals)."""

from __future__ import annotations

import numpy as np


class ExactSample:
    """Exact similarities of ``sample`` random rows of ``emb`` (seed 0) with every row."""

    def __init__(self, emb: np.ndarray, sample: int = 1000) -> None:
        self.rows = np.random.default_rng(0).choice(len(emb), min(sample, len(emb)), replace=False)
        self.sims = emb[self.rows] @ emb.T
        self.sims[np.arange(len(self.rows)), self.rows] = -np.inf
        self.top = np.argpartition(-self.sims, 10, axis=1)[:, :10]
        self.tenth = np.take_along_axis(self.sims, self.top, axis=1).min(axis=1)

    def recall(self, idx: np.ndarray) -> tuple[float, float]:
        """``(strict, tie_aware)`` recall@10 of the neighbour lists ``idx`` (n, >= 10; -1: none)."""
        got = idx[self.rows, :10]
        strict = float(np.mean([len(set(got[k].tolist()) & set(self.top[k].tolist())) / 10
                                for k in range(len(self.rows))]))
        found = np.take_along_axis(self.sims, np.maximum(got, 0), axis=1)
        tie = float(np.mean((found >= self.tenth[:, None] - 1e-5) & (got >= 0)))
        return strict, tie
