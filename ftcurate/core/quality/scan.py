"""The full quality scan: every scanner with its settings, one report.

``scan_records(train, test, settings)`` runs exact and near duplicates, conflicting
examples, heuristics, embeddings (outliers, semantic duplicates) and train/test leakage,
and returns a JSON-ready report. ``scan_files`` and ``scan_project`` feed it from a file or
a project (where per-record results are cached by content hash and settings, so a re-scan
after a few edits only recomputes what changed, and the report is stored).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from operator import attrgetter
from typing import Callable, Optional, Sequence

import numpy as np

from .heuristics import HeuristicSettings
from ..progress import CancelCheck, ProgressCallback, Reporter
from ..project.columns import RecordColumns, columns_of, contents_of
from ..project.records import Record, sha256_text

REPORT_VERSION = 1
SEMANTIC_PARTNERS = 20  # semantic duplicate pairs a record starts at most (its neighbour lists on large sets)


def _opt(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass
class ScanSettings:
    """Every knob of the quality scan. Saved as JSON with each report; each field's help
    text is shown as a tooltip in the app."""

    lowercase: bool = _opt(False, "Treat upper and lower case as the same when matching exact duplicates "
                                  "and conflicting prompts.")
    near_duplicates: bool = _opt(True, "Find near-duplicates with MinHash (word n-gram Jaccard similarity).")
    minhash_threshold: float = _opt(0.8, "Jaccard similarity of word n-gram sets above which two records are "
                                         "near-duplicates (0-1; higher finds fewer, closer copies).")
    num_perm: int = _opt(128, "MinHash permutations: more are more precise and slower.")
    ngram: int = _opt(5, "Words per shingle for MinHash (texts shorter than this are one shingle).")
    seed: int = _opt(1, "Seed of the MinHash permutations.")
    lsh_storage: Optional[dict] = _opt(None, "datasketch MinHashLSH storage_config (e.g. {\"type\": \"redis\", ...}) "
                                             "to index near-duplicates in an external store; empty: in memory "
                                             "(same candidates as MinHashLSH, faster).")
    embedding_model: str = _opt("static-wordllama", "Embedding model for outliers and semantic duplicates: "
                                "'static-wordllama' (fast, bundled), 'minilm' (accurate, bundled) or a local "
                                "sentence-transformers folder.")
    accurate_model: str = _opt("minilm", "Model that confirms semantic leakage candidates: 'minilm' or a local "
                               "sentence-transformers folder.")
    outlier_model: str = _opt("auto", "Embedding model for the outlier score: 'auto' uses the accurate model "
                              "(MiniLM) on a GPU or for up to auto_accurate_max records on a CPU, the fast one "
                              "beyond; or name a model as above.")
    auto_accurate_max: int = _opt(5000, "With outlier_model 'auto' on a CPU: the most records embedded with "
                                        "the accurate model (it embeds ~50 texts/s on 2 cores).")
    semantic_duplicates: bool = _opt(True, "Report pairs of records whose embeddings are nearly identical "
                                           "(same meaning, other words).")
    semantic_threshold: float = _opt(0.95, "Cosine similarity above which two records are semantic duplicates.")
    outliers: bool = _opt(True, "Score every record by its distance to its nearest neighbours and flag "
                                "unusual ones (off-topic examples).")
    knn_k: int = _opt(10, "Neighbours used for the outlier score.")
    iqr_factor: float = _opt(1.5, "Outlier cut-off: scores above Q3 + factor x IQR are flagged.")
    outlier_max_share: float = _opt(0.01, "Flag at most this share of the records as outliers (the most unusual; "
                                          "0.01 = 1%), so that the list stays reviewable on large sets; the "
                                          "Outliers view can list more. 1 = no cap.")
    outlier_min_count: int = _opt(20, "The cap above never flags fewer than this many records (small sets).")
    length_outliers: bool = _opt(True, "Flag records whose length is far outside the usual range.")
    leakage: bool = _opt(True, "Check the training records against the held-out/test set.")
    leak_ngram: int = _opt(13, "Words in the n-grams of the overlap check (13 as in big pre-training "
                               "decontamination).")
    leak_minhash_threshold: float = _opt(0.6, "Jaccard similarity above which a training prompt near-matches a "
                                              "test prompt.")
    semantic_leakage: bool = _opt(True, "Find rephrased test items (same question in other words) with "
                                        "embeddings: a fast shortlist confirmed by the accurate model.")
    engine: str = _opt("local", "Where the scan runs: 'local' (this process) or 'ray' (a Ray cluster, see "
                              "docs/scaling.md; same report).")
    ray_address: str = _opt("", "Ray cluster for engine 'ray': empty starts Ray on this machine, 'auto' joins the "
                                "cluster this machine is part of, 'HOST:PORT' or 'ray://HOST:PORT' a remote one.")
    against_index: str = _opt("", "Corpus index to check the records against (a folder, or redis://HOST:PORT/DB): "
                                  "copies, near-duplicates and semantic duplicates of records already indexed with "
                                  "`ftcurate index add`. Empty: no check.")
    heuristics: HeuristicSettings = field(default_factory=HeuristicSettings,
                                          metadata={"help": "Per-record checks (empty, placeholder, truncated, "
                                                            "too long, refusal, PII, mojibake, repetition...)."})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["heuristics"] = self.heuristics.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "") -> "ScanSettings":
        """Settings from a dict (``scan --set``, the app's saved settings), as strictly as
        :meth:`from_json`: "no" or "false" as a string is never taken for True."""
        from ..config import from_dict

        d = dict(d)
        if isinstance(d.get("heuristics"), HeuristicSettings):
            d["heuristics"] = asdict(d["heuristics"])
        return from_dict(cls, d, where=where)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str = "") -> "ScanSettings":
        """Settings from JSON text, strictly (ftcurate.core.config): booleans true/false or
        1/0, typed numbers, unknown keys an error naming the key (ConfigError, a ValueError)."""
        from ..config import from_json_text

        return from_json_text(cls, text, where=where)

    def hash(self, *names: str) -> str:
        """Hash of the named settings (all when none): a cache key part."""
        d = self.to_dict()
        if names:
            d = {k: d[k] for k in names}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    @staticmethod
    def help(name: str) -> str:
        for f in fields(ScanSettings):
            if f.name == name:
                return f.metadata.get("help", "")
        return ""


class NotEnoughMemory(ValueError):
    """A stage of the scan would need more memory than the machine has available; raised
    before the stage starts (nothing of it has run)."""


def available_memory() -> Optional[int]:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``; psutil
    elsewhere), or None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - no psutil, or it cannot tell
        return None


def stage_memory(stage: str, n: int, s: "ScanSettings", dim: int = 384) -> int:
    """Bytes a stage allocates for ``n`` records beyond what the scan already holds (an upper
    estimate; measured peaks in benchmarks/bench_scale.py): MinHash signatures and their
    distinct rows; the embedding matrix (and its distinct rows); the neighbour lists (counted
    twice: a margin for the blocks in flight), each row's nearest clusters and the rows grouped by cluster (clustered
    search, core/quality/ivf.py)."""
    mib = 1 << 20
    if stage == "near duplicates":
        return 2 * n * s.num_perm * 4 + n * 48 + 64 * mib
    if stage == "embeddings":
        return 2 * n * dim * 4 + n * 200 + 64 * mib
    if stage == "neighbours":
        from .neighbors import KNN_PROBES

        return n * max(s.knn_k, 20) * 12 * 2 + n * KNN_PROBES * (4 * 2 + 8 * 2) + 160 * mib
    return 0


def _check_memory(stage: str, n: int, s: "ScanSettings") -> None:
    need = stage_memory(stage, n, s)
    have = available_memory()
    if need and have is not None and need > have:
        gib = 1 << 30
        raise NotEnoughMemory(
            f"the {stage} stage of this scan of {n:,} records needs about {need / gib:.1f} GB of memory and "
            f"{have / gib:.1f} GB is available; nothing of it was started. Close other programs, scan fewer "
            "records at a time, or switch the stage off in the scan settings.")


def user_text(record: Record) -> str:
    """What the user asks (user turns only): the system prompt is shared by most records and
    would hide how unusual or how close two requests are."""
    return "\n".join(m.content or "" for m in record.messages if m.role == "user")


def body_text(record: Record) -> str:
    """User and assistant turns, without the system prompt."""
    return "\n".join(m.content or "" for m in record.messages if m.role != "system")


def _asked_text(record: Record) -> str:
    """What a record's embedding is of: its user turns, or its body when it has none."""
    return user_text(record) or body_text(record)


def content_text(record: Record) -> str:
    """The whole conversation as text with roles, for exact-duplicate matching."""
    return "\n".join(f"{m.role}: {m.content or ''}" + (json.dumps(m.tool_calls, sort_keys=True) if m.tool_calls else "")
                     for m in record.messages)


class _Stages:
    """Scan progress in records, stage by stage.

    Every call is ``progress(done, n, "Step k/N: <stage> — <what it does now>")`` where ``n`` is
    the number of training records scanned and ``done`` the records the stage has got through:
    a stage's own progress, in whatever unit its scanner counts (signatures, candidate pairs,
    embedding phases), is turned into records as a fraction of the stage and never moves
    backwards. ``k``/``N``: the stage's place among the stages this scan runs. Long waits with
    no count of their own are named in the message (e.g. "loading the embedding model…")."""

    def __init__(self, progress: Optional[ProgressCallback], cancel: Optional[CancelCheck],
                 names: Sequence[str], n: int) -> None:
        self.progress = progress
        self.cancel = cancel
        self.names = list(names)
        self.n = int(n)
        self.timings: dict[str, float] = {}

    def run(self, name: str, fn: Callable[..., object], *args, timing: Optional[str] = None, **kwargs):
        """Run stage ``name``: ``fn(*args, progress=..., cancel=..., **kwargs)``; its time is
        added to ``timings[timing or name]``."""
        Reporter(None, self.cancel).check()
        k = self.names.index(name) + 1 if name in self.names else len(self.names)
        head = f"Step {k}/{len(self.names)}: {name}"
        n = self.n
        last = [0]

        def say(done: int, message: str = "") -> None:
            if self.progress is not None:
                self.progress(done, n, f"{head} — {message}" if message else head)

        def sub(done: int, total: int, message: str = "") -> None:
            if total:
                last[0] = max(last[0], int(n * min(1.0, max(0.0, done / total))))
            say(last[0], message)

        t = time.perf_counter()
        say(0)
        try:
            result = fn(*args, progress=sub if self.progress is not None else None, cancel=self.cancel, **kwargs)
        finally:
            release_free_memory()
        key = timing or name
        self.timings[key] = round(self.timings.get(key, 0.0) + time.perf_counter() - t, 3)
        say(n, "done")
        return result


def release_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc ``malloc_trim``; elsewhere
    nothing). A stage frees hundreds of MB of temporaries at 1M records, much of it in the
    middle of the heap, where ``free`` keeps it: without this the peaks of the stages pile up
    (benchmarks/bench_scale.py, peak RSS per stage)."""
    global _TRIM
    if _TRIM is None:
        _TRIM = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
            except (OSError, AttributeError):
                pass
    if _TRIM:
        _TRIM(0)


_TRIM = None


def _stage_names(s: "ScanSettings", n: int, have_test: bool, validation: bool) -> list[str]:
    names = ["heuristics", "exact duplicates"]
    if s.near_duplicates:
        names.append("near duplicates")
    if (s.outliers or s.semantic_duplicates) and n > 1:
        names.append("embeddings")
        if n > s.knn_k:
            names.append("neighbours")
            if s.outliers:
                names.append("outliers")
        if s.semantic_duplicates:
            names.append("semantic duplicates")
    if have_test:
        names.append("leakage")
    if validation:
        names.append("validation leakage")
    if s.against_index:
        names.append("against index")
    return names


def scan_records(train: "Sequence[tuple[int, Record]] | RecordColumns", test: Sequence[tuple[int, Record]] = (),
                 validation: Sequence[tuple[int, Record]] = (),
                 settings: Optional[ScanSettings] = None, cache=None, flag_cache=None, counter=None,
                 progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None,
                 on_result: Optional[Callable[[str, object], None]] = None) -> dict:
    """Scan ``train`` (pairs of report index and record, or a
    :class:`~ftcurate.core.project.columns.RecordColumns`, whose keys are the report indices:
    the scan then holds no record as an object longer than a pass) and, when given, ``test``.

    ``cache`` / ``flag_cache``: caches for embeddings and heuristic flags with
    ``get_many(namespace, hashes)`` / ``put_many(namespace, items)`` (e.g.
    :class:`~ftcurate.core.quality.embeddings.ProjectCache`), or None.
    ``on_result(section, value)`` is called as each part of the report is ready (the app
    shows results as they finish). Returns the report dict (see docs/scanning.md)."""
    from . import dedup
    from . import outliers as outl
    from ..io.validate import TokenCounter

    s = settings or ScanSettings()
    counter = counter or TokenCounter()
    if isinstance(train, RecordColumns):  # a column store: records parsed a pass at a time
        keys, recs = train.keys.tolist(), train
    else:
        keys = [k for k, _ in train]
        recs = [r for _, r in train]
    tkeys = [k for k, _ in test]
    trecs = [r for _, r in test]
    have_test = bool(test) and s.leakage
    if s.near_duplicates and s.lsh_storage:
        dedup.check_lsh_storage(s.lsh_storage)  # a Redis server that is down: say so before any work
    if s.against_index:
        from ..index import check_index

        check_index(s.against_index)  # a missing folder, Redis down: say so before any work
    st = _Stages(progress, cancel, _stage_names(s, len(recs), have_test, bool(validation) and s.leakage),
                 len(recs))
    report: dict = {"version": REPORT_VERSION, "records": len(recs), "test_records": len(trecs),
                    "settings": public_settings(s)}

    def emit(section: str, value) -> None:
        report[section] = value
        if on_result is not None:
            on_result(section, value)

    # Heuristic flags (cached per record).
    from .recordpass import conflicts_of, groups_of, workers

    rp = None
    if workers(len(recs)) > 1 and getattr(counter, "_tok", None) is None:
        # a large set: flags, exact fingerprints and token counts in one pass on every core
        flags, rp = st.run("heuristics", _pass_heuristics, recs, s, flag_cache)
    else:
        flags = st.run("heuristics", _cached_heuristics, recs, s.heuristics, counter, flag_cache)
    emit("flags", [{"index": keys[i], "flag": f, "reason": r} for i, f, r in flags])

    # Exact duplicates and conflicting answers.
    def exact(progress=None, cancel=None):
        if rp is not None:  # fingerprints from the record pass
            return groups_of(rp.content), conflicts_of(rp.prompt, rp.answer)
        texts, prompts, answers = columns_of(recs, content_text, attrgetter("prompt_text"), attrgetter("answer_text"))
        groups = dedup.exact_duplicate_groups(texts, lowercase=s.lowercase)
        conflicts = dedup.conflicting_groups(prompts, answers, lowercase=s.lowercase)
        return groups, conflicts

    groups, conflicts = st.run("exact duplicates", exact)
    # of the record pass only the token counts are needed further on (length outliers): its
    # fingerprint lists (three 16-byte keys a record) go now
    tokens = np.asarray(rp.tokens, dtype=np.int64) if rp is not None else None
    rp = None
    emit("exact_duplicates", [[keys[i] for i in g] for g in groups])
    emit("conflicting", [[keys[i] for i in g] for g in conflicts])

    # Near duplicates (MinHash + LSH).
    if s.near_duplicates:
        _check_memory("near duplicates", len(recs), s)
        texts, answers = columns_of(recs, attrgetter("text"), attrgetter("answer_text"))
        clusters = st.run("near duplicates", dedup.near_duplicate_clusters, texts,
                          threshold=s.minhash_threshold,
                          num_perm=s.num_perm, ngram=s.ngram, seed=s.seed, answers=answers,
                          storage_config=s.lsh_storage)
        del texts, answers
        emit("near_duplicates", [[keys[i] for i in c.indices] for c in clusters])
        emit("near_duplicate_clusters", [
            {"indices": [keys[i] for i in c.indices], "keep": keys[c.keep], "reason": c.reason,
             "pairs": [{"a": keys[a], "b": keys[b], "similarity": round(float(sim), 4)} for a, b, sim in c.pairs]}
            for c in clusters])
    else:
        emit("near_duplicates", [])
        emit("near_duplicate_clusters", [])

    # Embeddings of what each record asks: outliers and semantic duplicates share one
    # embedding pass and, on large sets, one nearest-neighbour search.
    from .embeddings import embed
    from .neighbors import EXACT_MAX, knn_search

    emb = nbrs = found = None
    if (s.outliers or s.semantic_duplicates) and len(recs) > 1:
        model = _outlier_model(s, len(recs))
        _check_memory("embeddings", len(recs), s)
        emb = st.run("embeddings", embed, columns_of(recs, _asked_text)[0], model=model, cache=cache)
        report["embedding_model"] = model
        if len(recs) > s.knn_k:
            _check_memory("neighbours", len(recs), s)
            found = st.run("neighbours", knn_search, emb,
                           k=max(s.knn_k, 20) if len(recs) > EXACT_MAX else s.knn_k)
            nbrs = (found.idx, found.sim)
    if s.outliers and nbrs is not None:
        k_idx, k_sim = nbrs[0][:, :s.knn_k], nbrs[1][:, :s.knn_k]
        # approximate lists give upper bounds of the scores: the rows that could be flagged are
        # searched again (exactly when affordable) so the flagged list is the exact search's
        res = st.run("outliers", outl.knn_outliers, emb, k=s.knn_k, iqr_factor=s.iqr_factor,
                     neighbors=(k_idx, k_sim), max_share=s.outlier_max_share, min_count=s.outlier_min_count,
                     refine=None if found.exact else lambda rows: found.refine(rows, s.knn_k))
        del k_idx, k_sim
        emit("outliers", [{"index": keys[i], "score": round(float(res.scores[i]), 4)} for i in res.flagged])
        emit("outlier_scores", {"model": report["embedding_model"], "cutoff": round(float(res.cutoff), 4),
                                "fence": round(float(res.fence), 4), "max_share": s.outlier_max_share,
                                "scores": np.round(res.scores.astype(np.float64), 4).tolist()})
    else:
        emit("outliers", [])
    if s.length_outliers and recs:
        lengths = tokens if tokens is not None else [counter.messages(r)[0] for r in recs]
        lres = outl.length_outliers(lengths, iqr_factor=s.iqr_factor)
        emit("length_outliers", [{"index": keys[i], "tokens": int(lengths[i]), "score": round(float(lres.scores[i]), 4)}
                                 for i in lres.flagged])
    if s.semantic_duplicates and emb is not None:
        from .semantic import semantic_duplicates

        big = nbrs is not None and len(recs) > EXACT_MAX
        # a record gets at most SEMANTIC_PARTNERS partners on small sets too (large sets: its
        # neighbour list): thousands of copies of one prompt would give millions of pairs
        pairs = st.run("semantic duplicates", semantic_duplicates, emb, threshold=s.semantic_threshold,
                       neighbors=nbrs if big else None, max_partners=None if big else SEMANTIC_PARTNERS)
        emit("semantic_duplicates", [{"a": keys[a], "b": keys[b], "similarity": round(float(c), 4)}
                                     for a, b, c in pairs])

    found = None  # the graph (kept for refining the outlier candidates) is not needed any more

    # Leakage between train and test (and validation, inside a project).
    if have_test:
        # the semantic leak shortlist embeds the user turns with the same model: reuse them
        fast = emb if emb is not None and report.get("embedding_model") == s.embedding_model else None
        nbrs = None  # the neighbour lists are not needed any more
        emit("leakage", st.run("leakage", _leakage, recs, trecs, keys, tkeys, s, cache, train_emb_fast=fast))
        emit("test_duplicates", [[tkeys[i] for i in g] for g in
                                 dedup.exact_duplicate_groups([content_text(r) for r in trecs], s.lowercase)])
    else:
        emit("leakage", [])
    if validation and s.leakage:
        vkeys = [k for k, _ in validation]
        vrecs = [r for _, r in validation]
        emit("validation_leakage", st.run("validation leakage", _leakage, recs, vrecs, keys, vkeys, s, cache,
                                          timing="leakage"))
    if s.against_index:  # records already in a corpus index (ftcurate.core.index)
        from ..index import against_index

        emit("against_index", st.run("against index", against_index, s.against_index, recs, keys, cache=cache))
    report["timings"] = st.timings
    return report


def public_settings(s: ScanSettings) -> dict:
    """The settings as a report keeps them: a password in ``against_index`` is left out."""
    d = s.to_dict()
    if d.get("against_index"):
        from ..index import redact_location

        d["against_index"] = redact_location(d["against_index"])
    return d


def _leakage(recs, trecs, keys, tkeys, s: ScanSettings, cache, progress=None, cancel=None,
             train_emb_fast=None) -> list[dict]:
    """Leak entries of the report, each with its ``evidence`` (see docs/scanning.md). Progress:
    one monotone 0..1000 scale, text checks first, then the semantic scan."""
    from . import dedup
    from .textleak import matched_words, word_document_frequency

    text_end = 200 if s.semantic_leakage else 1000
    leaks = _text_leakage(recs, trecs, s, progress=dedup.sub_progress(progress, 0, text_end), cancel=cancel)
    prompts = columns_of(recs, user_text)[0]
    test_prompts = [user_text(r) for r in trecs]
    if train_emb_fast is not None:
        no_user = [i for i, p in enumerate(prompts) if not p]
        if no_user:  # embedded by their body for the outlier score; no prompt for leakage
            train_emb_fast = train_emb_fast.copy()
            train_emb_fast[no_user] = 0.0
    hits = [{"index": keys[h.index], "test_index": tkeys[h.test_index], "method": h.method,
             "score": round(float(h.score), 4), "field": h.field, "_h": h} for h in leaks]
    sem = []
    if s.semantic_leakage:
        from .semantic import semantic_leaks

        sem = semantic_leaks(prompts, test_prompts, fast_model=s.embedding_model, accurate_model=s.accurate_model,
                             cache=cache, train_emb_fast=train_emb_fast,
                             progress=dedup.sub_progress(progress, text_end, 1000), cancel=cancel)
        hits += [{"index": keys[h.train_index], "test_index": tkeys[h.test_index], "method": "semantic",
                  "score": round(float(h.score), 4), "field": "prompt", "_h": h} for h in sem]
    out = _best_hits(hits)
    # why each pair was flagged: the shared n-gram, or the words both texts share (rarest in the
    # test set first)
    dfs: dict[str, dict] = {}
    tpos = {k: i for i, k in enumerate(tkeys)}
    kpos = {k: i for i, k in enumerate(keys)}
    # prompts: the user turns (a shared system prompt's words say nothing about the pair)
    field_text = {"prompt": (lambda r: user_text(r) or r.prompt_text), "answer": (lambda r: r.answer_text)}
    for h in out:
        raw = h.pop("_h")
        if h["method"] == "ngram" and getattr(raw, "evidence", None):
            h["evidence"] = dict(raw.evidence)
            continue
        get = field_text.get(h["field"], lambda r: r.text)
        fkey = h["field"]
        if fkey not in dfs:
            dfs[fkey] = word_document_frequency([get(r) for r in trecs])
        ev: dict = {"matched_words": matched_words(get(recs[kpos[h["index"]]]), get(trecs[tpos[h["test_index"]]]),
                                                   dfs[fkey])}
        if h["method"] == "semantic":
            ev["margin"] = round(float(raw.margin), 4)
        h["evidence"] = ev
    return out


def _outlier_model(s: ScanSettings, n: int) -> str:
    if s.outlier_model != "auto":
        return s.outlier_model
    from .embeddings import default_device

    if default_device() != "cpu" or n <= s.auto_accurate_max:
        return s.accurate_model
    return s.embedding_model


def _best_hits(hits: list[dict]) -> list[dict]:
    """One hit per (train, test, method): the best-scoring field; sorted by train index."""
    best: dict[tuple, dict] = {}
    for h in hits:
        k = (h["index"], h["test_index"], h["method"])
        if k not in best or h["score"] > best[k]["score"]:
            best[k] = h
    order = {"exact": 0, "ngram": 1, "minhash": 2, "semantic": 3}
    return sorted(best.values(), key=lambda h: (h["index"], order.get(h["method"], 9), h["test_index"]))


def _text_leakage(recs, trecs, s: ScanSettings, progress=None, cancel=None):
    from . import dedup, textleak

    out = []
    steps = [("prompt", "exact"), ("prompt", "ngram"), ("prompt", "minhash"), ("answer", "exact"), ("answer", "ngram")]
    get = {"prompt": attrgetter("prompt_text"), "answer": attrgetter("answer_text")}
    # both fields' training texts in one pass over the records (a column store parses each once)
    train_texts = dict(zip(get, columns_of(recs, *get.values())))
    for k, (field_name, method) in enumerate(steps):
        a, b = train_texts[field_name], [get[field_name](r) for r in trecs]
        sub = dedup.sub_progress(progress, 1000 * k // len(steps), 1000 * (k + 1) // len(steps))
        label = {"exact": "exact copies", "ngram": "13-word overlaps", "minhash": "near copies (MinHash)"}[method]
        if sub is not None:
            sub(0, 1, f"{label} of {field_name}s")
        if method == "exact":
            # a short answer ("4", "True") is no evidence of a leak
            out += textleak.exact_leaks(a, b, field=field_name, lowercase=True,
                                        min_tokens=8 if field_name == "answer" else 0)
        elif method == "ngram":
            out += textleak.ngram_leaks(a, b, n=s.leak_ngram, field=field_name, cancel=cancel,
                                        progress=_relabel(sub, f"{label} of {field_name}s"))
        else:
            out += textleak.minhash_leaks(a, b, threshold=s.leak_minhash_threshold, num_perm=s.num_perm,
                                          ngram=s.ngram, seed=s.seed, field=field_name, cancel=cancel,
                                          progress=_relabel(sub, f"{label} of {field_name}s"))
        if sub is not None:
            sub(1, 1, f"{label} of {field_name}s")
    return out


def _relabel(progress: Optional[ProgressCallback], label: str) -> Optional[ProgressCallback]:
    if progress is None:
        return None
    return lambda done, total, message="": progress(done, total, f"{label}: {message}" if message else label)


def _heuristics_key(hs: HeuristicSettings) -> str:
    """The cache namespace of heuristic flags: the rules' version and settings."""
    from .heuristics import RULES_VERSION

    return hashlib.sha256(json.dumps([RULES_VERSION, hs.to_dict()], sort_keys=True).encode()).hexdigest()[:16]


def _cached_heuristics(recs, hs: HeuristicSettings, counter, cache, progress=None, cancel=None):
    """(position, flag, reason) for every record; per-record results cached by content hash."""
    from .heuristics import check_record

    key = _heuristics_key(hs)
    hashes = [r.content_hash for r in recs]
    known = cache.get_many(key, hashes) if cache is not None else {}
    fresh = {}
    rep = Reporter(progress, cancel, total=len(recs), every=2000)
    out = []
    for i, (r, h) in enumerate(zip(recs, hashes)):
        rep.tick(i, "checking records")
        if h in known:
            found = known[h]
        else:
            found = [list(x) for x in check_record(r, hs, counter)]
            fresh[h] = found
        out += [(i, f, reason) for f, reason in found]
    if cache is not None and fresh:
        cache.put_many(key, fresh)
    return out


def _pass_heuristics(recs, s: ScanSettings, cache, progress=None, cancel=None):
    """:func:`_cached_heuristics` through :func:`~ftcurate.core.quality.recordpass.record_pass`
    (every core), which also returns the exact-duplicate fingerprints and token counts."""
    from .recordpass import record_pass

    key = _heuristics_key(s.heuristics)
    # the content JSON gives the cache key and is what the workers get (sending strings is
    # several times cheaper than pickling records; the checks read only the content); without
    # a cache it is made a chunk at a time
    contents = contents_of(recs)
    if cache is None:
        hashes, known, check = None, {}, None
    else:
        contents = contents[:]
        hashes = [sha256_text(c) for c in contents]
        known = cache.get_many(key, hashes)
        check = [h not in known for h in hashes]
    res = record_pass(contents, s.heuristics, s.lowercase, check, progress=progress, cancel=cancel)
    del contents
    out, fresh = [], {}
    for i, found in enumerate(res.flags):
        if found is None:
            found = known[hashes[i]]
        elif hashes is not None:
            fresh[hashes[i]] = found
        out += [(i, f, reason) for f, reason in found]
    if cache is not None and fresh:
        cache.put_many(key, fresh)
    return out, res


def _load(path: str, fmt: str = "auto", mapping: Optional[dict] = None, split: str = "train"):
    from ..io.formats import DatasetReader

    reader = DatasetReader(path, fmt, mapping, split=split)
    # training records go into a column store (~150 bytes a short record instead of ~800 as
    # objects); a test set is small and stays a list
    columns = split == "train"
    items, rejected = RecordColumns() if columns else [], 0
    for p in reader:
        if not p.ok:
            rejected += 1
        elif columns:
            items.append(p.index, p.record)
        else:
            items.append((p.index, p.record))
    return reader, items, rejected


def scan_files(train_path: str, test_path: Optional[str] = None, fmt: str = "auto",
               mapping: Optional[dict] = None, settings: Optional[ScanSettings] = None,
               progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None,
               on_result=None) -> dict:
    """Scan a dataset file (and a held-out file). Indices in the report are 0-based record
    positions in the files (JSONL: non-blank lines; JSON: array elements); records that
    fail validation are not scanned and are counted in ``rejected``.

    ``settings.engine`` 'ray', or a folder of shards as ``train_path``: see
    :mod:`ftcurate.core.engines` (same report)."""
    import os

    if (settings is not None and settings.engine != "local") or os.path.isdir(train_path):
        from ..engines import scan_files as engine_scan_files

        return engine_scan_files(train_path, test_path, fmt, mapping, settings, progress=progress, cancel=cancel,
                                 on_result=on_result)
    reader, train, rejected = _load(train_path, fmt, mapping)
    test, test_rejected = [], 0
    if test_path:
        _, test, test_rejected = _load(test_path, split="test")
    report = scan_records(train, test, settings=settings, progress=progress, cancel=cancel, on_result=on_result)
    report.update({"index": "file", "train_file": reader.path, "format": reader.format,
                   "records": len(train) + rejected, "scanned": len(train), "rejected": rejected})
    if test_path:
        report.update({"test_file": test_path, "test_records": len(test) + test_rejected,
                       "test_rejected": test_rejected})
    return report


def scan_project(project, settings: Optional[ScanSettings] = None, include_rejected: bool = False,
                 progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None,
                 on_result=None) -> dict:
    """Scan a project's training records (edits applied) against its test split, and its
    validation split for train/validation contamination. Indices in the report are the
    project's record ids. Embeddings and heuristic flags are cached in the project by
    content hash and settings; the report is stored as scan ``"quality"``."""
    from .embeddings import DeferredCache, ProjectCache

    s = settings or ScanSettings()

    def items(split):  # (record id, record) pairs, read as they are asked for
        return ((sr.id, sr.record) for sr in project.iter_records(split=split)
                if include_rejected or sr.status != "rejected" or split != "train")

    if s.engine != "local":  # e.g. a Ray cluster (ftcurate.core.engines); no per-record cache there
        from ..engines import scan_records_with

        train = list(items("train"))
        report = scan_records_with(s.engine, train, list(items("test")), list(items("validation")), settings=s,
                                   progress=progress, cancel=cancel, on_result=on_result)
        scanned = [rid for rid, _ in train]
    else:
        # the training records as a column store: not all of them as objects at once
        train = RecordColumns(items("train"))
        # what the scan computes goes into the project only when it completes: a cancelled or
        # failed scan leaves the project and its cache as they were
        emb_cache = DeferredCache(ProjectCache(project, "embedding"))
        flag_cache = DeferredCache(ProjectCache(project, "heuristics"))
        report = scan_records(train, list(items("test")), list(items("validation")), settings=s,
                              cache=emb_cache, flag_cache=flag_cache,
                              progress=progress, cancel=cancel, on_result=on_result)
        emb_cache.commit()
        flag_cache.commit()
        scanned = train.keys.tolist()
    report["index"] = "record_id"
    report["scanned_ids"] = scanned  # the order of outlier_scores["scores"]
    project.save_scan("quality", public_settings(s), report)
    return report


def summary(report: dict) -> str:
    """A few lines for people."""
    n = report.get("scanned", report.get("records", 0))
    lines = [f"scanned {n} records" + (f" against {report.get('test_records', 0)} test records"
                                       if report.get("test_records") else "")]

    def count(key):
        return len(report.get(key) or [])

    lines.append(f"  exact duplicate groups: {count('exact_duplicates')} "
                 f"({sum(len(g) - 1 for g in report.get('exact_duplicates', []))} extra copies)")
    lines.append(f"  conflicting prompt groups: {count('conflicting')}")
    lines.append(f"  near-duplicate clusters: {count('near_duplicates')}")
    if "semantic_duplicates" in report:
        lines.append(f"  semantic duplicate pairs: {count('semantic_duplicates')}")
    lines.append(f"  outliers: {count('outliers')}" + (f", length outliers: {count('length_outliers')}"
                                                       if "length_outliers" in report else ""))
    if report.get("test_records"):
        leaked = {h["index"] for h in report.get("leakage", [])}
        by = {}
        for h in report.get("leakage", []):
            by[h["method"]] = by.get(h["method"], 0) + 1
        lines.append(f"  leaking training records: {len(leaked)} (" + ", ".join(f"{k} {v}" for k, v in by.items())
                     + ")")
    if report.get("against_index") is not None:
        hits = report.get("against_index") or []
        by: dict = {}
        for h in hits:
            by[h.get("method")] = by.get(h.get("method"), 0) + 1
        lines.append(f"  already in the corpus index: {len({h['index'] for h in hits})} records"
                     + (" (" + ", ".join(f"{k} {v}" for k, v in by.items()) + ")" if by else ""))
    flags: dict = {}
    for f in report.get("flags", []):
        flags[f["flag"]] = flags.get(f["flag"], 0) + 1
    lines.append("  flags: " + (", ".join(f"{k} {v}" for k, v in sorted(flags.items())) or "none"))
    if report.get("timings"):
        lines.append("  time: " + ", ".join(f"{k} {v:.1f}s" for k, v in report["timings"].items()))
    return "\n".join(lines)
