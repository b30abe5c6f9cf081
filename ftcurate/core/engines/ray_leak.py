"""Train/test leakage on shards: the small test set is broadcast to every shard.

Exact copies and MinHash near copies are decided pair by pair, so each shard runs
:func:`textleak.exact_leaks` / :func:`textleak.minhash_leaks` on its records against the whole
test set. The 13-gram check is not pair by pair: lines and n-grams found in more than 10
*training* texts are ignored (boilerplate), and that count is over the whole training set. So it
runs in three passes: (1) each shard counts its texts' distinct lines; the driver adds them up
and broadcasts the common ones; (2) each shard lists the test n-grams its texts contain; the
driver counts them over all shards, drops the common ones and scores the pairs; (3) each shard
checks the numbers and finds the evidence of its hits. The result is what
:func:`textleak.ngram_leaks` gives on the whole set (same helpers, same rules).
"""

from __future__ import annotations

import hashlib
from typing import Optional

import numpy as np

from .ray_tasks import keys_of, maybe_crash

STEPS = (("prompt", "exact"), ("prompt", "ngram"), ("prompt", "minhash"), ("answer", "exact"), ("answer", "ngram"))
MAX_FREQ = 10
MIN_TOKENS = 8


def field_texts(records, field: str) -> list[str]:
    return [r.prompt_text if field == "prompt" else r.answer_text for r in records]


def evidence_texts(records, field: str) -> list[str]:
    """The texts ``matched_words`` compares (scan._leakage): a prompt's user turns."""
    from ..quality.scan import user_text

    if field == "prompt":
        return [user_text(r) or r.prompt_text for r in records]
    return [r.answer_text for r in records]


def line_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def drop_common(text: str, common: frozenset) -> str:
    """``textleak._drop_lines`` with the common lines given by hash."""
    from ..quality.textleak import _line_key

    if not common:
        return text or ""
    return "\n".join(x for x in (text or "").splitlines() if line_hash(_line_key(x)) not in common)


# -- pass 1 ----------------------------------------------------------------------------------------

def line_counts(shard: dict, field: str) -> tuple[np.ndarray, np.ndarray]:
    """Distinct line hashes of the shard's texts and in how many texts each is."""
    from ..quality.textleak import _lines

    count: dict[int, int] = {}
    for t in field_texts(shard["records"], field):
        for k in set(_lines(t)):
            h = line_hash(k)
            count[h] = count.get(h, 0) + 1
    if not count:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    return np.fromiter(count.keys(), np.uint64, len(count)), np.fromiter(count.values(), np.int64, len(count))


def common_lines(counts: list[tuple[np.ndarray, np.ndarray]], test_texts: list[str]) -> frozenset:
    """Lines in more than MAX_FREQ training texts (added up over shards) or test texts."""
    from ..quality.textleak import _common_lines

    out = {line_hash(k) for k in _common_lines(test_texts, MAX_FREQ)}
    if counts:
        h = np.concatenate([c[0] for c in counts])
        n = np.concatenate([c[1] for c in counts])
        if len(h):
            u, inv = np.unique(h, return_inverse=True)
            tot = np.bincount(inv.reshape(-1), weights=n)
            out |= set(u[tot > MAX_FREQ].tolist())
    return frozenset(out)


# -- the test side (driver) ------------------------------------------------------------------------

def test_grams(test_texts: list[str], n: int, common: frozenset) -> dict:
    """The test n-gram table of ``textleak.ngram_leaks`` for the test texts without the common
    lines: vocabulary, sorted gram keys, owners (CSR) and what the test side ignores."""
    from ..quality.textleak import heldout_gram_table

    dropped = [drop_common(t, common) for t in test_texts]
    vocab, lengths, all_keys, owner, gram, first, test_count = heldout_gram_table(dropped, n, MIN_TOKENS)
    table = {"vocab": vocab, "dropped": dropped, "common": common, "n": n, "lengths": lengths,
             "gram": np.empty(0, np.uint64)}
    if all_keys is None:
        return table
    table.update(gram=gram, first=first, test_count=test_count, owner=owner, all_keys=all_keys,
                 ignored=test_count > MAX_FREQ)
    return table


# -- pass 2 (shards) and the shard's pair-by-pair checks ----------------------------------------

def shard_leaks(shard: dict, offset: int, T: dict, s: dict, crash: str = "") -> dict:
    """Exact and MinHash hits (with their evidence) of the shard against the test set, and the
    (number, test gram) pairs of the n-gram check (pass 2)."""
    from ..quality import textleak

    maybe_crash(crash, "leakage")
    recs = shard["records"]
    keys = keys_of(shard, offset)
    hits = []
    grams = {}
    for step, (field, method) in enumerate(STEPS):
        a = field_texts(recs, field)
        b = T["texts"][field]
        if method == "exact":
            found = textleak.exact_leaks(a, b, field=field, lowercase=True,
                                         min_tokens=MIN_TOKENS if field == "answer" else 0)
        elif method == "minhash":
            found = textleak.minhash_leaks(a, b, threshold=s["leak_minhash_threshold"], num_perm=s["num_perm"],
                                           ngram=s["ngram"], seed=s["seed"], field=field,
                                           test_signatures=T["prompt_sigs"])
        else:
            grams[field] = _gram_pairs(a, keys, T["ngram"][field])
            continue
        ev = evidence_texts(recs, field) if found else []
        for h in found:
            hits.append(_hit(step, int(keys[h.index]), h, ev[h.index], T["ev_texts"][field][h.test_index],
                             T["df"][field]))
    return {"hits": hits, "grams": grams}


def _hit(step: int, key: int, h, train_ev: str, test_ev: str, df: dict, evidence: Optional[dict] = None) -> dict:
    from ..quality.textleak import matched_words

    return {"_step": step, "index": key, "test_index": int(h.test_index), "method": h.method,
            "score": round(float(h.score), 4), "field": h.field,
            "evidence": evidence if evidence else {"matched_words": matched_words(train_ev, test_ev, df)}}


def _gram_pairs(texts: list[str], keys: np.ndarray, T: dict) -> tuple[np.ndarray, np.ndarray]:
    from ..quality.textleak import _token_ids, _window_keys

    gram = T["gram"]
    if len(gram) == 0 or not texts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    dropped = [drop_common(t, T["common"]) for t in texts]
    get = T["vocab"].get
    ids, lens = _token_ids(dropped, lambda w: get(w, -1))
    hit_t, hit_g = [], []
    for L in T["lengths"]:
        tt, kk = _window_keys(ids, lens, L)
        if len(kk) == 0:
            continue
        pos = np.searchsorted(gram, kk)
        pos[pos >= len(gram)] = 0
        hit = gram[pos] == kk
        if hit.any():
            hit_t.append(tt[hit])
            hit_g.append(pos[hit])
    if not hit_t:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    pair = np.unique(np.concatenate(hit_t) * len(gram) + np.concatenate(hit_g))
    return keys[pair // len(gram)], pair % len(gram)


def score_grams(pairs: list[tuple[np.ndarray, np.ndarray]], T: dict, n_test: int) -> list[tuple[int, int, float]]:
    """(number, test index, share) of the pairs that share enough grams (driver; the rules of
    ``ngram_leaks`` with the training counts of all shards)."""
    from ..quality.textleak import MIN_SHARE

    if len(T["gram"]) == 0 or not pairs:
        return []
    ht = np.concatenate([p[0] for p in pairs])
    hg = np.concatenate([p[1] for p in pairs])
    if len(ht) == 0:
        return []
    gram = T["gram"]
    ignored = T["ignored"] | (np.bincount(hg, minlength=len(gram)) > MAX_FREQ)
    keep = ~ignored[hg]
    ht, hg = ht[keep], hg[keep]
    gram_of_entry = np.searchsorted(gram, T["all_keys"])
    usable = np.bincount(T["owner"][~ignored[gram_of_entry]], minlength=n_test)
    counts: dict[tuple[int, int], int] = {}
    first, ends, owner = T["first"], T["first"] + T["test_count"], T["owner"]
    for i, g in zip(ht.tolist(), hg.tolist()):
        for j in owner[first[g]:ends[g]].tolist():
            counts[(i, j)] = counts.get((i, j), 0) + 1
    out = [(i, j, float(c / usable[j]) if usable[j] else 1.0) for (i, j), c in counts.items()]
    return [h for h in out if h[2] >= MIN_SHARE]


def finish_grams(shard: dict, offset: int, field: str, found: list, T: dict, step: int) -> list[dict]:
    """Pass 3: the numbers rule and the evidence of the shard's n-gram hits."""
    from ..quality.textleak import LeakHit, numbers_agree, shared_ngram

    if not found:
        return []
    keys = keys_of(shard, offset)
    pos = {int(k): p for p, k in enumerate(keys)}
    recs = shard["records"]
    tab = T["ngram"][field]
    out = []
    for key, j, score in found:
        r = recs[pos[key]]
        train = drop_common(field_texts([r], field)[0], tab["common"])
        test = tab["dropped"][j]
        if not numbers_agree(train, test):
            continue
        g = shared_ngram(train, test, tab["n"], MIN_TOKENS)
        h = LeakHit(pos[key], j, "ngram", score, field)
        out.append(_hit(step, key, h, evidence_texts([r], field)[0], T["ev_texts"][field][j], T["df"][field],
                        {"ngram": g} if g else None))
    return out
