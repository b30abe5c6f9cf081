"""The work of the Ray engine's tasks, as plain functions of a shard (see
:mod:`ftcurate.core.engines.ray_engine`, which runs them as Ray tasks and actors).

A *shard* is ``{"keys": int64 array, "records": [Record, ...]}``: records with their report
numbers relative to the shard's ``offset`` (a folder's shard numbers its records from 0; the
engine adds the shard's first number). Every function here calls the scanners' own public
functions (dedup, textleak, embeddings, neighbors, heuristics, index) on its shard, so a Ray
scan and a local scan agree. Functions are pure (a retried task computes the same result).
"""

from __future__ import annotations

import hashlib
import os
from typing import Optional

import numpy as np

_FOLD = np.uint64(0x9E3779B97F4A7C15)  # the fold of lsh.banded_pairs: equal bands, equal keys


def maybe_crash(spec: str, stage: str) -> None:
    """Fault injection for the tests (``FTCURATE_RAY_CRASH=STAGE:MARKER`` on the driver): the
    worker process running ``stage`` dies at once, the first time only (it leaves MARKER), or
    every time with ``STAGE:always``. Ray then retries the task as it would after any crash."""
    if not spec:
        return
    want, _, marker = spec.partition(":")
    if want != stage:
        return
    if marker == "always":
        os._exit(17)
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os._exit(17)


def keys_of(shard: dict, offset: int) -> np.ndarray:
    return np.asarray(shard["keys"], dtype=np.int64) + int(offset)


def _fp(texts, lowercase: bool) -> np.ndarray:
    """(n, 2) uint64 fingerprints of the normalised texts ((0, 0): empty)."""
    from ..index.features import exact_keys

    return exact_keys(texts, lowercase)


def _parts(rows: np.ndarray, part_of: np.ndarray, parts: int) -> list[np.ndarray]:
    return [rows[part_of == p] for p in range(parts)]


# -- stage 1: per-record work and the map side of the group-bys -----------------------------------

def featurize(shard: dict, offset: int, s: dict, parts: int, crash: str = ""):
    """Heuristic flags, token lengths, keeper lengths, MinHash signatures, and the rows of the
    exact / conflict / identical-signature group-bys hashed into ``parts`` partitions.
    Returns ``[small, signatures, part_0, ..., part_{parts-1}]``."""
    from ..io.validate import TokenCounter
    from ..quality import dedup
    from ..quality.heuristics import HeuristicSettings
    from ..quality.scan import _cached_heuristics, content_text

    maybe_crash(crash, "featurize")
    recs = shard["records"]
    keys = keys_of(shard, offset)
    counter = TokenCounter()
    flags = _cached_heuristics(recs, HeuristicSettings.from_dict(s["heuristics"]), counter, None)
    small = {"keys": keys,
             "flags": [(int(keys[i]), f, r) for i, f, r in flags],
             "tokens": np.array([counter.messages(r)[0] for r in recs], dtype=np.int64),
             "answer_len": np.array([len((r.answer_text or "").strip()) for r in recs], dtype=np.int64),
             "text_len": np.array([len((r.text or "").strip()) for r in recs], dtype=np.int64)}
    lower = bool(s["lowercase"])
    content = _fp([content_text(r) for r in recs], lower)
    prompt = _fp([r.prompt_text for r in recs], lower)
    answer = _fp([r.answer_text for r in recs], lower)
    sig = np.zeros((len(recs), int(s["num_perm"])), dtype=np.uint32)
    if s["near_duplicates"]:
        sig = dedup.minhash_signatures([r.text for r in recs], num_perm=s["num_perm"], ngram=s["ngram"],
                                       seed=s["seed"])
    nonempty = (sig != dedup.EMPTY_HASH).any(axis=1) if s["near_duplicates"] else np.zeros(len(recs), bool)
    sighash = np.zeros((len(recs), 2), dtype=np.uint64)
    for i in np.flatnonzero(nonempty):
        sighash[i] = np.frombuffer(hashlib.blake2b(sig[i].tobytes(), digest_size=16).digest(), dtype="<u8")
    P = np.uint64(parts)
    out = []
    rows_exact = np.column_stack([content, keys.astype(np.uint64)])[(content != 0).any(axis=1)]
    rows_conf = np.column_stack([prompt, answer, keys.astype(np.uint64)])[(prompt != 0).any(axis=1)]
    rows_sig = np.column_stack([sighash, keys.astype(np.uint64)])[nonempty]
    pe = _parts(rows_exact, (rows_exact[:, 0] % P).astype(np.int64), parts)
    pc = _parts(rows_conf, (rows_conf[:, 0] % P).astype(np.int64), parts)
    ps = _parts(rows_sig, (rows_sig[:, 0] % P).astype(np.int64), parts)
    for p in range(parts):
        out.append({"exact": pe[p], "conflict": pc[p], "sig": ps[p]})
    return [small, sig] + out


def group_reduce(*parts: dict) -> dict:
    """The reduce side: exact-duplicate groups, conflicting groups and identical-signature links
    of one partition (lists of sorted report numbers)."""
    exact = np.concatenate([p["exact"] for p in parts]) if parts else np.empty((0, 3), np.uint64)
    conf = np.concatenate([p["conflict"] for p in parts]) if parts else np.empty((0, 5), np.uint64)
    sig = np.concatenate([p["sig"] for p in parts]) if parts else np.empty((0, 3), np.uint64)

    def groups(rows: np.ndarray, width: int) -> list[np.ndarray]:
        if len(rows) == 0:
            return []
        order = np.lexsort(tuple(rows[:, c] for c in reversed(range(width + 1))))
        rows = rows[order]
        new = np.concatenate(([True], (rows[1:, :width] != rows[:-1, :width]).any(axis=1)))
        starts = np.flatnonzero(new)
        ends = np.concatenate((starts[1:], [len(rows)]))
        return [rows[a:b] for a, b in zip(starts, ends) if b - a > 1]

    out_exact = [sorted(int(k) for k in g[:, 2]) for g in groups(exact, 2)]
    out_conf = []
    for g in groups(conf, 2):
        if len({(int(a), int(b)) for a, b in g[:, 2:4]}) > 1:
            out_conf.append(sorted(int(k) for k in g[:, 4]))
    links = []
    for g in groups(sig, 2):
        ks = sorted(int(k) for k in g[:, 2])
        links += [(ks[0], k) for k in ks[1:]]
    return {"exact": out_exact, "conflict": out_conf, "links": links}


# -- near duplicates: LSH banding as a group-by ------------------------------------------------------

def band_map(shard: dict, offset: int, sig: np.ndarray, not_reps: np.ndarray, bands: int, rows: int,
             parts: int, crash: str = "") -> list[np.ndarray]:
    """Rows ``(band, band key, number)`` of the shard's non-empty representative signatures
    (a record whose signature equals an earlier one's is linked to it instead), hashed into
    ``parts`` partitions by band key."""
    from ..quality import dedup

    maybe_crash(crash, "bands")
    keys = keys_of(shard, offset)
    use = (sig != dedup.EMPTY_HASH).any(axis=1) & ~np.isin(keys, not_reps)
    sel, k = sig[use], keys[use].astype(np.uint64)
    out_rows = []
    for band in range(bands):
        block = sel[:, band * rows:(band + 1) * rows].astype(np.uint64)
        key = block[:, 0].copy() if len(sel) else np.empty(0, np.uint64)
        with np.errstate(over="ignore"):
            for c in range(1, rows):
                key = (key * _FOLD) ^ block[:, c]
        out_rows.append(np.column_stack([np.full(len(k), band, np.uint64), key, k]))
    allrows = np.concatenate(out_rows) if out_rows else np.empty((0, 3), np.uint64)
    part = ((allrows[:, 1] ^ allrows[:, 0]) % np.uint64(parts)).astype(np.int64)
    return _parts(allrows, part, parts)


def band_reduce(*parts: np.ndarray, max_bucket: int = 1000) -> np.ndarray:
    """Candidate pairs ``(i, j)``, ``i < j``, of one partition: members of a bucket pair up
    (a bucket of more than ``max_bucket`` pairs its smallest member with the others, as
    :func:`ftcurate.core.quality.lsh.banded_pairs` does)."""
    rows = np.concatenate(parts) if parts else np.empty((0, 3), np.uint64)
    if len(rows) == 0:
        return np.empty((0, 2), np.int64)
    order = np.lexsort((rows[:, 2], rows[:, 1], rows[:, 0]))
    rows = rows[order]
    new = np.concatenate(([True], (rows[1:, :2] != rows[:-1, :2]).any(axis=1)))
    starts = np.flatnonzero(new)
    sizes = np.diff(np.concatenate((starts, [len(rows)])))
    pi, pj = [], []
    for s0, n in zip(starts[sizes > 1].tolist(), sizes[sizes > 1].tolist()):
        m = rows[s0:s0 + n, 2].astype(np.int64)
        if n > max_bucket:
            pi.append(np.full(n - 1, m[0]))
            pj.append(m[1:])
        else:
            a, b = np.triu_indices(n, 1)
            pi.append(m[a])
            pj.append(m[b])
    if not pi:
        return np.empty((0, 2), np.int64)
    out = np.column_stack([np.concatenate(pi), np.concatenate(pj)])
    return np.unique(out, axis=0)


def take(shard: dict, offset: int, wanted: np.ndarray, what: str = "text") -> dict:
    """``{number: text}`` of the shard's records among ``wanted`` (``what``: "text", "answer",
    "user" (what the record asks), "keeper" ((text, answer)))."""
    from ..quality.scan import user_text

    keys = keys_of(shard, offset)
    pos = np.flatnonzero(np.isin(keys, wanted))
    recs = shard["records"]
    get = {"text": lambda r: r.text, "answer": lambda r: r.answer_text, "user": user_text,
           "keeper": lambda r: (r.text, r.answer_text)}[what]
    return {int(keys[p]): get(recs[p]) for p in pos.tolist()}


def verify(pairs: np.ndarray, ngram: int, *texts: dict, crash: str = "") -> np.ndarray:
    """Exact Jaccard similarity of the shingle sets of each pair (``texts``: dicts number -> text
    holding both sides of every pair; one process computes all fingerprints of the batch)."""
    from ..quality.dedup import shingle_jaccard

    maybe_crash(crash, "verify")
    merged: dict = {}
    for t in texts:
        merged.update(t)
    order = sorted(merged)
    pos = {k: i for i, k in enumerate(order)}
    seq = [merged[k] for k in order]
    pi = np.array([pos[int(a)] for a in pairs[:, 0]], dtype=np.int64)
    pj = np.array([pos[int(b)] for b in pairs[:, 1]], dtype=np.int64)
    return shingle_jaccard(seq, pi, pj, ngram)


# -- embeddings, neighbours ----------------------------------------------------------------------

class Embedder:
    """A Ray actor holding one embedding model (on a GPU when it was given one)."""

    def __init__(self, model: str) -> None:
        from ..quality.embeddings import default_device, load_model, model_info

        self.model = model
        self.device = default_device(model_info(model)["kind"])
        load_model(model, self.device)

    def embed(self, shard: dict, which: str, crash: str = "") -> np.ndarray:
        from ..quality.embeddings import embed
        from ..quality.scan import body_text, user_text

        maybe_crash(crash, "embed")
        if which == "outlier":
            texts = [user_text(r) or body_text(r) for r in shard["records"]]
        else:
            texts = [user_text(r) for r in shard["records"]]
        return embed(texts, model=self.model, device=self.device)

    def device_name(self) -> str:
        return self.device


def knn_part(q_emb: np.ndarray, b_emb: np.ndarray, b_keys: np.ndarray, k: int, same: bool) -> tuple:
    """The ``k`` nearest rows of shard b for every row of shard q: ``(numbers, cosines)``."""
    from ..quality.neighbors import cross_knn, knn

    if same:
        idx, sim = knn(q_emb, k=k, backend="exact")
    else:
        idx, sim = cross_knn(q_emb, b_emb, k=k, backend="exact")
    out = np.where(idx >= 0, np.asarray(b_keys, np.int64)[np.maximum(idx, 0)], -1)
    return out, sim


def knn_merge(q_emb: np.ndarray, knn_k: int, kk: int, *parts: tuple) -> tuple:
    """Merge the shards' partial neighbour lists of shard q into its ``k`` best; also the
    outlier score of each row (mean cosine distance to its ``kk`` nearest; empty texts 1.0,
    as :func:`ftcurate.core.quality.outliers.knn_outliers`). Returns ``((idx, sim), scores)``."""
    idx = np.concatenate([p[0] for p in parts], axis=1)
    sim = np.concatenate([p[1] for p in parts], axis=1)
    k = parts[0][0].shape[1]
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    idx = np.take_along_axis(idx, order, axis=1)
    sim = np.take_along_axis(sim, order, axis=1)
    top = np.where(np.isfinite(sim[:, :kk]), sim[:, :kk], 0.0)
    scores = (1.0 - top.mean(axis=1)).astype(np.float32)
    scores[~np.any(q_emb, axis=1)] = 1.0
    return (idx, sim), scores


def pairs_from_neighbors(q_keys: np.ndarray, nbrs: tuple, threshold: float) -> list:
    """Semantic-duplicate pairs ``(a, b, cosine)`` among a shard's neighbour lists."""
    idx, sim = nbrs
    out = []
    rows, cols = np.nonzero(sim >= threshold)
    for r, c in zip(rows.tolist(), cols.tolist()):
        j = int(idx[r, c])
        if j < 0:
            continue
        a, b = int(q_keys[r]), j
        out.append((min(a, b), max(a, b), float(sim[r, c])))
    return out


def pairs_above(q_emb: np.ndarray, b_emb: np.ndarray, q_keys: np.ndarray, b_keys: np.ndarray,
                threshold: float, same: bool, max_partners: Optional[int] = None) -> list:
    """Every pair of rows (q, b) with cosine >= ``threshold`` (``same``: within one shard,
    each pair once): the exact search of :func:`ftcurate.core.quality.semantic.semantic_duplicates`.
    ``max_partners``: at most that many pairs a q row, its most similar (the caller keeps the
    best of those over all shards: the scan's cap, see ``pairsearch.exact_candidates``)."""
    from ..quality.pairsearch import _most_similar

    out = []
    q = np.ascontiguousarray(q_emb, dtype=np.float32)
    b = np.ascontiguousarray(b_emb, dtype=np.float32)
    block = max(1, (16 * 1024 * 1024) // max(1, len(b)))
    for s0 in range(0, len(q), block):
        s = q[s0:s0 + block] @ b.T
        if same:  # each pair once: columns after the row
            rows = np.arange(s0, s0 + len(s))[:, None]
            s = np.where(np.arange(len(b))[None, :] > rows, s, -2.0)
        r, c = np.nonzero(s >= threshold)
        if max_partners is not None and len(r):
            r, c = _most_similar(s, r, c, max_partners)
        for rr, cc in zip(r.tolist(), c.tolist()):
            a, bb = int(q_keys[s0 + rr]), int(b_keys[cc])
            out.append((min(a, bb), max(a, bb), float(s[rr, cc])))
    return out


# -- the corpus index ---------------------------------------------------------------------------------

def index_hits(shard: dict, offset: int, location: str) -> list[dict]:
    from ..index import against_index

    keys = keys_of(shard, offset)
    return against_index(location, shard["records"], [int(k) for k in keys])
