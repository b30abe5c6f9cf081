"""Validation: exact, line-numbered errors for every malformed input, OpenAI's checks and
warnings, token statistics, size advice, and the `ftcurate validate` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftcurate.cli import main
from ftcurate.core.io.formats import DatasetError, rawio
from ftcurate.core.project.records import Message, Record
from ftcurate.core.io.validate import (DEFAULT_MAX_TOKENS, TokenCounter, default_epochs, size_advice,
                                    validate_path)

REPO = Path(__file__).resolve().parents[1]

GOOD = {"messages": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]}
GOOD_LINE = json.dumps(GOOD)


def write(path: Path, data) -> Path:
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def lines_file(path: Path, lines, ending: str = "\n") -> Path:
    return write(path, "".join(x + ending for x in lines))


def errs(report) -> list[tuple]:
    return [(e.line, e.index, e.key) for e in report.errors]


def assert_counts(report, records: int, loaded: int) -> None:
    assert (report.records, report.loaded, report.rejected) == (records, loaded, records - loaded)


def cli(capsys, *args) -> tuple[int, dict]:
    rc = main(["validate", *map(str, args), "--json"])
    out = capsys.readouterr().out
    return rc, json.loads(out)


# -- raw file problems: one synthetic file each ---------------------------------------------------

def test_broken_json_lines(tmp_path, capsys):
    path = lines_file(tmp_path / "broken.jsonl", [
        GOOD_LINE,
        '{"messages": [',               # cut short
        GOOD_LINE,
        "",                             # blank lines count as lines, not records
        "   ",
        "{'messages': []}",             # single quotes
        GOOD_LINE,
        '{"messages": [] } trailing',   # junk after the object
        "not json at all",
    ])
    report = validate_path(str(path))
    assert report.format == "openai-chat"
    assert_counts(report, 7, 3)
    assert errs(report) == [(2, 1, "invalid_json"), (6, 3, "invalid_json"), (8, 5, "invalid_json"),
                            (9, 6, "invalid_json")]
    assert report.errors[0].message == "invalid JSON: the text ends early (Expecting value, column 15)"
    assert report.errors[1].message == "invalid JSON: Expecting property name enclosed in double quotes (column 2)"
    assert report.error_counts == {"invalid_json": 4}

    rc, out = cli(capsys, path)
    assert rc == 1
    assert (out["records"], out["loaded"], out["rejected"]) == (7, 3, 4)
    assert out["error_counts"] == {"invalid_json": 4}
    assert [(e["line"], e["key"]) for e in out["errors"]] == [(2, "invalid_json"), (6, "invalid_json"),
                                                              (8, "invalid_json"), (9, "invalid_json")]
    assert all(e["message"] and "Traceback" not in e["message"] for e in out["errors"])
    assert set(out["warnings"]) == {"missing_system", "missing_user", "too_long"}
    assert out["stats"]["examples"] == 3


def test_invalid_utf8_line(tmp_path):
    bad = b'{"messages": [{"role": "user", "content": "caf\xe9"}, {"role": "assistant", "content": "x"}]}'
    path = write(tmp_path / "utf8.jsonl", b"\n".join([GOOD_LINE.encode(), bad, GOOD_LINE.encode(), b"\xff\xfe{"]))
    report = validate_path(str(path))
    assert_counts(report, 4, 2)
    assert errs(report) == [(2, 1, "invalid_utf8"), (4, 3, "invalid_utf8")]
    assert report.errors[0].message == "byte 0xe9 at column 47 is not valid UTF-8"
    assert report.errors[1].message == "byte 0xff at column 1 is not valid UTF-8"


@pytest.mark.parametrize("data", [
    bytes(range(256)) * 8,
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(200)),
    b"\x1f\x8b\x08\x00" + b"\x00\x01\x02\x03" * 100,
    b'{"messages": []}\n\x00\x00\x00\x00\n',
])
def test_binary_file(tmp_path, capsys, data):
    path = write(tmp_path / "data.jsonl", data)
    with pytest.raises(DatasetError) as exc:
        validate_path(str(path))
    assert exc.value.key == "binary_file"
    rc, out = cli(capsys, path)
    assert rc == 2
    assert out["error"] == "binary_file"
    assert "binary" in out["message"]


@pytest.mark.parametrize("data", [b"", b"\n\n   \n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n\r\n"])
def test_empty_file(tmp_path, capsys, data):
    path = write(tmp_path / "empty.jsonl", data)
    with pytest.raises(DatasetError) as exc:
        validate_path(str(path))
    assert exc.value.key == "empty_file"
    rc, out = cli(capsys, path)
    assert (rc, out["error"]) == (2, "empty_file")
    assert out["message"].endswith("the file is empty (no records)")


def test_other_unreadable_inputs(tmp_path, capsys):
    assert cli(capsys, tmp_path / "missing.jsonl")[1]["error"] == "not_found"
    assert cli(capsys, tmp_path)[1]["error"] == "is_directory"
    utf16 = write(tmp_path / "u16.jsonl", (GOOD_LINE + "\n").encode("utf-16"))
    rc, out = cli(capsys, utf16)
    assert (rc, out["error"]) == (2, "unsupported_encoding")
    notobj = lines_file(tmp_path / "nums.jsonl", ["1", "2"])
    rc, out = cli(capsys, notobj)
    assert (rc, out["error"]) == (2, "unknown_format")
    assert "not JSON objects" in out["message"]


def _array(objs, indent=2) -> str:
    return json.dumps(objs, indent=indent, ensure_ascii=False) + "\n"


def _line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


def test_json_array_truncated_half_way(tmp_path, capsys):
    objs = [{"instruction": f"task {i}", "input": "", "output": f"answer {i}"} for i in range(6)]
    text = _array(objs)
    cut = text.index('"answer 3"') + 4  # half-way through record 3
    path = write(tmp_path / "cut.json", text[:cut])
    report = validate_path(str(path))
    assert (report.format, report.container) == ("alpaca", "json")
    assert_counts(report, 4, 3)
    start = _line_of(text, '"task 3"') - 1  # the record's "{" line
    assert errs(report) == [(start, 3, "truncated_json")]
    assert report.errors[0].message == "the file ends in the middle of this record (truncated JSON array)"
    rc, out = cli(capsys, path)
    assert rc == 1 and out["errors"] == [{"line": start, "index": 3, "key": "truncated_json",
                                          "message": report.errors[0].message}]


@pytest.mark.parametrize("where", ["key", "string", "after_comma", "nested_list"])
def test_json_array_truncated_at_any_point(tmp_path, where):
    objs = [{"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": f"a{i}"}],
             "id": f"r{i}"} for i in range(4)]
    text = _array(objs)
    base = text.index('"r2"')
    cut = {"key": text.index('"conversations"', base) + 5,
           "string": text.index('"a3"') + 2,
           "after_comma": text.index('"q3"') + 5,
           "nested_list": text.index("]", text.index('"a3"')) + 1}[where]
    path = write(tmp_path / "cut.json", text[:cut])
    report = validate_path(str(path))
    n_complete = text[:cut].count('"id"')
    assert errs(report) == [(_line_of(text[:cut], f'"r{n_complete - 1}"') + 2, n_complete, "truncated_json")]
    assert_counts(report, n_complete + 1, n_complete)


def test_truncated_first_record(tmp_path, capsys):
    text = _array([GOOD, GOOD])
    path = write(tmp_path / "cut.json", text[:40])
    # Nothing decodes, so the format can't be detected: a clear error naming the problem ...
    rc, out = cli(capsys, path)
    assert (rc, out["error"]) == (2, "no_records")
    assert "line 2: the file ends in the middle of this record" in out["message"]
    # ... and with the format given, the one record is reported.
    report = validate_path(str(path), "openai-chat")
    assert_counts(report, 1, 0)
    assert errs(report) == [(2, 0, "truncated_json")]


def test_json_array_broken_element_in_the_middle(tmp_path):
    objs = [{"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": f"a{i}"}],
             "id": f"r{i}"} for i in range(6)]
    text = _array(objs)
    text = text.replace('"id": "r2"', '"id" "r2"')           # missing colon
    text = text.replace('"value": "a4"', '"value": "a4}')     # unterminated string, stray brace
    path = write(tmp_path / "broken.json", text)
    report = validate_path(str(path))
    assert report.format == "sharegpt"
    assert_counts(report, 6, 4)
    lines = text.split("\n")
    starts = [i + 1 for i, x in enumerate(lines) if x == "  {"]
    assert len(starts) == 6
    assert errs(report) == [(starts[2], 2, "invalid_json"), (starts[4], 4, "invalid_json")]
    assert report.errors[0].message.startswith("invalid JSON: Expecting ':' delimiter")


def test_one_line_json_array_with_broken_element(tmp_path):
    objs = [{"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": f"a{i}"}]}
            for i in range(5)]
    text = json.dumps(objs).replace('"value": "q1"', '"value": q1"')
    report = validate_path(str(write(tmp_path / "one.json", text)))
    assert_counts(report, 5, 4)
    assert errs(report) == [(1, 1, "invalid_json")]


def test_json_array_bom_crlf_and_invalid_utf8(tmp_path):
    objs = [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(4)]
    text = _array(objs).replace("\n", "\r\n")
    data = b"\xef\xbb\xbf" + text.encode().replace(b'"p2"', b'"p\xe92"')
    report = validate_path(str(write(tmp_path / "a.json", data)))
    assert (report.format, report.container) == ("prompt-completion", "json")
    assert_counts(report, 4, 3)
    assert errs(report) == [(10, 2, "invalid_utf8")]


def test_bom_and_crlf_are_transparent(tmp_path):
    body = ("\r\n".join([GOOD_LINE, "", GOOD_LINE, '{"messages": 5}', "", GOOD_LINE]) + "\r\n").encode()
    report = validate_path(str(write(tmp_path / "crlf.jsonl", b"\xef\xbb\xbf" + body)))
    assert report.format == "openai-chat"
    assert_counts(report, 4, 3)
    assert errs(report) == [(4, 2, "missing_messages_list")]
    report = validate_path(str(write(tmp_path / "lf.jsonl", body.replace(b"\r\n", b"\n"))))
    assert errs(report) == [(4, 2, "missing_messages_list")]


def test_wrong_types_unknown_roles_missing_keys(tmp_path):
    records = [
        [1, 2],                                                                        # data_type
        "a string",                                                                    # data_type
        None,                                                                          # data_type
        {"messages": "hi"},                                                            # missing_messages_list
        {"messages": []},                                                              # missing_messages_list
        {"conversation": []},                                                          # missing_messages_list
        {"messages": [1, {"role": "assistant", "content": "a"}]},                      # data_type (message)
        {"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "robot", "content": "q"}, {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]},
        {"messages": [{"content": "q"}, {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "user", "content": "q", "extra": 1}, {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "user", "content": "q"}]},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 2}]},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "tools": 5},
        GOOD,
    ]
    path = lines_file(tmp_path / "types.jsonl", [json.dumps(r) for r in records])
    report = validate_path(str(path))
    assert report.format == "openai-chat"
    assert_counts(report, 16, 1)
    assert errs(report) == [
        (1, 0, "data_type"), (2, 1, "data_type"), (3, 2, "data_type"),
        (4, 3, "missing_messages_list"), (5, 4, "missing_messages_list"), (6, 5, "missing_messages_list"),
        (7, 6, "data_type"), (8, 7, "missing_content"), (9, 8, "unrecognized_role"),
        (10, 9, "message_missing_key"), (10, 9, "missing_content"),
        (11, 10, "message_missing_key"), (11, 10, "unrecognized_role"),
        (12, 11, "message_unrecognized_key"), (13, 12, "example_missing_assistant_message"),
        (14, 13, "invalid_weight"), (15, 14, "invalid_tools"),
    ]
    messages = {(e.line, e.key): e.message for e in report.errors}
    assert messages[(1, "data_type")] == "record is a JSON array, not an object"
    assert messages[(8, "missing_content")] == "message 1 (user) content is not a string"
    assert messages[(9, "unrecognized_role")] == ("message 1 has role 'robot'; expected one of "
                                                  "system, user, assistant, function")
    assert messages[(10, "message_missing_key")] == "message 1 has no 'content'"
    assert messages[(11, "message_missing_key")] == "message 1 has no 'role'"
    assert messages[(12, "message_unrecognized_key")] == "message 1 has unrecognised key(s): extra"
    assert messages[(13, "example_missing_assistant_message")] == "the example has no assistant message"


def test_single_20mb_line(tmp_path, capsys):
    big = json.dumps({"messages": [{"role": "user", "content": "x" * 20_000_000},
                                   {"role": "assistant", "content": "ok"}]})
    path = lines_file(tmp_path / "big.jsonl", [GOOD_LINE, big, GOOD_LINE, big[:-3]])
    report = validate_path(str(path))
    assert_counts(report, 4, 3)
    assert errs(report) == [(4, 3, "invalid_json")]
    assert report.errors[0].message.startswith("invalid JSON: the text ends early")
    assert report.warnings["too_long"] == 1
    assert report.warning_examples["too_long"] == [1]
    assert report.stats["tokens_per_example"]["max"] > 5_000_000
    # A reader limit is reported as such, with the line, and the rest still loads.
    rawio_limit = rawio.MAX_LINE_BYTES
    try:
        rawio.MAX_LINE_BYTES = 10_000_000
        rc, out = cli(capsys, path)
    finally:
        rawio.MAX_LINE_BYTES = rawio_limit
    assert rc == 1
    assert [(e["line"], e["key"]) for e in out["errors"]] == [(2, "line_too_long"), (4, "line_too_long")]
    assert out["errors"][0]["message"] == "line is 20 MB, over the 10 MB limit"
    assert (out["records"], out["loaded"]) == (4, 2)


def test_single_20mb_line_json_array(tmp_path):
    objs = [{"instruction": "i" * 1000, "input": "", "output": "o" * 1000} for _ in range(10_000)]
    text = json.dumps(objs)
    assert len(text) > 20_000_000 and "\n" not in text
    report = validate_path(str(write(tmp_path / "one_line.json", text)))
    assert (report.format, report.container) == ("alpaca", "json")
    assert_counts(report, 10_000, 10_000)


# -- the invariant, over random files --------------------------------------------------------------

KINDS = {
    "good": GOOD_LINE,
    "tool": json.dumps({"messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "content": "r", "tool_call_id": "c"}, {"role": "assistant", "content": "a"}]}),
    "broken": '{"messages": [{"role": "user"',
    "utf8": b'{"messages": "\xc3\x28"}',
    "string": '"just text"',
    "noassistant": json.dumps({"messages": [{"role": "user", "content": "q"}]}),
    "blank": "",
    "spaces": " \t ",
}
EXPECTED_KEY = {"broken": "invalid_json", "utf8": "invalid_utf8", "string": "data_type",
                "noassistant": "example_missing_assistant_message"}


@settings(max_examples=80, deadline=None)
@given(kinds=st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=30),
       crlf=st.lists(st.booleans(), min_size=30, max_size=30), bom=st.booleans(), final_newline=st.booleans())
def test_every_record_is_counted_with_its_line(tmp_path_factory, kinds, crlf, bom, final_newline):
    parts = []
    for k, kind in enumerate(kinds):
        body = KINDS[kind]
        body = body if isinstance(body, bytes) else body.encode()
        last = k == len(kinds) - 1
        parts.append(body + ((b"\r\n" if crlf[k] else b"\n") if (not last or final_newline) else b""))
    data = (b"\xef\xbb\xbf" if bom else b"") + b"".join(parts)
    path = tmp_path_factory.mktemp("inv") / "mixed.jsonl"
    path.write_bytes(data)
    records = [(line, kind) for line, kind in enumerate(kinds, start=1) if kind not in ("blank", "spaces")]
    if not records:
        with pytest.raises(DatasetError) as exc:
            validate_path(str(path), "openai-chat")
        assert exc.value.key == "empty_file"
        return
    report = validate_path(str(path), "openai-chat")
    bad = [(line, idx, EXPECTED_KEY[kind]) for idx, (line, kind) in enumerate(records) if kind in EXPECTED_KEY]
    assert errs(report) == bad
    assert report.records == len(records)
    assert report.loaded + report.rejected == report.records
    assert report.loaded == sum(kind in ("good", "tool") for _, kind in records)


# -- OpenAI's checks, compared with the cookbook's own code -------------------------------------------

def cookbook_format_errors(dataset: list) -> dict:
    """OpenAI cookbook "Data preparation and analysis for chat model fine-tuning", verbatim logic."""
    from collections import defaultdict

    format_errors = defaultdict(int)
    for ex in dataset:
        if not isinstance(ex, dict):
            format_errors["data_type"] += 1
            continue
        messages = ex.get("messages", None)
        if not messages:
            format_errors["missing_messages_list"] += 1
            continue
        for message in messages:
            if "role" not in message or "content" not in message:
                format_errors["message_missing_key"] += 1
            if any(k not in ("role", "content", "name", "function_call", "weight") for k in message):
                format_errors["message_unrecognized_key"] += 1
            if message.get("role", None) not in ("system", "user", "assistant", "function"):
                format_errors["unrecognized_role"] += 1
            content = message.get("content", None)
            function_call = message.get("function_call", None)
            if (not content and not function_call) or not isinstance(content, str):
                format_errors["missing_content"] += 1
        if not any(message.get("role", None) == "assistant" for message in messages):
            format_errors["example_missing_assistant_message"] += 1
    return dict(format_errors)


messages_st = st.lists(st.fixed_dictionaries({}, optional={
    "role": st.sampled_from(["system", "user", "assistant", "function", "robot", "", None]),
    "content": st.sampled_from(["hello", "", None, 7, ["x"]]),
    "name": st.just("bob"),
    "weight": st.sampled_from([0, 1]),
    "extra": st.just(1),
    "tool_call_id": st.just("x"),
}), max_size=4)
examples_st = st.one_of(
    st.builds(lambda m: {"messages": m}, messages_st),
    st.builds(lambda m: {"messages": m, "id": 3}, messages_st),
    st.just({"prompt": "no messages"}),
    st.sampled_from([[1], "text", 3]),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(examples_st, min_size=1, max_size=12))
def test_openai_error_counts_match_the_cookbook(tmp_path_factory, dataset):
    path = tmp_path_factory.mktemp("cook") / "d.jsonl"
    lines_file(path, [json.dumps(ex) for ex in dataset])
    report = validate_path(str(path), "openai-chat")
    assert report.error_counts == cookbook_format_errors(dataset)
    clean = [not cookbook_format_errors([ex]) for ex in dataset]
    assert report.loaded == sum(clean)
    assert report.records == len(dataset)


def test_tool_role_needs_tools(tmp_path):
    no_tools = {"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "r"},
                             {"role": "assistant", "content": "a"}]}
    with_tools = {"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "r"},
                               {"role": "assistant", "content": "a"}],
                  "tools": [{"type": "function", "function": {"name": "f"}}]}
    call = {"messages": [{"role": "user", "content": "q"},
                         {"role": "assistant", "content": None, "tool_calls": [
                             {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                         {"role": "tool", "content": "r", "tool_call_id": "c"},
                         {"role": "assistant", "content": "a"}]}
    fcall = {"messages": [{"role": "user", "content": "q"},
                          {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
                          {"role": "function", "name": "f", "content": "r"},
                          {"role": "assistant", "content": "a", "weight": 1}]}
    bad_call = {"messages": [{"role": "user", "content": "q"},
                             {"role": "assistant", "content": None, "function_call": "f"}]}
    bool_weight = {"messages": [{"role": "user", "content": "q"},
                                {"role": "assistant", "content": "a", "weight": True}]}
    path = lines_file(tmp_path / "t.jsonl", [json.dumps(r) for r in
                                             (no_tools, with_tools, call, fcall, bad_call, bool_weight)])
    report = validate_path(str(path))
    assert_counts(report, 6, 3)
    assert errs(report) == [(1, 0, "unrecognized_role"), (5, 4, "invalid_function_call"),
                            (6, 5, "invalid_weight")]


# -- warnings, statistics, advice ------------------------------------------------------------------------

def test_warnings_and_max_tokens(tmp_path, capsys):
    recs = [
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                      {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "x" * 20_000},
                      {"role": "assistant", "content": "a"}]},
    ]
    path = lines_file(tmp_path / "w.jsonl", [json.dumps(r) for r in recs])
    report = validate_path(str(path))
    assert report.warnings == {"missing_system": 1, "missing_user": 1, "too_long": 1}
    assert report.warning_examples == {"missing_system": [1], "missing_user": [2], "too_long": [3]}
    assert report.rejected == 0
    rc, out = cli(capsys, path)
    assert rc == 0
    assert out["warnings"] == {"missing_system": 1, "missing_user": 1, "too_long": 1}
    assert out["stats"]["max_tokens"] == DEFAULT_MAX_TOKENS == 4096
    rc, out = cli(capsys, path, "--max-tokens", "10000")
    assert rc == 0 and out["warnings"]["too_long"] == 0 and out["stats"]["max_tokens"] == 10000
    rc, out = cli(capsys, path, "--max-tokens", "10")
    assert out["warnings"]["too_long"] == 4


def test_token_counts_and_stats(tmp_path):
    counter = TokenCounter()
    assert counter.count("") == 0 and counter.count(None) == 0
    assert counter.count("abcd") == 1 and counter.count("abcde") == 2
    assert counter.count("中文") == 2 and counter.count("ab中") == 2
    rec = Record([Message("system", "abcd"), Message("user", "abcdefgh", name="bob"),
                  Message("assistant", "abcdefghijkl")])
    # 3 to prime + per message 3 + role + content (+1 + name): system 3+2+1, user 3+1+2+1+1, assistant 3+3+3
    assert counter.messages(rec) == (3 + 6 + 8 + 9, 3)

    recs = [{"messages": [{"role": "user", "content": "a" * (4 * n)}, {"role": "assistant", "content": "b" * (4 * n)}]}
            for n in range(1, 21)]
    path = lines_file(tmp_path / "s.jsonl", [json.dumps(r) for r in recs])
    report = validate_path(str(path), max_tokens=20)
    s = report.stats
    totals = [3 + (3 + 1 + n) + (3 + 3 + n) for n in range(1, 21)]  # 13 + 2n
    assert s["examples"] == 20
    assert s["messages_per_example"] == {"min": 2, "max": 2, "mean": 2.0, "median": 2.0, "p5": 2.0, "p95": 2.0}
    assert s["tokens_per_example"]["min"] == 15 and s["tokens_per_example"]["max"] == 53
    assert s["tokens_per_example"]["mean"] == 34.0 and s["tokens_per_example"]["median"] == 34.0
    assert s["tokens_per_example"]["p5"] == pytest.approx(16.9)
    assert s["tokens_per_example"]["p95"] == pytest.approx(51.1)
    assert s["assistant_tokens_per_example"]["min"] == 1 and s["assistant_tokens_per_example"]["max"] == 20
    assert s["total_tokens"] == sum(totals)
    assert s["default_epochs"] == default_epochs(20) == 5
    assert s["billing_tokens_per_epoch"] == sum(min(20, t) for t in totals)
    assert s["billed_tokens"] == 5 * s["billing_tokens_per_epoch"]
    assert report.warnings["too_long"] == sum(t > 20 for t in totals)


def test_default_epochs_follow_openai():
    assert [default_epochs(n) for n in (0, 1, 10, 20, 33, 34, 1000, 8333, 8334, 30000)] == \
           [3, 25, 10, 5, 3, 3, 3, 3, 2, 1]


def test_size_advice():
    assert "learns little" in size_advice(50)[0]
    assert "overfitting" in size_advice(500)[0]
    assert not any("learns little" in a or "overfitting" in a for a in size_advice(1500))
    assert size_advice(1500) == [size_advice(1500)[-1]] and "held-out" in size_advice(1500)[0].lower()
    assert size_advice(1500, heldout=60)[-1] == "Held-out set: 60 examples."


def test_real_data_reports(realdata, capsys):
    rc, out = cli(capsys, realdata / "code_alpaca_2k.json")
    assert rc == 1
    assert (out["records"], out["loaded"], out["rejected"]) == (2017, 2015, 2)
    assert out["error_counts"] == {"missing_content": 2}
    assert [(e["index"], e["line"], e["key"]) for e in out["errors"]] == [
        (237, 1187, "missing_content"), (1859, 9297, "missing_content")]
    assert any("overfitting" in a for a in out["advice"]) is False and out["stats"]["default_epochs"] == 3
    rc, out = cli(capsys, realdata / "gsm8k_test.jsonl", "--max-tokens", "200")
    # prompt/completion never has a system turn: no "missing_system 1319" noise (issue 11, item 16)
    assert rc == 0 and out["records"] == 1319 and "missing_system" not in out["warnings"]
    assert 0 < out["warnings"]["too_long"] < 1319
    assert out["format"] == "prompt-completion"
    rc, out = cli(capsys, realdata / "identity.json")
    assert rc == 0 and out["records"] == 91 and any("overfitting" in a for a in out["advice"]) is False
    assert any("learns little" in a for a in out["advice"])


# -- the command line ----------------------------------------------------------------------------------

def test_cli_clean_file_and_human_output(tmp_path, capsys):
    path = lines_file(tmp_path / "ok.jsonl", [GOOD_LINE] * 3)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "records: 3   loaded: 3   rejected: 0" in out and "no errors" in out
    bad = lines_file(tmp_path / "bad.jsonl", [GOOD_LINE, "{oops", GOOD_LINE])
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "line 2 (record 1): invalid_json: invalid JSON" in out
    assert "Traceback" not in out


def test_cli_format_and_mapping_options(tmp_path, capsys):
    path = lines_file(tmp_path / "qa.jsonl", [json.dumps({"q": "one", "a": "1"}), json.dumps({"q": "two"})])
    rc, out = cli(capsys, path)
    assert (rc, out["error"]) == (2, "unknown_format")
    rc, out = cli(capsys, path, "--map", "prompt=q", "--map", "completion=a")
    assert rc == 1 and out["format"] == "prompt-completion"
    assert [(e["line"], e["key"]) for e in out["errors"]] == [(2, "missing_key")]
    rc, out = cli(capsys, path, "--format", "alpaca")
    assert rc == 1 and out["error_counts"] == {"missing_key": 4}
    rc, out = cli(capsys, path, "--map", "bogus")
    assert (rc, out["error"]) == (2, "bad_mapping")


@pytest.mark.parametrize("args", [["--format", "yaml"], ["--max-tokens", "many"], []])
def test_cli_bad_arguments_exit_2(tmp_path, capsys, args):
    path = lines_file(tmp_path / "ok.jsonl", [GOOD_LINE])
    argv = ["validate", str(path), *args] if args else ["validate"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_cli_subprocess(tmp_path):
    exe = REPO / ".venv" / "bin" / "ftcurate"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ftcurate.cli"]
    path = lines_file(tmp_path / "mixed.jsonl", [GOOD_LINE, "", '{"messages": [}', GOOD_LINE], ending="\r\n")
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    proc = subprocess.run([*cmd, "validate", str(path), "--json"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["records"], out["loaded"], out["rejected"]) == (3, 2, 1)
    assert out["errors"] == [{"line": 3, "index": 1, "key": "invalid_json",
                              "message": "invalid JSON: Expecting value (column 15)"}]
    assert "Traceback" not in proc.stderr
    proc = subprocess.run([*cmd, "validate", str(tmp_path / "nope.jsonl")], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 2
    assert "no such file" in proc.stderr and "Traceback" not in proc.stderr
