"""Nearest neighbours and outlier scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ftcurate.core.quality import embeddings as E
from ftcurate.core.quality.neighbors import approximate_backend, cross_knn, knn
from ftcurate.core.quality.outliers import iqr_fences, knn_outliers, length_outliers, text_lengths
from ftcurate.core.progress import Cancelled

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "chat_train.jsonl"
MANIFEST = json.loads((REPO / "tests" / "data" / "sample_manifest.json").read_text())


def _clustered(n=3000, d=32, centers=30, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, d))
    x = c[rng.integers(0, centers, n)] + 0.35 * rng.normal(size=(n, d))
    return E.normalize_rows(x.astype(np.float32))


@pytest.fixture(scope="module")
def sample():
    from ftcurate.core.io.formats import DatasetReader

    parsed = list(DatasetReader(str(SAMPLE)))
    texts = [p.record.text if p.record is not None else "" for p in parsed]
    return parsed, texts


def test_knn_exact_excludes_self_and_matches_brute_force():
    x = _clustered(500)
    idx, sim = knn(x, k=5)
    assert idx.shape == (500, 5) and sim.shape == (500, 5)
    assert not np.any(idx == np.arange(500)[:, None])
    full = x @ x.T
    np.fill_diagonal(full, -np.inf)
    assert np.allclose(sim, -np.sort(-full, axis=1)[:, :5], atol=1e-5)
    assert np.all(np.diff(sim, axis=1) <= 1e-6)  # best first
    # Fewer rows than k + 1: missing slots are -1 / -inf.
    idx2, sim2 = knn(x[:3], k=5)
    assert np.all(idx2[:, 2:] == -1) and np.all(np.isinf(sim2[:, 2:]))


def test_cross_knn():
    x = _clustered(400)
    idx, sim = cross_knn(x[:50], x, k=1)
    assert np.all(idx[:, 0] == np.arange(50))  # each query finds itself
    assert np.allclose(sim[:, 0], 1.0, atol=1e-5)


@pytest.mark.skipif(approximate_backend() is None, reason="no approximate-search library installed")
def test_knn_exact_and_approximate_agree():
    x = _clustered(3000)
    ie, se = knn(x, k=10, backend="exact")
    ia, sa = knn(x, k=10, exact_max=1000)  # above exact_max: approximate
    recall = np.mean([len(set(ia[r]) & set(ie[r])) / 10 for r in range(len(x))])
    assert recall > 0.9
    assert not np.any(ia == np.arange(len(x))[:, None])
    assert np.abs(sa[:, 0] - se[:, 0]).mean() < 0.02
    # Outlier scores barely move.
    oe = knn_outliers(x, neighbors=(ie, se))
    oa = knn_outliers(x, neighbors=(ia, sa))
    assert np.corrcoef(oe.scores, oa.scores)[0, 1] > 0.98
    ic, sc = cross_knn(x[:100], x, k=3, exact_max=1000)
    assert np.mean(ic[:, 0] == np.arange(100)) > 0.95


def test_knn_cancel():
    with pytest.raises(Cancelled):
        knn(_clustered(300), k=5, cancel=lambda: True)


def test_iqr_fences():
    low, high, q1, q3 = iqr_fences(np.arange(1, 101, dtype=float))
    assert (q1, q3) == (25.75, 75.25)
    assert high == pytest.approx(75.25 + 1.5 * 49.5) and low == pytest.approx(25.75 - 1.5 * 49.5)


def test_planted_outliers_found(sample):
    parsed, _texts = sample
    keep = [i for i, p in enumerate(parsed) if p.record is not None]
    planted = set(MANIFEST["outliers"])
    # MiniLM on the user's request: every planted off-topic record is flagged.
    emb = E.embed([parsed[i].record.first_user for i in keep], E.ACCURATE)
    res = knn_outliers(emb, k=10)
    flagged = {keep[i] for i in res.flagged}
    assert planted <= flagged, f"missed {sorted(planted - flagged)}"
    assert len(flagged) <= 3 * len(planted)
    assert res.scores.shape == (len(keep),) and res.cutoff < res.scores[res.flagged[0]]
    assert list(res.scores[res.flagged]) == sorted(res.scores[res.flagged], reverse=True)
    # The static model ranks most of them high too (its fence is looser: see docs).
    fast = knn_outliers(E.embed([parsed[i].record.text for i in keep], E.FAST), k=10)
    top = {keep[i] for i in np.argsort(-fast.scores)[:25]}
    assert len(planted & top) >= 6


def test_length_outliers(sample):
    parsed, texts = sample
    keep = [i for i, p in enumerate(parsed) if p.record is not None]
    words = text_lengths([parsed[i].record.answer_text for i in keep], "words")
    res = length_outliers(words)
    flagged = {keep[i] for i in res.flagged}
    assert set(MANIFEST["too_long"]) <= flagged
    assert res.low_cutoff is not None and res.low_cutoff < res.cutoff
    tokens = text_lengths(["one two three", ""], "tokens")
    assert tokens[0] >= 3 and tokens[1] == 0
    assert list(text_lengths(["a  b\nc", ""], "words")) == [3, 0]
    only_high = length_outliers([10] * 20 + [1, 10_000], side="high")
    assert only_high.flagged == [21]
    both = length_outliers([10] * 20 + [1, 10_000])
    assert both.flagged == [21, 20]


def test_knn_outliers_small_and_empty():
    assert knn_outliers(np.zeros((2, 8), dtype=np.float32)).flagged == []
    x = _clustered(200, centers=2)
    x = np.vstack([x, np.zeros((1, x.shape[1]), dtype=np.float32)])
    res = knn_outliers(x)
    assert res.scores[-1] == 1.0 and 200 in res.flagged
