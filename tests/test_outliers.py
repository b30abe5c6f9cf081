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


# -- refining the outlier candidates of an approximate search (issue 14) ------------------------


def _planted(n=4000, d=32, far=25, seed=1):
    """Clustered rows plus ``far`` rows off every cluster (the outliers)."""
    x = _clustered(n, d, seed=seed)
    rng = np.random.default_rng(seed + 1)
    x[-far:] = E.normalize_rows(rng.normal(size=(far, d)).astype(np.float32))
    return x


def _degrade(idx, sim, seed=0, share=0.1):
    """Lists an approximate search could return: for ``share`` of the rows some true neighbours
    are missed (the list starts further down), so every similarity is at most the true one.
    (The IQR fence is set on these scores: when far more rows than an approximate search would
    miss are degraded, the fence rises and can cut the list below the cap.)"""
    rng = np.random.default_rng(seed)
    k = idx.shape[1] // 2
    shift = np.where(rng.random(len(idx)) < share, rng.integers(1, k + 1, len(idx)), 0)
    cols = shift[:, None] + np.arange(k)[None, :]
    return np.take_along_axis(idx, cols, axis=1), np.take_along_axis(sim, cols, axis=1)


def test_refined_outlier_list_is_the_exact_one():
    from ftcurate.core.quality.neighbors import knn_search

    x = _planted()
    ie, se = knn(x, k=10, backend="exact")
    exact = knn_outliers(x, neighbors=(ie, se), max_share=0.01, min_count=20)
    wide_i, wide_s = knn(x, k=20, backend="exact")
    ia, sa = _degrade(wide_i, wide_s)
    assert np.all(sa[:, :10] <= se + 1e-6)  # upper bounds of the scores
    rough = knn_outliers(x, neighbors=(ia, sa), max_share=0.01, min_count=20)
    assert set(rough.flagged) != set(exact.flagged)  # the degraded lists move the capped list
    found = knn_search(x, k=10, exact_max=1000)  # approximate: refines exactly (small)
    assert not found.exact
    calls = []

    def refine(rows):
        calls.append(len(rows))
        return found.refine(rows, 10)

    fixed = knn_outliers(x, neighbors=(ia, sa), max_share=0.01, min_count=20, refine=refine)
    assert fixed.flagged == exact.flagged
    assert set(range(len(x) - 25, len(x))) <= set(fixed.flagged)  # the planted ones
    assert 0 < sum(calls) < len(x) // 4  # only the candidates were searched again
    np.testing.assert_allclose(fixed.scores[fixed.flagged], exact.scores[fixed.flagged], atol=1e-5)


@pytest.mark.parametrize("backend", ["clustered", "usearch"])
def test_refine_on_the_index_never_loses_a_neighbour(monkeypatch, backend):
    from ftcurate.core.quality import neighbors as nb

    if backend != "clustered" and approximate_backend() is None:
        pytest.skip("no approximate index installed")
    x = _planted(3000)
    found = nb.knn_search(x, k=10, exact_max=1000, backend=backend)
    monkeypatch.setattr(nb, "EXACT_REFINE_PAIRS", 0)  # as at 1M rows: more clusters / a wider beam
    rows = np.arange(0, len(x), 7)
    i, s = found.refine(rows, 10)
    assert np.all(s >= found.sim[rows] - 1e-6)  # merged with the first lists: never worse
    for r, row in enumerate(rows):  # distinct rows, never the row itself, best first
        got = i[r][i[r] >= 0]
        assert len(set(got.tolist())) == len(got) and row not in got
        assert np.all(np.diff(s[r][np.isfinite(s[r])]) <= 1e-6)
    np.testing.assert_allclose(s, np.einsum("qd,qkd->qk", x[rows], x[i]), atol=1e-5)
    ie, se = knn(x[rows], k=1, backend="exact")  # sanity: exact lists are no better than 1.0
    assert np.all(s[:, 0] <= 1.0 + 1e-5)
    found.close()
    assert found.index is None


def test_refining_can_be_cancelled():
    from ftcurate.core.quality.neighbors import knn_search

    x = _planted(2000)
    found = knn_search(x, k=10, exact_max=1000)
    with pytest.raises(Cancelled):
        knn_outliers(x, neighbors=(found.idx, found.sim), max_share=0.01, min_count=20,
                     refine=lambda rows: found.refine(rows, 10), cancel=lambda: True)


def test_exact_refine_in_blocks_matches_exact_search(monkeypatch):
    from ftcurate.core.progress import Reporter
    from ftcurate.core.quality import neighbors as nb

    x = _clustered(5000, 16)
    x[100] = x[200]  # a tie at similarity 1
    rows = np.array([5, 100, 200, 4999, 0, 2500])
    monkeypatch.setattr(nb, "_BLOCK_FLOATS", 1 << 12)  # many query and column blocks
    i, s = nb._exact(x[rows], x, 10, rows, Reporter(None, None, total=len(rows)), "cpu", "refining")
    ie, se = knn(x, k=10, backend="exact")
    np.testing.assert_allclose(s, se[rows], atol=1e-6)
    assert (i[1, 0], i[2, 0]) == (200, 100)
    assert not np.any(i == rows[:, None])
