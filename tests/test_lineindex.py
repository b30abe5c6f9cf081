"""LineIndex (byte offsets of a JSONL file's records) and the file-backed table model."""

from __future__ import annotations

import json
import os
import random

import pytest

from ftcurate.core.io.formats import rawio
from ftcurate.core.io.lineindex import LineIndex, RowSummary, summarize_object
from ftcurate.core.progress import Cancelled

CHAT = {"messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "What is  2+2?\n"},
                     {"role": "assistant", "content": "4"}]}


def _write(tmp_path, name: str, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _expected(path) -> list[tuple[int, bytes]]:
    """(line, stripped bytes) of each record as the importer's reader numbers them."""
    lines = open(path, "rb").read().split(b"\n")
    return [(item.line, lines[item.line - 1].strip().removeprefix(rawio.BOM))
            for item in rawio.iter_jsonl(str(path))]


def _got(index: LineIndex) -> list[tuple[int, bytes]]:
    return [(index.line_number(i), index.line_bytes(i).strip()) for i in range(len(index))]


# -- offsets and line numbers ----------------------------------------------------------------


@pytest.mark.parametrize("data, lines", [
    (b'{"a":1}\n{"b":2}\n', [1, 2]),
    (b'\n{"a":1}\n\n   \n\t\r\n{"b":2}\n\n', [2, 6]),  # blank and whitespace-only lines
    (b'{"a":1}\r\n{"b":2}\r\n\r\n{"c":3}', [1, 2, 4]),  # CRLF, blank CRLF line, no final newline
    (b'{"a":1}\n{"b":2}', [1, 2]),  # no final newline
    (b'{"a":1}\r', [1]),  # a lone CR at the end
    (b"\xef\xbb\xbf{\"a\":1}\n {\"b\":2} \n", [1, 2]),  # BOM, a record with spaces around it
    (b"\xef\xbb\xbf\n{\"a\":1}\n", [2]),  # BOM on a blank first line
    (b"\n\n\n", []),
    (b"", []),
])
def test_offsets_and_line_numbers(tmp_path, data, lines):
    p = _write(tmp_path, "f.jsonl", data)
    with LineIndex.build(p) as index:
        assert len(index) == len(lines)
        assert [index.line_number(i) for i in range(len(index))] == lines
        if data:
            assert _got(index) == _expected(p)
        for i in range(len(index)):
            raw = index.line_bytes(i)
            assert not raw.endswith((b"\n", b"\r")) and not raw.startswith(rawio.BOM)


def test_crlf_bytes_exclude_the_line_ending(tmp_path):
    p = _write(tmp_path, "f.jsonl", b'{"a":1}\r\n{"b":2}\r\n')
    index = LineIndex.build(p)
    assert [index.line_bytes(i) for i in range(2)] == [b'{"a":1}', b'{"b":2}']
    assert index.parse(1) == {"b": 2}
    index.close()


def test_empty_file(tmp_path):
    p = _write(tmp_path, "empty.jsonl", b"")
    index = LineIndex.build(p)
    assert len(index) == 0 and index.nbytes == 0
    with pytest.raises(IndexError):
        index.line_bytes(0)


def test_matches_the_importer_across_window_boundaries(tmp_path, monkeypatch):
    """Small mmap windows put line endings (and CRLF pairs) on window edges."""
    from ftcurate.core.io import lineindex

    monkeypatch.setattr(lineindex, "SCAN_BYTES", 1000)  # several compare blocks per window
    rng = random.Random(3)
    parts = []
    for i in range(3000):
        kind = rng.random()
        if kind < 0.05:
            parts.append(b"")
        elif kind < 0.08:
            parts.append(b"  \t")
        else:
            parts.append(json.dumps({"prompt": "x" * rng.randint(0, 40), "completion": str(i)}).encode()
                         + (b"\r" if rng.random() < 0.3 else b""))
    data = b"\n".join(parts)
    p = _write(tmp_path, "mixed.jsonl", data)
    for window in (4096, 8192, 1 << 26):
        with LineIndex.build(p, chunk_bytes=window) as index:
            assert _got(index) == _expected(p), window
    # newline exactly on a window edge, then a whitespace-led record
    edge = b'{"a":' + b" " * (4096 - 7) + b"1}\n" + b' {"b":2}\n' + b"\r\n" + b'{"c":3}'
    p = _write(tmp_path, "edge.jsonl", edge)
    with LineIndex.build(p, chunk_bytes=4096) as index:
        assert _got(index) == _expected(p)
        assert [index.line_number(i) for i in range(len(index))] == [1, 2, 4]


def test_progress_and_cancel(tmp_path):
    p = _write(tmp_path, "f.jsonl", (json.dumps(CHAT) + "\n").encode() * 400)
    seen = []
    LineIndex.build(p, progress=lambda d, t, m: seen.append((d, t)), chunk_bytes=4096).close()
    assert seen and seen[-1] == (os.path.getsize(p), os.path.getsize(p))
    with pytest.raises(Cancelled):
        LineIndex.build(p, cancel=lambda: True)


def test_supports_jsonl_only(tmp_path):
    assert LineIndex.supports(_write(tmp_path, "a.jsonl", b'{"a":1}\n'))
    assert not LineIndex.supports(_write(tmp_path, "b.json", b'[{"a":1}]\n'))
    assert not LineIndex.supports(_write(tmp_path, "c.csv", b"prompt,completion\nx,y\n"))
    assert not LineIndex.supports(_write(tmp_path, "d.parquet", b"PAR1\x00\x00"))
    assert not LineIndex.supports(_write(tmp_path, "e.jsonl", b""))
    assert not LineIndex.supports(tmp_path / "missing.jsonl")


def test_is_stale(tmp_path):
    p = _write(tmp_path, "f.jsonl", b'{"a":1}\n')
    index = LineIndex.build(p)
    assert not index.is_stale()
    p.write_bytes(b'{"a":1}\n{"b":2}\n')
    assert index.is_stale()
    index.close()


# -- parsing and summaries ---------------------------------------------------------------------


def test_bad_json_line_gives_an_error_summary_and_others_parse(tmp_path):
    lines = [json.dumps(CHAT), '{"messages": [ this is not json', "", json.dumps(CHAT)]
    p = _write(tmp_path, "f.jsonl", ("\n".join(lines) + "\n").encode())
    index = LineIndex.build(p)
    assert len(index) == 3
    assert index.parse(1) is None
    bad = index.summary(1)
    assert bad.error == "invalid_json" and bad.line == 2 and not bad.ok and "invalid JSON" in bad.message
    for i, line in ((0, 1), (2, 4)):
        s = index.summary(i)
        assert s.ok and s.line == line
        assert s.first_user == "What is 2+2?"  # whitespace collapsed
        assert (s.n_messages, s.chars) == (3, 1)
    index.close()


def test_invalid_utf8_is_reported(tmp_path):
    p = _write(tmp_path, "f.jsonl", b'{"prompt": "caf\xe9", "completion": "x"}\n')
    s = LineIndex.build(p).summary(0)
    assert s.error == "invalid_utf8"


@pytest.mark.parametrize("obj, first, n, chars", [
    (CHAT, "What is 2+2?", 3, 1),
    ({"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "hi there"},
                        {"from": "gpt", "value": "hello"}, {"from": "human", "value": "again"},
                        {"from": "gpt", "value": "yes"}]}, "hi there", 5, len("hello\nyes")),
    ({"prompt": "Translate: cat", "completion": "chat"}, "Translate: cat", 2, 4),
    ({"question": "2+3?", "answer": "5"}, "2+3?", 2, 1),
    ({"instruction": "Sum", "input": "1 2", "output": "3"}, "Sum 1 2", 2, 1),
    ({"instruction": "Say hi", "input": "", "output": "hi", "system": "Be nice."}, "Say hi", 3, 2),
])
def test_summaries_for_each_shape(tmp_path, obj, first, n, chars):
    p = _write(tmp_path, "f.jsonl", (json.dumps(obj) + "\n").encode() * 3)
    index = LineIndex.build(p)
    s = index.summary(2)
    assert s == RowSummary(3, first, n, chars, None, "", s.size)
    assert s.size > 0
    # without the file-level format (per-record keys decide)
    assert summarize_object(obj, None, None, 3) == s
    index.close()


def test_summary_of_a_record_the_import_would_reject(tmp_path):
    rec = {"messages": [{"role": "user", "content": "only a question " * 30}]}
    p = _write(tmp_path, "f.jsonl", (json.dumps(CHAT) + "\n" + json.dumps(rec) + "\n[1, 2]\n").encode())
    index = LineIndex.build(p)
    s = index.summary(1)
    assert s.error == "example_missing_assistant_message"
    assert s.n_messages == 1 and len(s.first_user) == 240 and s.first_user.endswith("…")
    assert index.summary(2).error == "data_type"


def test_first_user_is_capped(tmp_path):
    obj = {"prompt": "word " * 200, "completion": "x"}
    s = summarize_object(obj)
    assert len(s.first_user) == 240 and "  " not in s.first_user


# -- the file-backed table model ---------------------------------------------------------------


@pytest.fixture
def chat_file(tmp_path):
    lines = []
    for i in range(300):
        lines.append(json.dumps({"messages": [{"role": "user", "content": f"question {i}"},
                                              {"role": "assistant", "content": "a" * (i + 1)}]}))
    lines.insert(5, "{broken")
    lines.insert(6, "")
    p = tmp_path / "chats.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_file_table_model(qtbot, chat_file):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QTableView

    from ftcurate.gui.file_model import FileTableModel
    from ftcurate.gui.models import RecordTableModel

    index = LineIndex.build(chat_file)
    model = FileTableModel(index, block=32, cache_size=64)
    assert model.COLUMNS == RecordTableModel.COLUMNS
    assert model.rowCount() == 301 and model.columnCount() == len(model.COLUMNS)
    assert model.fetches == 0  # nothing is read before a row is asked for

    def cell(row, name, role=Qt.ItemDataRole.DisplayRole):
        return model.data(model.index(row, model.COLUMNS.index(name)), role)

    assert cell(0, "#") == "0"
    assert cell(0, "Status") == "Importing…"
    assert cell(0, "Split") == "train"
    assert cell(0, "Msgs") == "2"
    assert cell(0, "First user turn") == "question 0"
    if "Answer chars" in model.COLUMNS:
        assert cell(7, "Answer chars") == "7"
    assert model.fetches == 1
    assert cell(5, "Status") == "Invalid"  # the broken line
    assert model.data(model.index(5, 0), model.StatusRole) == "invalid"
    assert "will not be imported" in cell(5, "Status", Qt.ItemDataRole.ToolTipRole)
    assert cell(6, "First user turn") == "question 5"  # the blank line is not a record
    assert model.summary_at(6).line == 8
    assert model.data(model.index(3, 0), model.RecordIndexRole) == 3
    assert model.data(model.index(3, 0), model.IdRole) is None
    assert cell(3, "Status", Qt.ItemDataRole.ForegroundRole).name() == "#adb5bd"

    # a far row reads another block; the cache stays bounded
    assert cell(290, "First user turn") == "question 289"
    for row in range(0, 301, 7):
        model.summary_at(row)
    assert model.cached_rows() <= 64

    text = model.record_text(0)
    assert json.loads(text)["messages"][0]["content"] == "question 0"
    assert "\n  " in text  # pretty-printed
    assert model.record_text(5) == "{broken"
    assert model.record_text(10_000) == ""

    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.resize(800, 400)
    view.show()
    qtbot.waitExposed(view)
    assert not view.grab().isNull()
    assert model.cached_rows() > 0

    model.close()
    assert model.rowCount() == 0 and model.line_index is None


def test_block_cache_loads_around_a_miss_and_stays_bounded():
    from ftcurate.gui.models import BlockCache

    calls = []

    def load(start, stop):
        calls.append((start, stop))
        return {r: f"row {r}" for r in range(start, min(stop, 1000)) if r not in cache}

    cache = BlockCache(size=20, block=8)
    assert cache.size == 20 and cache.block == 8
    assert cache.get(100, 100, load) == "row 100"
    assert calls == [(98, 106)]  # a quarter block before, the rest after
    assert cache.get(103, 103, load) == "row 103" and len(calls) == 1  # a hit
    for row in range(0, 200, 8):
        cache.get(row, row, load)
    assert len(cache) <= 20 and cache.fetches == len(calls)
    assert cache.get(5, 5, lambda a, b: None) is None and cache.fetches == len(calls)  # nothing read: no fetch
    cache.pop(192)
    assert 192 not in cache
    cache.clear()
    assert len(cache) == 0
