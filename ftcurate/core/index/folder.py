"""A corpus index in a folder (no server): a manifest and one sub-folder of ``.npy`` arrays per
dataset.

Layout::

    LOCATION/ftcurate-index.json      manifest: format, version, settings, datasets
    LOCATION/datasets/<id>/*.npy      indices, exact fingerprints (sorted), signatures,
                                      LSH band keys (sorted per band), embeddings (float16)

Arrays are plain numeric ``.npy`` files read with ``allow_pickle=False`` (memory-mapped), never
pickles. A dataset's folder is written under a temporary name and renamed when complete; the
manifest is replaced atomically last, under a lock (``LOCATION/.lock``), so a crash or a full
disk leaves the index as it was (an unfinished folder is not in the manifest and is ignored;
the next add removes it). Removing a dataset drops it from the manifest first, then its folder.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import Optional

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
    band_keys,
    checked_manifest,
    empty_signature,
    estimate,
    lsh_bands,
    semantic_matches,
)

MANIFEST = "ftcurate-index.json"
MAX_BUCKET = 1000  # an LSH bucket with more indexed records gives the first MAX_BUCKET as candidates
_ARRAYS = ("indices", "exact_hi", "exact_lo", "exact_pos", "sig", "band_keys", "band_pos", "emb")


class FolderIndex(ManifestIndex):
    kind = "folder"

    def __init__(self, location: str) -> None:
        self.location = os.path.abspath(os.path.expanduser(location))
        self.shown = location

    # -- manifest ---------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> str:
        return os.path.join(self.location, MANIFEST)

    def exists(self) -> bool:
        return os.path.isfile(self.manifest_path)

    def check(self) -> None:
        if not os.path.isdir(self.location):
            raise IndexStoreError(f"no corpus index at {self.shown}: the folder does not exist (create one with "
                                  f"`ftcurate index add FILE --index {self.shown}`)")
        if not self.exists():
            raise IndexStoreError(f"{self.shown} is not a corpus index (no {MANIFEST}; create one with "
                                  f"`ftcurate index add FILE --index {self.shown}`)")
        self._manifest()

    def _manifest(self) -> dict:
        try:
            with open(self.manifest_path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise IndexStoreError(f"{self.shown} is not a corpus index (no {MANIFEST})") from None
        except (OSError, ValueError) as exc:
            raise IndexStoreError(f"{self.manifest_path}: cannot read the index manifest ({exc})") from None
        return checked_manifest(data, self.shown, self.manifest_path)

    def _write_manifest(self, data: dict) -> None:
        from ..io.fileio import write_text_atomic

        write_text_atomic(self.manifest_path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")

    def _lock(self):
        from ..io.fileio import exclusive_lock

        return exclusive_lock(os.path.join(self.location, ".lock"),
                              f"another ftcurate is changing the corpus index {self.shown}; try again when it is done")

    def create(self, settings: IndexSettings) -> None:
        """Make an empty index here (the folder may exist if it is empty)."""
        if self.exists():
            return
        if os.path.isdir(self.location) and os.listdir(self.location):
            raise IndexStoreError(f"{self.shown} is a folder with other files in it, not a corpus index; "
                                  "choose a new or empty folder")
        os.makedirs(os.path.join(self.location, "datasets"), exist_ok=True)
        with self._lock():
            if not self.exists():
                self._write_manifest({"format": FORMAT, "version": VERSION, "settings": settings.to_dict(),
                                      "datasets": []})

    # -- writing ----------------------------------------------------------------------------------
    def add(self, entry: dict, feats: Features, cancel: Optional[CancelCheck] = None) -> tuple[bool, dict]:
        """Store a dataset; ``(False, existing entry)`` when one with the same sha256 is there."""
        settings = self.settings()
        bands, rows = lsh_bands(settings)
        arrays = _arrays(feats, bands, rows)
        with self._lock():
            data = self._manifest()
            same = next((d for d in data["datasets"] if d["sha256"] == entry["sha256"]), None)
            if same is not None:
                return False, same
            if any(d["name"] == entry["name"] for d in data["datasets"]):
                raise IndexStoreError(f"the index already has a dataset named {entry['name']!r} (with other "
                                      "content); give this one another name (--name)")
            root = os.path.join(self.location, "datasets")
            os.makedirs(root, exist_ok=True)
            used = {int(d["id"]) for d in data["datasets"]}
            for name in os.listdir(root):  # unfinished folders of adds that died: not in the manifest
                base = name.split(".")[0]
                if base.isdigit() and int(base) not in used:
                    shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            ds_id = max(used, default=0) + 1
            tmp = os.path.join(root, f"{ds_id}.partial")
            os.makedirs(tmp)
            try:
                for name, arr in arrays.items():
                    Reporter(None, cancel).check()
                    np.save(os.path.join(tmp, name + ".npy"), arr, allow_pickle=False)
                os.replace(tmp, os.path.join(root, str(ds_id)))
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            entry = dict(entry, id=ds_id, added=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            data["datasets"].append(entry)
            try:
                self._write_manifest(data)
            except BaseException:
                shutil.rmtree(os.path.join(root, str(ds_id)), ignore_errors=True)
                raise
        return True, entry

    def remove(self, name: str) -> Optional[dict]:
        with self._lock():
            data = self._manifest()
            entry = next((d for d in data["datasets"] if d["name"] == name), None)
            if entry is None:
                return None
            data["datasets"] = [d for d in data["datasets"] if d is not entry]
            self._write_manifest(data)
        shutil.rmtree(os.path.join(self.location, "datasets", str(entry["id"])), ignore_errors=True)
        return entry

    # -- reading ----------------------------------------------------------------------------------
    def _load(self, ds_id: int) -> dict:
        folder = os.path.join(self.location, "datasets", str(ds_id))
        out = {}
        for name in _ARRAYS:
            try:
                out[name] = np.load(os.path.join(folder, name + ".npy"), mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise IndexStoreError(f"{self.shown}: dataset {ds_id} is damaged ({name}.npy: {exc}); remove it "
                                      "with `ftcurate index rm` and add it again") from None
        return out

    def query(self, feats: Features, progress: Optional[ProgressCallback] = None,
              cancel: Optional[CancelCheck] = None) -> list[Match]:
        settings = self.settings()
        bands, rows = lsh_bands(settings)
        datasets = self.datasets()
        rep = Reporter(progress, cancel, total=max(1, len(datasets)), every=1)
        found: list[Match] = []
        qkeys = band_keys(feats.sig, bands, rows)
        qempty = empty_signature(feats.sig)
        for k, ds in enumerate(datasets):
            rep.tick(k, f"looking up {ds['name']}")
            a = self._load(int(ds["id"]))
            name = ds["name"]
            idx = a["indices"]
            # exact copies
            have = np.flatnonzero((feats.exact != 0).any(axis=1))
            if len(have) and len(a["exact_hi"]):
                hi = feats.exact[have, 0]
                left = np.searchsorted(a["exact_hi"], hi, "left")
                right = np.searchsorted(a["exact_hi"], hi, "right")
                for q, lo_, hi_ in zip(have[right > left].tolist(), left[right > left].tolist(),
                                       right[right > left].tolist()):
                    for p in range(lo_, hi_):
                        if a["exact_lo"][p] == feats.exact[q, 1]:
                            found.append(Match(q, name, "exact", 1.0, int(idx[a["exact_pos"][p]])))
                            break
            # near duplicates: LSH band lookups, verified with the MinHash estimate
            qi, pi = [], []
            for b in range(bands):
                rep.check()
                keys = a["band_keys"][b]
                left = np.searchsorted(keys, qkeys[b], "left")
                right = np.searchsorted(keys, qkeys[b], "right")
                cnt = np.minimum(right - left, MAX_BUCKET)
                cnt[qempty] = 0
                has = np.flatnonzero(cnt)
                if len(has):
                    c = cnt[has]
                    within = np.arange(c.sum()) - np.repeat(np.cumsum(c) - c, c)
                    qi.append(np.repeat(has, c))
                    pi.append(np.asarray(a["band_pos"][b])[np.repeat(left[has], c) + within])
            if qi:
                q_all, p_all = np.concatenate(qi), np.concatenate(pi)
                pair = np.unique(q_all * (len(idx) + 1) + p_all)
                q_all, p_all = pair // (len(idx) + 1), pair % (len(idx) + 1)
                order = np.argsort(p_all, kind="stable")  # memory-mapped rows read in order
                q_all, p_all = q_all[order], p_all[order]
                est = estimate(feats.sig[q_all], np.asarray(a["sig"][p_all]))
                keep = est >= settings.minhash_threshold
                for q, p, s in zip(q_all[keep].tolist(), p_all[keep].tolist(), est[keep].tolist()):
                    found.append(Match(q, name, "near", float(s), int(idx[p])))
            # semantic duplicates
            srows, (best, sims) = semantic_matches(feats.emb, a["emb"], settings.semantic_threshold)
            for q, p, s in zip(srows.tolist(), best.tolist(), sims.tolist()):
                found.append(Match(q, name, "semantic", float(s), int(idx[p])))
        rep.tick(len(datasets), "corpus index")
        return found


def _arrays(feats: Features, bands: int, rows: int) -> dict[str, np.ndarray]:
    """The arrays stored for one dataset (sorted lookup tables built once, at add time)."""
    n = len(feats)
    has = np.flatnonzero((feats.exact != 0).any(axis=1))
    order = has[np.lexsort((feats.exact[has, 1], feats.exact[has, 0]))]
    keys = band_keys(feats.sig, bands, rows)
    nonempty = np.flatnonzero(~empty_signature(feats.sig))
    bk = np.empty((bands, len(nonempty)), dtype=np.uint64)
    bp = np.empty((bands, len(nonempty)), dtype=np.int64)
    for b in range(bands):
        o = nonempty[np.argsort(keys[b, nonempty], kind="stable")]
        bk[b] = keys[b, o]
        bp[b] = o
    return {"indices": np.asarray(feats.indices, dtype=np.int64),
            "exact_hi": feats.exact[order, 0].copy(), "exact_lo": feats.exact[order, 1].copy(),
            "exact_pos": order.astype(np.int64),
            "sig": np.ascontiguousarray(feats.sig, dtype=np.uint32),
            "band_keys": bk, "band_pos": bp,
            "emb": np.ascontiguousarray(feats.emb, dtype=np.float16).reshape(n, -1)}
