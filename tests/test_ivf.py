"""The clustered nearest-neighbour search (core/quality/ivf.py) behind knn above exact_max."""

import numpy as np
import pytest

from ftcurate.core.progress import Cancelled, Reporter
from ftcurate.core.quality import ivf
from ftcurate.core.quality.neighbors import knn, knn_search


def _data(n=6000, d=48, topics=40, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((topics, d))
    x = centres[rng.integers(0, topics, n)] + 0.9 * rng.standard_normal((n, d))
    x[10] = x[11]  # an exact copy: similarity 1 both ways
    x[20] = 0.0    # an empty text
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x.astype(np.float32)


def _recall(idx, exact_idx):
    return float(np.mean([len(set(a[a >= 0]) & set(b[b >= 0])) / max(1, len(b[b >= 0]))
                          for a, b in zip(idx, exact_idx)]))


def test_clustered_lists_are_valid_and_close_to_exact():
    x = _data()
    ie, se = knn(x, k=10, backend="exact")
    found = knn_search(x, k=10, exact_max=1000)  # above exact_max: the clustered search
    assert not found.exact and isinstance(found.index, ivf.ClusteredKnn)
    idx, sim = found.idx, found.sim
    assert _recall(idx, ie) >= 0.95
    for r in range(len(x)):
        got = idx[r][idx[r] >= 0]
        assert r not in got and len(set(got.tolist())) == len(got)
        assert np.all(np.diff(sim[r][np.isfinite(sim[r])]) <= 1e-6)  # best first
    ok = idx >= 0
    np.testing.assert_allclose(sim[ok], np.einsum("qd,qkd->qk", x, x[np.maximum(idx, 0)])[ok], atol=1e-5)
    assert np.all(sim <= se + 1e-5)  # never better than the truth, slot by slot
    assert idx[10, 0] == 11 and idx[11, 0] == 10 and sim[10, 0] == pytest.approx(1.0, abs=1e-5)
    assert np.all(sim[20][np.isfinite(sim[20])] == 0.0)  # an empty row is at cosine 0 of all


def test_refine_through_more_clusters_is_never_worse_and_reaches_exact():
    x = _data(4000)
    ie, se = knn(x, k=10, backend="exact")
    found = knn_search(x, k=10, exact_max=1000)
    rows = np.arange(0, len(x), 5)
    i, s = found.index.search(rows, 10, probes=8, start=(found.idx[rows], found.sim[rows]))
    assert np.all(s >= found.sim[rows] - 1e-6)
    i, s = found.index.search(rows, 10, probes=found.index.ivf.n_clusters)  # every cluster: exact
    np.testing.assert_allclose(s, se[rows], atol=1e-5)


def test_every_probe_is_the_exact_search():
    x = _data(3000)
    ie, se = knn(x, k=8, backend="exact")
    index = ivf.ClusteredKnn(x, 10_000, Reporter(None, None), "")  # probes >= clusters
    i, s = index.all_rows(8, Reporter(None, None), "")
    np.testing.assert_allclose(s, se, atol=1e-5)


def test_progress_is_monotone_and_cancel_stops_the_search():
    x = _data(5000)
    seen = []
    knn(x, k=10, exact_max=1000, progress=lambda done, total, msg="": seen.append(done / max(1, total)))
    assert seen and all(b >= a for a, b in zip(seen, seen[1:])) and seen[-1] == 1.0
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        knn(x, k=10, exact_max=1000, cancel=cancel)


def test_top_kernel_keeps_the_largest_lower_column_first_on_ties():
    rng = np.random.default_rng(1)
    s = rng.standard_normal((300, 50)).astype(np.float32)
    s[:, 7] = s[:, 3]  # ties
    s[0] = 0.5  # a row of equal values
    out = np.empty((300, 6), dtype=np.int32)
    ivf._kernels()[1](s, out)
    ref = np.argsort(-s, axis=1, kind="stable")[:, :6]
    np.testing.assert_array_equal(out, ref)


def test_cluster_count():
    """About sqrt(probes * n) clusters, at least MIN_CLUSTER rows each."""
    assert ivf.cluster_count(1_000_000, 16) == 4000
    assert ivf.cluster_count(100, 16) == 6  # at least MIN_CLUSTER rows a cluster
