"""The one-pass margin scan (semantic._margin_pass) finds the same pairs, with the same scores, as
a brute force over the whole cosine matrix and as the two-pass scan it replaced."""

import numpy as np
import pytest

from ftcurate.core.progress import Cancelled, Reporter
from ftcurate.core.quality import semantic as sm


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _brute(a, tr_owner, n, b, te_owner, k, min_margin, extra=None):
    """The whole item x item cosine matrix, the background over all of it, and each row's k
    best margins (ties: lower column first). The matrix is made of the scan's own blocks: a
    BLAS may round a product's last bit differently in a matrix of another shape."""
    starts = sm._starts(te_owner)
    s = np.concatenate([sm._item_sims(a[r0:r1], tr_owner[r0:r1] - i0, i1 - i0, b, starts)
                        for i0, i1, r0, r1 in sm._blocks(tr_owner, n, sm._BLOCK)])
    pool = s if extra is None else np.concatenate([extra, s])
    bg = sm.background(sm._push_top(None, pool, sm.BACKGROUND_SKIP + sm.BACKGROUND_K), n_cols=len(starts))
    marg = s - bg[None, :]
    out = {}
    for i in range(n):
        for j in sorted(range(len(starts)), key=lambda c: (-marg[i, c], c))[:min(k, len(starts))]:
            if marg[i, j] >= min_margin or s[i, j] >= sm.ABSOLUTE_HIT:
                out[(i, j)] = (float(s[i, j]), float(marg[i, j]))
    return out, bg


def _case(seed, views=False):
    rng = np.random.default_rng(seed)
    d, n_test, n = 16, int(rng.integers(2, 40)), int(rng.integers(300, 2500))
    base = _unit(rng.normal(size=(n_test, d)))
    a = _unit(rng.normal(size=(n, d)) + 1.8 * base[rng.integers(0, n_test, n)] * rng.random((n, 1)))
    for r in rng.integers(0, n, 25):  # verbatim copies of test prompts (cosine 1: ABSOLUTE_HIT)
        a[r] = base[rng.integers(0, n_test)]
    b = base.copy()
    b[1] = b[0]  # a duplicated test prompt: tied columns
    tr_owner, te_owner = np.arange(n), np.arange(n_test)
    if views:  # some items have a second (question) view
        tr_owner = np.sort(np.r_[np.arange(n), rng.integers(0, n, n // 3)])
        a = _unit(a[tr_owner] + 0.3 * rng.normal(size=(len(tr_owner), d)))
        te_owner = np.sort(np.r_[np.arange(n_test), rng.integers(0, n_test, n_test // 2)])
        b = _unit(b[te_owner] + 0.2 * rng.normal(size=(len(te_owner), d)))
    return a, tr_owner, n, b, te_owner


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("views", [False, True])
def test_one_pass_equals_brute_force_and_two_pass(seed, views, monkeypatch):
    monkeypatch.setattr(sm, "_BLOCK", [128, 500, 4096][seed % 3])  # several blocks
    if seed % 4 == 3:  # no full rows kept: the rank check computes its blocks again
        monkeypatch.setattr(sm, "_KEEP_ROWS_BYTES", 0)
    a, tr_owner, n, b, te_owner = _case(seed, views)
    extra = sm.test_neighbours(b, te_owner) if seed % 2 else None
    k = [3, 1, 5, 100][seed % 4]
    for min_margin in (0.05, 0.25, 0.6):  # 0.6: verbatim copies pass by their cosine alone
        got, bg = sm._margin_pass(a, tr_owner, n, b, te_owner, k, min_margin, Reporter(None, None), "x",
                                  extra_top=extra)
        want, want_bg = _brute(a, tr_owner, n, b, te_owner, k, min_margin, extra)
        assert np.array_equal(bg, want_bg)
        assert got == want
        two, two_bg = sm._margin_pass_two(a, tr_owner, n, b, te_owner, k, min_margin, Reporter(None, None), "x",
                                          extra_top=extra)
        assert np.array_equal(two_bg, bg)
        # the two-pass scan breaks ties at the k-th margin as argpartition leaves them (here between
        # the duplicated test prompts): the same (cosine, margin) values per row
        def per_row(pairs):
            rows = {}
            for (i, _), v in pairs.items():
                rows.setdefault(i, []).append(v)
            return {i: sorted(v) for i, v in rows.items()}

        assert per_row(two) == per_row(got)
        assert {p for p in two if p[1] > 1} == {p for p in got if p[1] > 1}


def test_absolute_hit_needs_its_rank(monkeypatch):
    """A verbatim copy whose margin is below min_margin is kept only when it is among the row's
    k best margins: it can lose its place to columns that are not candidates themselves."""
    rng = np.random.default_rng(5)
    d = 8
    b = _unit(rng.normal(size=(6, d)))
    b[1:] = _unit(b[0] + 0.01 * rng.normal(size=(5, d)))  # a crowded column group around b[0]
    a = _unit(np.r_[np.repeat(b[:1], 40, axis=0), rng.normal(size=(200, d))])
    a[:40] = b[0]
    monkeypatch.setattr(sm, "_BLOCK", 64)
    checked = []
    pick = sm._pick_top
    monkeypatch.setattr(sm, "_pick_top", lambda *x: pick(*x[:-1], lambda items: checked.append(items) or x[-1](items)))
    for k in (1, 2, 6):
        got, _ = sm._margin_pass(a, np.arange(len(a)), len(a), b, np.arange(6), k, 0.3, Reporter(None, None), "x")
        want, _ = _brute(a, np.arange(len(a)), len(a), b, np.arange(6), k, 0.3)
        assert got == want
    assert checked  # the rank check ran


def test_progress_monotone_and_cancel():
    a, tr_owner, n, b, te_owner = _case(1)
    seen = []
    rep = Reporter(lambda d, t, m="": seen.append((d, t)), None, every=1)
    sm._margin_pass(a, tr_owner, n, b, te_owner, 3, 0.05, rep, "x")
    done = [d for d, _ in seen]
    assert done == sorted(done) and seen[-1][0] == seen[-1][1] == n
    with pytest.raises(Cancelled):
        sm._margin_pass(a, tr_owner, n, b, te_owner, 3, 0.05, Reporter(None, lambda: True, every=1), "x")


def test_keep_all_takes_two_pass():
    a, tr_owner, n, b, te_owner = _case(2)
    got, _ = sm._margin_pass(a, tr_owner, n, b, te_owner, 2, -np.inf, Reporter(None, None), "x")
    assert len(got) == 2 * n


def _number_pairs_reference(train_texts, test_numbers, min_shared=3, min_share=sm.NUMBER_SHARE, max_df=0.05):
    """number_pairs as it was: every number of every training text counted."""
    df = {}
    for nums in test_numbers:
        for x in nums:
            df[x] = df.get(x, 0) + 1
    limit = max(2, int(max_df * max(1, len(test_numbers))))
    index = {}
    for j, nums in enumerate(test_numbers):
        for x in nums:
            if df[x] <= limit:
                index.setdefault(x, []).append(j)
    out = set()
    for i, t in enumerate(train_texts):
        counts = {}
        for x in sm.numbers_of(t, words=True):
            for j in index.get(x, ()):
                counts[j] = counts.get(j, 0) + 1
        for j, c in counts.items():
            if c >= min_shared and c >= min_share * len(test_numbers[j]):
                out.add((i, j))
    return out


@pytest.mark.parametrize("chunk", [4096, 7])
def test_number_pairs_equal_reference(chunk, monkeypatch):
    monkeypatch.setattr(sm, "_NUMBER_CHUNK", chunk)
    rng = np.random.default_rng(0)
    words = list(sm._NUM_WORDS) + ["Thirteen", "ELEVEN", "seventeenth", "fivefold", "apples", "x"]
    nums = ["13", "1,300", "2.50", "007", "17", "$45", "45%", "3.0", "-8", "1000", "12", "19"]

    def text():
        parts = rng.choice(words + nums, size=int(rng.integers(0, 12))).tolist()
        return " ".join(parts) + rng.choice(["", "?", ".", "\n"])

    test = [text() for _ in range(60)]
    test_numbers = [sm.numbers_of(t) for t in test]
    train = [text() for _ in range(3000)] + test + ["", None, "١٣ ١٧ 19 and 1,300\n13", "a\n13\n17 19\n"]
    train += [t.replace(" ", "\n", 2) for t in test[:20]] + ["", "13 17 19"]
    found = 0
    for min_shared in (0, 1, 2, 3):
        for max_df in (0.05, 0.5):
            got = sm.number_pairs(train, test_numbers, min_shared=min_shared, max_df=max_df)
            assert got == _number_pairs_reference(train, test_numbers, min_shared, max_df=max_df)
            found += len(got)
    assert found > 100
