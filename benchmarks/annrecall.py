"""Recall of an approximate neighbour search against exact search, for the benchmarks
(bench_ann.py, bench_scale.py): 1,000 sampled rows, their true 10 nearest other rows.

*Strict* recall: the share of the true 10 found. *Tie-aware*: a found neighbour counts when its
exact cosine is at least the true 10th best (on data with many equal vectors the "true 10" is
one choice among equals)."""

from __future__ import annotations

import numpy as np


def sample_rows(n: int, sample: int = 1000) -> np.ndarray:
    """The rows :class:`ExactSample` checks (seed 0): a caller may keep only their lists."""
    return np.random.default_rng(0).choice(n, min(sample, n), replace=False)


class ExactSample:
    """Exact similarities of ``sample`` random rows of ``emb`` (seed 0) with every row: their
    true 10 nearest other rows (computed in blocks of rows: a 1,000 x 1M product would be 4 GB)."""

    def __init__(self, emb: np.ndarray, sample: int = 1000, block: int = 64) -> None:
        self.emb = emb
        self.rows = sample_rows(len(emb), sample)
        tops, tenths = [], []
        for lo in range(0, len(self.rows), block):
            r = self.rows[lo:lo + block]
            sims = emb[r] @ emb.T
            sims[np.arange(len(r)), r] = -np.inf
            top = np.argpartition(-sims, 10, axis=1)[:, :10]
            tops.append(top)
            tenths.append(np.take_along_axis(sims, top, axis=1).min(axis=1))
        self.top = np.concatenate(tops)
        self.tenth = np.concatenate(tenths)

    def recall(self, idx: np.ndarray) -> tuple[float, float]:
        """``(strict, tie_aware)`` recall@10 of the neighbour lists ``idx`` (n, >= 10; -1: none)."""
        return self.recall_of_sample(idx[self.rows, :10])

    def recall_of_sample(self, got: np.ndarray) -> tuple[float, float]:
        """:meth:`recall` from the sampled rows' lists only (``idx[sample_rows(n)]``)."""
        got = np.asarray(got)[:, :10]
        strict = float(np.mean([len(set(got[k].tolist()) & set(self.top[k].tolist())) / 10
                                for k in range(len(self.rows))]))
        found = np.einsum("kd,kjd->kj", self.emb[self.rows], self.emb[np.maximum(got, 0)])
        tie = float(np.mean((found >= self.tenth[:, None] - 1e-5) & (got >= 0)))
        return strict, tie
