"""Loader faults of issue 12 ("nothing lost, nothing run, no traceback") and the core side of
issue 11 item 16 (format by majority, record-based counts, warnings that fit the format).

Each test names the issue item it covers. Exit 1 means "the data has errors", exit 2 "the
file can't be read at all"; neither ever comes with a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import tracemalloc
from pathlib import Path

import pytest

from ftcurate.cli import main
from ftcurate.core.io.formats import DatasetError, DatasetReader
from ftcurate.core.io.validate import validate_path


def write(path: Path, data) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def cli(capsys, *args) -> tuple[int, dict, str]:
    rc = main(["validate", *map(str, args), "--json"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return rc, json.loads(captured.out), captured.err


def errs(report) -> list[tuple]:
    return [(e.line, e.index, e.key) for e in report.errors]


def loaded_objects(path, fmt="auto") -> list:
    return [p.record.content_dict() for p in DatasetReader(str(path), fmt) if p.ok]


def layout(objs: list, style: str) -> str:
    """A JSON array in one of the layouts people write."""
    if style == "pretty":
        return json.dumps(objs, indent=2, ensure_ascii=False)
    if style == "crlf":
        return json.dumps(objs, indent=4, ensure_ascii=False).replace("\n", "\r\n")
    if style == "oneline":
        return json.dumps(objs, ensure_ascii=False)
    return "[" + ",".join(json.dumps(o, ensure_ascii=False, separators=(",", ":")) for o in objs) + "]"


def element_ends(text: str) -> list[int]:
    """Offsets just after each top-level element of a well-formed array."""
    dec = json.JSONDecoder()
    out, pos = [], text.index("[") + 1
    while True:
        pos = len(text) - len(text[pos:].lstrip(" \t\r\n,"))
        if text[pos] == "]":
            return out
        _, pos = dec.raw_decode(text, pos)
        out.append(pos)


@pytest.fixture
def identity(data_dir) -> list:
    return json.loads((data_dir / "identity_slice.json").read_text(encoding="utf-8"))


# -- item 1: an array cut at an element boundary ---------------------------------------------------

CUT_CASES = [(style, k, how) for style in ("pretty", "crlf", "oneline", "compact")
             for k in (0, 3, 11, 24) for how in ("element", "comma", "comma_space")]


@pytest.mark.parametrize("style,k,how", CUT_CASES)
def test_array_cut_at_an_element_boundary_is_truncated_json(tmp_path, capsys, identity, style, k, how):
    """Issue 12 item 1 (48 cases): the complete elements load, one truncated_json with its line, exit 1."""
    text = layout(identity, style)
    cut = element_ends(text)[k]
    if how != "element":
        cut = text.index(",", cut) + 1
        if how == "comma_space":
            cut += len(text[cut:]) - len(text[cut:].lstrip(" \t\r\n"))
    path = write(tmp_path / "cut.json", text[:cut])
    report = validate_path(str(path))
    last_line = text[:cut].rstrip().count("\n") + 1
    assert (report.records, report.loaded, report.rejected) == (k + 2, k + 1, 1)
    assert errs(report) == [(last_line, k + 1, "truncated_json")]
    assert "no closing ']'" in report.errors[0].message
    assert loaded_objects(path) == loaded_objects(write(tmp_path / "whole.json", json.dumps(identity[:k + 1])))
    rc, out, _ = cli(capsys, path)
    assert rc == 1 and out["error_counts"] == {"truncated_json": 1}
    assert out["errors"][0]["line"] == last_line and out["errors"][0]["index"] == k + 1


def test_import_reports_a_cut_array(tmp_path, identity):
    """Issue 12 item 1: `import` reports the cut the same way (it reads through the same reader)."""
    from ftcurate.core.io.ingest import import_dataset
    from ftcurate.core.project.store import Project

    text = layout(identity, "pretty")
    path = write(tmp_path / "cut.json", text[:element_ends(text)[9] + 1])
    with Project.open(str(tmp_path / "p.ftcurate"), create=True) as project:
        report = import_dataset(project, str(path))
        assert (report.loaded, report.rejected) == (10, 1)
        assert report.error_counts == {"truncated_json": 1}
        assert project.count() == 10


# -- item 2: junk between elements ---------------------------------------------------------------------

JUNK = ["garbage", "42", "}", ":", "// a comment", "true false", "#", "; ; ;"]


@pytest.mark.parametrize("junk", JUNK)
@pytest.mark.parametrize("style", ["oneline", "pretty"])
def test_junk_between_elements_is_reported_and_nothing_after_it_is_lost(tmp_path, capsys, identity, junk, style):
    """Issue 12 item 2: `[{a} garbage {c}, {e}]` loads a, c and e and reports the junk's line."""
    a, c, e = identity[0], identity[1], identity[2]
    if style == "oneline":
        text = f"[{json.dumps(a)} {junk} {json.dumps(c)}, {json.dumps(e)}]"
        junk_line = 1
    else:
        text = "[\n  " + json.dumps(a) + "\n  " + junk + "\n  " + json.dumps(c) + ",\n  " + json.dumps(e) + "\n]"
        junk_line = 3
    path = write(tmp_path / "junk.json", text)
    report = validate_path(str(path))
    assert (report.records, report.loaded, report.rejected) == (4, 3, 1)
    assert errs(report) == [(junk_line, 1, "unexpected_text")]
    assert junk.split()[0] in report.errors[0].message
    assert loaded_objects(path) == loaded_objects(write(tmp_path / "ok.json", json.dumps([a, c, e])))
    rc, out, _ = cli(capsys, path)
    assert rc == 1 and out["error_counts"] == {"unexpected_text": 1}


def test_text_after_the_closing_bracket_is_reported(tmp_path, identity):
    """Issue 12 item 2: nothing after the closing bracket is silently ignored: a second array
    glued after the first loads too (the seam is reported), other text is reported."""
    first = json.dumps(identity[:2], indent=2)
    text = first + "\n" + json.dumps(identity[2:4])
    report = validate_path(str(write(tmp_path / "two.json", text)))
    assert (report.loaded, report.rejected) == (4, 1)
    assert errs(report) == [(first.count("\n") + 1, 2, "unexpected_text")]
    assert "more elements follow" in report.errors[0].message
    report = validate_path(str(write(tmp_path / "tail.json", first + "\nsome notes at the end\n")))
    assert (report.loaded, report.rejected) == (2, 1)
    assert errs(report) == [(first.count("\n") + 2, 2, "unexpected_text")]
    assert "after the end of the array" in report.errors[0].message


# -- item 3: a CSV cut inside a quoted field -------------------------------------------------------------

def test_csv_cut_inside_a_quoted_field_is_the_rows_error(tmp_path, data_dir):
    """Issue 12 item 3 (25 seeded random cuts): a row cut inside a quoted field is an
    unterminated_field error, never a record with a cut-off answer; complete rows load."""
    rows = [json.loads(x) for x in (data_dir / "gsm8k_train_head.jsonl").read_text(encoding="utf-8").splitlines()]
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writerow(["question", "answer"])
    starts = []
    for r in rows:
        starts.append(buf.tell())
        w.writerow([r["question"], r["answer"]])
    text = buf.getvalue()
    rng = random.Random(12)
    inside = 0
    for n, cut in enumerate(sorted(rng.sample(range(starts[0] + 1, len(text) - 1), 25))):
        part = text[:cut]
        k = max(i for i, s in enumerate(starts) if s <= cut)  # the row the cut falls in
        partial = part[starts[k]:]
        path = write(tmp_path / f"cut{n}.csv", part)
        report = validate_path(str(path), mapping={"prompt": "question", "completion": "answer"})
        good = [p.record for p in DatasetReader(str(path), mapping={"prompt": "question", "completion": "answer"})
                if p.ok]
        assert [g.messages[1].content for g in good[:k]] == [r["answer"] for r in rows[:k]]
        if partial.count('"') % 2:  # QUOTE_ALL: an odd number of quotes = inside a quoted field
            inside += 1
            assert report.loaded == k and errs(report)[-1][1:] == (k, "unterminated_field"), (cut, partial)
            assert report.errors[-1].line == text[:starts[k]].count("\n") + 1
        elif partial:
            assert report.records == k + 1
    assert inside >= 12  # most cuts fall inside the long quoted answers


def test_csv_last_row_complete_without_final_newline_still_loads(tmp_path):
    """Issue 12 item 3: only an open quote at the end is an error (not a missing final newline)."""
    path = write(tmp_path / "a.csv", 'prompt,completion\n"q1","a1"\nq2,"5"" screen"')
    report = validate_path(str(path))
    assert (report.records, report.loaded) == (2, 2)


# -- item 10: tool_calls[].function that is not an object -------------------------------------------------

@pytest.mark.parametrize("function", [None, [], 3, "weather", {"arguments": "{}"}])
def test_tool_call_function_of_the_wrong_type_is_that_records_error(tmp_path, capsys, function):
    """Issue 12 item 10: no AttributeError; the record is rejected with invalid_function_call."""
    bad = {"messages": [{"role": "user", "content": "Weather?"},
                        {"role": "assistant", "content": None,
                         "tool_calls": [{"id": "c0", "type": "function", "function": function}]},
                        {"role": "tool", "tool_call_id": "c0", "content": "3 C"},
                        {"role": "assistant", "content": "3 C."}]}
    good = {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}
    path = write(tmp_path / "tools.jsonl", "\n".join(json.dumps(x) for x in (good, bad, good)) + "\n")
    report = validate_path(str(path))
    assert (report.records, report.loaded) == (3, 2)
    assert errs(report) == [(2, 1, "invalid_function_call")]
    assert "tool_calls[0].function" in report.errors[0].message
    rc, out, _ = cli(capsys, path)
    assert rc == 1 and out["rejected"] == 1


# -- item 11: deep nesting and huge integers inside an array ---------------------------------------------------

@pytest.mark.parametrize("style", ["oneline", "pretty"])
@pytest.mark.parametrize("poison", ["deep", "bigint"])
def test_deep_nesting_or_huge_int_is_that_elements_error(tmp_path, capsys, identity, style, poison):
    """Issue 12 item 11: 100k-level nesting or a 5,000-digit integer in one array element:
    that element's invalid_json, the rest loads (no RecursionError, no unreadable file)."""
    bad = ("[" * 100_000 + "]" * 100_000 if poison == "deep"
           else '{"instruction": "x", "input": "", "output": "y", "n": ' + "9" * 5000 + "}")
    parts = [json.dumps(identity[0]), bad, json.dumps(identity[1]), json.dumps(identity[2])]
    text = ("[" + ", ".join(parts) + "]") if style == "oneline" else ("[\n  " + ",\n  ".join(parts) + "\n]\n")
    path = write(tmp_path / "poison.json", text)
    report = validate_path(str(path))
    assert (report.records, report.loaded, report.rejected) == (4, 3, 1)
    assert errs(report) == [(1 if style == "oneline" else 3, 1, "invalid_json")]
    assert ("nested too deeply" if poison == "deep" else "4,300 digits") in report.errors[0].message
    rc, out, _ = cli(capsys, path)
    assert rc == 1 and out["loaded"] == 3


# -- item 15: corrupt Parquet ---------------------------------------------------------------------------------------

def _parquet(path: Path, n: int = 100, group: int = 50) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"prompt": [f"question {i}" for i in range(n)], "completion": [f"answer {i}" for i in range(n)]})
    pq.write_table(table, str(path), row_group_size=group, compression="none", use_dictionary=False)


def test_damaged_parquet_page_is_invalid_parquet_for_its_rows(tmp_path, capsys):
    """Issue 12 item 15: a damaged page is invalid_parquet (not OSError) for the rows of its
    row group; the other row group loads; exit 1."""
    import pyarrow.parquet as pq

    path = tmp_path / "damaged.parquet"
    _parquet(path)
    offset = pq.ParquetFile(str(path)).metadata.row_group(0).column(0).data_page_offset
    data = bytearray(path.read_bytes())
    data[offset:offset + 24] = b"\xff" * 24
    path.write_bytes(bytes(data))
    report = validate_path(str(path))
    assert (report.records, report.loaded, report.rejected) == (100, 50, 50)
    assert report.error_counts == {"invalid_parquet": 50}
    assert report.errors[0].message.startswith("row group 0 (rows 0-49) cannot be read")
    rc, out, _ = cli(capsys, path)
    assert rc == 1 and out["error_counts"] == {"invalid_parquet": 50}


def test_parquet_with_a_broken_footer_is_invalid_parquet(tmp_path, capsys):
    """Issue 12 item 15: an unreadable footer is the documented whole-file invalid_parquet (exit 2)."""
    path = tmp_path / "footer.parquet"
    _parquet(path)
    data = bytearray(path.read_bytes())
    data[-40:-8] = b"\x0f" * 32
    path.write_bytes(bytes(data))
    rc, out, err = cli(capsys, path)
    assert rc == 2 and out["error"] == "invalid_parquet"


def test_parquet_text_that_is_not_utf8_is_that_rows_error(tmp_path):
    """Issue 12 item 15: a string that is not UTF-8 (UnicodeDecodeError today) is one row's invalid_utf8."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    offsets = np.array([0, 1, 2, 3], dtype=np.int32)
    prompts = pa.Array.from_buffers(pa.string(), 3, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"a\xffc")])
    pq.write_table(pa.table({"prompt": prompts, "completion": ["x", "y", "z"]}), str(tmp_path / "u.parquet"))
    report = validate_path(str(tmp_path / "u.parquet"))
    assert (report.records, report.loaded) == (3, 2)
    assert errs(report) == [(None, 1, "invalid_utf8")]


# -- item 20: arrays stream; errors are capped ---------------------------------------------------------------------

def test_json_array_streams_in_bounded_memory(tmp_path, monkeypatch):
    """Issue 12 item 20: reading a JSON array holds a window, not the file (it held the
    file's bytes and its text: over twice its size)."""
    objs = [{"instruction": f"Add {i} and {i + 1}. Explain the steps.", "input": "",
             "output": f"First take {i}, then add {i + 1}: the sum is {2 * i + 1}."} for i in range(15_000)]
    path = write(tmp_path / "big.json", json.dumps(objs, indent=2))
    size = os.path.getsize(path)
    del objs
    from ftcurate.core.io.formats import detect, jsonarray

    monkeypatch.setattr(jsonarray, "CHUNK_BYTES", 64 * 1024)
    monkeypatch.setattr(detect, "FULL_VOTE_BYTES", 0)  # detection samples (one pass is enough here)
    monkeypatch.setattr(detect, "PROBE_BYTES", 16 * 1024)
    list(DatasetReader(str(write(tmp_path / "small.json", '[{"instruction": "a", "output": "b"}]'))))  # warm up
    tracemalloc.start()
    n = sum(p.ok for p in DatasetReader(str(path)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 15_000
    assert peak < 0.25 * size, (peak, size)


def test_array_reading_does_not_depend_on_the_window(tmp_path, data_dir):
    """Issue 12 item 20: elements longer than the window and damage at window edges read the same."""
    text = (data_dir / "glaive_toolcall_slice.json").read_text(encoding="utf-8")
    text = text.replace('"from": "gpt"', '"from" "gpt"', 1)  # one broken element
    text = text[: len(text) // 2] + " junk " + text[len(text) // 2:]
    path = write(tmp_path / "g.json", text[: int(len(text) * 0.9)])
    from ftcurate.core.io.formats import jsonarray

    def items(chunk):
        return [(i.index, i.line, i.error, i.obj) for i in jsonarray.iter_json_array(str(path), chunk)]

    assert items(1024) == items(4096) == items(1 << 22)


def test_errors_are_counted_but_details_are_capped(tmp_path, capsys):
    """Issue 12 item 20: per-key counts of every error, details of the first N, and how many were left out."""
    good = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
    lines = [good if i % 4 == 0 else ("{broken" if i % 4 == 1 else '{"messages": []}') for i in range(5000)]
    path = write(tmp_path / "bad.jsonl", "\n".join(lines) + "\n")
    report = validate_path(str(path), max_errors=100)
    assert (report.records, report.loaded, report.rejected) == (5000, 1250, 3750)
    assert report.error_counts == {"invalid_json": 1250, "missing_messages_list": 2500}
    assert report.rejected_by_key == {"invalid_json": 1250, "missing_messages_list": 2500}
    assert len(report.errors) == 100 and report.errors_left_out == 3650
    assert [e.index for e in report.errors[:3]] == [1, 2, 3]
    rc, out, _ = cli(capsys, path, "--max-errors", "10")
    assert rc == 1 and len(out["errors"]) == 10 and out["errors_left_out"] == 3740
    assert out["error_counts"] == report.error_counts
    assert validate_path(str(path)).errors_left_out == 3750 - 1000  # the default keeps 1,000
    assert main(["validate", str(path), "--max-errors", "5"]) == 1
    text = capsys.readouterr().out
    assert "3,745 more not listed" in text and "invalid_json 1250" in text


# -- issue 11 item 16 (core): format by majority, record counts, relevant warnings --------------------------------

def _mixed(n_first: int, n_rest: int) -> list:
    chat = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
            for i in range(n_first)]
    pc = [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(n_rest)]
    return chat + pc


@pytest.mark.parametrize("container", ["jsonl", "pretty", "oneline"])
@pytest.mark.parametrize("sampled", [False, True])
def test_a_mixed_file_is_read_as_its_majority_format(tmp_path, monkeypatch, container, sampled):
    """Issue 11 item 16: a file that opens with a minority of another format is read as what
    most of it is (small files: every record votes; big ones: records spread over the file)."""
    if sampled:
        from ftcurate.core.io.formats import detect

        monkeypatch.setattr(detect, "FULL_VOTE_BYTES", 0)
        monkeypatch.setattr(detect, "PROBE_BYTES", 2048)
    objs = _mixed(80, 400)
    if container == "jsonl":
        text = "\n".join(json.dumps(o) for o in objs) + "\n"
    else:
        text = layout(objs, container)
    path = write(tmp_path / ("mixed.jsonl" if container == "jsonl" else "mixed.json"), text)
    reader = DatasetReader(str(path))
    assert reader.format == "prompt-completion"
    assert reader.format_votes["prompt-completion"] > reader.format_votes["openai-chat"] > 0
    report = validate_path(str(path))
    assert (report.loaded, report.rejected) == (400, 80) and report.mixed_formats
    assert "mixed formats" in report.summary()


def test_rejected_by_key_counts_records_not_messages(tmp_path):
    """Issue 11 item 16: a record with three empty messages is one record with missing_content."""
    bad = {"messages": [{"role": "system", "content": ""}, {"role": "user", "content": ""},
                        {"role": "assistant", "content": ""}]}
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    path = write(tmp_path / "m.jsonl", "\n".join(json.dumps(x) for x in (bad, good, bad)) + "\n")
    report = validate_path(str(path))
    assert report.error_counts == {"missing_content": 6}
    assert report.rejected_by_key == {"missing_content": 2} and report.rejected == 2


def test_missing_system_only_where_the_format_has_one(tmp_path, data_dir):
    """Issue 11 item 16: no "missing system" for prompt/completion or alpaca files that never
    have a system turn; counted for OpenAI chat, and where some records of a file have one."""
    report = validate_path(str(data_dir / "gsm8k_train_head.jsonl"))
    assert report.format == "prompt-completion" and "missing_system" not in report.warnings
    report = validate_path(str(data_dir / "identity_slice.json"))
    assert report.format == "alpaca" and "missing_system" not in report.warnings
    objs = [{"instruction": "a", "input": "", "output": "b", "system": "Be brief."},
            {"instruction": "c", "input": "", "output": "d"}]
    report = validate_path(str(write(tmp_path / "a.json", json.dumps(objs))))
    assert report.warnings["missing_system"] == 1 and report.warning_examples["missing_system"] == [1]
    chat = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    report = validate_path(str(write(tmp_path / "c.jsonl", json.dumps(chat) + "\n")))
    assert report.warnings["missing_system"] == 1


def test_no_record_readable_still_a_clear_error(tmp_path):
    with pytest.raises(DatasetError) as exc:
        DatasetReader(str(write(tmp_path / "x.json", "[")))
    assert exc.value.key == "no_records" and "no closing" in exc.value.message


def test_every_error_key_is_documented():
    """docs/formats.md names every record error key the readers give (the new ones included)."""
    from ftcurate.core.io.formats import ERROR_KEYS

    doc = (Path(__file__).resolve().parents[1] / "docs" / "formats.md").read_text(encoding="utf-8")
    assert {"truncated_json", "unexpected_text", "unterminated_field", "invalid_parquet"} <= set(ERROR_KEYS)
    assert [k for k in ERROR_KEYS if f"`{k}`" not in doc] == []


# -- damage the fuzzing harness found (benchmarks/fuzz_loaders.py): the records after it still load ----------

def _one_line(objs) -> str:
    return json.dumps(objs)


def _pretty(objs) -> str:
    return json.dumps(objs, indent=2)


HARNESS_CASES = {
    # a quote lost in record 2 of a one-line array: the bracket walk can't be trusted, the
    # first record start after it can
    "lost quote, one line": (_one_line, lambda t, objs: t.replace('"output": "a2"', '"output": a2"', 1), 5),
    # record 2's end and record 3's start deleted: strings and text swap places for a while
    "strings read as text": (_one_line, lambda t, objs: t.replace('a2"}, {"instruction": "q3", "i', 'a2', 1), 4),
    # a stray "[" before record 3: not an element holding the rest of the file
    "stray [": (_one_line, lambda t, objs: t.replace(', {"instruction": "q3"', ', [{"instruction": "q3"', 1), 6),
    # junk at a line start before a pretty-printed record
    "}{ before a record": (_pretty, lambda t, objs: t.replace('},\n  {\n    "instruction": "q3"',
                                                               '},}{\n  {\n    "instruction": "q3"', 1), 6),
    # a broken element that ends on the line where the next record starts
    "same line": (_pretty, lambda t, objs: t.replace('},\n  {\n    "instruction": "q3"',
                                                      '},\n{"n": ' + "7" * 5000 + '},  {\n    "instruction": "q3"', 1), 6),
}


@pytest.mark.parametrize("case", sorted(HARNESS_CASES))
def test_damage_found_by_fuzzing_loses_no_record_after_it(tmp_path, case):
    layout_of, damage, _ = HARNESS_CASES[case]
    objs = [{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(6)]
    text = damage(layout_of(objs), objs)
    assert text != layout_of(objs)
    path = write(tmp_path / "d.json", text)
    report = validate_path(str(path))
    outputs = [p.record.messages[-1].content for p in DatasetReader(str(path)) if p.ok]
    for i in range(4, 6):  # the records after the damage load
        assert f"a{i}" in outputs, (case, outputs, errs(report))
    assert report.loaded + report.rejected == report.records and report.rejected >= 1
