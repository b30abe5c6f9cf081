"""The chunked text-leak helpers give what the text-by-text code gave (lines, tokens, hits)."""

import random

import numpy as np
import pytest

from ftcurate.core.quality import textleak as tl

TRICKY = ["", None, "  ", "ΑΣ ΟΔΟΣ. Σ", "İstanbul İİ", "naïve cafe\u0301", "x\u2028y", "a\r\nb\rc\x0bd\x0ce\x1cf\x85g",
          "tab\tsep  double", " lead and trail ", "under_score it's 48/2=24", "ꙮ letter", "ﬁne ligature",
          "Same line\nSame line\nother", "\n\n", "ß STRASSE", "١٢٣ arabic digits"]


def _texts(seed, n=700, multi=True):
    rng = random.Random(seed)
    words = ["The", "answer", "is", "42", ".", "apples", "PEARS", "ΣΟΦΙΑ", "café", "naïve", "x_y", "7", "box", "Boxes"]
    boiler = ["You are a helpful assistant.", "Answer the question:", "the answer is 42."]
    out = []
    for _ in range(n):
        parts = [" ".join(rng.choices(words, k=rng.randint(0, 16)))]
        if multi and rng.random() < 0.3:
            parts.insert(0, rng.choice(boiler))
        if rng.random() < 0.2:
            parts = [rng.choice(boiler)]
        out.append(("\n" if multi else " ").join(parts))
    out += TRICKY if multi else [t for t in TRICKY if t is None or not tl._LINE_BREAK.search(t)]
    rng.shuffle(out)
    return out


def _common_reference(texts, limit):
    count = {}
    for t in texts:
        for k in set(tl._lines(t)):
            count[k] = count.get(k, 0) + 1
    return {k for k, c in count.items() if c > limit}


@pytest.mark.parametrize("multi", [False, True])
def test_common_lines_and_token_ids_equal_text_by_text(multi, monkeypatch):
    monkeypatch.setattr(tl, "_LINE_CHUNK", 97)
    texts = _texts(1, multi=multi)
    for limit in (0, 3, 10, 1000):
        assert tl._common_lines(texts, limit) == _common_reference(texts, limit)
    vocab = {}
    for t in texts[::3]:
        for w in tl.ngram_tokens(t):
            vocab.setdefault(w, len(vocab))
    vocab[tl._SEP_CHAR] = len(vocab)  # a test text may hold the separator letter
    for common in (set(), _common_reference(texts, 3), {"the answer is 42.", "answer the question:"}):
        for lo in range(0, len(texts), 150):
            chunk = texts[lo:lo + 150]
            dropped = [tl._drop_lines(t, common) for t in chunk] if common else chunk
            want = tl._token_ids(dropped, lambda w: vocab.get(w, -1))
            got = tl._train_token_ids(chunk, vocab, common)
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_separator_letter_in_a_text_falls_back():
    texts = ["a ꙮ b", "c d"]
    vocab = {"a": 0, "b": 1, "ꙮ": 2}
    assert tl._lowered_chunk(texts) is None
    got = tl._train_token_ids(texts, vocab, set())
    assert got[0].tolist() == [0, 2, 1, -1, -1] and got[1].tolist() == [3, 2]


def test_ngram_hits_with_boilerplate_lines():
    """Lines common to many train texts are dropped before the grams are taken, and the hit's
    evidence and number check use the text without them."""
    q = "Tom has 12 apples and gives 5 of them to his sister who then eats 3 of the apples today"
    test = [q, "An unrelated question about 7 trains leaving the station at noon and at midnight"]
    boiler = "System: you are a very helpful assistant who answers every question"
    train = [f"{boiler}\nQuestion {i} about nothing in particular" for i in range(30)]
    train += [f"{boiler}\n{q}", f"{boiler}\nTom has 12 apples", q.upper(), q.replace("12", "13")]
    hits = tl.ngram_leaks(train, test)
    assert [(h.index, h.test_index) for h in hits] == [(30, 0), (32, 0)]
    assert hits[0].evidence == {"ngram": " ".join(tl.ngram_tokens(q)[:13])}


def _banded_cross_reference(train, train_rows, test, test_rows, bands, rows):
    """Every train row's band keys looked up among the test rows' (the code before the
    first-slot filter)."""
    pairs = set()
    for band in range(bands):
        cut = slice(band * rows, (band + 1) * rows)
        at = {}
        for j in test_rows.tolist():
            at.setdefault(test[j, cut].tobytes(), []).append(j)
        for i in train_rows.tolist():
            for j in at.get(train[i, cut].tobytes(), ()):
                pairs.add((i, j))
    return sorted(pairs)


@pytest.mark.parametrize("bands,rows", [(25, 5), (16, 8), (128, 1)])
def test_banded_cross_equals_reference(bands, rows):
    from ftcurate.core.progress import Reporter

    rng = np.random.default_rng(bands)
    test = rng.integers(0, 2**32, (60, 128), dtype=np.uint64).astype(np.uint32)
    train = rng.integers(0, 2**32, (3000, 128), dtype=np.uint64).astype(np.uint32)
    for _ in range(300):  # partial copies
        i, j = rng.integers(0, len(train)), rng.integers(0, len(test))
        keep = rng.random(128) < rng.random()
        train[i, keep] = test[j, keep]
    train[:50, ::rows] = test[0, ::rows]  # first slots agree, the rest of the band does not
    train[50:60] = test[1] ^ np.uint32(1 << 22)  # same low bits, other values
    test[2] = test[3]  # two test rows alike
    train[60] = test[2]
    for train_rows in (np.arange(len(train)), np.arange(0, len(train), 3)):
        test_rows = np.arange(1, len(test))
        got = tl._banded_cross(train, train_rows, test, test_rows, bands, rows, Reporter(None, None))
        assert list(zip(got[0].tolist(), got[1].tolist())) == _banded_cross_reference(
            train, train_rows, test, test_rows, bands, rows)


def test_exact_key_is_dedup_normalize():
    import sys

    from ftcurate.core.quality import dedup

    texts = [t for t in TRICKY] + ["\u00a0nbsp\u2003em\u3000ideo\x1c\x1dx\x1f", "ＡＢＣ full width", "e\u0301\u0301",
                                    "\t\n", "Ǆ title", "\u0345 iota"]
    texts += ["".join(map(chr, range(lo, min(lo + 64, sys.maxunicode + 1)))) for lo in range(0, sys.maxunicode, 4096)]
    for t in texts:
        assert tl._normal_key(t) == dedup.normalize(t)
        assert tl._normal_key_lower(t) == dedup.normalize(t, lowercase=True)
    test = ["What is 2+2?", "  what IS   2+2? ", "ＡＢＣ", ""]
    train = ["what is 2+2?", "abc", "ABC", "", None, "WHAT\tIS 2+2?"]
    got = [(h.index, h.test_index) for h in tl.exact_leaks(train, test)]
    assert got == [(0, 0), (0, 1), (1, 2), (2, 2), (5, 0), (5, 1)]
    assert [(h.index, h.test_index) for h in tl.exact_leaks(train, test, lowercase=False)] == [(2, 2)]


def test_minhash_leaks_in_chunks_equal_whole(monkeypatch):
    from ftcurate.core.quality import dedup

    rng = random.Random(3)
    words = ["apples", "pears", "boxes", "friends", "tickets", "hours", "miles", "dollars", "cookies", "books", "the", "of", "a"]
    test = [" ".join(rng.choices(words, k=rng.randint(3, 30))) for _ in range(40)] + ["", "   "]
    train = []
    for _ in range(900):
        if rng.random() < 0.3:  # edited copies of test texts
            w = rng.choice(test).split()
            for _ in range(rng.randint(0, 4)):
                if w:
                    w[rng.randrange(len(w))] = rng.choice(words)
            train.append(" ".join(w))
        else:
            train.append(" ".join(rng.choices(words, k=rng.randint(0, 25))))
    whole = tl.minhash_leaks(train, test, train_signatures=dedup.minhash_signatures(train), numbers=False)
    assert len(whole) > 50
    monkeypatch.setattr(tl, "_SIG_CHUNK", 128)
    seen = []
    got = tl.minhash_leaks(train, test, numbers=False, progress=lambda d, t, m="": seen.append(d))
    assert [(h.index, h.test_index, h.score) for h in got] == [(h.index, h.test_index, h.score) for h in whole]
    assert seen == sorted(seen) and seen[-1] == 1000
    assert tl.minhash_leaks(train, ["", " "]) == [] and tl.minhash_leaks([], test) == []


def test_other_spaces_are_all_whitespace_but_the_space():
    import sys

    assert tl._OTHER_SPACES == "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace() and c != " ")
    for parts in (["a b", "c"], ["a  b", "c"], [" a", "b"], ["a", ""], ["a\u3000b", "c"], ["", ""], ["a b "]):
        assert tl._keys(tl._SEP.join(parts), parts) == [tl._collapse(p) for p in parts]


def test_chunk_of_common_lines_only():
    texts = ["The answer is 42.", "the  answer is 42. "] * 3
    ids, lens = tl._train_token_ids(texts, {"answer": 0}, {"the answer is 42."})
    assert ids.tolist() == [] and lens.tolist() == [0] * 6
    ids, lens = tl._train_token_ids(texts + ["answer me"], {"answer": 0}, {"the answer is 42."})
    assert ids.tolist() == [0, -1] and lens.tolist() == [0] * 6 + [2]
