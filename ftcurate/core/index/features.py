"""What a corpus index keeps of each record, and how new records are matched against it.

Three features per record, computed by the scanners' own public functions so that an index
entry and a scan agree on what "the same" means:

* ``exact``: a 16-byte BLAKE2b fingerprint of the whole conversation after
  :func:`ftcurate.core.quality.dedup.normalize` (the scan's exact duplicates); stored as two
  ``uint64`` columns. An empty conversation has none (both columns 0).
* ``sig``: the MinHash signature of ``Record.text`` (:func:`dedup.minhash_signatures`, the scan's
  near duplicates), ``uint32`` x ``num_perm``.
* ``emb``: the embedding of what the record asks (user turns, else the conversation without the
  system prompt) with the index's model (:func:`ftcurate.core.quality.embeddings.embed`),
  stored as float16.

Matching (:func:`match`): per new record and indexed dataset, the strongest of an exact copy
(score 1.0), a near duplicate (MinHash estimate >= ``minhash_threshold`` among LSH candidates:
bands as datasketch's ``MinHashLSH`` chooses them) and a semantic duplicate (cosine of the
embeddings >= ``semantic_threshold``); one hit per (record, dataset).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from typing import Optional, Sequence

import numpy as np

from ..progress import CancelCheck, ProgressCallback, Reporter

METHOD_ORDER = {"exact": 0, "near": 1, "semantic": 2}
_FOLD = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier folding a band's values into one key


class IndexStoreError(ValueError):
    """A corpus index that cannot be used: a folder that is not an index, a Redis server that is
    down or refuses the password, an index made with other settings. The message says which."""

    key = "index"


FORMAT = "ftcurate-corpus-index"
VERSION = 1


def checked_manifest(data, shown: str, what: str) -> dict:
    """The manifest ``data`` (read from ``what``) of the index ``shown``, or a clear error when it
    is not a corpus index manifest of the version this ftcurate reads."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise IndexStoreError(f"{what} is not a corpus index manifest")
    if data.get("version") != VERSION:
        raise IndexStoreError(f"{shown}: index version {data.get('version')!r}; this ftcurate reads version {VERSION}")
    return data


class ManifestIndex:
    """What both stores read from their manifest (``_manifest()``, ``exists()``)."""

    def settings(self) -> "IndexSettings":
        return IndexSettings.from_dict(self._manifest().get("settings") or {})

    def datasets(self) -> list[dict]:
        if not self.exists():
            return []
        return list(self._manifest().get("datasets") or [])


@dataclass(frozen=True)
class IndexSettings:
    """Fixed when an index is created (every dataset in it is indexed the same way)."""

    num_perm: int = 128
    ngram: int = 5
    seed: int = 1
    minhash_threshold: float = 0.8
    embedding_model: str = "static-wordllama"
    semantic_threshold: float = 0.95
    lowercase: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "IndexSettings":
        names = {f.name for f in fields(cls)}
        if not isinstance(d, dict) or set(d) - names:
            raise IndexStoreError(f"the index's settings are not ones this ftcurate knows: {d!r}")
        return cls(**d)


@dataclass
class Features:
    """Features of ``n`` records (row k belongs to record ``indices[k]`` of its file)."""

    indices: np.ndarray  # int64 (n,)
    exact: np.ndarray  # uint64 (n, 2); (0, 0) = no fingerprint
    sig: np.ndarray  # uint32 (n, num_perm)
    emb: np.ndarray  # float16 (n, dim)

    def __len__(self) -> int:
        return len(self.indices)


def user_or_body(record) -> str:
    from ..quality.scan import body_text, user_text

    return user_text(record) or body_text(record)


def exact_keys(texts: Sequence[str], lowercase: bool = False) -> np.ndarray:
    """(n, 2) uint64: the BLAKE2b-128 fingerprint of each normalised text; (0, 0) for empty."""
    from ..quality.dedup import normalize

    out = np.zeros((len(texts), 2), dtype=np.uint64)
    for i, t in enumerate(texts):
        n = normalize(t, lowercase)
        if n:
            d = hashlib.blake2b(n.encode("utf-8", "surrogatepass"), digest_size=16).digest()
            out[i] = np.frombuffer(d, dtype="<u8")
    return out


def compute_features(records: Sequence, indices: Sequence[int], settings: IndexSettings, cache=None,
                     progress: Optional[ProgressCallback] = None,
                     cancel: Optional[CancelCheck] = None) -> Features:
    """The three features of ``records`` (see the module docstring). Progress 0..1000:
    fingerprints and signatures to 300, embeddings to 1000."""
    from ..quality.dedup import minhash_signatures, sub_progress
    from ..quality.embeddings import embed
    from ..quality.scan import content_text

    rep = Reporter(progress, cancel, total=1000, every=1)
    rep.tick(0, "fingerprints")
    exact = exact_keys([content_text(r) for r in records], settings.lowercase)
    sig = minhash_signatures([r.text for r in records], num_perm=settings.num_perm, ngram=settings.ngram,
                             seed=settings.seed, progress=sub_progress(progress, 50, 300), cancel=cancel)
    emb = embed([user_or_body(r) for r in records], model=settings.embedding_model, cache=cache,
                progress=sub_progress(progress, 300, 1000), cancel=cancel)
    return Features(np.asarray(indices, dtype=np.int64), exact, np.asarray(sig, dtype=np.uint32),
                    emb.astype(np.float16))


def lsh_bands(settings: IndexSettings) -> tuple[int, int]:
    from ..quality.lsh import lsh_params

    return lsh_params(settings.minhash_threshold, settings.num_perm)


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(bands, n) uint64: each band's hash values folded into one key (equal bands, equal keys)."""
    sig = np.asarray(sig, dtype=np.uint32)
    out = np.empty((bands, len(sig)), dtype=np.uint64)
    for b in range(bands):
        block = sig[:, b * rows:(b + 1) * rows].astype(np.uint64)
        key = block[:, 0].copy() if len(sig) else np.empty(0, np.uint64)
        with np.errstate(over="ignore"):
            for c in range(1, rows):
                key = (key * _FOLD) ^ block[:, c]
        out[b] = key
    return out


def empty_signature(sig: np.ndarray) -> np.ndarray:
    from ..quality.dedup import EMPTY_HASH

    return ~(np.asarray(sig) != EMPTY_HASH).any(axis=1)


@dataclass
class Match:
    row: int  # the new record (its position in the query)
    dataset: str
    method: str  # "exact" | "near" | "semantic"
    score: float
    record: int  # the indexed record's index in its file


def best_matches(found: list[Match]) -> list[Match]:
    """One match per (new record, dataset): the strongest method, then the highest score."""
    best: dict[tuple[int, str], Match] = {}
    for m in found:
        k = (m.row, m.dataset)
        cur = best.get(k)
        if cur is None or (METHOD_ORDER[m.method], -m.score, m.record) < (METHOD_ORDER[cur.method], -cur.score,
                                                                          cur.record):
            best[k] = m
    return sorted(best.values(), key=lambda m: (m.row, METHOD_ORDER[m.method], m.dataset))


def semantic_matches(query_emb: np.ndarray, base_emb: np.ndarray, threshold: float) -> tuple[np.ndarray, tuple]:
    """For each query row its most similar base row (exact: blocks of matrix products, the base
    read in slices, e.g. from a memory-mapped file); only rows at or above ``threshold`` (and not
    empty) are kept: ``(rows, (best, cosine))``."""
    q = np.ascontiguousarray(query_emb, dtype=np.float32)
    nq, nb = len(q), len(base_emb)
    if nq == 0 or nb == 0:
        return np.empty(0, np.int64), (np.empty(0, np.int64), np.empty(0, np.float32))
    best = np.full(nq, -1, dtype=np.int64)
    sims = np.full(nq, -np.inf, dtype=np.float32)
    step = max(1, (16 * 1024 * 1024) // max(1, nq))
    for s0 in range(0, nb, step):  # numpy's BLAS: no torch import for a lookup
        sim = q @ np.ascontiguousarray(base_emb[s0:s0 + step], dtype=np.float32).T
        i = sim.argmax(axis=1)
        m = sim[np.arange(nq), i]
        better = m > sims
        sims[better] = m[better]
        best[better] = i[better] + s0
    nonzero = np.any(q != 0, axis=1)
    rows = np.flatnonzero(nonzero & (sims >= threshold) & (best >= 0))
    return rows, (best[rows], sims[rows])


def estimate(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MinHash Jaccard estimate of paired rows."""
    return np.count_nonzero(np.asarray(a) == np.asarray(b), axis=1) / a.shape[1]
