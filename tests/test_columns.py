"""The record column store (issue 14: no million Record objects held through a scan)."""

from __future__ import annotations

import json

import pytest

from ftcurate.core.project.columns import RecordColumns, columns_of
from ftcurate.core.project.records import Message, Record
from ftcurate.core.quality import recordpass
from ftcurate.core.quality.scan import ScanSettings, scan_files, scan_records
from scan_data import make_dataset, write_jsonl


def _odd_records() -> list[Record]:
    return [
        Record([Message("system", "Be brief."), Message("user", "Café? ünïcödé ✓"), Message("assistant", "Oui.")]),
        Record([Message("user", "Weather in Oslo?"),
                Message("assistant", None, tool_calls=[{"id": "c1", "type": "function", "function": {
                    "name": "weather", "arguments": "{\"city\": \"Oslo\"}"}}]),
                Message("tool", "12 C", tool_call_id="c1", name="weather"),
                Message("assistant", "", weight=0)],
               tools=[{"type": "function", "function": {"name": "weather", "parameters": {}}}]),
        Record([Message("system", "Only a system prompt and an answer."), Message("assistant", "Hello")]),
        Record([Message("user", "")]),
    ]


def test_columns_give_back_the_records_content():
    recs = _odd_records()
    cols = RecordColumns((10 + 7 * i, r) for i, r in enumerate(recs))
    assert len(cols) == 4 and cols.keys.tolist() == [10, 17, 24, 31]
    for i, r in enumerate(recs):
        assert cols[i].content_json() == r.content_json() == cols.content_json(i)
        assert cols[i].text == r.text and cols[i].answer_text == r.answer_text
    assert cols[-1].content_json() == recs[-1].content_json()
    assert [r.content_json() for r in cols[1:3]] == [r.content_json() for r in recs[1:3]]
    assert [r.content_json() for r in cols] == [r.content_json() for r in recs]
    assert cols.contents()[0:4] == [r.content_json() for r in recs] and len(cols.contents()) == 4
    texts, answers = columns_of(cols, lambda r: r.text, lambda r: r.answer_text)
    assert (texts, answers) == columns_of(recs, lambda r: r.text, lambda r: r.answer_text)
    with pytest.raises(IndexError):
        cols[4]
    assert RecordColumns.of(recs).keys.tolist() == [0, 1, 2, 3]
    assert not RecordColumns() and len(RecordColumns()) == 0


def test_columns_hold_far_less_than_record_objects():
    import tracemalloc

    tracemalloc.start()
    try:
        recs = [Record([Message("user", f"How many apples are left over {i}?"), Message("assistant", f"{i % 97}.")])
                for i in range(2000)]
        as_objects = tracemalloc.get_traced_memory()[0]
        base = tracemalloc.get_traced_memory()[0]
        cols = RecordColumns.of(recs)
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert cols.nbytes() < 150 * len(recs)  # ~115 bytes of JSON and 16 of offsets and keys a record
    assert held < as_objects / 3


def _chat(records: list[dict]) -> list[Record]:
    return [Record.from_content(r) for r in records]


@pytest.mark.parametrize("processes", [False, True])
def test_a_scan_of_columns_equals_a_scan_of_records(monkeypatch, processes):
    """Same report, index for index, with the training records as a column store: exact and
    near copies, outliers, semantic duplicates, leaks (a record without a user turn included),
    with the record pass in this process and on two worker processes."""
    train, test = make_dataset(400, 60, seed=3)
    recs = _chat(train) + _odd_records()
    trecs = _chat(test)
    keys = [5 + 2 * i for i in range(len(recs))]
    if processes:
        monkeypatch.setattr(recordpass, "MIN_PARALLEL", 100)
        monkeypatch.setattr(recordpass, "CHUNK", 64)
        monkeypatch.setenv("FTCURATE_WORKERS", "2")
    s = ScanSettings(outlier_model="static-wordllama")
    plain = scan_records(list(zip(keys, recs)), list(enumerate(trecs)), settings=s)
    cols = scan_records(RecordColumns(zip(keys, recs)), list(enumerate(trecs)), settings=s)
    plain.pop("timings")
    cols.pop("timings")
    assert json.dumps(cols, sort_keys=True) == json.dumps(plain, sort_keys=True)
    assert plain["leakage"] and plain["exact_duplicates"] and plain["near_duplicates"] and plain["outliers"]


def test_scan_files_reads_the_training_file_into_columns(tmp_path, monkeypatch):
    from ftcurate.core.quality import scan as scan_mod

    train, test = make_dataset(120, 20, seed=4)
    seen = []
    real = scan_mod.scan_records
    monkeypatch.setattr(scan_mod, "scan_records", lambda tr, *a, **k: (seen.append(type(tr)), real(tr, *a, **k))[1])
    report = scan_files(write_jsonl(tmp_path / "train.jsonl", train), write_jsonl(tmp_path / "test.jsonl", test),
                        settings=ScanSettings(semantic_leakage=False, outlier_model="static-wordllama"))
    assert seen == [RecordColumns]
    assert report["scanned"] == 120 and report["leakage"]


def test_a_folder_of_shards_reads_into_columns_numbered_across_shards(tmp_path):
    train, test = make_dataset(150, 20, seed=5)
    (tmp_path / "shards").mkdir()
    write_jsonl(tmp_path / "shards" / "part-0.jsonl", train[:70])
    write_jsonl(tmp_path / "shards" / "part-1.jsonl", train[70:])
    s = ScanSettings(semantic_leakage=False, outlier_model="static-wordllama")
    tpath = write_jsonl(tmp_path / "test.jsonl", test)
    whole = scan_files(write_jsonl(tmp_path / "all.jsonl", train), tpath, settings=s)
    shards = scan_files(str(tmp_path / "shards"), tpath, settings=s)
    assert shards["shards"] == [{"file": "part-0.jsonl", "first": 0, "records": 70},
                                {"file": "part-1.jsonl", "first": 70, "records": 80}]
    for key in ("flags", "exact_duplicates", "near_duplicates", "outliers", "semantic_duplicates", "leakage"):
        assert shards[key] == whole[key], key
