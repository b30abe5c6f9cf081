"""MinHash LSH: the in-memory banded self-join and datasketch ``MinHashLSH`` indexes in an
external storage (Redis), for :mod:`ftcurate.core.quality.dedup` (near-duplicates) and
:mod:`ftcurate.core.quality.textleak` (MinHash leakage). Everything here is also importable
from :mod:`ftcurate.core.quality.dedup`.

External LSH storage (Redis)
    A shared store is not trusted. datasketch pickles the keys it puts in Redis and unpickles
    every bucket member it reads (``prepickle``), which would run code that anyone able to write
    to the server planted there. ftcurate builds every index with ``prepickle=False`` and stores
    plain bytes only: a key is a non-negative integer written as ASCII digits (:func:`lsh_key`),
    bucket keys are the bytes of the hash values. Reading, a member is accepted only when it is
    such a digit string (:func:`lsh_key_value`) naming one of the rows of this scan; anything
    else (a pickle, another tool's key) is ignored and never deserialised. Without a
    ``basename`` in the config each index gets a fresh random one and is deleted from the store
    when the scan is done. A server that cannot be reached or refuses the password raises
    :class:`StorageError` (a ``ValueError`` with a plain message) before any work starts.
"""

from __future__ import annotations

import functools
import re
import secrets
from contextlib import contextmanager
from typing import Optional, Sequence

import numpy as np

from ..progress import Reporter

__all__ = ["LSH_WEIGHTS", "StorageError", "lsh_key", "lsh_key_value", "check_lsh_storage", "make_lsh",
           "lsh_index", "lsh_params", "banded_pairs", "lsh_band_keys", "lsh_insert_signatures",
           "lsh_query_band_keys", "lsh_self_pairs"]

_FOLD = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier for folding a band's values into a key


LSH_WEIGHTS = (0.1, 0.9)
"""Default (false positive, false negative) weights for datasketch's choice of bands b and rows r.
Candidates are verified afterwards, so missing a pair costs more than checking one: with
(0.1, 0.9), threshold 0.8 and 128 permutations give b=14, r=9, which finds a pair of Jaccard
0.8 with probability 0.87 (0.97 at 0.85); datasketch's default (0.5, 0.5) gives b=9, r=13 and
0.40 (0.69)."""


class StorageError(ValueError):
    """The external LSH storage (the ``lsh_storage`` setting) cannot be used: the server is
    down or unreachable, refuses the password, or its client library is missing."""

    key = "lsh_storage"


_KEY = re.compile(rb"[0-9]{1,19}")


def lsh_key(i: int) -> bytes:
    """The bytes an integer key is stored as in an LSH storage: ASCII digits (``7`` → ``b"7"``)."""
    i = int(i)
    if i < 0:
        raise ValueError("LSH keys are non-negative integers")
    return b"%d" % i


def lsh_key_value(member) -> Optional[int]:
    """The integer a stored LSH member stands for, or None for anything that is not one of our
    keys (a pickle, another tool's data). Nothing is ever deserialised: only ASCII digits (or a
    Python int, from an in-memory dict storage) are accepted."""
    if isinstance(member, (bytes, bytearray, memoryview)):
        b = bytes(member)
        return int(b) if _KEY.fullmatch(b) else None
    if isinstance(member, int) and not isinstance(member, bool) and member >= 0:
        return member
    return None


def _storage_type(storage_config: Optional[dict]) -> str:
    return str((storage_config or {}).get("type", "dict"))


def _redis_errors() -> tuple:
    try:
        import redis
    except ImportError:
        return ()
    return (redis.exceptions.RedisError,)


def _describe_redis(cfg: dict) -> str:
    conn = cfg.get("redis") or {}
    if not isinstance(conn, dict):
        return "the Redis server"
    if conn.get("unix_socket_path"):
        return f"the Redis server at {conn['unix_socket_path']}"
    if conn.get("url"):
        return "the Redis server at " + str(conn["url"]).split("@")[-1]
    host = conn.get("host", "localhost")
    host = host if isinstance(host, str) else "localhost"
    return f"the Redis server at {host}:{conn.get('port', 6379)}"


def _storage_error(cfg: dict, exc: BaseException) -> StorageError:
    where = _describe_redis(cfg)
    name = type(exc).__name__
    if "Authentication" in name or "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
        return StorageError(f"{where} refused the connection: wrong or missing password "
                            f"(set \"password\" under \"redis\" in the lsh_storage setting): {exc}")
    if "Timeout" in name:
        return StorageError(f"{where} did not answer in time (lsh_storage setting): {exc}")
    if "Connection" in name:
        return StorageError(f"cannot connect to {where}: {exc} Is it running? (lsh_storage setting; "
                            "leave it empty to index in memory)")
    return StorageError(f"{where} failed: {name}: {exc} (lsh_storage setting)")


def _normalized_storage(storage_config: Optional[dict]) -> tuple[dict, bool]:
    """A copy of ``storage_config`` as datasketch wants it (a ``basename`` given as text becomes
    bytes; without one a fresh random name) and whether the name was made here."""
    if storage_config is None:
        return {"type": "dict"}, True
    if not isinstance(storage_config, dict) or "type" not in storage_config:
        raise StorageError('lsh_storage must be a datasketch storage_config object with a "type", '
                           'e.g. {"type": "redis", "redis": {"host": "localhost", "port": 6379}}')
    cfg = dict(storage_config)
    tp = cfg["type"]
    if tp not in ("dict", "redis", "cassandra"):
        raise StorageError(f"lsh_storage type must be 'dict', 'redis' or 'cassandra', got {tp!r}")
    if tp == "redis" and not isinstance(cfg.get("redis"), dict):
        raise StorageError('lsh_storage of type "redis" needs a "redis" object of connection '
                           'parameters, e.g. {"host": "localhost", "port": 6379}')
    ours = "basename" not in cfg
    if ours:
        cfg["basename"] = b"ftcurate_" + secrets.token_hex(8).encode("ascii")
    elif isinstance(cfg["basename"], str):
        cfg["basename"] = cfg["basename"].encode("utf-8")
    return cfg, ours


def check_lsh_storage(storage_config: Optional[dict]) -> None:
    """Raise :class:`StorageError` with a plain message when ``storage_config`` names a Redis
    server that cannot be used (client library missing, server down, wrong password)."""
    cfg, _ours = _normalized_storage(storage_config)
    if cfg["type"] != "redis":
        return
    try:
        import redis
    except ImportError:
        raise StorageError("lsh_storage of type 'redis' needs the redis client library: "
                           "pip install redis") from None
    params = {k: v for k, v in cfg["redis"].items() if not isinstance(v, dict)}
    params.setdefault("socket_connect_timeout", 5)
    params.setdefault("socket_timeout", 30)
    try:
        client = redis.Redis(**params)
        client.ping()
    except TypeError as exc:
        raise StorageError(f"bad Redis connection parameters in lsh_storage: {exc}") from None
    except redis.exceptions.RedisError as exc:
        raise _storage_error(cfg, exc) from None
    finally:
        try:
            client.close()
        except Exception:  # noqa: BLE001 - closing a client that never connected
            pass


def make_lsh(threshold: float, num_perm: int = 128, storage_config: Optional[dict] = None,
             weights: tuple[float, float] = LSH_WEIGHTS, **kwargs):
    """A datasketch ``MinHashLSH`` (``kwargs`` go to its constructor) that never pickles: keys
    are stored as given (use :func:`lsh_key` bytes for an external storage)."""
    from datasketch import MinHashLSH

    if kwargs.pop("prepickle", False):
        raise ValueError("ftcurate never pickles LSH keys (prepickle=True is not supported)")
    cfg = storage_config
    if storage_config is not None:
        cfg, _ours = _normalized_storage(storage_config)
    return MinHashLSH(threshold=threshold, num_perm=num_perm, storage_config=cfg,
                      weights=weights, prepickle=False, **kwargs)


def _drop_index(lsh) -> None:
    """Delete everything ``lsh`` stored (its buckets and key table), best effort."""
    for storage in list(lsh.hashtables) + [lsh.keys]:
        try:
            keys = list(storage.keys())
            for s in range(0, len(keys), 10_000):
                storage.remove(*keys[s:s + 10_000])
        except Exception:  # noqa: BLE001 - cleaning up a shared store must not hide the result
            return


@contextmanager
def lsh_index(threshold: float, num_perm: int = 128, storage_config: Optional[dict] = None,
              weights: tuple[float, float] = LSH_WEIGHTS):
    """A :func:`make_lsh` index for one scan: the storage is checked first
    (:func:`check_lsh_storage`), storage errors inside the block become :class:`StorageError`,
    and an index whose ``basename`` was made here is deleted from the store afterwards."""
    cfg, ours = _normalized_storage(storage_config)
    check_lsh_storage(cfg)
    errors = _redis_errors() if cfg["type"] == "redis" else ()
    try:
        lsh = make_lsh(threshold, num_perm, cfg, weights)
    except errors as exc:
        raise _storage_error(cfg, exc) from None
    try:
        yield lsh
    except errors as exc:
        raise _storage_error(cfg, exc) from None
    finally:
        if ours and cfg["type"] != "dict":
            _drop_index(lsh)


@functools.lru_cache(maxsize=64)
def lsh_params(threshold: float, num_perm: int = 128,
               weights: tuple[float, float] = LSH_WEIGHTS) -> tuple[int, int]:
    """The (bands, rows) datasketch's ``MinHashLSH`` picks for these settings."""
    lsh = make_lsh(threshold, num_perm, None, weights)
    return lsh.b, lsh.r


def banded_pairs(sig: np.ndarray, bands: int, rows: int, keys: Optional[np.ndarray] = None,
                 max_bucket: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """In-memory LSH self-join: every pair ``(keys[x], keys[y])`` (first < second, sorted,
    unique) of rows of ``sig`` whose hash values agree on all ``rows`` slots of at least one of
    the ``bands`` bands. This is the candidate set of inserting every row into a
    ``MinHashLSH(params=(bands, rows))`` and querying every row, computed with sorting instead
    of one bucket lookup per row and band (a band's values are folded into a 64-bit key; a
    fold collision, probability ~2**-64 per pair, only adds a candidate). Buckets with more
    than ``max_bucket`` rows contribute only the pairs with their smallest key."""
    sig = np.asarray(sig, dtype=np.uint32)
    n = len(sig)
    keys = np.arange(n, dtype=np.int64) if keys is None else np.asarray(keys, dtype=np.int64)
    if bands * rows > sig.shape[1]:
        raise ValueError("bands * rows exceeds the number of permutations")
    out_i, out_j = [], []
    for band in range(bands if n > 1 else 0):
        block = sig[:, band * rows:(band + 1) * rows].astype(np.uint64)
        key = block[:, 0].copy()
        with np.errstate(over="ignore"):
            for c in range(1, rows):
                key = (key * _FOLD) ^ block[:, c]
        order = np.argsort(key, kind="stable")
        ks = key[order]
        starts = np.flatnonzero(np.concatenate(([True], ks[1:] != ks[:-1])))
        sizes = np.diff(np.concatenate((starts, [n])))
        small = (sizes >= 2) & (sizes <= max_bucket)
        if small.any():
            gs, gc = starts[small], sizes[small]
            # every member position p of a group, with the number of members after it
            member = np.repeat(gs, gc) + (np.arange(gc.sum()) - np.repeat(np.cumsum(gc) - gc, gc))
            after = np.repeat(gs + gc, gc) - member - 1
            left = np.repeat(member, after)
            right = left + 1 + (np.arange(after.sum()) - np.repeat(np.cumsum(after) - after, after))
            out_i.append(keys[order[left]])
            out_j.append(keys[order[right]])
        for g in np.flatnonzero(sizes > max_bucket):
            m = np.sort(keys[order[starts[g]:starts[g] + sizes[g]]])
            out_i.append(np.full(len(m) - 1, m[0]))
            out_j.append(m[1:])
    if not out_i:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    pi = np.concatenate(out_i)
    pj = np.concatenate(out_j)
    lo, hi = np.minimum(pi, pj), np.maximum(pi, pj)
    base = int(hi.max()) + 1
    pair = np.unique(lo * base + hi)
    return pair // base, pair % base


def lsh_band_keys(lsh, sig: np.ndarray) -> list[list[bytes]]:
    """The bucket key of every row of ``sig`` in every band of ``lsh``, computed for all rows
    at once; ``result[band][row]`` equals what ``MinHashLSH`` computes for that row's sketch
    (big-endian bytes of the band's hash values, through ``lsh.hashfunc`` when set)."""
    sig = np.asarray(sig, dtype=np.uint32)
    out = []
    for start, end in lsh.hashranges:
        band = np.ascontiguousarray(sig[:, start:end]).byteswap()
        keys = band.view(np.dtype((np.void, 4 * (end - start)))).reshape(-1).tolist()
        if getattr(lsh, "hashfunc", None):
            keys = [lsh.hashfunc(k) for k in keys]
        out.append(keys)
    return out


def _refuse_pickles(lsh) -> None:
    if getattr(lsh, "prepickle", False):
        raise ValueError("this MinHashLSH pickles its keys (prepickle=True); ftcurate never loads "
                         "pickles from a storage: build the index with make_lsh")


def lsh_insert_signatures(lsh, keys: Sequence, sig: np.ndarray, seed: int = 1,
                          reporter: Optional[Reporter] = None) -> list[list[bytes]]:
    """Insert rows of ``sig`` (scheme "affine32") into ``lsh`` under the integer ``keys``
    (stored as :func:`lsh_key` bytes); returns the band keys (see :func:`lsh_band_keys`).

    The first row goes through ``MinHashLSH.insert`` (which records the scheme); the others
    are written to the index's storage directly, with the bucket keys computed for all rows at
    once, inside an insertion session. If the first row's stored bucket keys differ from the
    computed ones (a datasketch version that lays buckets out differently) every row goes
    through ``insert`` instead."""
    from datasketch import LeanMinHash

    _refuse_pickles(lsh)
    sig = np.asarray(sig, dtype=np.uint32)
    keys = [lsh_key(k) for k in keys]
    if len(keys) != len(sig):
        raise ValueError("one key per signature row")
    band_keys = lsh_band_keys(lsh, sig)
    if not keys:
        return band_keys

    def lean(r):
        return LeanMinHash(seed=seed, hashvalues=sig[r], scheme="affine32")

    lsh.insert(keys[0], lean(0))
    fast = False
    try:
        stored = list(lsh.keys.get(keys[0]))
        fast = stored == [bk[0] for bk in band_keys]
    except Exception:  # noqa: BLE001 - any surprise in the storage layout: use the public API
        fast = False
    with lsh.insertion_session() as session:
        if not fast:
            for r in range(1, len(keys)):
                session.insert(keys[r], lean(r), check_duplication=False)
                if reporter is not None:
                    reporter.tick(r + 1, "indexing signatures")
        else:
            for r in range(1, len(keys)):
                lsh.keys.insert(keys[r], *[bk[r] for bk in band_keys], buffer=True)
            for bk, table in zip(band_keys, lsh.hashtables):
                if reporter is not None:
                    reporter.check()
                for r in range(1, len(keys)):
                    table.insert(bk[r], keys[r], buffer=True)
    if reporter is not None:
        reporter.tick(len(keys), "indexing signatures")
    return band_keys


def lsh_query_band_keys(lsh, band_keys: list[list[bytes]], rows: Optional[Sequence[int]] = None,
                        known: Optional[set] = None):
    """Query ``lsh`` with precomputed band keys: yields ``(row, keys)`` for each row whose
    sketch shares a bucket with something in the index (same result as ``lsh.query``). Keys are
    the integers of :func:`lsh_key_value`; members that are not ours (not a digit string, or
    not in ``known`` when given) are ignored, never deserialised."""
    _refuse_pickles(lsh)
    n = len(band_keys[0]) if band_keys else 0
    for r in (range(n) if rows is None else rows):
        found = set()
        for bk, table in zip(band_keys, lsh.hashtables):
            found.update(table.get(bk[r]))
        if not found:
            continue
        ids = {v for v in map(lsh_key_value, found) if v is not None}
        if known is not None:
            ids &= known
        if ids:
            yield r, sorted(ids)


def lsh_self_pairs(lsh, keys: set, max_bucket: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """All pairs ``(i, j)``, ``i < j``, of integer keys that share a bucket of ``lsh`` (what
    querying every indexed key would find), read through the storage API (``getmany``).
    Members that are not :func:`lsh_key` digit strings of ``keys`` (left in a shared storage by
    someone else, e.g. a pickle) are ignored and never deserialised. Buckets with more than
    ``max_bucket`` members contribute only the pairs with their smallest member."""
    _refuse_pickles(lsh)
    pi: list[int] = []
    pj: list[int] = []
    for table in lsh.hashtables:
        buckets = [b for b, c in table.itemcounts().items() if c >= 2]
        groups = []
        for s0 in range(0, len(buckets), 2000):  # read in batches: one round trip each in Redis
            groups.extend(table.getmany(*buckets[s0:s0 + 2000]))
        for got in groups:
            m = sorted({k for k in map(lsh_key_value, got) if k is not None and k in keys})
            if len(m) == 2:
                pi.append(m[0])
                pj.append(m[1])
            elif len(m) > max_bucket:
                pi.extend([m[0]] * (len(m) - 1))
                pj.extend(m[1:])
            elif len(m) > 2:
                for x in range(len(m) - 1):
                    pi.extend([m[x]] * (len(m) - 1 - x))
                    pj.extend(m[x + 1:])
    if not pi:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    ai = np.array(pi, dtype=np.int64)
    aj = np.array(pj, dtype=np.int64)
    base = int(aj.max()) + 1
    pair = np.unique(ai * base + aj)
    return pair // base, pair % base
