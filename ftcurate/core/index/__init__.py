"""A corpus index that outlives one project: every dataset already trained on, to check new
batches against (``ftcurate index add|ls|rm``, ``ftcurate scan NEW --against-index LOCATION``).

LOCATION is a folder (no server: :class:`~ftcurate.core.index.folder.FolderIndex`) or
``redis://[:PASSWORD@]HOST:PORT/DB`` (``rediss://`` with TLS) for a team
(:class:`~ftcurate.core.index.redis_store.RedisIndex`, the MinHash part in datasketch
``MinHashLSH`` Redis storage with plain-bytes keys). Both stores keep the same features of each
record (:mod:`ftcurate.core.index.features`) and answer the same queries:

* :func:`add_file` records a dataset file; the same file (same SHA-256) twice adds nothing.
* :func:`list_datasets`, :func:`remove_dataset`.
* :func:`against_index` (the scan's ``against_index`` stage): for each new record that is an exact
  copy, a near duplicate (MinHash) or a semantic duplicate of an indexed record, one entry
  ``{"index": i, "dataset": NAME, "method": "exact"|"near"|"semantic", "score": s, "record": j}``
  per indexed dataset (the strongest method), ``index`` the new record's report number and
  ``record`` the indexed record's 0-based index in its file.

Errors (no index there, a Redis server down or refusing the password, a damaged index) are
:class:`IndexStoreError` (a ``ValueError``) with a plain message; nothing is half-written.
"""

from __future__ import annotations

import hashlib
import os
from typing import Optional, Sequence

from ..progress import CancelCheck, ProgressCallback, Reporter
from .features import IndexSettings, IndexStoreError, Match, best_matches, compute_features

__all__ = ["IndexSettings", "IndexStoreError", "open_index", "check_index", "add_file", "remove_dataset",
           "list_datasets", "against_index", "redact_location", "is_redis"]


def is_redis(location: str) -> bool:
    return str(location).startswith(("redis://", "rediss://"))


def redact_location(location: str) -> str:
    """``location`` as shown to people and kept in reports (a Redis password left out)."""
    if is_redis(location):
        from .redis_store import redact

        return redact(location)
    return location


def open_index(location: str):
    """The store at ``location`` (nothing is checked or created yet)."""
    if not location or not str(location).strip():
        raise IndexStoreError("no corpus index given (a folder, or redis://HOST:PORT/DB)")
    if is_redis(location):
        from .redis_store import RedisIndex

        return RedisIndex(location)
    from .folder import FolderIndex

    return FolderIndex(location)


def check_index(location: str) -> None:
    """Raise :class:`IndexStoreError` unless ``location`` holds a usable corpus index."""
    open_index(location).check()


def list_datasets(location: str) -> list[dict]:
    idx = open_index(location)
    idx.check()
    return idx.datasets()


def remove_dataset(location: str, name: str) -> dict:
    idx = open_index(location)
    idx.check()
    entry = idx.remove(name)
    if entry is None:
        names = [d["name"] for d in idx.datasets()]
        raise IndexStoreError(f"the index {redact_location(location)} has no dataset {name!r}"
                              + (f" (it has: {', '.join(names[:10])})" if names else " (it is empty)"))
    return entry


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def add_file(location: str, path: str, name: Optional[str] = None, fmt: str = "auto",
             mapping: Optional[dict] = None, settings: Optional[IndexSettings] = None,
             progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None) -> dict:
    """Index the valid records of a dataset file (creating the index with ``settings`` if there
    is none). Returns ``{"added": bool, "dataset": entry}``; a file already indexed (same
    SHA-256, whatever its name) is not added again."""
    from ..io.formats import DatasetReader
    from ..quality.dedup import sub_progress

    idx = open_index(location)
    if not idx.exists():
        idx.create(settings or IndexSettings())
    idx.check()
    have = idx.settings()
    if settings is not None and settings != have:
        raise IndexStoreError(f"the index {redact_location(location)} was made with other settings ({have}); "
                              "every dataset in an index is indexed the same way")
    sha = file_sha256(path)
    same = next((d for d in idx.datasets() if d["sha256"] == sha), None)
    if same is not None:
        return {"added": False, "dataset": same}
    reader = DatasetReader(path, fmt, mapping)
    rep = Reporter(sub_progress(progress, 0, 200), cancel, every=5000)
    records, indices, rejected = [], [], 0
    for k, p in enumerate(reader):
        rep.tick(k, "reading records")
        if p.ok:
            records.append(p.record)
            indices.append(p.index)
        else:
            rejected += 1
    feats = compute_features(records, indices, have, progress=sub_progress(progress, 200, 950), cancel=cancel)
    entry = {"name": name or os.path.basename(path), "path": os.path.abspath(path), "sha256": sha,
             "format": reader.format, "records": len(records), "rejected": rejected}
    added, entry = idx.add(entry, feats, cancel=cancel)
    if progress is not None:
        progress(1000, 1000, "indexed" if added else "already in the index")
    return {"added": added, "dataset": entry}


def against_index(location: str, records: Sequence, keys: Sequence, cache=None,
                  progress: Optional[ProgressCallback] = None,
                  cancel: Optional[CancelCheck] = None) -> list[dict]:
    """The report's ``against_index`` entries for ``records`` (named ``keys[k]``): see the module
    docstring. ``cache``: an embedding cache (a project's), as for the scan."""
    from ..quality.dedup import sub_progress

    idx = open_index(location)
    idx.check()
    settings = idx.settings()
    if not records:
        return []
    feats = compute_features(records, list(range(len(records))), settings, cache=cache,
                             progress=sub_progress(progress, 0, 700), cancel=cancel)
    found: list[Match] = idx.query(feats, progress=sub_progress(progress, 700, 1000), cancel=cancel)
    return [{"index": keys[m.row], "dataset": m.dataset, "method": m.method, "score": round(float(m.score), 4),
             "record": m.record} for m in best_matches(found)]
