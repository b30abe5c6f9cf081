"""A 2-D map of the records by meaning: embeddings projected to the plane.

:func:`project_2d` uses UMAP when the ``umap`` package is installed (it keeps clusters
apart) and otherwise PCA with numpy (the two directions of largest variance: fast,
deterministic, no extra dependency). :func:`embedding_map` embeds a project's training
records with the same text and cache as the quality scan (so vectors the scan computed are
reused, and a second map is instant), projects them, and returns what a map view draws:
record ids, coordinates, status, main finding and outlier score of each point.
:func:`points_in_polygon` answers a lasso selection. No Qt here.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..progress import CancelCheck, ProgressCallback, Reporter
from ..project.store import Project
from ..project.table import FINDING_KINDS, report_findings

METHODS = ("auto", "umap", "pca")
UMAP_MIN_POINTS = 16  # below this UMAP's neighbour graph is meaningless: PCA instead
MAP_SCANNER = "embedding_map"  # where the last projection is kept (Project.save_scan)

#: The finding a point is coloured by when it has several: leaks first, then outliers,
#: duplicates, then the heuristic flags in their own order.
_REPORT_KINDS = ("leakage", "validation leakage", "outlier", "length outlier", "exact duplicate",
                 "near duplicate", "semantic duplicate", "conflicting answers")
FLAG_PRIORITY: tuple[str, ...] = _REPORT_KINDS + tuple(k for k in FINDING_KINDS if k not in _REPORT_KINDS)


def umap_available() -> bool:
    """True when umap-learn is importable and whole (a half-removed install leaves a bare
    ``umap`` folder that imports but has no ``UMAP``)."""
    try:
        import umap
    except Exception:  # noqa: BLE001 - ImportError, or a broken install failing on import
        return False
    return hasattr(umap, "UMAP")


def project_2d(vectors, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """``(xy, method_used)``: an (n, 2) float32 array and ``"umap"`` or ``"pca"``.

    ``method``: ``"auto"`` (UMAP when importable and there are enough points, else - or
    when UMAP fails - PCA),
    ``"umap"`` (ImportError without the package) or ``"pca"``. The same input and seed
    give the same output."""
    if method not in METHODS:
        raise ValueError(f"unknown projection method {method!r} (expected one of {METHODS})")
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError("vectors must be a 2-D array (one row per point)")
    n = x.shape[0]
    if method == "umap":
        return _umap(x, seed), "umap"
    if method == "auto" and n >= UMAP_MIN_POINTS and umap_available():
        try:
            return _umap(x, seed), "umap"
        except Exception:  # noqa: BLE001 - a failing optional package: the PCA map is still a map
            pass
    return pca_2d(x), "pca"


def pca_2d(x: np.ndarray) -> np.ndarray:
    """The points on their two principal axes (numpy SVD of the d x d covariance: one pass
    over the data, so 100k x 384 takes a fraction of a second). Signs are fixed so that
    each axis' largest loading is positive: the result is deterministic."""
    x = np.asarray(x, dtype=np.float32)
    n, d = x.shape
    out = np.zeros((n, 2), np.float32)
    if n < 2 or d == 0:
        return out
    centred = x - x.mean(axis=0, dtype=np.float64).astype(np.float32)
    cov = (centred.T @ centred).astype(np.float64) / (n - 1)  # float32 product: twice as fast, ample here
    u, s, _vt = np.linalg.svd(cov)  # cov is symmetric: its left singular vectors are its eigenvectors
    k = min(2, d)
    comps = u[:, :k]
    signs = np.sign(comps[np.abs(comps).argmax(axis=0), np.arange(k)])
    comps = comps * np.where(signs == 0, 1.0, signs)
    keep = s[:k] > 1e-12 * max(float(s[0]), 1e-300)  # a flat direction stays at 0
    out[:, :k] = (centred @ comps.astype(np.float32)) * keep
    return out


def _umap(x: np.ndarray, seed: int) -> np.ndarray:
    import umap  # optional: only when installed

    n = x.shape[0]
    if n < 3:
        return pca_2d(x)
    reducer = umap.UMAP(n_components=2, n_neighbors=max(2, min(15, n - 1)), metric="cosine",
                        random_state=seed, init="spectral" if n > 10 else "random")
    return np.asarray(reducer.fit_transform(x), dtype=np.float32)


def points_in_polygon(xy, polygon) -> np.ndarray:
    """Boolean mask of the points inside ``polygon`` (a sequence of (x, y) vertices; it is
    closed automatically), by the even-odd rule: a ray from the point crosses the edges an
    odd number of times. Vectorised over the points; fewer than 3 vertices select nothing."""
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    inside = np.zeros(len(pts), bool)
    if len(poly) < 3 or not len(pts):
        return inside
    # only points in the polygon's bounding box can be inside
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    cand = np.flatnonzero((pts[:, 0] >= lo[0]) & (pts[:, 0] <= hi[0]) & (pts[:, 1] >= lo[1]) & (pts[:, 1] <= hi[1]))
    if not len(cand):
        return inside
    px, py = pts[cand, 0], pts[cand, 1]
    odd = np.zeros(len(cand), bool)
    x1, y1 = poly[:, 0], poly[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    for ax, ay, bx, by in zip(x1, y1, x2, y2):
        if ay == by:
            continue  # a horizontal edge never crosses a horizontal ray
        crosses = (ay > py) != (by > py)
        x_at = ax + (py - ay) * (bx - ax) / (by - ay)
        odd ^= crosses & (px < x_at)
    inside[cand] = odd
    return inside


@dataclass
class MapData:
    """One point per record (``ids`` ascending): coordinates, status, main finding, score."""

    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    status: np.ndarray = field(default_factory=lambda: np.zeros(0, "<U10"))
    flag: np.ndarray = field(default_factory=lambda: np.zeros(0, "<U24"))  # "" when none
    score: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # outlier score, NaN if none
    index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # record number in its file
    snippets: list[str] = field(default_factory=list)  # the start of what was embedded (for tooltips)
    method: str = "pca"
    model: str = ""
    total: int = 0  # records before sampling
    cached: bool = False  # the projection came from the project (nothing was recomputed)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def sampled(self) -> bool:
        return self.total > len(self)

    def rows_of(self, ids: Sequence[int]) -> np.ndarray:
        """Positions of ``ids`` (-1 where an id is not on the map)."""
        ids = np.asarray(ids, np.int64).reshape(-1)
        if not len(self):
            return np.full(len(ids), -1, np.int64)
        pos = np.minimum(np.searchsorted(self.ids, ids), len(self) - 1)
        return np.where(self.ids[pos] == ids, pos, -1)

    def inside(self, polygon) -> list[int]:
        """Ids of the points inside ``polygon`` (map coordinates)."""
        return [int(i) for i in self.ids[points_in_polygon(self.xy, polygon)]]

    def update_status(self, project: Project, ids: Optional[Sequence[int]] = None) -> None:
        """Re-read the statuses of ``ids`` (all points when None) after decisions."""
        want = self.ids if ids is None else np.asarray(list(ids), np.int64)
        rows = self.rows_of(want)
        keep = [int(i) for i, r in zip(want, rows) if r >= 0]
        if not keep:
            return
        for rid, _idx, _split, status, *_rest in project.light_rows(keep):
            r = int(self.rows_of([rid])[0])
            if r >= 0:
                self.status[r] = status

    def apply_report(self, report: Optional[dict]) -> None:
        """Set the main finding and outlier score of every point from a scan report."""
        self.flag, self.score = _flags_and_scores(report, self.ids)


def _flags_and_scores(report: Optional[dict], ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    bits, scores = report_findings(report)
    flag = np.zeros(len(ids), "<U24")
    score = np.full(len(ids), np.nan, np.float32)
    order = [FINDING_KINDS.index(k) for k in FLAG_PRIORITY]
    for r, rid in enumerate(ids.tolist()):
        b = bits.get(rid)
        if b:
            flag[r] = next(FINDING_KINDS[k] for k in order if b >> k & 1)
        sc = scores.get(rid)
        if sc is not None:
            score[r] = sc
    return flag, score


def sample_ids(ids: np.ndarray, max_points: int, keep: Sequence[int] = (), seed: int = 0) -> np.ndarray:
    """At most ``max_points`` of ``ids`` (ascending), the same every time for the same input:
    the ids in ``keep`` first (records with findings belong on the map), then a seeded
    random choice of the others."""
    ids = np.asarray(ids, np.int64)
    if max_points <= 0 or len(ids) <= max_points:
        return np.sort(ids)
    must = np.intersect1d(ids, np.asarray(list(keep), np.int64))
    if len(must) >= max_points:
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(must, max_points, replace=False))
    rest = np.setdiff1d(ids, must)
    rng = np.random.default_rng(seed)
    extra = rng.choice(rest, max_points - len(must), replace=False)
    return np.sort(np.concatenate([must, extra]))


def embedding_map(project: Project, report: Optional[dict] = None, model: str = "static-wordllama",
                  max_points: int = 50000, split: Optional[str] = "train", method: str = "auto", seed: int = 0,
                  progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None) -> MapData:
    """Embed the records of ``split`` (None: every split; edits applied) and project them to
    2-D. Texts are what the scan embeds (user turns, else the conversation without the
    system prompt) and vectors are cached in the project under the scan's cache, so vectors
    a scan made are reused; the projection itself is kept in the project too, so asking again
    for the same records, model and method computes nothing. Above ``max_points`` records a
    deterministic sample is drawn (records with findings first; 0: no limit). Raises
    :class:`Cancelled`."""
    from .embeddings import ProjectCache, embed, text_hash
    from .scan import body_text, user_text

    all_ids = np.asarray(project.ids(split=split), np.int64)
    bits, _ = report_findings(report)
    ids = sample_ids(all_ids, max_points, keep=list(bits), seed=seed)
    n = len(ids)
    rep = Reporter(None, cancel)  # cancel checks; progress goes through prog() on one scale
    # weights of the stages on one progress scale: reading, embedding, projecting
    total = 3 * n + max(n // 2, 1)
    prog = (lambda done, message: progress(done, total, message)) if progress else (lambda done, message: None)

    texts: list[str] = []
    status = np.zeros(n, "<U10")
    index = np.zeros(n, np.int64)
    step = 2000
    for start in range(0, n, step):
        rep.check()
        for k, sr in enumerate(project.get_many(ids[start:start + step].tolist()), start):
            texts.append(user_text(sr.record) or body_text(sr.record))
            status[k] = sr.status
            index[k] = sr.index
        prog(min(start + step, n), "Reading the records")
    hashes = [text_hash(t) for t in texts]

    def emb_progress(done: int, _total: int, message: str) -> None:
        prog(n + 2 * done, message or "embedding")

    cache = ProjectCache(project, "embedding") if not project.readonly else _ReadOnlyCache(project)
    vectors = embed(texts, model=model, cache=cache, hashes=hashes, progress=emb_progress, cancel=cancel)
    rep.check()

    # the projection of exactly these texts with this model, method and seed, if kept
    used = method if method != "auto" else ("umap" if n >= UMAP_MIN_POINTS and umap_available() else "pca")
    key = hashlib.sha256("\n".join([model, used, str(seed), *hashes]).encode()).hexdigest()
    xy, cached = _load_projection(project, key, n), True
    if xy is None:
        prog(3 * n, f"Projecting {n:,} points ({used.upper()})")
        xy, used = project_2d(vectors, method=used, seed=seed)
        cached = False
        _save_projection(project, key, xy, used)
    rep.check()
    flag, score = _flags_and_scores(report, ids)
    prog(total, "Map ready")
    snippets = [_snippet(t) for t in texts]
    return MapData(ids=ids, xy=xy.astype(np.float32, copy=False), status=status, flag=flag, score=score,
                   index=index, snippets=snippets, method=used, model=model, total=int(len(all_ids)),
                   cached=cached)


def _snippet(text: str, limit: int = 140) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[:limit - 1] + "…"


class _ReadOnlyCache:
    """The scan's vector cache of a project opened read-only: read, never written."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def get_many(self, namespace: str, hashes: Sequence[str]) -> dict:
        return self.project.cache_get_many("embedding", namespace, hashes)

    def put_many(self, namespace: str, items: dict) -> None:  # noqa: ARG002 - nothing is kept
        return None


def _load_projection(project: Project, key: str, n: int) -> Optional[np.ndarray]:
    try:
        kept = project.load_scan(MAP_SCANNER)
    except Exception:  # a damaged entry is recomputed
        return None
    if not kept or kept[0].get("key") != key:
        return None
    try:
        xy = np.frombuffer(base64.b64decode(kept[1]["xy"]), dtype="<f4").astype(np.float32).reshape(-1, 2)
    except (TypeError, ValueError, KeyError, AttributeError):
        return None
    return xy if len(xy) == n else None


def _save_projection(project: Project, key: str, xy: np.ndarray, method: str) -> None:
    if project.readonly:
        return
    # float32 bytes as base64: exact (a second call returns the very same map) and compact
    blob = base64.b64encode(np.ascontiguousarray(xy, dtype="<f4").tobytes()).decode("ascii")
    project.save_scan(MAP_SCANNER, {"key": key, "method": method}, {"xy": blob})
