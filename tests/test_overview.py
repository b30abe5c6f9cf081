"""Tests of the project overview (ftcurate.core.project.overview) and the embedding map
(ftcurate.core.quality.projection): counts, histograms, banners, leakage still in training, PCA,
lasso point-in-polygon, sampling and the map's caches."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pytest

from ftcurate.core.quality import embeddings, projection
from ftcurate.core.io.ingest import project_stats
from ftcurate.core.project.overview import Overview, overview
from ftcurate.core.progress import Cancelled
from ftcurate.core.quality.projection import MapData, embedding_map, pca_2d, points_in_polygon, project_2d, sample_ids
from ftcurate.core.project.records import Message, Record, Source
from ftcurate.core.project.store import Project

TOPICS = {
    "cooking": ["How long do I boil {} eggs?", "What goes well with roasted {}?", "Can I freeze cooked {}?"],
    "python": ["How do I sort a list of {} in Python?", "Why does my {} loop raise a KeyError?",
               "What is a Python {} comprehension?"],
    "space": ["How far away is the planet {}?", "Why does {} have rings?", "When can I see {} with a telescope?"],
}
FILLERS = ["seven", "big", "fresh", "small", "old", "many", "red", "blue", "green", "new"]


def make_record(i: int, split: str = "train", turns: int = 1, topic: Optional[str] = None,
                answer: Optional[str] = None) -> Record:
    topic = topic or list(TOPICS)[i % len(TOPICS)]
    templates = TOPICS[topic]
    question = templates[(i // 3) % len(templates)].format(FILLERS[i % len(FILLERS)])
    msgs = [Message("system", "You are a helpful assistant.")]
    for t in range(turns):
        msgs.append(Message("user", question if t == 0 else f"And what about case {t}?"))
        msgs.append(Message("assistant", answer or f"Here is a short answer about {topic}, number {i}."))
    return Record(messages=msgs, source=Source("data.jsonl", i + 1, i), split=split)


def build_project(tmp_path: Path, n_train: int = 30, n_test: int = 0, n_validation: int = 0,
                  turns=None, name: str = "p.ftcurate") -> Project:
    """A project with ``n_train`` training records over three topics (plus test and
    validation records); ``turns(i)`` gives each training record's number of turns."""
    p = Project.create(tmp_path / name, reviewer="tester")
    sid = p.add_source(tmp_path / "data.jsonl", "jsonl", total=n_train + n_validation)
    recs = [make_record(i, turns=turns(i) if turns else 1) for i in range(n_train)]
    recs += [make_record(n_train + i, split="validation") for i in range(n_validation)]
    p.add_records(sid, recs)
    if n_test:
        tid = p.add_source(tmp_path / "test.jsonl", "jsonl", role="test", total=n_test)
        p.add_records(tid, [make_record(i, split="test") for i in range(n_test)])
    return p


@pytest.fixture
def project(tmp_path):
    p = build_project(tmp_path, n_train=40, n_test=6, n_validation=4, turns=lambda i: 1 + (i % 4 == 0))
    yield p
    p.close()


# -- overview ------------------------------------------------------------------------------------


def test_overview_counts_histograms_and_training_run(project):
    train = project.ids(split="train")
    project.approve(train[:10])
    project.reject(train[10:15])
    rec = project.get(train[15]).record
    rec.messages[-1].content = "An edited, much longer answer " * 20
    project.edit(train[15], rec)
    seen = []
    ov = overview(project, progress=lambda d, t, m: seen.append((d, t)))
    assert isinstance(ov, Overview)
    assert ov.records == 50
    assert ov.status == {"unreviewed": 34, "approved": 10, "rejected": 5, "edited": 1}
    assert ov.splits == {"train": 40, "validation": 4, "test": 6}
    assert ov.approved == 11
    assert ov.unreviewed_train == 24  # test and validation records are never reviewed for training
    assert any("24 training records are still unreviewed" in t for _lv, t in ov.banners)
    # the run: approved and edited training records, as an approved-only export counts them
    stats = project_stats(project, include="approved")["stats"]
    assert ov.run_examples == stats["examples"] == 11
    assert ov.run_tokens == stats["total_tokens"]
    assert ov.run_stats["billed_tokens"] == stats["billed_tokens"]
    assert ov.run_tokens == int(ov.tokens[ov.in_run].sum())
    # per record, ascending ids; the edited record counts its edit
    assert list(ov.ids) == sorted(project.ids())
    assert len(ov.tokens) == len(ov.turns) == len(ov.in_run) == 50
    row = list(ov.ids).index(train[15])
    assert ov.tokens[row] > ov.tokens[list(ov.ids).index(train[16])] + 100
    # histograms count every record once (the run's records too)
    assert ov.token_counts.sum() == 50 and ov.token_counts_run.sum() == 11
    assert len(ov.token_edges) == len(ov.token_counts) + 1
    assert ov.token_edges[0] <= ov.tokens.min() and ov.token_edges[-1] > min(ov.tokens.max(), ov.token_clip or 1e9)
    assert dict(zip(ov.turn_values.tolist(), ov.turn_counts.tolist())) == {1: 40, 2: 10}
    assert ov.turn_counts_run.sum() == 11
    assert not ov.flags and not ov.has_report
    assert seen and seen[-1] == (50, 50)


def test_a_giant_record_shares_the_last_token_bar(tmp_path):
    p = build_project(tmp_path, n_train=300)
    rid = p.ids()[0]
    rec = p.get(rid).record
    rec.messages[-1].content = "word " * 40000
    p.edit(rid, rec)
    ov = overview(p)
    assert ov.token_clip is not None and ov.token_clip < ov.tokens.max()
    assert ov.token_counts.sum() == 300
    assert ov.token_edges[-1] <= ov.token_clip + 1  # the bars are not squashed by one record
    p.close()


@pytest.mark.parametrize("approved, level, words", [
    (0, "error", "little will be learnt"),
    (99, "error", "little will be learnt"),
    (100, "warning", "overfitting is likely; 500–1,000 clean examples beat many noisy ones"),
    (999, "warning", "overfitting is likely"),
    (1000, None, None),
])
def test_size_banners(tmp_path, approved, level, words):
    p = build_project(tmp_path, n_train=1000, n_test=2)
    ids = p.ids(split="train")
    if approved:
        p.approve(ids[:approved])
    ov = overview(p, report={"flags": []})
    size = [(lv, text) for lv, text in ov.banners if "training examples" in text]
    if level is None:
        assert size == []
        assert ov.banners == []  # scanned, has a test set, enough data: nothing to say
    else:
        assert len(size) == 1 and size[0][0] == level and words in size[0][1]
        assert f"{approved:,} approved" in size[0][1]
    p.close()


def test_unresolved_leakage_banner_counts_records_still_in_training(project):
    train = project.ids(split="train")
    test = project.ids(split="test")
    report = {"leakage": [
        {"index": train[0], "test_index": test[0], "method": "exact", "score": 1.0, "field": "prompt"},
        {"index": train[0], "test_index": test[1], "method": "ngram", "score": 0.5, "field": "answer"},
        {"index": train[1], "test_index": test[2], "method": "minhash", "score": 0.8, "field": "prompt"},
        {"index": train[2], "test_index": test[3], "method": "exact", "score": 1.0, "field": "prompt"},
    ], "validation_leakage": [
        {"index": train[3], "test_index": project.ids(split="validation")[0], "method": "exact", "score": 1.0,
         "field": "prompt"}]}
    ov = overview(project, report=report)
    assert ov.unresolved_leaks == 3  # distinct training records
    assert ov.unresolved_validation_leaks == 1
    assert ov.flags["leakage"] == 3 and ov.flags["validation leakage"] == 1
    leak = [t for lv, t in ov.banners if "leak" in t and lv == "error"]
    assert len(leak) == 1 and leak[0].startswith("3 training records leak the test set")
    assert ov.banners[0][0] == "error"  # most serious first

    project.reject(train[0])  # removed from training
    project.set_split(train[1], "test")  # moved to the test split
    ov = overview(project, report=report)
    assert ov.unresolved_leaks == 1
    assert any(t.startswith("1 training record leaks the test set and is still") for _lv, t in ov.banners)
    assert ov.flags["leakage"] == 3 and ov.flags_open["leakage"] == 2  # the rejected one is resolved

    project.reject([train[2], train[3]])
    ov = overview(project, report=report)
    assert ov.unresolved_leaks == 0 and ov.unresolved_validation_leaks == 0
    assert not any("leak" in t or "validation records" in t for _lv, t in ov.banners)


def test_flag_counts_from_the_report(project):
    ids = project.ids(split="train")
    report = {
        "flags": [{"index": ids[0], "flag": "refusal", "reason": "x"}, {"index": ids[1], "flag": "refusal", "reason": "y"},
                  {"index": ids[1], "flag": "pii", "reason": "z"}, {"index": 99999, "flag": "pii", "reason": "gone"}],
        "exact_duplicates": [[ids[2], ids[3], ids[4]]],
        "near_duplicate_clusters": [{"indices": [ids[5], ids[6]], "keep": ids[6], "reason": "", "pairs": []}],
        "outliers": [{"index": ids[7], "score": 0.9}],
        "length_outliers": [{"index": ids[8], "tokens": 9000, "score": 5.0}],
    }
    project.reject(ids[2])
    ov = overview(project, report=report)
    assert ov.has_report
    assert ov.flags == {"exact duplicate": 3, "near duplicate": 2, "outlier": 1, "length outlier": 1,
                        "refusal": 2, "pii": 1}  # record 99999 is not in the project
    assert ov.flags_open["exact duplicate"] == 2 and ov.flags_open["refusal"] == 2
    assert not any("No quality scan" in t for _lv, t in ov.banners)


def test_overview_cancels_and_handles_an_empty_project(tmp_path, project):
    with pytest.raises(Cancelled):
        overview(project, cancel=lambda: True)
    empty = Project.create(tmp_path / "empty.ftcurate")
    ov = overview(empty)
    assert ov.records == 0 and ov.run_examples == 0 and len(ov.token_counts) == 0
    assert ov.banners == [("info", "This project has no records yet: import a dataset.")]
    empty.close()


# -- projection ---------------------------------------------------------------------------------


def test_pca_fallback_shape_determinism_and_axes(monkeypatch):
    monkeypatch.setattr(projection, "umap_available", lambda: False)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 32)).astype(np.float32)
    x[:, 0] *= 10  # the widest direction: the first axis
    x[:, 1] *= 5
    xy, method = project_2d(x)
    assert method == "pca" and xy.shape == (500, 2) and xy.dtype == np.float32
    again, _ = project_2d(x.copy(), method="auto")
    assert np.array_equal(xy, again)
    assert np.allclose(xy.mean(axis=0), 0, atol=1e-3)
    assert abs(np.corrcoef(xy[:, 0], x[:, 0])[0, 1]) > 0.99
    assert abs(np.corrcoef(xy[:, 1], x[:, 1])[0, 1]) > 0.95
    assert xy[:, 0].var() > xy[:, 1].var()
    # edge cases: no points, one point, points on a line, one dimension
    assert project_2d(np.zeros((0, 8)), method="pca")[0].shape == (0, 2)
    assert np.array_equal(project_2d(np.ones((1, 8)), method="pca")[0], np.zeros((1, 2), np.float32))
    line = np.outer(np.arange(10, dtype=np.float32), np.ones(4, np.float32))
    xy_line = pca_2d(line)
    assert np.allclose(xy_line[:, 1], 0) and np.ptp(xy_line[:, 0]) > 1
    assert pca_2d(np.arange(5, dtype=np.float32).reshape(5, 1)).shape == (5, 2)
    with pytest.raises(ValueError):
        project_2d(x, method="tsne")


def test_a_broken_umap_install_falls_back_to_pca(monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "umap", types.ModuleType("umap"))  # a bare leftover folder
    assert not projection.umap_available()
    xy, method = project_2d(np.random.default_rng(0).normal(size=(300, 8)))
    assert method == "pca" and xy.shape == (300, 2)

    class Failing:
        def __init__(self, **kw):
            pass

        def fit_transform(self, x):
            raise RuntimeError("numba could not compile")

    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=Failing))
    assert projection.umap_available()
    xy, method = project_2d(np.random.default_rng(0).normal(size=(300, 8)))  # auto: PCA instead
    assert method == "pca" and xy.shape == (300, 2)
    with pytest.raises(RuntimeError):
        project_2d(np.zeros((300, 8)), method="umap")  # asked for by name: the error is the answer


@pytest.mark.skipif(projection.umap_available(), reason="umap is installed")
def test_umap_asked_for_without_the_package_is_an_import_error():
    with pytest.raises(ImportError):
        project_2d(np.zeros((50, 4)), method="umap")


def test_umap_keeps_clusters_apart_and_is_deterministic():
    pytest.importorskip("umap")
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(3, 16)) * 8
    labels = np.repeat(np.arange(3), 40)
    x = (centers[labels] + rng.normal(size=(120, 16))).astype(np.float32)
    xy, method = project_2d(x, method="auto")
    assert method == "umap" and xy.shape == (120, 2) and xy.dtype == np.float32 and np.isfinite(xy).all()
    # every point lies nearer its own cluster's centre on the map than any other centre
    mids = np.stack([xy[labels == k].mean(axis=0) for k in range(3)])
    nearest = np.argmin(((xy[:, None, :] - mids[None]) ** 2).sum(-1), axis=1)
    assert (nearest == labels).mean() > 0.95
    again, _ = project_2d(x.copy(), method="umap")
    assert np.allclose(xy, again, atol=1e-4)  # same input and seed, same map
    assert project_2d(x[:2], method="umap")[0].shape == (2, 2)  # too few points: PCA underneath


def test_points_in_polygon():
    pts = np.array([[0.5, 0.5], [1.5, 0.5], [0.5, 1.5], [1.5, 1.5], [-1, 0], [2.5, 2.5], [0.25, 0.9]])
    square = [(0, 0), (2, 0), (2, 2), (0, 2)]
    assert points_in_polygon(pts, square).tolist() == [True, True, True, True, False, False, True]
    # an L shape (concave): the top right quarter is outside
    ell = [(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)]
    assert points_in_polygon(pts, ell).tolist() == [True, True, True, False, False, False, True]
    # a closed path (first vertex repeated) and a triangle
    tri = [(0, 0), (2, 0), (0, 2), (0, 0)]
    assert points_in_polygon(pts, tri).tolist() == [True, False, False, False, False, False, True]
    assert not points_in_polygon(pts, [(0, 0), (2, 2)]).any()  # not a polygon
    assert points_in_polygon(np.zeros((0, 2)), square).shape == (0,)
    # many points: the same answer as a slow reference for a star-shaped polygon
    rng = np.random.default_rng(0)
    many = rng.uniform(-1, 1, size=(5000, 2))
    angles = np.linspace(0, 2 * np.pi, 11)[:-1]
    radii = np.where(np.arange(10) % 2, 0.4, 0.9)
    star = np.c_[radii * np.cos(angles), radii * np.sin(angles)]
    got = points_in_polygon(many, star)

    def reference(px, py):
        inside = False
        for (ax, ay), (bx, by) in zip(star, np.roll(star, -1, axis=0)):
            if (ay > py) != (by > py) and px < ax + (py - ay) * (bx - ax) / (by - ay):
                inside = not inside
        return inside

    assert got.tolist() == [reference(x, y) for x, y in many]
    assert 0 < got.sum() < 5000


def test_sample_ids_is_deterministic_and_keeps_findings():
    ids = np.arange(1, 1001)
    a = sample_ids(ids, 100, keep=[5, 7, 999], seed=0)
    b = sample_ids(ids[::-1], 100, keep=[999, 7, 5], seed=0)
    assert len(a) == 100 and np.array_equal(a, b) and np.all(np.diff(a) > 0)
    assert {5, 7, 999} <= set(a.tolist())
    assert np.array_equal(sample_ids(ids[:50], 100), ids[:50])
    assert len(sample_ids(ids, 3, keep=range(10))) == 3


def test_embedding_map_caches_vectors_and_projection(project, monkeypatch):
    ids = project.ids(split="train")
    report = {"outliers": [{"index": ids[4], "score": 0.8}],
              "outlier_scores": {"model": "static-wordllama", "cutoff": 0.5, "scores": [0.1] * len(ids)},
              "scanned_ids": ids,
              "flags": [{"index": ids[4], "flag": "refusal", "reason": "x"}, {"index": ids[5], "flag": "pii",
                                                                              "reason": "y"}],
              "leakage": [{"index": ids[6], "test_index": 1, "method": "exact", "score": 1.0, "field": "prompt"}]}
    project.reject(ids[0])
    seen = []
    m = embedding_map(project, report=report, progress=lambda d, t, msg: seen.append((d, t)))
    assert isinstance(m, MapData) and len(m) == 40 and m.total == 40 and not m.sampled
    assert list(m.ids) == ids  # training records only, rejected ones included
    assert m.xy.shape == (40, 2) and np.isfinite(m.xy).all() and m.method in ("pca", "umap")
    assert m.status[0] == "rejected" and m.status[1] == "unreviewed"
    assert m.flag[4] == "outlier" and m.flag[5] == "pii" and m.flag[6] == "leakage" and m.flag[7] == ""
    assert m.score[4] == pytest.approx(0.8) and m.score[7] == pytest.approx(0.1)
    assert not m.cached and seen[-1][0] == seen[-1][1]
    # the three topics land apart: points are closer to their own topic's centre
    topic = np.arange(40) % 3
    centres = np.stack([m.xy[topic == t].mean(axis=0) for t in range(3)])
    nearest = np.linalg.norm(m.xy[:, None, :] - centres[None], axis=2).argmin(axis=1)
    assert (nearest == topic).mean() > 0.6

    # a second call embeds nothing and projects nothing: both come from the project
    def fail(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(embeddings, "load_model", fail)
    monkeypatch.setattr(projection, "project_2d", fail)
    again = embedding_map(project, report=report)
    assert again.cached and np.array_equal(again.xy, m.xy) and np.array_equal(again.ids, m.ids)
    # statuses are always read afresh
    project.approve(ids[1])
    m.update_status(project, [ids[1]])
    assert m.status[1] == "approved"
    assert embedding_map(project, report=report).status[1] == "approved"


def test_embedding_map_of_a_read_only_project(project):
    first = embedding_map(project)
    ro = Project.open(project.path, readonly=True)
    try:
        again = embedding_map(ro)  # reads the caches, writes nothing
        assert again.cached and np.array_equal(again.xy, first.xy)
        assert len(embedding_map(ro, split=None)) == 50  # not cached: computed, not kept
    finally:
        ro.close()


def test_embedding_map_samples_large_sets_deterministically(project):
    ids = project.ids(split="train")
    report = {"outliers": [{"index": ids[-1], "score": 0.9}]}
    a = embedding_map(project, report=report, max_points=12)
    b = embedding_map(project, report=report, max_points=12)
    assert len(a) == 12 and a.total == 40 and a.sampled
    assert ids[-1] in a.ids.tolist()  # records with findings are kept
    assert np.array_equal(a.ids, b.ids) and np.array_equal(a.xy, b.xy)
    whole = embedding_map(project, split=None, max_points=0)  # every split, no sampling
    assert len(whole) == 50
    assert whole.inside([(-1e9, -1e9), (1e9, -1e9), (1e9, 1e9), (-1e9, 1e9)]) == sorted(project.ids())
    with pytest.raises(Cancelled):
        embedding_map(project, cancel=lambda: True)
