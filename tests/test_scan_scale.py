"""Issue 14 (a million records on one machine), on small data: the fast model without torch and
with the same token ids as its tokenizer, the outlier cap, a stage that would need more memory
than the machine has, and a cancelled project scan that leaves the project's cache as it was.
Speed is measured in benchmarks/bench_scale.py and bench_semhash.py, not here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ftcurate.core.progress import Cancelled
from ftcurate.core.quality import embeddings as E
from ftcurate.core.quality import scan as scan_mod
from ftcurate.core.quality.outliers import knn_outliers, outlier_cutoff
from ftcurate.core.quality.scan import NotEnoughMemory, ScanSettings, scan_project, scan_records
from test_overview import build_project, make_record

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL = os.path.join(ROOT, "..", "shared", "realdata", "gsm8k_test.jsonl")

TRICKY = ["a  b", " a", "a ", "   ", "x\ty\nz", "a \u2581b", "a\u2581b", "\u2581", "héllo wörld 你好 🙂",
          "<s>", "a <s>b", "</s> x", "<unk>", "tab\there", "The cost is $1,250.50 (about 20%)."]


def test_fast_model_loads_without_torch():
    code = ("import sys; from ftcurate.core.quality.embeddings import embed; v = embed(['How many apples?', '']); "
            "assert v.shape == (2, 256) and abs(float((v[0] ** 2).sum()) - 1) < 1e-5 and not v[1].any(); "
            "bad = [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_fast_model_token_ids_equal_the_tokenizers():
    model = E.load_model(E.FAST)
    texts = list(TRICKY)
    if os.path.exists(REAL):
        with open(REAL, encoding="utf-8") as f:
            texts += [json.loads(line)["question"] for line in f][:300]
    flat, lens = model.token_ids(texts)
    want = [e.ids for e in model.tokenizer.encode_batch(texts, add_special_tokens=False)]
    assert lens.tolist() == [len(w) for w in want]
    assert flat.tolist() == [i for w in want for i in w]
    # the mean of the token vectors, as sentence-transformers' StaticEmbedding computes it
    k = texts.index("a  b")
    v = model.encode([texts[k]])[0]
    assert np.allclose(v, model.weights[want[k]].mean(axis=0), atol=1e-6)


def test_outlier_cap_on_a_large_uniform_set():
    rng = np.random.default_rng(0)
    scores = rng.gamma(4.0, 0.02, size=20_000)  # right-skewed, like kNN distances of similar records
    planted = np.arange(10)
    scores[planted] = 0.9 + planted / 100
    _cut, fence, plain = outlier_cutoff(scores, 1.5)
    assert len(plain) > 0.01 * len(scores)  # the fence alone flags more than 1%
    cut, fence2, capped = outlier_cutoff(scores, 1.5, max_share=0.01, min_count=20)
    assert fence2 == fence and cut > fence and len(capped) <= 200
    assert set(planted) <= set(capped) and capped[:10] == sorted(planted.tolist(), reverse=True)
    assert all(scores[i] > cut for i in capped) and not any(scores[i] > cut for i in set(range(len(scores))) - set(capped))
    # a small set is never capped below min_count
    small = np.concatenate([rng.gamma(4.0, 0.02, size=300), [0.9, 0.91, 0.92, 0.93, 0.94, 0.95]])
    assert len(outlier_cutoff(small, 1.5, max_share=0.01, min_count=20)[2]) == len(outlier_cutoff(small, 1.5)[2])


def test_knn_outliers_reports_cutoff_and_fence():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(400, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    res = knn_outliers(emb, k=5, max_share=0.01, min_count=2)
    assert res.fence is not None and res.cutoff >= res.fence and len(res.flagged) <= 4


def _records(n):
    return [(i, make_record(i)) for i in range(n)]


def test_a_stage_needing_more_memory_than_available_stops_before_it(monkeypatch):
    monkeypatch.setattr(scan_mod, "available_memory", lambda: 1000)
    said = []
    with pytest.raises(NotEnoughMemory) as err:
        scan_records(_records(30), settings=ScanSettings(semantic_leakage=False),
                     progress=lambda d, t, m="": said.append(m))
    msg = str(err.value)
    assert "near duplicates" in msg and "30 records" in msg and "available" in msg and "nothing of it" in msg
    assert any("heuristics" in m for m in said)  # the stages before it ran
    assert not any(": near duplicates" in m for m in said)  # the stage itself never started
    # the command line says it in one line (a ValueError)
    assert isinstance(err.value, ValueError)


def test_cancelled_project_scan_leaves_the_cache_as_it_was(tmp_path, monkeypatch):
    project = build_project(tmp_path, n_train=40, n_test=3)
    puts = []
    real_put = project.cache_put_many
    monkeypatch.setattr(project, "cache_put_many", lambda *a, **k: (puts.append(a[0]), real_put(*a, **k)))
    settings = ScanSettings(semantic_leakage=False, outlier_model="static-wordllama")
    stop = {"now": False}

    def progress(done, total, message=""):
        if "neighbours" in message:  # embeddings and heuristics are done (and were cached before)
            stop["now"] = True

    with pytest.raises(Cancelled):
        scan_project(project, settings, progress=progress, cancel=lambda: stop["now"])
    assert puts == []
    assert project.load_scan("quality") is None  # no report stored either
    # a scan that completes stores its vectors and flags
    scan_project(project, settings)
    assert "embedding" in puts and "heuristics" in puts
    project.close()


def test_record_pass_on_two_processes_equals_one(monkeypatch):
    """Heuristics, exact-duplicate fingerprints and token counts on worker processes: the same
    flags, groups and counts as in this process (and as the one-by-one functions)."""
    from ftcurate.core.io.validate import TokenCounter
    from ftcurate.core.quality import dedup, recordpass
    from ftcurate.core.quality.heuristics import HeuristicSettings
    from ftcurate.core.quality.scan import _cached_heuristics, _pass_heuristics, content_text

    recs = [r for _, r in _records(150)]
    recs += [recs[3], recs[7], make_record(3)]  # exact copies
    from ftcurate.core.project.records import Message, Record

    # what the workers rebuild from the content JSON: tools, tool calls, names, empty turns
    recs += [Record([Message("user", "Weather in Oslo? <img src=x.png>"),
                     Message("assistant", None, tool_calls=[{"id": "c1", "type": "function", "function": {
                         "name": "weather", "arguments": "{\"city\": \"Oslo\"}"}}]),
                     Message("tool", "12 C", tool_call_id="c1", name="weather"),
                     Message("assistant", "")],
                    tools=[{"type": "function", "function": {"name": "weather", "parameters": {}}}],
                    metadata={"x": 1})] * 2
    monkeypatch.setattr(recordpass, "MIN_PARALLEL", 100)
    monkeypatch.setattr(recordpass, "CHUNK", 40)
    monkeypatch.setenv("FTCURATE_WORKERS", "2")
    assert recordpass.workers(len(recs)) == 2
    flags, res = _pass_heuristics(recs, ScanSettings(), None)
    assert flags == _cached_heuristics(recs, HeuristicSettings(), TokenCounter(), None)
    assert recordpass.groups_of(res.content) == dedup.exact_duplicate_groups([content_text(r) for r in recs])
    assert recordpass.conflicts_of(res.prompt, res.answer) == dedup.conflicting_groups(
        [r.prompt_text for r in recs], [r.answer_text for r in recs])
    assert res.tokens.tolist() == [TokenCounter().messages(r)[0] for r in recs]
    # a cancel stops the workers and raises
    with pytest.raises(Cancelled):
        recordpass.record_pass(recs, HeuristicSettings(), cancel=lambda: True)
