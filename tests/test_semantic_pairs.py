"""Semantic-duplicate pair search (issue 14): the blocked exact pass, the clustered search and
the neighbour path find the pairs a brute-force reference finds, with the same similarities,
ties at the threshold decided alike, zero rows never paired, no cap on a large group of copies
unless one is asked for (the scan's 20 partners a record), progress and cancel. Speed against semhash is measured in benchmarks/bench_semhash.py."""

from __future__ import annotations

import numpy as np
import pytest

from ftcurate.core.progress import Cancelled
from ftcurate.core.quality import ivf
from ftcurate.core.quality import pairsearch as ps
from ftcurate.core.quality.neighbors import knn
from ftcurate.core.quality.semantic import semantic_duplicates


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def reference(x: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Every pair, float64 dot products, zero rows left out."""
    x64 = x.astype(np.float64)
    s = x64 @ x64.T
    live = (x64 ** 2).sum(1) > 0
    a, b = np.nonzero(np.triu(s >= threshold, 1) & live[:, None] & live[None, :])
    out = [(int(i), int(j), float(s[i, j])) for i, j in zip(a, b)]
    return sorted(out, key=lambda p: (-p[2], p[0], p[1]))


@pytest.fixture(scope="module")
def planted():
    """2,000 random rows (32 dims) with planted near copies, a group of 30 copies and zero rows."""
    rng = np.random.default_rng(7)
    x = unit(rng.normal(size=(2000, 32)))
    for k in range(60):  # near copies at cosine ~0.97-0.999
        i, j = rng.choice(2000, 2, replace=False)
        x[j] = unit(x[i] + rng.uniform(0.02, 0.2) * unit(rng.normal(size=32)))
    group = rng.choice(2000, 30, replace=False)
    x[group] = unit(x[group[0]] + 0.01 * rng.normal(size=(30, 32)))
    x[[5, 17, 1999]] = 0  # empty texts
    return x, group


def as_pairs(p):
    return [(a, b) for a, b, _ in p]


@pytest.mark.parametrize("method", ["exact", "clustered"])
def test_same_pairs_as_brute_force(planted, method):
    x, group = planted
    want = reference(x, 0.95)
    got = semantic_duplicates(x, threshold=0.95, method=method)
    assert as_pairs(got) == as_pairs(want)
    assert np.allclose([s for *_, s in got], [s for *_, s in want], rtol=0, atol=1e-12)
    # the group of 30 copies yields all its 435 pairs (a 20-neighbour list could not)
    g = sorted(group.tolist())
    assert {(a, b) for i, a in enumerate(g) for b in g[i + 1:]} <= set(as_pairs(got))


def test_clustered_search_really_clusters(planted, monkeypatch):
    """On 2,000 rows the clustered path cuts the rows into more clusters than it probes (it is
    not the exact pass in disguise) and still finds every pair."""
    x, _g = planted
    seen = {}
    real = ivf.kmeans

    def spy(xl, k, *a, **kw):
        seen["clusters"] = k
        return real(xl, k, *a, **kw)

    monkeypatch.setattr(ivf, "kmeans", spy)
    got = semantic_duplicates(x, threshold=0.95, exact_max=100)  # auto: clustered above exact_max
    assert seen["clusters"] > ps.PROBES
    assert as_pairs(got) == as_pairs(reference(x, 0.95))


@pytest.mark.parametrize("method", ["exact", "clustered", "neighbours"])
def test_ties_at_the_threshold(planted, method):
    """A pair whose similarity equals the threshold is kept, one a hair above it is not: the
    float64 score decides, whatever float32 blocks found the candidate."""
    x, _g = planted
    pairs = reference(x, 0.95)
    a, b, _s = pairs[len(pairs) // 2]
    s = float(ps.cosines(x, np.array([a]), np.array([b]))[0])  # the deciding score of that pair
    at = semantic_duplicates(x, threshold=s, method=method)
    above = semantic_duplicates(x, threshold=float(np.nextafter(s, 2.0)), method=method)
    assert (a, b) in as_pairs(at) and (a, b) not in as_pairs(above)
    assert (a, b, s) in at
    if method != "neighbours":  # the rest as the reference has them (none of them is that close)
        assert set(as_pairs(at)) - {(a, b)} == set(as_pairs(reference(x, s))) - {(a, b)}


def test_neighbour_path_reports_the_same_similarities(planted):
    x, _g = planted
    idx, sim = knn(x, k=5)
    got = semantic_duplicates(x, threshold=0.95, neighbors=(idx, sim))
    exact = {(a, b): s for a, b, s in reference(x, 0.95)}
    assert got and all(abs(exact[(a, b)] - s) < 1e-12 for a, b, s in got)


@pytest.mark.parametrize("method", ["exact", "clustered", "neighbours"])
def test_zero_rows_never_pair(method):
    rng = np.random.default_rng(3)
    x = unit(rng.normal(size=(40, 8)))
    x[[3, 4, 9]] = 0
    pairs = semantic_duplicates(x, threshold=-1.0, method=method)  # every live pair qualifies
    assert not {a for a, b, _ in pairs} & {3, 4, 9} and not {b for a, b, _ in pairs} & {3, 4, 9}
    if method != "neighbours":
        assert len(pairs) == 37 * 36 // 2
    # all rows empty, or a single row: nothing
    assert semantic_duplicates(np.zeros((10, 8), np.float32), method=method) == []
    assert semantic_duplicates(x[:1], method=method) == []


def test_progress_and_cancel_in_the_clustered_search(planted):
    x, _g = planted
    seen = []
    semantic_duplicates(x, threshold=0.95, method="clustered", progress=lambda d, t, m: seen.append((d, t)))
    assert len(seen) > 10 and seen[-1][0] == seen[-1][1]
    assert all(d1 <= d2 for (d1, _), (d2, _) in zip(seen, seen[1:]))
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 5

    with pytest.raises(Cancelled):
        semantic_duplicates(x, threshold=0.95, method="clustered", cancel=cancel)
    with pytest.raises(ValueError):
        semantic_duplicates(x, method="hnsw")


def test_partner_cap_keeps_the_most_similar_and_bounds_the_pairs(planted):
    """``max_partners``: a row keeps at most that many pairs with the rows after it, the most
    similar ones; rows below the cap keep all theirs; the group of 30 copies stays connected."""
    x, group = planted
    full = semantic_duplicates(x, threshold=0.95, method="exact")
    capped = semantic_duplicates(x, threshold=0.95, method="exact", max_partners=5)
    assert set(as_pairs(capped)) <= set(as_pairs(full))
    by_row: dict[int, list] = {}
    for a, b, sim in full:
        by_row.setdefault(a, []).append((-sim, b))
    got: dict[int, list] = {}
    for a, b, sim in capped:
        got.setdefault(a, []).append(sim)
    for a, partners in by_row.items():
        best = sorted(-v for v, _ in partners)[::-1][:5]  # the 5 highest similarities
        kept = got.get(a, [])
        assert len(kept) == len(best), a
        assert min(kept) >= best[-1] - 1e-6, a  # (float32 ranking: ties within rounding)
    assert len(full) > 435 and len(capped) < len(full)
    # the copies are still one cluster
    g = set(group.tolist())
    seen, todo = {min(g)}, [min(g)]
    while todo:
        u = todo.pop()
        for a, b, _ in capped:
            for p, q in ((a, b), (b, a)):
                if p == u and q not in seen:
                    seen.add(q)
                    todo.append(q)
    assert g <= seen


def test_scan_caps_the_partners_of_thousands_of_copies():
    """3,000 copies of one prompt (a templated set): every pair would be 4.5M pairs and GBs in
    the report; the scan reports at most 20 partners a record, the copies still linked."""
    from ftcurate.core.project.records import Message, Record
    from ftcurate.core.quality.scan import SEMANTIC_PARTNERS, ScanSettings, scan_records

    recs = [Record([Message("user", "What is the capital of France?"), Message("assistant", f"Paris ({i}).")])
            for i in range(3000)]
    recs += [Record([Message("user", f"How many legs does a {w} have?"), Message("assistant", "Some.")])
             for w in ("spider", "cat", "bird")]
    rep = scan_records(list(enumerate(recs)), settings=ScanSettings(leakage=False, outlier_model="static-wordllama",
                                                                    near_duplicates=False))
    pairs = rep["semantic_duplicates"]
    assert 3000 <= len(pairs) <= SEMANTIC_PARTNERS * 3000
    starts: dict[int, int] = {}
    for p in pairs:
        starts[p["a"]] = starts.get(p["a"], 0) + 1
    assert max(starts.values()) <= SEMANTIC_PARTNERS
    linked = {p["a"] for p in pairs} | {p["b"] for p in pairs}
    assert set(range(3000)) <= linked
