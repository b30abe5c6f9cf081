"""A corpus index in a Redis server, for a team (``redis://[:PASSWORD@]HOST:PORT/DB``;
``rediss://`` for TLS).

A shared server is not trusted: everything stored is plain bytes and everything read back is
decoded as plain bytes (JSON text, ASCII digits, little-endian numbers), never unpickled.

Keys (prefix ``ftcurate_index``)::

    ftcurate_index:manifest           JSON: format, version, settings, datasets
    ftcurate_index:next_id            dataset ids (INCR)
    ftcurate_index:lock               held while the manifest changes
    ftcurate_index:ds:<id>:exact      hash: 16-byte fingerprint -> position (ASCII digits)
    ftcurate_index:ds:<id>:sig        hash: position (digits) -> MinHash signature (uint32 LE bytes)
    ftcurate_index:ds:<id>:idx:<k>    record indices of rows k*CHUNK.. (int64 LE bytes)
    ftcurate_index:ds:<id>:emb:<k>    their embeddings (float16 LE bytes)
    ftcurate_index:ds:<id>:lsh...     datasketch MinHashLSH (Redis storage, prepickle=False):
                                      keys are positions as ASCII digits (lsh.lsh_key)

A dataset is written under a fresh id and listed in the manifest last (under the lock); a
failure part-way deletes what was written, and anything left behind by a process that died is
under an id the manifest does not list, so it is never read. Removing a dataset drops it from
the manifest first, then deletes its keys.
"""

from __future__ import annotations

import json
import os
import time
from typing import Optional
from urllib.parse import unquote, urlsplit

import numpy as np

from ..progress import CancelCheck, ProgressCallback, Reporter
from .features import (
    FORMAT,
    VERSION,
    Features,
    IndexSettings,
    IndexStoreError,
    ManifestIndex,
    Match,
    checked_manifest,
    empty_signature,
    estimate,
    semantic_matches,
)

PREFIX = "ftcurate_index"
CHUNK = 8192  # rows per embedding / index chunk
BATCH = 2000  # keys per pipelined round trip
PASSWORD_ENV = "FTCURATE_REDIS_PASSWORD"


def parse_url(location: str) -> tuple[dict, str]:
    """``redis.Redis`` keyword arguments for a ``redis://`` / ``rediss://`` URL, and the URL as
    shown to people (without the password). A password may also come from
    ``$FTCURATE_REDIS_PASSWORD`` (then it is in no command line and no report)."""
    try:
        u = urlsplit(location)
        port = u.port or 6379
    except ValueError as exc:
        raise IndexStoreError(f"bad Redis URL {redact(location)}: {exc}") from None
    if u.scheme not in ("redis", "rediss") or not u.hostname:
        raise IndexStoreError(f"bad Redis URL {redact(location)}: expected redis://HOST:PORT/DB "
                              "(or rediss:// for TLS)")
    path = (u.path or "/").strip("/")
    if path and not path.isdigit():
        raise IndexStoreError(f"bad Redis URL {redact(location)}: the database must be a number (/0)")
    params: dict = {"host": u.hostname, "port": port, "db": int(path or 0),
                    "socket_connect_timeout": 5, "socket_timeout": 30}
    password = unquote(u.password) if u.password else os.environ.get(PASSWORD_ENV) or None
    if password:
        params["password"] = password
    if u.username:
        params["username"] = unquote(u.username)
    if u.scheme == "rediss":
        params["ssl"] = True
    return params, redact(location)


def redact(location: str) -> str:
    """``location`` without a password (``redis://:***@host``)."""
    try:
        u = urlsplit(location)
    except ValueError:
        return "redis://(unreadable URL)"
    if u.password is None:
        return location
    user = u.username or ""
    netloc = f"{user}:***@{u.hostname}" + (f":{u.port}" if u.port else "")
    return u._replace(netloc=netloc).geturl()


def _error(shown: str, exc: BaseException) -> IndexStoreError:
    name, text = type(exc).__name__, str(exc)
    if "Authentication" in name or "NOAUTH" in text or "WRONGPASS" in text or "invalid password" in text:
        return IndexStoreError(f"the Redis server of the corpus index {shown} refused the connection: wrong or "
                               f"missing password (redis://:PASSWORD@HOST:PORT/DB, or ${PASSWORD_ENV}): {text}")
    if "Timeout" in name:
        return IndexStoreError(f"the Redis server of the corpus index {shown} did not answer in time: {text}")
    if "Connection" in name:
        return IndexStoreError(f"cannot connect to the Redis server of the corpus index {shown}: {text} "
                               "Is it running?")
    return IndexStoreError(f"the Redis server of the corpus index {shown} failed: {name}: {text}")


def _errors() -> tuple:
    import redis

    return (redis.exceptions.RedisError,)


class RedisIndex(ManifestIndex):
    kind = "redis"

    def __init__(self, location: str) -> None:
        try:
            import redis
        except ImportError:
            raise IndexStoreError("a corpus index in Redis needs the redis client library: pip install redis") from None
        self.params, self.shown = parse_url(location)
        self.location = location
        self.client = redis.Redis(**self.params)

    def _k(self, *parts) -> str:
        return ":".join([PREFIX, *map(str, parts)])

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _errors() as exc:
            raise _error(self.shown, exc) from None

    # -- manifest ---------------------------------------------------------------------------------
    def check(self) -> None:
        self._call(self.client.ping)
        if not self.exists():
            raise IndexStoreError(f"no corpus index at {self.shown} (create one with "
                                  f"`ftcurate index add FILE --index {self.shown}`)")
        self._manifest()

    def exists(self) -> bool:
        return bool(self._call(self.client.exists, self._k("manifest")))

    def _manifest(self) -> dict:
        raw = self._call(self.client.get, self._k("manifest"))
        if raw is None:
            raise IndexStoreError(f"no corpus index at {self.shown}")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise IndexStoreError(f"{self.shown}: the index manifest is not readable JSON ({exc})") from None
        return checked_manifest(data, self.shown, f"{self.shown}: {self._k('manifest')}")

    def _lock(self):
        return self.client.lock(self._k("lock"), timeout=120, blocking_timeout=30)

    def _set_manifest(self, data: dict) -> None:
        self._call(self.client.set, self._k("manifest"), json.dumps(data, ensure_ascii=False).encode("utf-8"))

    def create(self, settings: IndexSettings) -> None:
        self._call(self.client.ping)
        with self._locked():
            if not self.exists():
                self._set_manifest({"format": FORMAT, "version": VERSION, "settings": settings.to_dict(),
                                    "datasets": []})

    def _locked(self):
        from contextlib import contextmanager

        @contextmanager
        def held():
            lock = self._lock()
            got = self._call(lock.acquire)
            if not got:
                raise IndexStoreError(f"another ftcurate is changing the corpus index {self.shown}; try again when "
                                      "it is done")
            try:
                yield
            finally:
                try:
                    lock.release()
                except Exception:  # noqa: BLE001 - expired or server gone: nothing more to do
                    pass

        return held()

    def _lsh(self, ds_id: int, settings: IndexSettings):
        from ..quality.lsh import make_lsh

        cfg = {"type": "redis", "redis": {k: v for k, v in self.params.items()},
               "basename": self._k("ds", ds_id, "lsh").encode("ascii")}
        return self._call(make_lsh, settings.minhash_threshold, settings.num_perm, cfg)

    # -- writing ----------------------------------------------------------------------------------
    def add(self, entry: dict, feats: Features, cancel: Optional[CancelCheck] = None) -> tuple[bool, dict]:
        from ..quality.lsh import lsh_insert_signatures, lsh_key

        settings = self.settings()
        same = next((d for d in self.datasets() if d["sha256"] == entry["sha256"]), None)
        if same is not None:
            return False, same
        ds_id = int(self._call(self.client.incr, self._k("next_id")))
        rep = Reporter(None, cancel)
        try:
            n = len(feats)
            pipe = self.client.pipeline(transaction=False)
            seen: set = set()
            for p in range(n):
                e = feats.exact[p]
                if e.any():
                    fp = e.astype("<u8").tobytes()
                    if fp not in seen:
                        seen.add(fp)
                        pipe.hset(self._k("ds", ds_id, "exact"), fp, lsh_key(p))
                pipe.hset(self._k("ds", ds_id, "sig"), lsh_key(p), feats.sig[p].astype("<u4").tobytes())
                if (p + 1) % BATCH == 0:
                    rep.check()
                    self._call(pipe.execute)
            for k, s0 in enumerate(range(0, n, CHUNK)):
                pipe.set(self._k("ds", ds_id, "idx", k), feats.indices[s0:s0 + CHUNK].astype("<i8").tobytes())
                pipe.set(self._k("ds", ds_id, "emb", k), feats.emb[s0:s0 + CHUNK].astype("<f2").tobytes())
            self._call(pipe.execute)
            rows = np.flatnonzero(~empty_signature(feats.sig))
            lsh = self._lsh(ds_id, settings)
            self._call(lsh_insert_signatures, lsh, rows.tolist(), feats.sig[rows], settings.seed)
            rep.check()
            entry = dict(entry, id=ds_id, added=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                         dim=int(feats.emb.shape[1]) if feats.emb.ndim == 2 else 0)
            with self._locked():
                data = self._manifest()
                same = next((d for d in data["datasets"] if d["sha256"] == entry["sha256"]), None)
                if same is not None:  # added meanwhile by someone else
                    self._drop(ds_id)
                    return False, same
                if any(d["name"] == entry["name"] for d in data["datasets"]):
                    raise IndexStoreError(f"the index already has a dataset named {entry['name']!r} (with other "
                                          "content); give this one another name (--name)")
                data["datasets"].append(entry)
                self._set_manifest(data)
        except BaseException:
            try:
                self._drop(ds_id)
            except Exception:  # noqa: BLE001 - the server is gone: what was written is under an unlisted id
                pass
            raise
        return True, entry

    def _drop(self, ds_id: int) -> None:
        """Delete every key of dataset ``ds_id``."""
        keys = list(self.client.scan_iter(match=self._k("ds", ds_id, "*"), count=1000))
        for s0 in range(0, len(keys), 1000):
            self.client.delete(*keys[s0:s0 + 1000])

    def remove(self, name: str) -> Optional[dict]:
        with self._locked():
            data = self._manifest()
            entry = next((d for d in data["datasets"] if d["name"] == name), None)
            if entry is None:
                return None
            data["datasets"] = [d for d in data["datasets"] if d is not entry]
            self._set_manifest(data)
        self._call(self._drop, int(entry["id"]))
        return entry

    # -- reading ----------------------------------------------------------------------------------
    def _chunks(self, ds_id: int, what: str, n: int, dtype: str) -> list[bytes]:
        names = [self._k("ds", ds_id, what, k) for k in range((n + CHUNK - 1) // CHUNK)]
        got = self._call(self.client.mget, names) if names else []
        if any(g is None for g in got):
            raise IndexStoreError(f"{self.shown}: dataset {ds_id} is incomplete in the server ({what}); remove it "
                                  "with `ftcurate index rm` and add it again")
        return got

    def query(self, feats: Features, progress: Optional[ProgressCallback] = None,
              cancel: Optional[CancelCheck] = None) -> list[Match]:
        from ..quality.lsh import lsh_band_keys, lsh_key, lsh_key_value

        settings = self.settings()
        datasets = self.datasets()
        rep = Reporter(progress, cancel, total=max(1, len(datasets)), every=1)
        found: list[Match] = []
        nonempty = np.flatnonzero(~empty_signature(feats.sig))
        have = np.flatnonzero((feats.exact != 0).any(axis=1))
        for k, ds in enumerate(datasets):
            rep.tick(k, f"looking up {ds['name']}")
            ds_id, name, n = int(ds["id"]), ds["name"], int(ds["records"])
            idx = np.frombuffer(b"".join(self._chunks(ds_id, "idx", n, "<i8")), dtype="<i8")
            if len(idx) != n:
                raise IndexStoreError(f"{self.shown}: dataset {name!r} is damaged in the server (record indices)")

            def record(p: int) -> Optional[int]:
                return int(idx[p]) if 0 <= p < n else None

            # exact copies
            for s0 in range(0, len(have), BATCH):
                rows = have[s0:s0 + BATCH]
                got = self._call(self.client.hmget, self._k("ds", ds_id, "exact"),
                                 [feats.exact[r].astype("<u8").tobytes() for r in rows])
                for r, g in zip(rows.tolist(), got):
                    p = lsh_key_value(g) if g is not None else None
                    if p is not None and record(p) is not None:
                        found.append(Match(r, name, "exact", 1.0, record(p)))
            # near duplicates: the dataset's MinHashLSH buckets, read in batches (getmany)
            if len(nonempty):
                lsh = self._lsh(ds_id, settings)
                bkeys = lsh_band_keys(lsh, feats.sig[nonempty])
                cand: set = set()
                for bk, table in zip(bkeys, lsh.hashtables):
                    rep.check()
                    for s0 in range(0, len(nonempty), BATCH):
                        groups = self._call(table.getmany, *bk[s0:s0 + BATCH])
                        for off, got in enumerate(groups):
                            for m in got:
                                p = lsh_key_value(m)  # only our digit keys; nothing is unpickled
                                if p is not None and p < n:
                                    cand.add((int(nonempty[s0 + off]), p))
                pairs = sorted(cand)
                for s0 in range(0, len(pairs), BATCH):
                    part = pairs[s0:s0 + BATCH]
                    got = self._call(self.client.hmget, self._k("ds", ds_id, "sig"), [lsh_key(p) for _q, p in part])
                    for (q, p), raw in zip(part, got):
                        if raw is None or len(raw) != 4 * settings.num_perm:
                            continue
                        s = float(estimate(feats.sig[q:q + 1], np.frombuffer(raw, dtype="<u4")[None, :])[0])
                        if s >= settings.minhash_threshold:
                            found.append(Match(q, name, "near", s, record(p)))
            # semantic duplicates
            dim = int(ds.get("dim") or feats.emb.shape[1])
            emb = np.frombuffer(b"".join(self._chunks(ds_id, "emb", n, "<f2")), dtype="<f2")
            if emb.size != n * dim:
                raise IndexStoreError(f"{self.shown}: dataset {name!r} is damaged in the server (embeddings)")
            srows, (best, sims) = semantic_matches(feats.emb, emb.reshape(n, dim), settings.semantic_threshold)
            for q, p, s in zip(srows.tolist(), best.tolist(), sims.tolist()):
                found.append(Match(q, name, "semantic", float(s), record(p)))
        rep.tick(len(datasets), "corpus index")
        return found
