"""Train/test leakage by text: exact copies, shared long n-grams, MinHash near-copies.

The caller passes the texts of one field for both sides (prompts with prompts, answers with
answers: a leaked test question often comes back with a different or shorter answer) and says
which field it was (``field`` is copied into every hit). All indices are 0-based; ``index`` is
the train text, ``test_index`` the test text. Hits are sorted by (index, test_index).

* :func:`exact_leaks`: equal after :func:`ftcurate.core.quality.dedup.normalize` (lower-cased by
  default). Empty texts never match, nor (with ``min_tokens``, which the scan sets to 8 for
  answers) texts too short to mean anything. ``score`` is 1.0.
* :func:`ngram_leaks`: 13-gram decontamination as in the GPT-3 / Llama papers. Texts become
  lower-cased word tokens with punctuation stripped (the ``\\w+`` runs of the lower-cased text,
  so "48/2=24" gives "48", "2", "24" and "don't" gives "don", "t"). A train text leaks a test
  text when they share at least ``min_overlap`` distinct n-grams; ``score`` is the fraction of
  the test text's n-grams found in the train text. A test text with fewer than ``n`` tokens
  counts as a single gram of its own length when it has at least ``min_tokens`` (8) tokens,
  and is then found in any train text that contains that token sequence; shorter test texts
  are skipped (too little text to call a leak). Boilerplate is ignored, as GPT-3 ignored
  13-grams with too many hits: first, lines (split on newlines, lower-cased, whitespace collapsed) found
  in more than ``max_gram_frequency`` (default 10) test texts or train texts are removed before
  tokenising (a system prompt shared by every record, which would otherwise also make the
  grams spanning its end and the question's first words look shared); then grams found in
  more than ``max_gram_frequency`` test texts or train texts are ignored, and left out of the
  score's denominator. ``max_gram_frequency=None`` turns both off.
  A hit also needs a meaningful share: ``score >= min_share`` (0.2; one shared 13-gram of
  boilerplate in a long test answer is not a leak), and, when the test text holds two or more
  numbers, the train text must keep 80% of them (:func:`numbers_agree`; a problem made from the
  same template with other numbers is a different problem). ``evidence`` holds one shared
  n-gram (:func:`shared_ngram`). ``min_share=0, numbers=False`` is plain decontamination.
* :func:`minhash_leaks`: MinHash + LSH over word-5-gram shingles (see :mod:`ftcurate.core.quality.dedup`):
  the test signatures are banded, each train signature is looked up, candidates are verified
  with the MinHash estimate (``score``) >= ``threshold``. With ``storage_config`` the test
  signatures go into a datasketch ``MinHashLSH`` in that storage and every train signature is
  queried against it (plain integer keys, nothing is unpickled: see
  :mod:`ftcurate.core.quality.dedup`). Pairs whose numbers differ are dropped as above.
* :func:`matched_words`: the evidence of the other methods, the content words both texts share.
* :func:`duplicate_groups_within`: exact duplicate groups inside one set (e.g. the test set).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from itertools import repeat
from typing import Optional, Sequence

import numpy as np

from . import dedup
from ..progress import CancelCheck, ProgressCallback, Reporter

__all__ = ["LeakHit", "exact_leaks", "ngram_leaks", "minhash_leaks", "duplicate_groups_within",
           "ngram_tokens", "numbers_agree", "MIN_SHARE", "content_words", "matched_words",
           "word_document_frequency", "shared_ngram", "STOPWORDS"]

FIELDS = ("prompt", "answer", "text")
_TOKEN = re.compile(r"\w+")
_FOLD = np.uint64(0x9E3779B97F4A7C15)
MIN_SHARE = 0.2  # an n-gram hit must cover this share of the test text's n-grams
NUMBER_SHARE = 0.8  # ... and keep this share of its numbers (when it has two or more)


@dataclass
class LeakHit:
    index: int  # train text
    test_index: int  # test text
    method: str  # "exact" | "ngram" | "minhash"
    score: float
    field: str  # "prompt" | "answer" | "text"
    evidence: Optional[dict] = None  # n-gram hits: {"ngram": the longest shared run of words}


def _check_field(field: str) -> None:
    if field not in FIELDS:
        raise ValueError(f"field must be one of {FIELDS}, got {field!r}")


# --------------------------------------------------------------------------- exact


def exact_leaks(train_texts: Sequence[str], test_texts: Sequence[str], field: str = "prompt",
                lowercase: bool = True, min_tokens: int = 0) -> list[LeakHit]:
    """Train texts equal to a test text after normalisation (NFKC, whitespace collapsed,
    stripped, lower-cased unless ``lowercase=False``). Test texts of fewer than ``min_tokens``
    words (:func:`ngram_tokens`) are skipped: two answers "4" are not a leak."""
    _check_field(field)
    by_key: dict[str, list[int]] = {}
    for j, t in enumerate(test_texts):
        k = dedup.normalize(t, lowercase)
        if k and (min_tokens <= 0 or len(ngram_tokens(t)) >= min_tokens):
            by_key.setdefault(k, []).append(j)
    hits = []
    get = by_key.get
    for i, k in enumerate(map(_normal_key_lower if lowercase else _normal_key, train_texts)):
        js = get(k)
        if js:
            hits.extend(LeakHit(i, j, "exact", 1.0, field) for j in js)
    return hits


def _normal_key(text: str) -> str:
    """``dedup.normalize(text)``: NFKC, whitespace collapsed, stripped (``str.split`` splits
    where the ``\\s+`` of ``normalize`` matches, three times faster than the regex)."""
    return " ".join(unicodedata.normalize("NFKC", text or "").split())


def _normal_key_lower(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text or "").split()).lower()


def duplicate_groups_within(texts: Sequence[str], lowercase: bool = True) -> list[list[int]]:
    """Groups (>= 2 indices) of texts that are equal after normalisation inside one set."""
    return dedup.exact_duplicate_groups(texts, lowercase=lowercase)


# --------------------------------------------------------------------------- evidence

# Function words left out of ``matched_words`` (they say nothing about why two texts match).
STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had
has have having he her here hers herself him himself his how i if in into is it its itself just
me more most my myself no nor not now of off on once only or other our ours ourselves out over own
same she should so some such than that the their theirs them themselves then there these they this
those through to too under until up very was we were what when where which while who whom why will
with would you your yours yourself yourselves s t don doesn didn isn aren wasn weren won wouldn
many much per each every one ones let lets get gets got also may might must shall us
""".split())
_WORD = re.compile(r"[^\W_]+")
MAX_EVIDENCE_WORDS = 12


def content_words(text: str) -> list[str]:
    """Lower-cased words and numbers of ``text`` in order, without function words and
    one-letter words (numbers of any length are kept)."""
    return [w for w in _WORD.findall((text or "").lower())
            if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def word_document_frequency(texts: Sequence[str]) -> dict[str, int]:
    """In how many of ``texts`` each content word occurs."""
    df: dict[str, int] = {}
    for t in texts:
        for w in set(content_words(t)):
            df[w] = df.get(w, 0) + 1
    return df


def matched_words(train_text: str, test_text: str, df: Optional[dict[str, int]] = None,
                  limit: int = MAX_EVIDENCE_WORDS) -> list[str]:
    """Content words both texts share, most informative first: rarest in ``df`` (document
    frequencies, e.g. over the test set; unknown words count as rarest), ties in the order of
    the test text. At most ``limit``."""
    train = set(content_words(train_text))
    seen: dict[str, int] = {}
    for pos, w in enumerate(content_words(test_text)):
        if w in train and w not in seen:
            seen[w] = pos
    df = df or {}
    return sorted(seen, key=lambda w: (df.get(w, 0), seen[w]))[:max(0, limit)]


def shared_ngram(train_text: str, test_text: str, n: int = 13, min_tokens: int = 8) -> str:
    """A token ``n``-gram (:func:`ngram_tokens`: lower case, punctuation dropped) the two texts
    share, joined by single spaces: the first one of their longest shared run of words. A test
    text shorter than ``n`` tokens (but with ``min_tokens``) is one gram of its own length.
    "" when they share none."""
    a = ngram_tokens(train_text)
    b = ngram_tokens(test_text)
    k = n if len(b) >= n else len(b)
    if k < 1 or (k < n and k < min_tokens) or len(a) < k:
        return ""
    at: dict[tuple, list[int]] = {}
    for q in range(len(b) - k + 1):
        at.setdefault(tuple(b[q:q + k]), []).append(q)
    best = (0, 0)  # (run length, start in a)
    p = 0
    while p <= len(a) - k:
        starts = at.get(tuple(a[p:p + k]))
        if not starts:
            p += 1
            continue
        longest = k
        for q in starts:
            ln = k
            while p + ln < len(a) and q + ln < len(b) and a[p + ln] == b[q + ln]:
                ln += 1
            longest = max(longest, ln)
        if longest > best[0]:
            best = (longest, p)
        p += longest - k + 1
    return " ".join(a[best[1]:best[1] + k]) if best[0] else ""


# --------------------------------------------------------------------------- numbers


def numbers_agree(train_text: str, test_text: str, share: float = NUMBER_SHARE) -> bool:
    """False when ``test_text`` holds two or more distinct numbers and ``train_text`` lacks more
    than ``1 - share`` of them (digits on both sides, number words on the training side: see
    :func:`ftcurate.core.quality.semantic.numbers_of`). A copy or a rephrasing keeps the
    numbers; a problem made from the same template with other numbers is a different problem."""
    from .semantic import numbers_of

    want = numbers_of(test_text)
    if len(want) < 2:
        return True
    return len(numbers_of(train_text, words=True) & want) >= share * len(want)


def _keep_numbers(hits: list[LeakHit], train_texts: Sequence[str], test_texts: Sequence[str]) -> list[LeakHit]:
    return [h for h in hits if numbers_agree(train_texts[h.index], test_texts[h.test_index])]


# --------------------------------------------------------------------------- n-grams


def ngram_tokens(text: str) -> list[str]:
    """Lower-cased word tokens with punctuation stripped (the ``\\w+`` runs)."""
    return _TOKEN.findall((text or "").lower())


def _window_keys(ids: np.ndarray, lens: np.ndarray, length: int,
                 only: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """(text, key) for every ``length``-token window inside one text of the concatenated token
    ids ``ids`` (texts of ``lens`` tokens, in order; ``only``: a mask of the texts to use).
    Windows holding an id < 0 (a token no test text has) are dropped. Keys are 64-bit folds of
    the ids with the length mixed in."""
    counts = np.maximum(lens - length + 1, 0)
    if only is not None:
        counts = np.where(only, counts, 0)
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint64)
    starts = np.zeros(len(lens), dtype=np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    cstarts = np.zeros(len(lens), dtype=np.int64)
    np.cumsum(counts[:-1], out=cstarts[1:])
    pos = np.repeat(starts - cstarts, counts) + np.arange(total, dtype=np.int64)
    text = np.repeat(np.arange(len(lens), dtype=np.int64), counts)
    neg = np.concatenate(([0], np.cumsum(ids < 0)))
    ok = neg[pos + length] == neg[pos]
    pos, text = pos[ok], text[ok]
    u = ids.astype(np.uint64)
    key = np.full(len(pos), length, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(length):
            key = (key * _FOLD) ^ u[pos + j]
    return text, key


def _token_ids(texts: Sequence[str], lookup) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated token ids of ``texts`` (``lookup(token)`` → id) and tokens per text."""
    toks = [ngram_tokens(t) for t in texts]
    lens = np.fromiter(map(len, toks), dtype=np.int64, count=len(toks))
    flat = [w for ts in toks for w in ts]
    ids = np.fromiter(map(lookup, flat), dtype=np.int64, count=len(flat))
    return ids, lens


def heldout_gram_table(test_texts: Sequence[str], n: int, min_tokens: int):
    """The test side of the n-gram check: the test vocabulary, the gram lengths to look for
    (``n``, and the length of each test text shorter than ``n`` but of ``min_tokens`` or more),
    and the distinct (gram key, test text) entries sorted by key, with each distinct gram's first
    entry and number of test texts: ``(vocab, lengths, all_keys, owner, gram, first, test_count)``;
    ``all_keys`` is None when no test text has a gram."""
    vocab: dict[str, int] = {}
    ids, lens = _token_ids(test_texts, lambda w: vocab.setdefault(w, len(vocab)))
    long_text, long_key = _window_keys(ids, lens, n)
    short = np.flatnonzero((lens < n) & (lens >= max(1, min_tokens)))
    short_lengths = sorted(set(lens[short].tolist()))
    parts_t, parts_k = [long_text], [long_key]
    for L in short_lengths:
        tt, kk = _window_keys(ids, lens, L, only=lens == L)
        parts_t.append(tt)
        parts_k.append(kk)
    owner = np.concatenate(parts_t)
    all_keys = np.concatenate(parts_k)
    lengths = sorted({n} | set(short_lengths))
    if len(all_keys) == 0:
        return vocab, lengths, None, None, None, None, None
    # distinct (gram, test text) entries, sorted by gram: gram → test texts (CSR)
    order = np.lexsort((owner, all_keys))
    all_keys, owner = all_keys[order], owner[order]
    first_entry = np.concatenate(([True], (all_keys[1:] != all_keys[:-1]) | (owner[1:] != owner[:-1])))
    all_keys, owner = all_keys[first_entry], owner[first_entry]
    gram, first = np.unique(all_keys, return_index=True)
    test_count = np.diff(np.concatenate((first, [len(all_keys)])))
    return vocab, lengths, all_keys, owner, gram, first, test_count


def _line_key(line: str) -> str:
    return " ".join(line.lower().split())


def _lines(text: str) -> list[str]:
    return [k for k in map(_line_key, (text or "").splitlines()) if k]


def _common_lines(texts: Sequence[str], limit: int) -> set[str]:
    """Normalised lines found in more than ``limit`` of the texts."""
    count: Counter = Counter()
    for lo in range(0, len(texts), _LINE_CHUNK):
        chunk = texts[lo:lo + _LINE_CHUNK]
        low = _lowered_chunk(chunk)
        if low is None or low[2].any():  # lines of their own: text by text
            for t in chunk:
                count.update(set(_lines(t)))
            continue
        # one line per text: its key is the lower-cased text, whitespace collapsed
        count.update(k for k in _keys(*low[:2]) if k)
    return {k for k, c in count.items() if c > limit}


# Texts are lower-cased and tokenised a chunk at a time, joined by _SEP: a caseless letter (its
# own \w+ token) between spaces (which end the context of str.lower's final sigma), so the
# parts are the texts' own lower-cased forms. A chunk whose texts hold the letter is done text
# by text.
_SEP_CHAR = "\ua66e"
_SEP = " " + _SEP_CHAR + " "
_LINE_BREAK = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")  # where str.splitlines splits
_LINE_CHUNK = 5000


# the characters str.split splits on (str.isspace), but the space
_OTHER_SPACES = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                 "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _keys(joined: str, parts: list[str]) -> list[str]:
    """``_collapse`` of each part of ``joined`` (``_SEP.join(parts)``): the parts themselves
    when ``joined`` has single spaces only (no part then starts or ends with one, or is empty)."""
    if joined[:1] != " " and joined[-1:] != " " and "  " not in joined and \
            not any(c in joined for c in _OTHER_SPACES):
        return parts
    return list(map(_collapse, parts))


def _lowered_chunk(texts: Sequence[str]) -> tuple[str, list[str], np.ndarray] | None:
    """(the texts joined by _SEP and lower-cased, each text lower-cased, which texts hold a line
    break), or None when a text holds _SEP_CHAR."""
    texts = [t or "" for t in texts]
    big = _SEP.join(texts)
    if big.count(_SEP_CHAR) != len(texts) - 1:
        return None
    low = big.lower()
    parts = low.split(_SEP)
    if len(parts) != len(texts):
        return None
    multi = np.zeros(len(texts), dtype=bool)
    if _LINE_BREAK.search(big):
        multi[[i for i, t in enumerate(texts) if _LINE_BREAK.search(t)]] = True
    return low, parts, multi


def _marked(vocab: dict) -> dict:
    """``vocab`` with the separator as -2 (for :func:`_train_token_ids`)."""
    marked = dict(vocab)
    marked[_SEP_CHAR] = -2
    return marked


def _train_token_ids(texts: Sequence[str], vocab: dict, common: set[str],
                     marked: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``_token_ids([_drop_lines(t, common) for t in texts], vocab.get(w, -1))`` (``texts``
    as they are when ``common`` is empty), one regex call for the whole chunk. ``marked``:
    ``_marked(vocab)``, made once for many chunks."""
    get = vocab.get
    low = _lowered_chunk(texts)
    if low is None or (common and low[2].any()):
        if common:
            texts = [_drop_lines(t, common) for t in texts]
        return _token_ids(texts, lambda w: get(w, -1))
    joined, parts, _ = low
    gone = None
    if common:  # a text of one line is dropped whole when that line is common
        gone = np.fromiter((k in common for k in _keys(joined, parts)), dtype=bool, count=len(parts))
        if gone.all():
            return np.empty(0, dtype=np.int64), np.zeros(len(parts), dtype=np.int64)
        if gone.any():
            joined = _SEP.join([p for p, g in zip(parts, gone.tolist()) if not g])
        else:
            gone = None
    flat = _TOKEN.findall(joined)
    # no text holds the separator: the -2s are the separators
    ids = np.fromiter(map((marked or _marked(vocab)).get, flat, repeat(-1)), dtype=np.int64, count=len(flat))
    sep = np.flatnonzero(ids == -2)
    lens = np.diff(np.concatenate(([-1], sep, [len(ids)]))) - 1
    ids = ids[ids != -2]
    if gone is not None:
        full = np.zeros(len(parts), dtype=np.int64)
        full[~gone] = lens
        lens = full
    return ids, lens


def _drop_lines(text: str, common: set[str]) -> str:
    return "\n".join(x for x in (text or "").splitlines() if _line_key(x) not in common)


def ngram_leaks(train_texts: Sequence[str], test_texts: Sequence[str], n: int = 13,
                field: str = "prompt", min_overlap: int = 1, min_tokens: int = 8,
                max_gram_frequency: Optional[int] = 10, min_share: float = MIN_SHARE,
                numbers: bool = True,
                progress: Optional[ProgressCallback] = None,
                cancel: Optional[CancelCheck] = None) -> list[LeakHit]:
    """Train texts sharing >= ``min_overlap`` distinct token ``n``-grams with a test text, which
    cover at least ``min_share`` of the test text's grams (``score``), and (``numbers``) keep
    its numbers (:func:`numbers_agree`). ``max_gram_frequency=None`` keeps every gram;
    ``min_share=0, numbers=False`` is plain 13-gram decontamination. See the module docstring."""
    _check_field(field)
    if n < 1 or min_overlap < 1:
        raise ValueError("n and min_overlap must be >= 1")
    rep = Reporter(progress, cancel, total=len(train_texts), every=2000)
    common: set[str] = set()
    if max_gram_frequency is not None:
        common = _common_lines(test_texts, max_gram_frequency) | \
            _common_lines(train_texts, max_gram_frequency)
        if common:
            test_texts = [_drop_lines(t, common) for t in test_texts]
        rep.check()
    # token ids from the test vocabulary only: a train token outside it cannot be in a shared gram
    vocab, lengths, all_keys, owner, gram, first, test_count = heldout_gram_table(test_texts, n, min_tokens)
    if all_keys is None:
        return []
    ignored = np.zeros(len(gram), dtype=bool)
    if max_gram_frequency is not None:
        ignored |= test_count > max_gram_frequency
    rep.check()

    # scan train in chunks: (train index, gram index) for every distinct shared gram
    hit_train: list[np.ndarray] = []
    hit_gram: list[np.ndarray] = []
    step = 2000
    marked = _marked(vocab)
    for lo in range(0, len(train_texts), step):
        ids, lens = _train_token_ids(train_texts[lo:lo + step], vocab, common, marked)
        for L in lengths:
            tt, kk = _window_keys(ids, lens, L)
            if len(kk) == 0:
                continue
            pos = np.searchsorted(gram, kk)
            pos[pos >= len(gram)] = 0
            hit = gram[pos] == kk
            if hit.any():
                pair = np.unique((tt[hit] + lo) * len(gram) + pos[hit])
                hit_train.append(pair // len(gram))
                hit_gram.append(pair % len(gram))
        rep.tick(min(lo + step, len(train_texts)), "scanning train n-grams")
    if not hit_train:
        return []
    ht = np.concatenate(hit_train)
    hg = np.concatenate(hit_gram)
    if len(lengths) > 1:  # a train text can share a gram through two lengths only once
        pair = np.unique(ht * len(gram) + hg)
        ht, hg = pair // len(gram), pair % len(gram)
    if max_gram_frequency is not None:
        train_count = np.bincount(hg, minlength=len(gram))
        ignored |= train_count > max_gram_frequency
    keep = ~ignored[hg]
    ht, hg = ht[keep], hg[keep]
    # denominators: the test text's grams that are not ignored
    gram_of_entry = np.searchsorted(gram, all_keys)
    usable = np.bincount(owner[~ignored[gram_of_entry]], minlength=len(test_texts))
    # expand (train, gram) to (train, test) through the gram's owners and count shared grams
    counts: dict[tuple[int, int], int] = {}
    ends = first + test_count
    for i, g in zip(ht.tolist(), hg.tolist()):
        for j in owner[first[g]:ends[g]].tolist():
            counts[(i, j)] = counts.get((i, j), 0) + 1
    hits = [LeakHit(i, j, "ngram", float(c / usable[j]) if usable[j] else 1.0, field)
            for (i, j), c in counts.items() if c >= min_overlap]
    hits = [h for h in hits if h.score >= min_share]
    if common:  # the hits' train texts without the common lines
        train_texts = {i: _drop_lines(train_texts[i], common) for i in {h.index for h in hits}}
    if numbers:
        hits = _keep_numbers(hits, train_texts, test_texts)
    for h in hits:  # why: a shared n-gram (boilerplate lines already removed)
        gram = shared_ngram(train_texts[h.index], test_texts[h.test_index], n, min_tokens)
        h.evidence = {"ngram": gram} if gram else None
    hits.sort(key=lambda h: (h.index, h.test_index))
    return hits


# --------------------------------------------------------------------------- MinHash


def minhash_leaks(train_texts: Sequence[str], test_texts: Sequence[str], threshold: float = 0.6,
                  num_perm: int = 128, ngram: int = 5, seed: int = 1, field: str = "prompt",
                  train_signatures: Optional[np.ndarray] = None,
                  test_signatures: Optional[np.ndarray] = None,
                  storage_config: Optional[dict] = None,
                  lsh_weights: tuple[float, float] = dedup.LSH_WEIGHTS,
                  numbers: bool = True,
                  progress: Optional[ProgressCallback] = None,
                  cancel: Optional[CancelCheck] = None) -> list[LeakHit]:
    """(train, test) pairs whose MinHash Jaccard estimate is >= ``threshold``; ``score`` is
    the estimate. Signatures are computed unless given (same ``num_perm``/``ngram``/``seed``).
    ``numbers``: drop pairs whose numbers differ (:func:`numbers_agree`). Empty texts never
    match."""
    _check_field(field)
    if train_signatures is None and storage_config is None:
        return _minhash_leaks_chunked(train_texts, test_texts, threshold, num_perm, ngram, seed, field,
                                      test_signatures, lsh_weights, numbers, progress, cancel)
    # progress on one 0..1000 scale: signatures (split by size) up to 800, then LSH
    n_tr = len(train_texts) if train_signatures is None else 0
    n_te = len(test_texts) if test_signatures is None else 0
    cut = 800 * n_tr // max(1, n_tr + n_te)
    sig_end = 800 if n_tr + n_te else 0
    if train_signatures is None:
        train_signatures = dedup.minhash_signatures(
            train_texts, num_perm, ngram, seed, progress=dedup.sub_progress(progress, 0, cut),
            cancel=cancel)
    if test_signatures is None:
        test_signatures = dedup.minhash_signatures(
            test_texts, num_perm, ngram, seed, progress=dedup.sub_progress(progress, cut, sig_end),
            cancel=cancel)
    train_signatures = np.asarray(train_signatures, dtype=np.uint32)
    test_signatures = np.asarray(test_signatures, dtype=np.uint32)
    if train_signatures.shape != (len(train_texts), num_perm) or \
            test_signatures.shape != (len(test_texts), num_perm):
        raise ValueError("signature shapes must be (len(texts), num_perm)")
    rep = Reporter(dedup.sub_progress(progress, sig_end, 1000), cancel, total=len(train_texts),
                   every=max(1, len(train_texts) // 50))
    test_rows = np.flatnonzero((test_signatures != dedup.EMPTY_HASH).any(axis=1))
    train_rows = np.flatnonzero((train_signatures != dedup.EMPTY_HASH).any(axis=1))
    if len(test_rows) == 0 or len(train_rows) == 0:
        return []
    pi: list[int] = []
    pj: list[int] = []
    if storage_config is not None:
        with dedup.lsh_index(threshold, num_perm, storage_config, tuple(lsh_weights)) as lsh:
            dedup.lsh_insert_signatures(lsh, test_rows.tolist(), test_signatures[test_rows], seed=seed)
            band_keys = dedup.lsh_band_keys(lsh, train_signatures[train_rows])
            known = set(test_rows.tolist())
            for k, found in dedup.lsh_query_band_keys(lsh, band_keys, known=known):
                pi.extend([int(train_rows[k])] * len(found))
                pj.extend(int(j) for j in found)
                rep.tick(k + 1, "querying train signatures")
        ti, tj = np.array(pi, dtype=np.int64), np.array(pj, dtype=np.int64)
    else:
        bands, rows = dedup.lsh_params(threshold, num_perm, tuple(lsh_weights))
        ti, tj = _banded_cross(train_signatures, train_rows, test_signatures, test_rows,
                               bands, rows, rep)
    if progress is not None:
        progress(1000, 1000, "MinHash leakage done")
    if len(ti) == 0:
        return []
    est = _cross_estimate(train_signatures, ti, test_signatures, tj)
    keep = est >= threshold
    hits = [LeakHit(i, j, "minhash", float(s), field)
            for i, j, s in zip(ti[keep].tolist(), tj[keep].tolist(), est[keep].tolist())]
    if numbers:
        hits = _keep_numbers(hits, train_texts, test_texts)
    hits.sort(key=lambda h: (h.index, h.test_index))
    return hits


_SIG_CHUNK = 32768  # train texts signed and looked up at a time (16 MB of signatures)


def _minhash_leaks_chunked(train_texts, test_texts, threshold, num_perm, ngram, seed, field, test_signatures,
                           lsh_weights, numbers, progress, cancel) -> list[LeakHit]:
    """:func:`minhash_leaks` when the train signatures are computed here and the LSH is in
    memory: the train texts are signed and looked up a chunk at a time (the signatures of all
    train texts are never held: 512 MB for a million texts). Same pairs and scores."""
    n_tr = len(train_texts)
    n_te = len(test_texts) if test_signatures is None else 0
    cut = 800 * n_te // max(1, n_tr + n_te)  # progress: test signatures, then train chunks
    if test_signatures is None:
        test_signatures = dedup.minhash_signatures(
            test_texts, num_perm, ngram, seed, progress=dedup.sub_progress(progress, 0, cut), cancel=cancel)
    test_signatures = np.asarray(test_signatures, dtype=np.uint32)
    if test_signatures.shape != (len(test_texts), num_perm):
        raise ValueError("signature shapes must be (len(texts), num_perm)")
    test_rows = np.flatnonzero((test_signatures != dedup.EMPTY_HASH).any(axis=1))
    if len(test_rows) == 0 or n_tr == 0:
        return []
    bands, rows = dedup.lsh_params(threshold, num_perm, tuple(lsh_weights))
    rep = Reporter(None, cancel)
    found_i, found_j, found_s = [], [], []
    for lo in range(0, n_tr, _SIG_CHUNK):
        hi = min(n_tr, lo + _SIG_CHUNK)
        sig = dedup.minhash_signatures(
            train_texts[lo:hi], num_perm, ngram, seed, cancel=cancel,
            progress=dedup.sub_progress(progress, cut + (1000 - cut) * lo // n_tr, cut + (1000 - cut) * hi // n_tr))
        train_rows = np.flatnonzero((sig != dedup.EMPTY_HASH).any(axis=1))
        if len(train_rows) == 0:
            continue
        ti, tj = _banded_cross(sig, train_rows, test_signatures, test_rows, bands, rows, rep)
        if len(ti) == 0:
            continue
        est = _cross_estimate(sig, ti, test_signatures, tj)
        keep = est >= threshold
        found_i.append(ti[keep] + lo)
        found_j.append(tj[keep])
        found_s.append(est[keep])
    if progress is not None:
        progress(1000, 1000, "MinHash leakage done")
    if not found_i:
        return []
    hits = [LeakHit(i, j, "minhash", float(s), field) for i, j, s in
            zip(np.concatenate(found_i).tolist(), np.concatenate(found_j).tolist(), np.concatenate(found_s).tolist())]
    if numbers:
        hits = _keep_numbers(hits, train_texts, test_texts)
    hits.sort(key=lambda h: (h.index, h.test_index))
    return hits


def _cross_estimate(a: np.ndarray, ai: np.ndarray, b: np.ndarray, bj: np.ndarray) -> np.ndarray:
    out = np.empty(len(ai), dtype=np.float64)
    step = 20_000
    for s in range(0, len(ai), step):
        out[s:s + step] = np.count_nonzero(a[ai[s:s + step]] == b[bj[s:s + step]], axis=1)
    return out / a.shape[1]


def _banded_cross(train: np.ndarray, train_rows: np.ndarray, test: np.ndarray,
                  test_rows: np.ndarray, bands: int, rows: int,
                  rep: Reporter) -> tuple[np.ndarray, np.ndarray]:
    """Unique (train, test) pairs that agree on a whole band (the candidates of querying a
    ``MinHashLSH(params=(bands, rows))`` holding the test rows with every train row)."""
    out_i, out_j = [], []
    # a train row can agree with a test row on a band only where it agrees on the band's first
    # slot: the rest of the band is read for those rows only
    # (a table of the test values' low bits first, then the exact values)
    firsts = np.ascontiguousarray(train[:, 0:bands * rows:rows][train_rows].T)
    seen = np.zeros(1 << 22, dtype=bool)
    low = np.uint32((1 << 22) - 1)
    for band in range(bands):
        rep.check()
        tfirst = np.unique(test[test_rows, band * rows])
        seen[tfirst & low] = True
        near = np.flatnonzero(seen[firsts[band] & low])
        seen[tfirst & low] = False
        first = firsts[band][near]
        pos = np.minimum(np.searchsorted(tfirst, first), len(tfirst) - 1)
        maybe = train_rows[near[tfirst[pos] == first]]
        if len(maybe) == 0:
            continue
        keys = []
        for sig, sel in ((test, test_rows), (train, maybe)):
            block = sig[sel, band * rows:(band + 1) * rows].astype(np.uint64)
            key = block[:, 0].copy()
            with np.errstate(over="ignore"):
                for c in range(1, rows):
                    key = (key * _FOLD) ^ block[:, c]
            keys.append(key)
        tkey, rkey = keys
        order = np.argsort(tkey, kind="stable")
        tsorted = tkey[order]
        lo = np.searchsorted(tsorted, rkey, "left")
        hi = np.searchsorted(tsorted, rkey, "right")
        cnt = hi - lo
        has = np.flatnonzero(cnt)
        if len(has) == 0:
            continue
        c = cnt[has]
        left = np.repeat(has, c)
        within = np.arange(c.sum()) - np.repeat(np.cumsum(c) - c, c)
        out_i.append(maybe[left])
        out_j.append(test_rows[order[np.repeat(lo[has], c) + within]])
    rep.tick(rep.total, "querying train signatures")
    if not out_i:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    pi = np.concatenate(out_i)
    pj = np.concatenate(out_j)
    base = int(pj.max()) + 1
    pair = np.unique(pi * base + pj)
    return pair // base, pair % base
