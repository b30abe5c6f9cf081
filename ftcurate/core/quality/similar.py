"""Find records by meaning: the records nearest to one record, or to a typed query.

Records are embedded as the scan embeds them (the user turns; the whole conversation when
it has none) with the fast bundled model, using and filling the project's embedding cache,
so after a scan this costs one matrix product. Held-out (test) records are not searched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..progress import CancelCheck, ProgressCallback, Reporter
from .embeddings import FAST, ProjectCache, embed, text_hash


@dataclass
class Similar:
    """Record ids, nearest first, and their cosine similarity to the query."""

    ids: np.ndarray
    scores: np.ndarray
    query: str  # what was searched: "record 12" or the text


class _ReadOnly:
    """The embedding cache of a project opened read-only: reads, never writes."""

    def __init__(self, project) -> None:
        self._inner = ProjectCache(project, "embedding")

    def get_many(self, namespace, hashes):
        return self._inner.get_many(namespace, hashes)

    def put_many(self, namespace, items) -> None:
        pass


def _record_vectors(project, model: str, progress: Optional[ProgressCallback], cancel: Optional[CancelCheck]):
    from .scan import body_text, user_text

    rep = Reporter(progress, cancel)
    ids, texts = [], []
    for sr in project.iter_records():
        if sr.split == "test":
            continue
        ids.append(sr.id)
        texts.append(user_text(sr.record) or body_text(sr.record))
        if len(ids) % 5000 == 0:
            rep.check()
            if progress:
                progress(len(ids), 0, "Reading the records")
    cache = _ReadOnly(project) if project.readonly else ProjectCache(project, "embedding")
    vectors = embed(texts, model=model, cache=cache, hashes=[text_hash(t) for t in texts], progress=progress,
                    cancel=cancel)
    return np.asarray(ids, np.int64), vectors


def _nearest(ids: np.ndarray, vectors: np.ndarray, query: np.ndarray, k: int, skip: Optional[int]) -> tuple:
    if not len(ids) or not np.any(query):
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    sims = vectors @ query.astype(np.float32)
    if skip is not None:
        sims[ids == skip] = -np.inf
    k = min(k, len(ids) - (1 if skip is not None else 0))
    if k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.argsort(-sims[top], kind="stable")]
    return ids[top], sims[top].astype(np.float32)


def similar_to_record(project, record_id: int, k: int = 25, model: str = FAST,
                      progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None) -> Similar:
    """The ``k`` records whose meaning is nearest to record ``record_id`` (itself left out)."""
    ids, vectors = _record_vectors(project, model, progress, cancel)
    row = np.flatnonzero(ids == int(record_id))
    if len(row):
        query = vectors[row[0]]
    else:  # a held-out record: embed it on its own
        from .scan import body_text, user_text

        sr = project.get(int(record_id))
        query = embed([user_text(sr.record) or body_text(sr.record)], model=model)[0]
    found, scores = _nearest(ids, vectors, query, k, int(record_id))
    return Similar(found, scores, f"record {project.get(int(record_id)).index}")


def search_by_meaning(project, text: str, k: int = 50, model: str = FAST,
                      progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None) -> Similar:
    """The ``k`` records whose meaning is nearest to ``text`` (a question, a topic...)."""
    text = " ".join(str(text).split())
    ids, vectors = _record_vectors(project, model, progress, cancel)
    query = embed([text], model=model)[0] if text else np.zeros(vectors.shape[1] if vectors.ndim == 2 else 1)
    found, scores = _nearest(ids, vectors, query, k, None)
    return Similar(found, scores, text)
