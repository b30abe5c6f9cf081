"""The scan on a real local Ray cluster (issue 15 A): head and worker node processes started in the
test (tests/ray_fixture.py), nothing mocked. A Ray scan gives the local scan's report; a worker
that dies mid-scan is retried (or the scan fails clearly, without a report); an address that does
not answer fails in seconds."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from ftcurate.cli import main  # noqa: E402
from ftcurate.core.engines.ray_engine import RayEngineError  # noqa: E402
from ftcurate.core.quality.scan import ScanSettings, scan_files  # noqa: E402

from scan_data import make_dataset, write_jsonl  # noqa: E402

pytest_plugins = ["ray_fixture"]
pytestmark = pytest.mark.xdist_group("ray")  # one cluster when run with --dist loadgroup

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "chat_train.jsonl"
HELDOUT = REPO / "resources" / "sample" / "heldout_test.jsonl"
QUICK = dict(outliers=False, semantic_duplicates=False, semantic_leakage=False, length_outliers=False)


def _pairs(report: dict) -> set:
    return {(p["a"], p["b"]) for c in report["near_duplicate_clusters"] for p in c["pairs"]}


def _same_report(local: dict, ray: dict, exact_semantic: bool = True) -> None:
    """Every section equal (semantic duplicates as a set: equal cosines may sort either way)."""
    for key, value in local.items():
        if key in ("timings", "settings"):
            continue
        if key == "semantic_duplicates":
            assert {(p["a"], p["b"]) for p in ray[key]} == {(p["a"], p["b"]) for p in value}
            continue
        if key == "outlier_scores" and not exact_semantic:
            continue
        assert ray.get(key) == value, key
    assert ray["engine"]["name"] == "ray" and ray["engine"]["nodes"] == 2


@pytest.fixture
def small_shards(monkeypatch):
    monkeypatch.setenv("FTCURATE_RAY_SHARD_SIZE", "70")  # several shards even on the small sample


def test_sample_folder_of_shards_same_report(ray_cluster, small_shards, tmp_path):
    """The bundled sample cut into a folder of shards: every finding of the local scan, with
    semantic leakage (the training prompts embedded on the cluster), numbered across the shards."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    folder = tmp_path / "pool"
    folder.mkdir()
    for k, (lo, hi) in enumerate(((0, 100), (100, 250), (250, len(lines)))):
        (folder / f"part-{k:03d}.jsonl").write_text("".join(lines[lo:hi]), encoding="utf-8")
    fast = dict(outlier_model="static-wordllama")
    local = scan_files(str(folder), str(HELDOUT), settings=ScanSettings(**fast))
    ray = scan_files(str(folder), str(HELDOUT), settings=ScanSettings(engine="ray", ray_address=ray_cluster, **fast))
    _same_report(local, ray)
    counts = [sum(1 for x in lines[lo:hi] if x.strip()) for lo, hi in ((0, 100), (100, 250), (250, len(lines)))]
    assert ray["shards"] == local["shards"] == [{"file": "part-000.jsonl", "first": 0, "records": counts[0]},
                                                {"file": "part-001.jsonl", "first": counts[0], "records": counts[1]},
                                                {"file": "part-002.jsonl", "first": counts[0] + counts[1],
                                                 "records": counts[2]}]
    assert local["leakage"] and local["near_duplicate_clusters"] and local["outliers"]
    assert {h["method"] for h in ray["leakage"]} >= {"exact", "semantic"}
    # numbers run across the shards: the whole file scanned locally names the same records
    whole = scan_files(str(SAMPLE), str(HELDOUT), settings=ScanSettings(**QUICK))
    assert whole["exact_duplicates"] == ray["exact_duplicates"]
    assert whole["near_duplicate_clusters"] == ray["near_duplicate_clusters"]


@pytest.mark.slow
def test_20k_records_ray_agrees_with_local(ray_cluster, tmp_path):
    """The issue's bar on 20,000 records: exact-duplicate groups and leaks agree exactly, near
    duplicate pairs to 99%, flagged outliers to 95% (here: all of them)."""
    train, test = make_dataset(20_000, 200, seed=1)
    tr, te = write_jsonl(tmp_path / "train.jsonl", train), write_jsonl(tmp_path / "test.jsonl", test)
    s = dict(semantic_leakage=False, semantic_duplicates=False)  # both run in test_sample_folder_of_shards...
    local = scan_files(tr, te, settings=ScanSettings(**s))
    ray = scan_files(tr, te, settings=ScanSettings(engine="ray", ray_address=ray_cluster, **s))
    assert ray["engine"]["shards"] >= 2
    assert ray["exact_duplicates"] == local["exact_duplicates"] and len(local["exact_duplicates"]) > 100
    assert ray["conflicting"] == local["conflicting"]
    assert ray["leakage"] == local["leakage"] and len(local["leakage"]) > 100
    lp, rp = _pairs(local), _pairs(ray)
    assert len(lp) > 300 and len(lp & rp) >= 0.99 * len(lp) and len(lp & rp) >= 0.99 * len(rp)
    lo, ro = {o["index"] for o in local["outliers"]}, {o["index"] for o in ray["outliers"]}
    assert len(lo) > 50 and len(lo & ro) >= 0.95 * len(lo) and len(lo & ro) >= 0.95 * len(ro)
    assert ray["length_outliers"] == local["length_outliers"]
    assert ray["flags"] == local["flags"]


def test_project_scan_on_ray(ray_cluster, small_shards, tmp_path):
    """A project (what the app scans) on Ray: the local project scan's report, in record ids."""
    from ftcurate.core.io.ingest import import_dataset
    from ftcurate.core.project.store import Project
    from ftcurate.core.quality.scan import scan_project

    with Project.open(str(tmp_path / "p.ftcurate"), create=True) as project:
        import_dataset(project, str(SAMPLE))
        import_dataset(project, str(HELDOUT), role="test")
        local = scan_project(project, ScanSettings(**QUICK))
        ray = scan_project(project, ScanSettings(engine="ray", ray_address=ray_cluster, **QUICK))
    _same_report(local, ray)
    assert ray["index"] == "record_id" and ray["leakage"]


def test_worker_killed_mid_scan_is_retried(ray_cluster, small_shards, tmp_path, monkeypatch):
    """A worker process dies in the middle of a stage (a real os._exit in the task): Ray retries
    it and the report is the same; when it dies every time, the scan stops with a clear error
    and the command line writes no report."""
    want = scan_files(str(SAMPLE), str(HELDOUT), settings=ScanSettings(**QUICK))
    for stage in ("featurize", "verify"):
        marker = tmp_path / f"crashed-{stage}"
        monkeypatch.setenv("FTCURATE_RAY_CRASH", f"{stage}:{marker}")
        got = scan_files(str(SAMPLE), str(HELDOUT), settings=ScanSettings(engine="ray", ray_address=ray_cluster,
                                                                          **QUICK))
        assert marker.exists(), stage  # the worker really died once
        _same_report(want, got)
    monkeypatch.setenv("FTCURATE_RAY_CRASH", "verify:always")
    out = tmp_path / "report.json"
    args = ["scan", str(SAMPLE), "--engine", "ray", "--address", ray_cluster, "--out", str(out)]
    for k, v in QUICK.items():
        args += ["--set", f"{k}={str(v).lower()}"]
    rc = main(args)
    assert rc == 2 and not out.exists()


def test_unreachable_address_fails_in_seconds(tmp_path, capsys):
    from redis_fixture import free_port

    address = f"127.0.0.1:{free_port()}"
    t = time.monotonic()
    with pytest.raises(RayEngineError, match="no Ray cluster answers at"):
        scan_files(str(SAMPLE), settings=ScanSettings(engine="ray", ray_address=address, **QUICK))
    out = tmp_path / "r.json"
    rc = main(["scan", str(SAMPLE), "--address", "ray://" + address, "--out", str(out)])
    err = capsys.readouterr().err
    assert time.monotonic() - t < 20
    assert rc == 2 and "no Ray cluster answers at ray://127.0.0.1" in err and "Traceback" not in err
    assert not out.exists()
    rc = main(["scan", str(SAMPLE), "--engine", "ray", "--address", "nonsense", "--json"])
    assert rc == 2 and json.loads(capsys.readouterr().out)["error"] == "ray"


def test_cli_scan_on_ray_against_a_corpus_index(ray_cluster, small_shards, tmp_path, capsys):
    """The command line on Ray, with the corpus-index lookup done by the shards' tasks."""
    from ftcurate.core.index import add_file

    loc = str(tmp_path / "corpus")
    add_file(loc, str(HELDOUT), name="heldout")
    out = tmp_path / "r.json"
    args = ["scan", str(SAMPLE), "--test", str(HELDOUT), "--engine", "ray", "--address", ray_cluster,
            "--against-index", loc, "--out", str(out)]
    for k, v in QUICK.items():
        args += ["--set", f"{k}={str(v).lower()}"]
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert report["engine"]["name"] == "ray" and report["exact_duplicates"] and report["leakage"]
    local = scan_files(str(SAMPLE), str(HELDOUT), settings=ScanSettings(against_index=loc, **QUICK))
    assert report["against_index"] == local["against_index"] and len(local["against_index"]) >= 5
    assert os.environ.get("FTCURATE_RAY_CRASH") is None


def test_many_copies_of_one_prompt_capped_alike_on_ray(ray_cluster, small_shards, tmp_path):
    """150 copies of one prompt across several shards: the Ray scan caps the semantic pairs a
    record starts at the local scan's 20 (each copy's partners, whichever equal copies they are)."""
    from collections import Counter

    from ftcurate.core.quality.scan import SEMANTIC_PARTNERS

    rows = [json.dumps({"messages": [{"role": "user", "content": "What is the capital of France?"},
                                     {"role": "assistant", "content": f"Paris ({i})."}]}) for i in range(150)]
    rows += SAMPLE.read_text(encoding="utf-8").splitlines()[:60]
    path = tmp_path / "copies.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    s = dict(outlier_model="static-wordllama", leakage=False, near_duplicates=False)
    local = scan_files(str(path), settings=ScanSettings(**s))
    ray = scan_files(str(path), settings=ScanSettings(engine="ray", ray_address=ray_cluster, **s))
    starts_local = Counter(p["a"] for p in local["semantic_duplicates"])
    starts_ray = Counter(p["a"] for p in ray["semantic_duplicates"])
    assert starts_ray == starts_local and max(starts_local.values()) == SEMANTIC_PARTNERS
    assert starts_local[0] == SEMANTIC_PARTNERS and starts_local[140] == 9  # copies after it: 9
