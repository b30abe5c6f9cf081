"""The stages of a Ray scan (see :mod:`ftcurate.core.engines.ray_engine`): tasks are launched here,
their results merged into the report of :func:`ftcurate.core.quality.scan.scan_records`."""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from ..progress import CancelCheck, ProgressCallback
from . import ray_leak, ray_tasks
from .ray_engine import RETRIES, VERIFY_BATCH, _get, _ray

CRASH_ENV = "FTCURATE_RAY_CRASH"  # fault injection for the tests (ray_tasks.maybe_crash)


class RayScan:
    def __init__(self, shards, test, validation, s, info: dict, progress: Optional[ProgressCallback],
                 cancel: Optional[CancelCheck], on_result) -> None:
        self.ray = _ray()
        self.shards = shards  # (ref, offset, rows), in report-number order
        self.n = sum(rows for _, _, rows in shards)
        self.test = list(test)
        self.validation = list(validation)
        self.s = s
        self.sd = s.to_dict()
        self.info = info
        self.progress = progress
        self.cancel = cancel
        self.on_result = on_result
        self.crash = os.environ.get(CRASH_ENV, "")
        self.parts = max(2, min(64, len(shards)))
        self.report: dict = {}

    # -- helpers ---------------------------------------------------------------------------------
    def remote(self, fn, **opts):
        return self.ray.remote(max_retries=RETRIES, **opts)(fn)

    def wait(self, refs, what: str, progress=None):
        """Results of ``refs``, reporting progress as they finish."""
        if progress is None or not refs:
            return _get(refs, self.cancel, what)
        ray = self.ray
        pending = list(refs)
        total = len(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.25)
            if self.cancel is not None and self.cancel():
                break
            progress(total - len(pending), total, what)
        return _get(refs, self.cancel, what)

    def emit(self, section: str, value) -> None:
        self.report[section] = value
        if self.on_result is not None:
            self.on_result(section, value)

    # -- the scan --------------------------------------------------------------------------------
    def run(self) -> dict:
        from ..quality.scan import REPORT_VERSION, _Stages, _stage_names, public_settings

        s, n = self.s, self.n
        have_test = bool(self.test) and s.leakage
        st = _Stages(self.progress, self.cancel,
                     _stage_names(s, n, have_test, bool(self.validation) and s.leakage), n)
        self.st = st
        self.report = {"version": REPORT_VERSION, "records": n, "test_records": len(self.test),
                       "settings": public_settings(s),
                       "engine": {"name": "ray", **self.info, "shards": len(self.shards)}}
        if s.against_index:
            from ..index import check_index

            check_index(s.against_index)
        st.run("heuristics", self._featurize)
        self.emit("flags", [{"index": k, "flag": f, "reason": r} for sm in self.small for k, f, r in sm["flags"]])
        exact, conflicts, self.links = st.run("exact duplicates", self._groups)
        self.emit("exact_duplicates", exact)
        self.emit("conflicting", conflicts)
        if s.near_duplicates:
            clusters = st.run("near duplicates", self._near)
            self.emit("near_duplicates", [c["indices"] for c in clusters])
            self.emit("near_duplicate_clusters", clusters)
        else:
            self.emit("near_duplicates", [])
            self.emit("near_duplicate_clusters", [])
        self._embeddings_and_neighbours(st)
        if have_test:
            self.emit("leakage", st.run("leakage", self._leakage, self.test))
            from ..quality.dedup import exact_duplicate_groups
            from ..quality.scan import content_text

            tkeys = [k for k, _ in self.test]
            self.emit("test_duplicates", [[tkeys[i] for i in g] for g in exact_duplicate_groups(
                [content_text(r) for _, r in self.test], s.lowercase)])
        else:
            self.emit("leakage", [])
        if self.validation and s.leakage:
            self.emit("validation_leakage", st.run("validation leakage", self._leakage, self.validation,
                                                   timing="leakage"))
        if s.against_index:
            self.emit("against_index", st.run("against index", self._against_index))
        self.report["timings"] = st.timings
        return self.report

    # -- heuristics, fingerprints, signatures (map) ------------------------------------------------
    def _featurize(self, progress=None, cancel=None):
        fn = self.remote(ray_tasks.featurize, num_returns=2 + self.parts)
        self.outs = [fn.remote(ref, off, self.sd, self.parts, self.crash) for ref, off, _ in self.shards]
        self.small = self.wait([o[0] for o in self.outs], "per-record checks", progress)
        self.keys = [sm["keys"] for sm in self.small]

    def _groups(self, progress=None, cancel=None):
        fn = self.remote(ray_tasks.group_reduce)
        res = self.wait([fn.remote(*[o[2 + p] for o in self.outs]) for p in range(self.parts)],
                        "grouping exact copies", progress)
        exact = sorted((g for r in res for g in r["exact"]), key=lambda g: g[0])
        conflicts = sorted((g for r in res for g in r["conflict"]), key=lambda g: g[0])
        links = [x for r in res for x in r["links"]]
        return exact, conflicts, links

    # -- near duplicates ---------------------------------------------------------------------------
    def _near(self, progress=None, cancel=None) -> list[dict]:
        from ..quality.dedup import sub_progress
        from ..quality.lsh import lsh_params

        ray = self.ray
        s = self.s
        bands, rows = lsh_params(s.minhash_threshold, s.num_perm)
        links = np.array(self.links, dtype=np.int64).reshape(-1, 2)
        not_reps = ray.put(links[:, 1].copy())
        bmap = self.remote(ray_tasks.band_map, num_returns=self.parts)
        bouts = [bmap.remote(ref, off, o[1], not_reps, bands, rows, self.parts, self.crash)
                 for (ref, off, _), o in zip(self.shards, self.outs)]
        bred = self.remote(ray_tasks.band_reduce)
        cands = self.wait([bred.remote(*[bo[p] for bo in bouts]) for p in range(self.parts)],
                          "grouping LSH buckets", sub_progress(progress, 0, 300))
        pairs = np.concatenate(cands + [links]) if cands else links
        pairs = np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)
        sims = self._verify(pairs, sub_progress(progress, 300, 1000))
        keep = sims >= s.minhash_threshold
        return self._clusters(pairs[keep], sims[keep])

    def _owners(self, wanted: np.ndarray) -> list[int]:
        return [k for k, keys in enumerate(self.keys) if len(keys) and np.isin(wanted, keys).any()]

    def _verify(self, pairs: np.ndarray, progress) -> np.ndarray:
        ray = self.ray
        if len(pairs) == 0:
            return np.empty(0)
        take = self.remote(ray_tasks.take)
        verify = self.remote(ray_tasks.verify)
        refs = []
        for s0 in range(0, len(pairs), VERIFY_BATCH):
            batch = pairs[s0:s0 + VERIFY_BATCH]
            wanted = np.unique(batch)
            wref = ray.put(wanted)
            texts = [take.remote(self.shards[k][0], self.shards[k][1], wref, "text") for k in self._owners(wanted)]
            refs.append(verify.remote(batch, self.s.ngram, *texts, crash=self.crash))
        return np.concatenate(self.wait(refs, "verifying candidate pairs", progress))

    def _clusters(self, pairs: np.ndarray, sims: np.ndarray) -> list[dict]:
        """Connected components of the verified pairs with the local scan's keeper choice
        (longest answer, ties the lowest number; all answers empty: the longest text)."""
        from ..quality.dedup import UnionFind

        if len(pairs) == 0:
            return []
        keys = np.unique(pairs)
        pos = {int(k): i for i, k in enumerate(keys)}
        uf = UnionFind(len(keys))
        for a, b in pairs.tolist():
            uf.union(pos[a], pos[b])
        allkeys = np.concatenate(self.keys)
        alen = dict(zip(allkeys.tolist(), np.concatenate([sm["answer_len"] for sm in self.small]).tolist()))
        tlen = dict(zip(allkeys.tolist(), np.concatenate([sm["text_len"] for sm in self.small]).tolist()))
        by_root: dict[int, list] = {}
        for (a, b), sim in zip(pairs.tolist(), sims.tolist()):
            by_root.setdefault(uf.find(pos[a]), []).append({"a": a, "b": b, "similarity": round(float(sim), 4)})
        out = []
        for group in uf.groups(2):
            members = [int(keys[g]) for g in group]
            best, best_len = -1, 0
            for k in members:
                if alen[k] > best_len:
                    best, best_len = k, alen[k]
            if best >= 0:
                reason = f"longest answer ({best_len} chars)"
            else:
                best, best_len = members[0], -1
                for k in members:
                    if tlen[k] > best_len:
                        best, best_len = k, tlen[k]
                reason = f"all answers empty; longest text ({best_len} chars)"
            pairs_out = sorted(by_root[uf.find(group[0])], key=lambda p: (p["a"], p["b"], p["similarity"]))
            out.append({"indices": members, "keep": best, "reason": reason, "pairs": pairs_out})
        return sorted(out, key=lambda c: c["indices"][0])

    # -- embeddings, neighbours, outliers, semantic duplicates ------------------------------------------
    def _outlier_model(self) -> str:
        s = self.s
        if s.outlier_model != "auto":
            return s.outlier_model
        if self.info.get("gpus") or self.n <= s.auto_accurate_max:
            return s.accurate_model
        return s.embedding_model

    def _embed(self, model: str, which: str, progress) -> list:
        """Embedding refs of every shard, from actors holding ``model`` (one per GPU, else per CPU)."""
        ray = self.ray
        gpus = int(self.info.get("gpus") or 0)
        count = gpus or max(1, min(int(self.info.get("cpus") or 1), len(self.shards)))
        actor = ray.remote(ray_tasks.Embedder).options(num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1,
                                                       max_restarts=RETRIES, max_task_retries=RETRIES)
        actors = [actor.remote(model) for _ in range(count)]
        try:
            refs = [actors[k % count].embed.remote(ref, which, self.crash) for k, (ref, _, _) in enumerate(self.shards)]
            pending = list(refs)
            while pending:
                _done, pending = ray.wait(pending, num_returns=1, timeout=0.25, fetch_local=False)
                if self.cancel is not None and self.cancel():
                    _get(refs, self.cancel, "embedding")
                if progress is not None:
                    progress(len(refs) - len(pending), len(refs), f"embedding with {model}")
            return refs
        finally:
            for a in actors:
                ray.kill(a)

    def _embeddings_and_neighbours(self, st) -> None:
        from ..quality import outliers as outl
        from ..quality.neighbors import EXACT_MAX

        s, n = self.s, self.n
        emb = nbrs = scores = None
        if (s.outliers or s.semantic_duplicates) and n > 1:
            model = self._outlier_model()
            emb = st.run("embeddings", lambda progress=None, cancel=None: self._embed(model, "outlier", progress))
            self.report["embedding_model"] = model
            if n > s.knn_k:
                k = max(s.knn_k, 20) if n > EXACT_MAX else s.knn_k
                nbrs, scores = st.run("neighbours", lambda progress=None, cancel=None: self._knn(emb, k, progress))
        if s.outliers and nbrs is not None:
            def score(progress=None, cancel=None):
                return np.concatenate(self.wait(scores, "outlier scores", progress))

            sc = st.run("outliers", score)
            if n < 3:
                sc, high, fence, flagged = np.zeros(n, np.float32), float("inf"), float("inf"), []
            else:  # the local scan's cut-off (knn_outliers) over the scores of all shards
                high, fence, flagged = outl.outlier_cutoff(sc, s.iqr_factor, s.outlier_max_share,
                                                           s.outlier_min_count)
            keys = np.concatenate(self.keys)
            self.emit("outliers", [{"index": int(keys[i]), "score": round(float(sc[i]), 4)} for i in flagged])
            self.emit("outlier_scores", {"model": self.report["embedding_model"], "cutoff": round(float(high), 4),
                                         "fence": round(float(fence), 4), "max_share": s.outlier_max_share,
                                         "scores": np.round(sc.astype(np.float64), 4).tolist()})
        else:
            self.emit("outliers", [])
        if s.length_outliers and n:
            lengths = np.concatenate([sm["tokens"] for sm in self.small])
            keys = np.concatenate(self.keys)
            lres = outl.length_outliers(lengths, iqr_factor=s.iqr_factor)
            self.emit("length_outliers", [{"index": int(keys[i]), "tokens": int(lengths[i]),
                                           "score": round(float(lres.scores[i]), 4)} for i in lres.flagged])
        if s.semantic_duplicates and emb is not None:
            big = nbrs is not None and n > EXACT_MAX
            pairs = st.run("semantic duplicates",
                           lambda progress=None, cancel=None: self._semantic_pairs(emb, nbrs if big else None, progress))
            self.emit("semantic_duplicates", [{"a": a, "b": b, "similarity": round(float(c), 4)} for a, b, c in pairs])

    def _knn(self, emb: list, k: int, progress):
        ray = self.ray
        kk = max(1, min(self.s.knn_k, self.n - 1))
        part = self.remote(ray_tasks.knn_part)
        merge = self.remote(ray_tasks.knn_merge, num_returns=2)
        key_refs = [ray.put(keys) for keys in self.keys]
        nbrs, scores = [], []
        for q in range(len(emb)):
            parts = [part.remote(emb[q], emb[b], key_refs[b], k, q == b) for b in range(len(emb))]
            nb, sc = merge.remote(emb[q], self.s.knn_k, kk, *parts)
            nbrs.append(nb)
            scores.append(sc)
        self.wait(scores, "nearest neighbours", progress)
        return nbrs, scores

    def _semantic_pairs(self, emb: list, nbrs: Optional[list], progress) -> list:
        from ..quality.scan import SEMANTIC_PARTNERS

        ray = self.ray
        thr = self.s.semantic_threshold
        if nbrs is not None:
            fn = self.remote(ray_tasks.pairs_from_neighbors)
            refs = [fn.remote(self.keys[q], nbrs[q], thr) for q in range(len(nbrs))]
        else:
            fn = self.remote(ray_tasks.pairs_above)
            key_refs = [ray.put(keys) for keys in self.keys]
            refs = [fn.remote(emb[q], emb[b], key_refs[q], key_refs[b], thr, q == b, SEMANTIC_PARTNERS)
                    for q in range(len(emb)) for b in range(q, len(emb))]
        best: dict = {}
        for part in self.wait(refs, "semantic duplicates", progress):
            for a, b, c in part:
                best.setdefault((a, b), c)
        pairs = sorted(((a, b, c) for (a, b), c in best.items()), key=lambda p: (-p[2], p[0], p[1]))
        if nbrs is None:  # the local scan's cap: a record starts at most SEMANTIC_PARTNERS pairs
            count: dict = {}
            kept = []
            for p in pairs:  # best first: each record keeps its most similar
                k = count.get(p[0], 0)
                if k < SEMANTIC_PARTNERS:
                    count[p[0]] = k + 1
                    kept.append(p)
            pairs = kept
        return pairs

    # -- leakage ---------------------------------------------------------------------------------------
    def _leakage(self, other: list, progress=None, cancel=None) -> list[dict]:
        from ..quality.dedup import minhash_signatures, sub_progress
        from ..quality.scan import _best_hits
        from ..quality.textleak import word_document_frequency

        ray, s = self.ray, self.s
        okeys = [k for k, _ in other]
        orecs = [r for _, r in other]
        T: dict = {"texts": {}, "ev_texts": {}, "df": {}, "ngram": {}}
        for field in ("prompt", "answer"):
            T["texts"][field] = ray_leak.field_texts(orecs, field)
            T["ev_texts"][field] = ray_leak.evidence_texts(orecs, field)
            T["df"][field] = word_document_frequency(T["ev_texts"][field])
        T["prompt_sigs"] = minhash_signatures(T["texts"]["prompt"], s.num_perm, s.ngram, s.seed)
        # pass 1: lines common over all shards
        counts = self.remote(ray_leak.line_counts)
        for field in ("prompt", "answer"):
            got = self.wait([counts.remote(ref, field) for ref, _, _ in self.shards], "counting common lines")
            common = ray_leak.common_lines(got, T["texts"][field])
            T["ngram"][field] = ray_leak.test_grams(T["texts"][field], s.leak_ngram, common)
        tref = ray.put(T)
        shard_fn = self.remote(ray_leak.shard_leaks)
        res = self.wait([shard_fn.remote(ref, off, tref, self.sd, self.crash) for ref, off, _ in self.shards],
                        "exact copies, 13-word overlaps, near copies (MinHash)", sub_progress(progress, 0, 200))
        hits = [h for r in res for h in r["hits"]]
        finish = self.remote(ray_leak.finish_grams)
        refs = []
        for field in ("prompt", "answer"):
            found = ray_leak.score_grams([r["grams"].get(field, (np.empty(0, np.int64),) * 2) for r in res],
                                         T["ngram"][field], len(orecs))
            step = ray_leak.STEPS.index((field, "ngram"))
            for k, keys in enumerate(self.keys):
                mine = [h for h in found if np.isin(h[0], keys)]
                if mine:
                    refs.append(finish.remote(self.shards[k][0], self.shards[k][1], field, mine, tref, step))
        for part in self.wait(refs, "13-word overlaps"):
            hits += part
        if s.semantic_leakage:
            hits += self._semantic_leaks(orecs, sub_progress(progress, 200, 1000))
        hits.sort(key=lambda h: h["_step"])
        out = _best_hits(hits)
        for h in out:
            h.pop("_step", None)
            h["test_index"] = okeys[h["test_index"]]
        return out

    def _semantic_leaks(self, orecs: list, progress) -> list[dict]:
        from ..quality.dedup import sub_progress
        from ..quality.scan import user_text
        from ..quality.semantic import semantic_leaks
        from ..quality.textleak import matched_words

        ray, s = self.ray, self.s
        take = self.remote(ray_tasks.take)
        allkeys = np.concatenate(self.keys)
        wref = ray.put(allkeys)
        texts: dict = {}
        for part in self.wait([take.remote(ref, off, wref, "user") for ref, off, _ in self.shards], "training prompts"):
            texts.update(part)
        prompts = [texts[int(k)] for k in allkeys]
        emb_refs = self._embed(s.embedding_model, "prompt", sub_progress(progress, 0, 500))
        emb = np.concatenate(self.wait(emb_refs, "training prompts")) if emb_refs else None
        test_prompts = [user_text(r) for r in orecs]
        found = semantic_leaks(prompts, test_prompts, fast_model=s.embedding_model, accurate_model=s.accurate_model,
                               train_emb_fast=emb, progress=sub_progress(progress, 500, 1000), cancel=self.cancel)
        from ..quality.textleak import word_document_frequency

        ev_test = ray_leak.evidence_texts(orecs, "prompt")
        df = word_document_frequency(ev_test)
        out = []
        for h in found:
            out.append({"_step": len(ray_leak.STEPS), "index": int(allkeys[h.train_index]),
                        "test_index": int(h.test_index), "method": "semantic", "score": round(float(h.score), 4),
                        "field": "prompt",
                        "evidence": {"matched_words": matched_words(prompts[h.train_index], ev_test[h.test_index], df),
                                     "margin": round(float(h.margin), 4)}})
        return out

    # -- the corpus index ----------------------------------------------------------------------------
    def _against_index(self, progress=None, cancel=None) -> list[dict]:
        from ..index.features import METHOD_ORDER

        fn = self.remote(ray_tasks.index_hits)
        parts = self.wait([fn.remote(ref, off, self.s.against_index) for ref, off, _ in self.shards],
                          "looking up the corpus index", progress)
        out = [h for p in parts for h in p]
        return sorted(out, key=lambda h: (h["index"], METHOD_ORDER[h["method"]], h["dataset"]))
