"""The corpus index (issue 15 B): a folder store and a real Redis server (tests/redis_fixture.py),
`ftcurate index add|ls|rm`, `ftcurate scan NEW --against-index LOCATION`."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import pytest

from ftcurate.cli import main
from ftcurate.core.index import (IndexStoreError, add_file, against_index, list_datasets, open_index,
                                 remove_dataset)
from ftcurate.core.progress import Cancelled
from ftcurate.core.quality.scan import ScanSettings, scan_files

pytest_plugins = ["redis_fixture"]

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "chat_train.jsonl"
QUICK = dict(near_duplicates=False, outliers=False, semantic_duplicates=False, semantic_leakage=False,
             length_outliers=False, leakage=False)


def _rows() -> dict[int, dict]:
    """The sample's valid records by their number (0-based among its non-blank lines)."""
    from ftcurate.core.io.formats import DatasetReader

    lines = [x for x in SAMPLE.read_text(encoding="utf-8").splitlines() if x.strip()]
    return {p.index: json.loads(lines[p.index]) for p in DatasetReader(str(SAMPLE)) if p.ok}


def _long(rows: dict[int, dict], skip: tuple) -> int:
    """A sample record with a long text (a changed word keeps it a near duplicate)."""
    return max((i for i in rows if i not in skip), key=lambda i: len(json.dumps(rows[i])))


@pytest.fixture
def new_batch(tmp_path) -> tuple[Path, dict]:
    """A new batch: an exact copy of a sample record, a near copy of a long record (one word of
    the answer changed), another with its question's words shuffled and another answer (same
    meaning for the embedding, other n-grams), and a record that is nowhere in the index."""
    rows = _rows()
    first, second = sorted(rows)[5:7]
    exact = rows[first]
    k = _long(rows, (first, second))
    near = json.loads(json.dumps(rows[k]))
    msg = next(m for m in near["messages"] if m["role"] == "assistant")
    words = msg["content"].split()
    words[len(words) // 2] = "zebra"
    msg["content"] = " ".join(words)
    sem = json.loads(json.dumps(rows[second]))
    user = next(m for m in sem["messages"] if m["role"] == "user")
    w = user["content"].split()
    random.Random(3).shuffle(w)
    user["content"] = " ".join(w)
    next(m for m in sem["messages"] if m["role"] == "assistant")["content"] = "Something else entirely."
    fresh = {"messages": [{"role": "user", "content": "Name three colours of the Dutch flag."},
                          {"role": "assistant", "content": "Red, white and blue."}]}
    path = tmp_path / "new.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (fresh, exact, near, sem)), encoding="utf-8")
    return path, {"exact": first, "near": k, "semantic": second}


def _user(row: dict) -> str:
    return next(m["content"] for m in row["messages"] if m["role"] == "user")


def _check_hits(hits: list[dict], want: dict) -> None:
    by = {h["index"]: h for h in hits}
    assert 0 not in by  # the fresh record
    assert by[1]["method"] == "exact" and by[1]["record"] == want["exact"] and by[1]["score"] == 1.0
    assert by[2]["method"] == "near" and by[2]["record"] == want["near"] and by[2]["score"] >= 0.8
    # the sample holds the shuffled record's question twice: either copy is the match
    rows = _rows()
    same = {i for i, r in rows.items() if _user(r).split() == _user(rows[want["semantic"]]).split()}
    assert by[3]["method"] == "semantic" and by[3]["record"] in same and by[3]["score"] >= 0.95
    assert all(h["dataset"] == "sample" for h in hits)


def test_folder_index_add_ls_rm_and_scan(tmp_path, new_batch, capsys):
    loc = str(tmp_path / "corpus")
    new, want = new_batch
    assert main(["index", "add", str(SAMPLE), "--index", loc, "--name", "sample", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"][0]["added"] and out["results"][0]["dataset"]["records"] == 316
    files = sorted(p.name for p in (tmp_path / "corpus").rglob("*"))
    # the same file twice (also under another name and path) adds nothing
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(SAMPLE.read_bytes())
    assert main(["index", "add", str(copy), "--index", loc]) == 0
    assert "already in" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "corpus").rglob("*")) == files
    assert [d["name"] for d in list_datasets(loc)] == ["sample"]
    assert main(["index", "ls", "--index", loc]) == 0 and "sample  316 records" in capsys.readouterr().out

    report_path = tmp_path / "r.json"
    assert main(["scan", str(new), "--against-index", loc, "--out", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    _check_hits(report["against_index"], want)
    assert "already in the corpus index: 3 records" in capsys.readouterr().out

    assert main(["index", "rm", "sample", "--index", loc]) == 0
    assert list_datasets(loc) == []
    assert not (tmp_path / "corpus" / "datasets" / "1").exists()
    assert scan_files(str(new), settings=ScanSettings(against_index=loc, **QUICK))["against_index"] == []
    assert main(["index", "rm", "sample", "--index", loc]) == 2
    assert "has no dataset 'sample'" in capsys.readouterr().err


def test_folder_index_errors_and_interrupted_add(tmp_path, capsys):
    missing = tmp_path / "nothing"
    rc = main(["scan", str(SAMPLE), "--against-index", str(missing), "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "no corpus index at" in err and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(IndexStoreError, match="not a corpus index"):
        add_file(str(other), str(SAMPLE))
    # an add stopped part-way leaves the index as it was (no dataset, no folder)
    loc = str(tmp_path / "corpus")
    add_file(loc, str(SAMPLE), name="sample")
    before = sorted(p.relative_to(loc).as_posix() for p in Path(loc).rglob("*"))
    calls = {"n": 0}

    def cancel():
        calls["n"] += 1
        return calls["n"] > 3

    other_file = tmp_path / "half.jsonl"
    other_file.write_text(SAMPLE.read_text(encoding="utf-8").replace("the", "thee"), encoding="utf-8")
    with pytest.raises(Cancelled):
        add_file(loc, str(other_file), cancel=cancel)
    assert [d["name"] for d in list_datasets(loc)] == ["sample"]
    assert sorted(p.relative_to(loc).as_posix() for p in Path(loc).rglob("*")) == before
    # the manifest is plain JSON, the arrays plain .npy (no pickles)
    manifest = json.loads((Path(loc) / "ftcurate-index.json").read_text())
    assert manifest["format"] == "ftcurate-corpus-index" and manifest["datasets"][0]["records"] == 316
    for npy in (Path(loc) / "datasets").rglob("*.npy"):
        import numpy as np

        np.load(npy, allow_pickle=False)


def test_project_scan_against_index(tmp_path, new_batch):
    """In a project the entries name records by their index in the file (number_report)."""
    from ftcurate.core.io.ingest import import_dataset
    from ftcurate.core.project.numbering import number_report
    from ftcurate.core.project.store import Project
    from ftcurate.core.quality.scan import scan_project

    loc = str(tmp_path / "corpus")
    add_file(loc, str(SAMPLE), name="sample")
    new, want = new_batch
    with Project.open(str(tmp_path / "p.ftcurate"), create=True) as project:
        import_dataset(project, str(new))
        report = number_report(project, scan_project(project, ScanSettings(against_index=loc, **QUICK)))
    _check_hits(report["against_index"], want)


def test_redis_index(redis_server, tmp_path, new_batch, capsys):
    """The same in a real Redis server: add (twice), scan against it, only plain bytes stored,
    a planted pickle never loaded, rm deletes every key of the dataset."""
    url = f"redis://:{redis_server.password}@{redis_server.host}:{redis_server.port}/0"
    new, want = new_batch
    assert main(["index", "add", str(SAMPLE), "--index", url, "--name", "sample"]) == 0
    out = capsys.readouterr().out
    assert "added sample (316 records)" in out and redis_server.password not in out
    client = redis_server.client()
    keys = sorted(client.keys())
    assert main(["index", "add", str(SAMPLE), "--index", url]) == 0
    assert "already in" in capsys.readouterr().out and sorted(client.keys()) == keys

    # plain bytes only: JSON, digits, fixed-size numbers; plant a pickle in every LSH bucket
    marker = tmp_path / "unpickled"

    class Bomb:
        def __reduce__(self):
            return (Path.touch, (marker,))

    payload = pickle.dumps(Bomb())
    planted = 0
    for key in client.scan_iter(match=b"ftcurate_index:ds:1:lsh_bucket_*"):
        if client.type(key) == b"set":
            for m in client.smembers(key):
                assert m.isdigit(), m
            client.sadd(key, payload)
            planted += 1
    assert planted > 100
    for field in client.hkeys(b"ftcurate_index:ds:1:sig"):
        assert field.isdigit()
    json.loads(client.get(b"ftcurate_index:manifest"))

    report = scan_files(str(new), settings=ScanSettings(against_index=url, **QUICK))
    _check_hits(report["against_index"], want)
    assert not marker.exists()
    assert redis_server.password not in json.dumps(report)
    assert report["settings"]["against_index"].startswith("redis://:***@")

    # the same answers as a folder index of the same file
    folder = str(tmp_path / "corpus")
    add_file(folder, str(SAMPLE), name="sample")
    assert against_index(folder, *_records(new)) == against_index(url, *_records(new))

    assert main(["index", "rm", "sample", "--index", url]) == 0
    assert not list(client.scan_iter(match=b"ftcurate_index:ds:*"))
    assert list_datasets(url) == []


def _records(path) -> tuple[list, list]:
    from ftcurate.core.io.formats import DatasetReader

    recs = [p.record for p in DatasetReader(str(path)) if p.ok]
    return recs, list(range(len(recs)))


def test_redis_index_faults(redis_server, tmp_path, capsys):
    """Wrong password, a server that is down, an add stopped part-way: clear errors, nothing
    half-written."""
    from redis_fixture import free_port

    good = f"redis://:{redis_server.password}@127.0.0.1:{redis_server.port}/0"
    bad = f"redis://:wrong@127.0.0.1:{redis_server.port}/0"
    rc = main(["index", "add", str(SAMPLE), "--index", bad])
    err = capsys.readouterr().err
    assert rc == 2 and "wrong or missing password" in err and "wrong@" not in err and "Traceback" not in err
    assert redis_server.client().dbsize() == 0
    down = f"redis://127.0.0.1:{free_port()}/0"
    out = tmp_path / "r.json"
    rc = main(["scan", str(SAMPLE), "--against-index", down, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot connect to the Redis server of the corpus index" in err and not out.exists()
    with pytest.raises(IndexStoreError, match="no corpus index at"):
        scan_files(str(SAMPLE), settings=ScanSettings(against_index=good, **QUICK))

    add_file(good, str(SAMPLE), name="sample")
    client = redis_server.client()
    before = sorted(client.keys())
    calls = {"n": 0}

    def cancel():
        calls["n"] += 1
        return calls["n"] > 3

    other = tmp_path / "half.jsonl"
    other.write_text(SAMPLE.read_text(encoding="utf-8").replace("the", "thee"), encoding="utf-8")
    with pytest.raises(Cancelled):
        add_file(good, str(other), cancel=cancel)
    after = sorted(k for k in client.keys() if k != b"ftcurate_index:next_id")
    assert after == [k for k in before if k != b"ftcurate_index:next_id"]
    assert [d["name"] for d in list_datasets(good)] == ["sample"]
    assert open_index(good).kind == "redis"
    with pytest.raises(IndexStoreError, match="has no dataset"):
        remove_dataset(good, "nope")
