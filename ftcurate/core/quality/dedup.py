"""Exact duplicates, conflicting examples and MinHash near-duplicates.

All functions take plain lists of strings and return 0-based indices into them; the caller
decides which text of a record to pass (``Record.text`` for duplicates, ``prompt_text`` /
``answer_text`` for conflicts and keeper choice).

Exact duplicates
    Two texts are duplicates when :func:`normalize` makes them equal: Unicode NFKC, every
    run of whitespace collapsed to one space, leading/trailing whitespace stripped; case is
    kept unless ``lowercase=True``. Texts that normalise to ``""`` are never grouped (empty
    records are a different problem, flagged elsewhere).

Conflicting examples
    Records with the same normalised prompt but at least two different normalised answers
    (:func:`conflicting_groups`): the model is taught two answers to one question. This is
    reported separately from duplicates.

Near-duplicates (MinHash + LSH)
    A text's shingles are its lower-cased, whitespace-split word n-grams (``ngram=5`` by
    default), each joined with single spaces; a text with fewer than ``ngram`` words (but at
    least one) is a single shingle, the whole word list; an empty text has no shingles.

    :func:`minhash_signatures` computes the MinHash signatures of a whole dataset at once.
    The values are *bit-identical* to datasketch 2.x ``MinHash(num_perm, seed)`` with its
    default ``"affine32"`` scheme updated with the UTF-8 encoded shingles: ``sha1`` → first 4
    bytes little-endian → MurmurHash3 ``fmix32`` → ``a*h + b mod 2**32`` with ``(a, b)`` drawn
    from ``numpy.random.RandomState(seed)`` exactly as datasketch does. So a row can be
    wrapped as ``datasketch.LeanMinHash(seed=seed, hashvalues=row, scheme="affine32")`` and
    mixed freely with sketches datasketch makes itself. An empty text gets the
    all-``0xFFFFFFFF`` signature of an empty datasketch MinHash. Two backends give the same
    values (:func:`signature_backend`):

    * ``"numpy"`` (always available): each chunk of texts is rewritten as its words joined by
      single spaces and encoded once; shingles are recognised by a 64-bit fingerprint folded
      from Python ``hash()`` of their words, so ``hashlib.sha1`` runs once per *distinct*
      shingle (on a slice of the encoded buffer), and the permutations are applied to all
      shingle occurrences of the chunk with one ``np.minimum.reduceat`` per permutation.
    * ``"numba"`` (used automatically when numba is installed, unless ``FTCURATE_NUMBA=0``):
      a compiled kernel does SHA-1, fmix32 and the permutation minimum per shingle, texts in
      parallel. It is compiled on the first call (10-20 s) and cached on disk by numba, so
      later processes only load it (about 1 s; :func:`warm_up` does that up front).

    :func:`near_duplicate_clusters` finds candidate pairs by LSH banding with the (bands,
    rows) datasketch's ``MinHashLSH`` chooses (:data:`LSH_WEIGHTS` favours recall, since
    candidates are verified): in memory with numpy (:func:`banded_pairs`, the same candidates
    as inserting every record into a ``MinHashLSH`` and querying every record), or in a real
    ``MinHashLSH`` when a ``storage_config`` (Redis, Cassandra) is given (see *External LSH
    storage* below). Candidates are
    verified (exact Jaccard of the shingle sets by default, or the MinHash estimate), pairs
    with similarity >= ``threshold`` are kept and joined into clusters with
    :class:`UnionFind`. Records whose signatures are identical are indexed once and linked to
    their first occurrence with a direct pair. **Exact duplicates are kept in the clusters**
    (similarity 1.0): a cluster is "everything that is (nearly) the same", and the report
    shows the exact groups of :func:`exact_duplicate_groups` separately as well. Empty texts
    never take part. Members of one cluster are linked through verified pairs, so two members
    may be less similar to each other than ``threshold`` (single linkage).

External LSH storage (Redis)
    See :mod:`ftcurate.core.quality.lsh`: only plain bytes are stored, nothing read back is
    unpickled, a server that is down or refuses the password raises :class:`StorageError`.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

import numpy as np

from ..progress import CancelCheck, ProgressCallback, Reporter
from .lsh import (  # re-exported: dedup.make_lsh & co.
    LSH_WEIGHTS,
    StorageError,
    banded_pairs,
    check_lsh_storage,
    lsh_band_keys,
    lsh_index,
    lsh_insert_signatures,
    lsh_key,
    lsh_key_value,
    lsh_params,
    lsh_query_band_keys,
    lsh_self_pairs,
    make_lsh,
)

__all__ = [
    "normalize",
    "exact_duplicate_groups",
    "conflicting_groups",
    "shingles",
    "jaccard",
    "minhash_signatures",
    "permutations",
    "signature_backend",
    "warm_up",
    "signature_jaccard",
    "shingle_jaccard",
    "shingle_fingerprint_sets",
    "NearDuplicateCluster",
    "near_duplicate_clusters",
    "clusters_from_pairs",
    "UnionFind",
    "banded_pairs",
    "lsh_params",
    "make_lsh",
    "lsh_band_keys",
    "lsh_insert_signatures",
    "lsh_query_band_keys",
    "lsh_self_pairs",
    "lsh_key",
    "lsh_key_value",
    "lsh_index",
    "check_lsh_storage",
    "StorageError",
    "LSH_WEIGHTS",
    "EMPTY_HASH",
]

EMPTY_HASH = np.uint32(0xFFFFFFFF)  # value of every slot of an empty MinHash ("affine32")
_WS = re.compile(r"\s+")
_FOLD = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier for the shingle fingerprint fold
# Work in chunks of about this many words / texts: bounds memory (the flat word list and the
# occurrence arrays of a chunk are the biggest objects) and sets how often progress/cancel are
# checked.
_CHUNK_WORDS = 400_000
_CHUNK_TEXTS = 5_000


def sub_progress(progress: Optional[ProgressCallback], lo: int, hi: int,
                 total: int = 1000) -> Optional[ProgressCallback]:
    """A progress callback that maps a phase's (done, total) onto [lo, hi] of ``total``, so a
    function with several phases reports one monotone progress."""
    if progress is None:
        return None

    def sub(done: int, n: int, message: str = "") -> None:
        frac = min(1.0, done / n) if n else 0.0
        progress(lo + int((hi - lo) * frac), total, message)

    return sub


# --------------------------------------------------------------------------- exact


def normalize(text: str, lowercase: bool = False) -> str:
    """NFKC, whitespace runs collapsed to one space, stripped; lower-cased if asked."""
    out = _WS.sub(" ", unicodedata.normalize("NFKC", text or "")).strip()
    return out.lower() if lowercase else out


def _fingerprint(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def exact_duplicate_groups(texts: Sequence[str], lowercase: bool = False) -> list[list[int]]:
    """Groups (>= 2 indices, ascending; groups ordered by first index) of texts equal after
    :func:`normalize`. Texts normalising to "" are ignored."""
    by_key: dict[bytes, list[int]] = {}
    for i, t in enumerate(texts):
        n = normalize(t, lowercase)
        if n:
            by_key.setdefault(_fingerprint(n), []).append(i)
    return sorted((g for g in by_key.values() if len(g) > 1), key=lambda g: g[0])


def conflicting_groups(prompts: Sequence[str], answers: Sequence[str],
                       lowercase: bool = False) -> list[list[int]]:
    """Groups of records that share a normalised prompt but have >= 2 different normalised
    answers. Each group lists *all* records with that prompt (ascending; groups ordered by
    first index). Empty prompts are ignored; an empty answer counts as one of the answers."""
    if len(prompts) != len(answers):
        raise ValueError("prompts and answers must have the same length")
    members: dict[bytes, list[int]] = {}
    distinct: dict[bytes, set] = {}
    for i, (p, a) in enumerate(zip(prompts, answers)):
        n = normalize(p, lowercase)
        if not n:
            continue
        k = _fingerprint(n)
        members.setdefault(k, []).append(i)
        distinct.setdefault(k, set()).add(_fingerprint(normalize(a, lowercase)))
    return sorted((members[k] for k, s in distinct.items() if len(s) > 1), key=lambda g: g[0])


# --------------------------------------------------------------------------- shingles


def _words(text: str) -> list[str]:
    return (text or "").lower().split()


def _shingles_of_words(w: list[str], ngram: int) -> list[str]:
    if not w:
        return []
    if len(w) < ngram:
        return [" ".join(w)]
    return list(dict.fromkeys(map(" ".join, zip(*(w[i:] for i in range(ngram))))))


def shingles(text: str, ngram: int = 5) -> list[str]:
    """Distinct word n-grams of ``text`` (lower-cased, whitespace-split, joined with one space),
    in order of first appearance. Fewer than ``ngram`` words → the whole text is one shingle;
    no words → ``[]``."""
    if ngram < 1:
        raise ValueError("ngram must be >= 1")
    return _shingles_of_words(_words(text), ngram)


def jaccard(a: Iterable, b: Iterable) -> float:
    """Exact Jaccard similarity of two sets (1.0 when both are empty)."""
    sa, sb = set(a), set(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


# --------------------------------------------------------------------------- signatures


def permutations(num_perm: int = 128, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The ``(a, b)`` uint32 arrays datasketch 2.x draws for scheme "affine32"."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _sha1_32_ranges(buf: bytes, starts: list[int], ends: list[int]) -> np.ndarray:
    """datasketch's ``sha1_hash32`` (first 4 digest bytes, little-endian) of ``buf[s:e]``
    for each range, as uint32."""
    if not starts:
        return np.empty(0, dtype=np.uint32)
    sha1 = hashlib.sha1
    mv = memoryview(buf)
    dig = b"".join([sha1(mv[s:e]).digest() for s, e in zip(starts, ends)])
    return np.frombuffer(dig, dtype="<u4").reshape(-1, 5)[:, 0].astype(np.uint32)


class _ShingleHasher:
    """Maps shingle fingerprints to permuted-input hashes (fmix32(sha1_32)), hashing each
    distinct shingle once per instance. Fingerprints are process-local (built from Python's
    ``hash()`` of the words), which is fine: they never leave one call."""

    def __init__(self) -> None:
        self.keys = np.empty(0, dtype=np.uint64)  # sorted
        self.vals = np.empty(0, dtype=np.uint32)
        self.hashed = 0  # how many distinct shingles went through sha1

    def lookup(self, ukeys: np.ndarray, hash_new) -> np.ndarray:
        """Values for the sorted unique ``ukeys``; ``hash_new(mask)`` returns the sha1_32 of
        the shingles whose keys are ``ukeys[mask]`` (those never seen before)."""
        pos = np.searchsorted(self.keys, ukeys)
        found = pos < len(self.keys)
        found[found] = self.keys[pos[found]] == ukeys[found]
        out = np.empty(len(ukeys), dtype=np.uint32)
        out[found] = self.vals[pos[found]]
        new = ~found
        if new.any():
            newvals = _fmix32(hash_new(new))
            out[new] = newvals
            self.hashed += len(newvals)
            ins = pos[new]
            self.keys = np.insert(self.keys, ins, ukeys[new])
            self.vals = np.insert(self.vals, ins, newvals)
        return out


def _chunks(texts: Sequence[str], chunk_words: int, chunk_texts: int):
    """Yield (start, stop) ranges of texts holding about ``chunk_words`` words (guessed from
    the length) and at most ``chunk_texts`` texts."""
    start, acc = 0, 0
    for i, t in enumerate(texts):
        acc += len(t or "") // 6 + 1
        if acc >= chunk_words or i + 1 - start >= chunk_texts:
            yield start, i + 1
            start, acc = i + 1, 0
    if start < len(texts):
        yield start, len(texts)


class _ChunkShingles:
    """The shingle occurrences of a chunk of texts.

    The texts are rewritten as their words joined by single spaces, one text a line, and
    encoded once (``buf``); shingle occurrence k is the byte range ``[bstart[k], bend[k])`` and
    has the 64-bit fingerprint ``key[k]`` (a fold of Python ``hash()`` of its words, with the
    word count mixed in: process-local, equal shingles have equal keys, different shingles
    collide with probability ~2**-64). ``counts[t]``: occurrences of text t, texts in order."""

    def __init__(self, texts: Sequence[str], ngram: int) -> None:
        joined = [" ".join(_words(t)) for t in texts]
        lens = np.fromiter((j.count(" ") + 1 if j else 0 for j in joined), dtype=np.int64,
                           count=len(joined))
        self.counts = counts = np.where(lens >= ngram, lens - ngram + 1, np.minimum(lens, 1))
        total = int(counts.sum())
        self.buf = b""
        self.key = np.empty(0, dtype=np.uint64)
        self.bstart = self.bend = np.empty(0, dtype=np.int64)
        if total == 0:
            return
        text = "\n".join(joined)
        del joined
        flat = text.split()
        self.buf = text.encode("utf-8", "surrogatepass")
        del text
        wh = np.fromiter(map(hash, flat), dtype=np.int64, count=len(flat)).view(np.uint64)
        del flat
        # byte range [ws, we) of every word: separators are the only spaces/newlines in buf
        raw = np.frombuffer(self.buf, dtype=np.uint8)
        sep = np.flatnonzero((raw == 0x20) | (raw == 0x0A))
        seg_s = np.concatenate(([0], sep + 1))
        seg_e = np.concatenate((sep, [len(raw)]))
        nonempty = seg_e > seg_s
        ws, we = seg_s[nonempty], seg_e[nonempty]
        del raw, sep, seg_s, seg_e, nonempty
        starts = np.zeros(len(lens), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        cstarts = np.zeros(len(lens), dtype=np.int64)
        np.cumsum(counts[:-1], out=cstarts[1:])
        # first word and length (in words) of every shingle occurrence
        pos = np.repeat(starts - cstarts, counts) + np.arange(total, dtype=np.int64)
        length = np.full(total, ngram, dtype=np.int64)
        short = np.nonzero((lens > 0) & (lens < ngram))[0]
        length[cstarts[short]] = lens[short]
        key = length.astype(np.uint64)
        with np.errstate(over="ignore"):
            for j in range(ngram):
                if len(short):
                    take = j < length
                    key[take] = (key[take] * _FOLD) ^ wh[pos[take] + j]
                else:
                    key = (key * _FOLD) ^ wh[pos + j]
        self.key = key
        self.bstart = ws[pos]
        self.bend = we[pos + length - 1]

    def hashes(self, hasher: _ShingleHasher) -> np.ndarray:
        """fmix32(sha1_32) of every occurrence, sha1 computed once per distinct shingle."""
        if len(self.key) == 0:
            return np.empty(0, dtype=np.uint32)
        ukeys, first, inv = np.unique(self.key, return_index=True, return_inverse=True)

        def hash_new(mask: np.ndarray) -> np.ndarray:
            f = first[mask]
            return _sha1_32_ranges(self.buf, self.bstart[f].tolist(), self.bend[f].tolist())

        return hasher.lookup(ukeys, hash_new)[inv.reshape(-1)]

    def key_sets(self) -> list[frozenset]:
        """The set of shingle fingerprints of each text."""
        ends = np.cumsum(self.counts).tolist()
        keys = self.key.tolist()
        out, lo = [], 0
        for hi in ends:
            out.append(frozenset(keys[lo:hi]))
            lo = hi
        return out


def _min_per_text(occ: np.ndarray, counts: np.ndarray, a: np.ndarray, b: np.ndarray,
                  out: np.ndarray) -> None:
    """out[t, k] = min over the occurrences h of text t of a[k]*h + b[k] (mod 2**32);
    texts with no occurrence are left untouched."""
    nz = np.nonzero(counts)[0]
    if len(nz) == 0:
        return
    offs = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=offs[1:])
    offs = offs[nz]
    tmp = np.empty(len(occ), dtype=np.uint32)
    res = np.empty((len(a), len(nz)), dtype=np.uint32)
    for k in range(len(a)):
        np.multiply(occ, a[k], out=tmp)
        tmp += b[k]
        np.minimum.reduceat(tmp, offs, out=res[k])
    out[nz] = res.T


# --------------------------------------------------------------------------- numba (optional)

_NUMBA_KERNEL = None  # None: not tried yet; False: unavailable


def _numba_enabled() -> bool:
    return os.environ.get("FTCURATE_NUMBA", "1").strip().lower() not in ("0", "off", "false", "no")


def _get_numba_kernel():
    """The compiled numba signature kernel, or None when numba is missing or disabled
    (``FTCURATE_NUMBA=0``). Compiled on first use and cached on disk by numba."""
    global _NUMBA_KERNEL
    if not _numba_enabled():
        return None
    if _NUMBA_KERNEL is None:
        try:
            _NUMBA_KERNEL = _build_numba_kernel()
        except Exception:  # noqa: BLE001 - ImportError, or a numba that cannot compile this
            _NUMBA_KERNEL = False
    return _NUMBA_KERNEL or None


def signature_backend() -> str:
    """"numba" when :func:`minhash_signatures` uses the compiled kernel, else "numpy"."""
    return "numba" if _get_numba_kernel() is not None else "numpy"


def warm_up() -> str:
    """Compile (first run) or load (later runs) the numba kernel now, e.g. in a background
    thread at start-up, so the first scan does not wait for it; returns the backend name."""
    minhash_signatures(["warm up the minhash kernel"])
    return signature_backend()


# Plain-Python bodies of the numba kernel, compiled by _build_numba_kernel(). They live at
# module level so numba's on-disk cache (cache=True) finds them again in the next process; the
# _nb_* globals they call are bound to the compiled dispatchers before the kernel is compiled.
# _u32 is numba.uint32 then (numba promotes integer arithmetic to 64 bits; the casts keep the
# SHA-1 and permutation arithmetic in 32 bits, i.e. modulo 2**32).
_nb_rotl = _nb_compress = _nb_sha1_32 = _nb_fmix32 = None
_nb_prange = range
_u32 = np.uint32


def _nbpy_rotl(x, n):
    return _u32((x << _u32(n)) | (x >> _u32(32 - n)))


def _nbpy_compress(w, h):
    """One SHA-1 block: w[0:16] holds the block's big-endian words, h the state."""
    for t in range(16, 80):
        w[t] = _nb_rotl(_u32(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]), 1)
    a = h[0]
    b = h[1]
    c = h[2]
    d = h[3]
    e = h[4]
    for t in range(0, 20):
        tmp = _u32(_nb_rotl(a, 5) + _u32((b & c) | (_u32(~b) & d)) + e + _u32(0x5A827999) + w[t])
        e = d
        d = c
        c = _nb_rotl(b, 30)
        b = a
        a = tmp
    for t in range(20, 40):
        tmp = _u32(_nb_rotl(a, 5) + _u32(b ^ c ^ d) + e + _u32(0x6ED9EBA1) + w[t])
        e = d
        d = c
        c = _nb_rotl(b, 30)
        b = a
        a = tmp
    for t in range(40, 60):
        tmp = _u32(_nb_rotl(a, 5) + _u32((b & c) | (b & d) | (c & d)) + e + _u32(0x8F1BBCDC) + w[t])
        e = d
        d = c
        c = _nb_rotl(b, 30)
        b = a
        a = tmp
    for t in range(60, 80):
        tmp = _u32(_nb_rotl(a, 5) + _u32(b ^ c ^ d) + e + _u32(0xCA62C1D6) + w[t])
        e = d
        d = c
        c = _nb_rotl(b, 30)
        b = a
        a = tmp
    h[0] = _u32(h[0] + a)
    h[1] = _u32(h[1] + b)
    h[2] = _u32(h[2] + c)
    h[3] = _u32(h[3] + d)
    h[4] = _u32(h[4] + e)


def _nbpy_sha1_32(buf, start, end, w, blk, h):
    """datasketch's sha1_hash32 of buf[start:end]: the first 4 digest bytes, little-endian.
    w (80 uint32), blk (128 uint8) and h (5 uint32) are scratch space."""
    h[0] = _u32(0x67452301)
    h[1] = _u32(0xEFCDAB89)
    h[2] = _u32(0x98BADCFE)
    h[3] = _u32(0x10325476)
    h[4] = _u32(0xC3D2E1F0)
    p = start
    while end - p >= 64:
        for i in range(16):
            q = p + 4 * i
            w[i] = ((_u32(buf[q]) << _u32(24)) | (_u32(buf[q + 1]) << _u32(16))
                    | (_u32(buf[q + 2]) << _u32(8)) | _u32(buf[q + 3]))
        _nb_compress(w, h)
        p += 64
    rem = end - p
    nblk = 1 if rem < 56 else 2
    blk[:64 * nblk] = 0
    blk[:rem] = buf[p:end]
    blk[rem] = 0x80
    bits = np.uint64(end - start) * np.uint64(8)
    for i in range(8):
        blk[64 * nblk - 1 - i] = np.uint8((bits >> np.uint64(8 * i)) & np.uint64(0xFF))
    for k in range(nblk):
        for i in range(16):
            q = 64 * k + 4 * i
            w[i] = ((_u32(blk[q]) << _u32(24)) | (_u32(blk[q + 1]) << _u32(16))
                    | (_u32(blk[q + 2]) << _u32(8)) | _u32(blk[q + 3]))
        _nb_compress(w, h)
    h0 = h[0]
    return _u32(((h0 & _u32(0xFF)) << _u32(24)) | ((h0 & _u32(0xFF00)) << _u32(8))
                | ((h0 >> _u32(8)) & _u32(0xFF00)) | (h0 >> _u32(24)))


def _nbpy_fmix32(h):
    h = _u32(h ^ (h >> _u32(16)))
    h = _u32(h * _u32(0x85EBCA6B))
    h = _u32(h ^ (h >> _u32(13)))
    h = _u32(h * _u32(0xC2B2AE35))
    return _u32(h ^ (h >> _u32(16)))


def _nbpy_kernel(buf, tstart, tend, ngram, a, b, out):
    """Signature row t = min over the shingles of buf[tstart[t]:tend[t]] (words separated by
    single spaces) of a*fmix32(sha1_32(shingle)) + b, for each permutation (a, b)."""
    num_perm = len(a)
    for t in _nb_prange(len(tstart)):
        s = tstart[t]
        e = tend[t]
        if s == e:
            continue
        nw = 1
        for p in range(s, e):
            if buf[p] == 32:
                nw += 1
        ws = np.empty(nw, np.int64)
        we = np.empty(nw, np.int64)
        k = 0
        ws[0] = s
        for p in range(s, e):
            if buf[p] == 32:
                we[k] = p
                k += 1
                ws[k] = p + 1
        we[nw - 1] = e
        w = np.empty(80, np.uint32)
        blk = np.empty(128, np.uint8)
        hs = np.empty(5, np.uint32)
        row = np.full(num_perm, _u32(0xFFFFFFFF))
        nsh = nw - ngram + 1 if nw >= ngram else 1
        last = ngram - 1 if nw >= ngram else nw - 1
        for i in range(nsh):
            h = _nb_fmix32(_nb_sha1_32(buf, ws[i], we[i + last], w, blk, hs))
            for j in range(num_perm):
                v = _u32(a[j] * h + b[j])
                if v < row[j]:
                    row[j] = v
        out[t, :] = row


def _build_numba_kernel():
    import numba as nb

    global _nb_rotl, _nb_compress, _nb_sha1_32, _nb_fmix32, _nb_prange, _u32
    _u32 = nb.uint32
    _nb_rotl = nb.njit(inline="always", cache=True)(_nbpy_rotl)
    _nb_compress = nb.njit(inline="always", cache=True)(_nbpy_compress)
    _nb_fmix32 = nb.njit(inline="always", cache=True)(_nbpy_fmix32)
    _nb_sha1_32 = nb.njit(cache=True)(_nbpy_sha1_32)
    _nb_prange = nb.prange
    return nb.njit(parallel=True, cache=True)(_nbpy_kernel)


def _numba_chunk(kernel, texts: Sequence[str], ngram: int, a: np.ndarray, b: np.ndarray,
                 out: np.ndarray) -> None:
    buf = "\n".join([" ".join(_words(t)) for t in texts]).encode("utf-8", "surrogatepass")
    raw = np.frombuffer(buf, dtype=np.uint8)
    nl = np.flatnonzero(raw == 0x0A)
    tstart = np.concatenate(([0], nl + 1)).astype(np.int64)
    tend = np.concatenate((nl, [len(raw)])).astype(np.int64)
    kernel(raw, tstart, tend, ngram, a, b, out)


def minhash_signatures(texts: Sequence[str], num_perm: int = 128, ngram: int = 5, seed: int = 1,
                       progress: Optional[ProgressCallback] = None,
                       cancel: Optional[CancelCheck] = None) -> np.ndarray:
    """MinHash signatures of all texts' :func:`shingles`, shape ``(len(texts), num_perm)``,
    dtype uint32; row i equals ``MinHash(num_perm, seed).update_batch(shingles(texts[i]) as
    UTF-8)`` ``.hashvalues`` of datasketch 2.x (scheme "affine32")."""
    if num_perm < 1:
        raise ValueError("num_perm must be >= 1")
    if ngram < 1:
        raise ValueError("ngram must be >= 1")
    n = len(texts)
    a, b = permutations(num_perm, seed)
    sig = np.full((n, num_perm), EMPTY_HASH, dtype=np.uint32)
    rep = Reporter(progress, cancel, total=n, every=1)
    rep.tick(0, "MinHash signatures")
    hasher = _ShingleHasher()
    kernel = _get_numba_kernel()
    for lo, hi in _chunks(texts, _CHUNK_WORDS, _CHUNK_TEXTS):
        if kernel is not None:
            _numba_chunk(kernel, texts[lo:hi], ngram, a, b, sig[lo:hi])
            rep.tick(hi, "MinHash signatures")
            continue
        chunk = _ChunkShingles(texts[lo:hi], ngram)
        occ = chunk.hashes(hasher)
        rep.check()
        _min_per_text(occ, chunk.counts, a, b, sig[lo:hi])
        rep.tick(hi, "MinHash signatures")
    return sig


def signature_jaccard(sig: np.ndarray, i, j) -> np.ndarray | float:
    """MinHash Jaccard estimate(s): fraction of equal slots between rows i and j (arrays of
    indices allowed; processed in blocks)."""
    if np.isscalar(i):
        return float(np.count_nonzero(sig[i] == sig[j])) / sig.shape[1]
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    out = np.empty(len(i), dtype=np.float64)
    step = max(1, 2_000_000 // max(1, sig.shape[1]))
    for s in range(0, len(i), step):
        out[s:s + step] = np.count_nonzero(sig[i[s:s + step]] == sig[j[s:s + step]], axis=1)
    return out / sig.shape[1]


# --------------------------------------------------------------------------- clusters


class UnionFind:
    """Disjoint sets over 0..n-1 (path halving, union by size)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, x: int, y: int) -> int:
        """Merge the sets of x and y; returns the new root."""
        rx, ry = self.find(x), self.find(y)
        if rx == ry:
            return rx
        if self.size[rx] < self.size[ry]:
            rx, ry = ry, rx
        self.parent[ry] = rx
        self.size[rx] += self.size[ry]
        return rx

    def connected(self, x: int, y: int) -> bool:
        return self.find(x) == self.find(y)

    def groups(self, min_size: int = 2, among: Optional[Iterable[int]] = None) -> list[list[int]]:
        """Sets with at least ``min_size`` members, each ascending, ordered by smallest member.
        ``among``: only look at these elements (e.g. those that took part in a union)."""
        by_root: dict[int, list[int]] = {}
        for x in (range(len(self.parent)) if among is None else sorted(set(among))):
            by_root.setdefault(self.find(x), []).append(x)
        return sorted((g for g in by_root.values() if len(g) >= min_size), key=lambda g: g[0])


@dataclass
class NearDuplicateCluster:
    """Records that are near-duplicates of each other.

    ``indices``: ascending record indices; ``pairs``: verified pairs ``(i, j, similarity)``
    with ``i < j``, sorted; ``keep``: the suggested record to keep; ``reason``: why."""

    indices: list[int]
    pairs: list[tuple[int, int, float]] = field(default_factory=list)
    keep: int = -1
    reason: str = ""


def _choose_keeper(indices: list[int], texts: Sequence[str],
                   answers: Optional[Sequence[str]]) -> tuple[int, str]:
    if answers is not None:
        best, best_len = -1, 0
        for i in indices:
            n = len((answers[i] or "").strip())
            if n > best_len:  # strict: ties keep the lowest index
                best, best_len = i, n
        if best >= 0:
            return best, f"longest answer ({best_len} chars)"
    best, best_len = indices[0], -1
    for i in indices:
        n = len((texts[i] or "").strip())
        if n > best_len:
            best, best_len = i, n
    prefix = "all answers empty; " if answers is not None else ""
    return best, f"{prefix}longest text ({best_len} chars)"


def _rows_of(sig: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``sig[rows]``; ``sig`` itself when ``rows`` are all its rows in order (the usual case:
    every text has shingles and a signature of its own), not a copy (512 MB at 1M)."""
    return sig if len(rows) == len(sig) and np.array_equal(rows, np.arange(len(sig))) else sig[rows]


def _unique_rows(sig: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rep, rep_of) for the given rows: ``rep`` the rows that are the first with their exact
    signature, ``rep_of[k]`` the representative of ``rows[k]``."""
    if len(rows) == 0:
        return rows, rows
    sub = np.ascontiguousarray(_rows_of(sig, rows))
    # one 64-bit hash a row (sorting 8 bytes, not num_perm x 4), then every row checked against
    # its representative: a collision (never seen; ~n**2 / 2**64) falls back to whole rows
    mult = np.random.default_rng(0x5EED).integers(1, 2**63, sub.shape[1], dtype=np.uint64) | np.uint64(1)
    h = np.empty(len(sub), dtype=np.uint64)
    step = max(1, (16 << 20) // max(1, 8 * sub.shape[1]))
    for lo in range(0, len(sub), step):
        h[lo:lo + step] = (sub[lo:lo + step].astype(np.uint64) * mult).sum(axis=1, dtype=np.uint64)
    _, first, inv = np.unique(h, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    same = all(np.array_equal(sub[lo:lo + step], sub[first[inv[lo:lo + step]]]) for lo in range(0, len(sub), step))
    if not same:
        void = sub.view(np.dtype((np.void, sub.dtype.itemsize * sub.shape[1]))).reshape(-1)
        _, first, inv = np.unique(void, return_index=True, return_inverse=True)
        inv = inv.reshape(-1)
    rep = rows[np.sort(first)]
    return rep, rows[first[inv]]


def shingle_fingerprint_sets(texts: Sequence[str], ngram: int = 5) -> list[frozenset]:
    """For each text, the set of 64-bit fingerprints of its :func:`shingles` (process-local
    values; equal shingles give equal fingerprints, so set sizes and intersections are those of
    the shingle sets up to fingerprint collisions, probability ~2**-64 per pair of shingles)."""
    out: list[frozenset] = []
    for lo, hi in _chunks(texts, _CHUNK_WORDS, _CHUNK_TEXTS):
        out.extend(_ChunkShingles(texts[lo:hi], ngram).key_sets())
    return out


def shingle_jaccard(texts: Sequence[str], pi, pj, ngram: int = 5,
                    reporter: Optional[Reporter] = None) -> np.ndarray:
    """Exact Jaccard similarity of the shingle sets of ``texts[pi[k]]`` and ``texts[pj[k]]``
    (computed on shingle fingerprints, built once for the records involved)."""
    pi = np.asarray(pi, dtype=np.int64)
    pj = np.asarray(pj, dtype=np.int64)
    involved = np.unique(np.concatenate([pi, pj]))
    sets = dict(zip(involved.tolist(), shingle_fingerprint_sets([texts[i] for i in involved.tolist()], ngram)))
    sims = np.empty(len(pi), dtype=np.float64)
    for k, (i, j) in enumerate(zip(pi.tolist(), pj.tolist())):
        a, b = sets[i], sets[j]
        inter = len(a & b)
        union = len(a) + len(b) - inter
        sims[k] = inter / union if union else 1.0
        if reporter is not None and k % 5000 == 0:
            reporter.tick(k, "verifying candidate pairs")
    return sims


# --------------------------------------------------------------------------- clusters


def near_duplicate_clusters(texts: Sequence[str], threshold: float = 0.8, num_perm: int = 128,
                            ngram: int = 5, seed: int = 1,
                            answers: Optional[Sequence[str]] = None,
                            signatures: Optional[np.ndarray] = None,
                            storage_config: Optional[dict] = None,
                            verify: str = "exact",
                            lsh_weights: tuple[float, float] = LSH_WEIGHTS,
                            lsh_backend: str = "auto",
                            progress: Optional[ProgressCallback] = None,
                            cancel: Optional[CancelCheck] = None) -> list[NearDuplicateCluster]:
    """Clusters of near-duplicate texts (Jaccard of word-``ngram`` shingle sets >= ``threshold``).

    ``signatures``: precomputed :func:`minhash_signatures` (same ``num_perm``/``ngram``/``seed``)
    to skip hashing. ``verify``: ``"exact"`` (Jaccard of the shingle sets, built for records
    in candidate pairs only) or ``"estimate"`` (MinHash estimate). ``answers``: per-record answer
    texts for the keeper choice (longest non-empty answer; ties → lowest index); without them,
    or when all are empty, the longest text wins. Clusters are ordered by their smallest index.

    Candidates come from LSH banding with the (bands, rows) datasketch's ``MinHashLSH`` picks for
    ``threshold``, ``num_perm`` and ``lsh_weights`` (see :data:`LSH_WEIGHTS`).
    ``lsh_backend``: ``"datasketch"`` builds a ``MinHashLSH`` in ``storage_config`` (e.g. Redis;
    use a fresh ``basename``) and reads its buckets through the storage API; ``"numpy"`` does
    the same self-join in memory with :func:`banded_pairs` (identical candidates, much faster);
    ``"auto"`` (default) is ``"numpy"`` unless a ``storage_config`` is given."""
    if verify not in ("exact", "estimate"):
        raise ValueError("verify must be 'exact' or 'estimate'")
    if lsh_backend not in ("auto", "numpy", "datasketch"):
        raise ValueError("lsh_backend must be 'auto', 'numpy' or 'datasketch'")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError("threshold must be in [0, 1]")
    if answers is not None and len(answers) != len(texts):
        raise ValueError("answers must have one entry per text")
    n = len(texts)
    # progress: one 0..1000 scale: signatures 0-800 (when computed here), LSH, verification
    start = 0
    if signatures is None:
        signatures = minhash_signatures(texts, num_perm=num_perm, ngram=ngram, seed=seed,
                                        progress=sub_progress(progress, 0, 800), cancel=cancel)
        start = 800
    elif signatures.shape != (n, num_perm):
        raise ValueError(f"signatures must have shape ({n}, {num_perm}), got {signatures.shape}")
    signatures = np.asarray(signatures, dtype=np.uint32)
    # empty texts (no shingles) have the all-0xFFFFFFFF signature; they never take part
    live = np.empty(n, dtype=bool)
    for lo in range(0, n, 1 << 16):  # in blocks: no n x num_perm temporary
        live[lo:lo + (1 << 16)] = (signatures[lo:lo + (1 << 16)] != EMPTY_HASH).any(axis=1)
    rows = np.flatnonzero(live)
    del live
    reps, rep_of = _unique_rows(signatures, rows)
    mid = start + (1000 - start) // 2
    rep = Reporter(sub_progress(progress, start, mid), cancel, total=len(reps),
                   every=max(1, len(reps) // 50))
    rep.tick(0, "indexing signatures")

    if lsh_backend == "datasketch" or (lsh_backend == "auto" and storage_config is not None):
        with lsh_index(threshold, num_perm, storage_config, tuple(lsh_weights)) as lsh:
            # index the distinct signatures, then read out every pair that shares a bucket
            rep_list = reps.tolist()
            lsh_insert_signatures(lsh, rep_list, signatures[reps], seed=seed, reporter=rep)
            rep.check()
            ci, cj = lsh_self_pairs(lsh, set(rep_list))
    else:
        bands, nrows = lsh_params(threshold, num_perm, tuple(lsh_weights))
        distinct = _rows_of(signatures, reps)
        ci, cj = banded_pairs(distinct, bands, nrows, keys=reps)
        del distinct
    # identical signatures: link each record to its representative
    same = rows != rep_of
    pi = np.concatenate([ci, rep_of[same]])
    pj = np.concatenate([cj, rows[same]])

    rep.tick(len(reps), "indexing signatures")
    rep = Reporter(sub_progress(progress, mid, 1000), cancel, total=len(pi))
    rep.progress(0, len(pi), "verifying candidate pairs")
    rep.check()
    if verify == "estimate":
        sims = signature_jaccard(signatures, pi, pj)
    else:
        sims = shingle_jaccard(texts, pi, pj, ngram, reporter=rep)
    keep = sims >= threshold
    pi, pj, sims = pi[keep], pj[keep], sims[keep]
    clusters = clusters_from_pairs(pi, pj, sims, n, texts, answers)
    if progress is not None:
        progress(1000, 1000, "near-duplicates done")
    return clusters


def clusters_from_pairs(pi, pj, sims, n: int, texts: Sequence[str],
                        answers: Optional[Sequence[str]] = None) -> list[NearDuplicateCluster]:
    """Join verified pairs into clusters (connected components) with a keeper each."""
    uf = UnionFind(n)
    pi, pj, sims = np.asarray(pi).tolist(), np.asarray(pj).tolist(), np.asarray(sims).tolist()
    for i, j in zip(pi, pj):
        uf.union(i, j)
    pairs_by_root: dict[int, list[tuple[int, int, float]]] = {}
    for i, j, s in zip(pi, pj, sims):
        a, b = (i, j) if i < j else (j, i)
        pairs_by_root.setdefault(uf.find(i), []).append((a, b, float(s)))
    clusters = []
    for group in uf.groups(2, among=pi + pj):
        pairs = sorted(pairs_by_root.get(uf.find(group[0]), []))
        keep_i, reason = _choose_keeper(group, texts, answers)
        clusters.append(NearDuplicateCluster(indices=group, pairs=pairs, keep=keep_i, reason=reason))
    return clusters
