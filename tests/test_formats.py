"""Readers and writers: detection, explicit formats, mappings, positions, real data."""

from __future__ import annotations

import csv
import json
import os
import tracemalloc
from pathlib import Path

import pytest

from ftcurate.core.io.formats import (DatasetError, DatasetReader, dump_record, parse_mapping,
                                   write_records)
from ftcurate.core.project.records import Message, Record


def write(path: Path, data) -> Path:
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def jsonl(path: Path, objs, ending: str = "\n") -> Path:
    return write(path, "".join(json.dumps(o, ensure_ascii=False) + ending for o in objs))


def msgs(record: Record) -> list[dict]:
    return [m.to_dict() for m in record.messages]


def read_all(path, fmt="auto", mapping=None):
    reader = DatasetReader(path, fmt, mapping)
    return reader, list(reader)


# -- OpenAI chat ----------------------------------------------------------------------------

TOOL_RECORD = {
    "messages": [
        {"role": "system", "content": "You call tools."},
        {"role": "user", "content": "Weather in Paris?", "name": "ann"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_a", "type": "function",
             "function": {"name": "weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "content": "18C", "tool_call_id": "call_a"},
        {"role": "assistant", "content": "It is 18C.", "weight": 1},
    ],
    "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
    "id": "r1",
}
FUNCTION_RECORD = {
    "messages": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": None, "function_call": {"name": "calc", "arguments": "{\"e\": \"2+2\"}"}},
        {"role": "function", "name": "calc", "content": "4"},
        {"role": "assistant", "content": "4", "weight": 0},
        {"role": "assistant", "content": "Four.", "weight": 1},
    ],
}


def test_openai_chat_keeps_names_calls_weights_tools_and_metadata(tmp_path):
    path = jsonl(tmp_path / "chat.jsonl", [TOOL_RECORD, FUNCTION_RECORD])
    reader, parsed = read_all(path)
    assert (reader.format, reader.container) == ("openai-chat", "jsonl")
    assert all(p.ok for p in parsed)
    first, second = (p.record for p in parsed)
    assert msgs(first) == TOOL_RECORD["messages"]
    assert first.tools == TOOL_RECORD["tools"]
    assert first.metadata == {"id": "r1"}
    assert first.uses_tools
    assert msgs(second) == FUNCTION_RECORD["messages"]
    assert second.metadata == {}
    assert [(p.index, p.line) for p in parsed] == [(0, 1), (1, 2)]
    assert (first.source.line, first.source.index, second.source.index) == (1, 0, 1)
    assert first.source.file == str(path)


def test_openai_chat_tools_as_json_string(tmp_path):
    rec = dict(TOOL_RECORD, tools=json.dumps(TOOL_RECORD["tools"]))
    _, parsed = read_all(jsonl(tmp_path / "c.jsonl", [rec]))
    assert parsed[0].record.tools == TOOL_RECORD["tools"]


def test_write_openai_chat_array_and_lines(tmp_path):
    recs = [p.record for p in DatasetReader(jsonl(tmp_path / "in.jsonl", [TOOL_RECORD, FUNCTION_RECORD]))]
    write_records(recs, tmp_path / "out.json", "openai-chat")
    write_records(recs, tmp_path / "out.jsonl", "openai-chat")
    arr = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert [o["messages"] for o in arr] == [TOOL_RECORD["messages"], FUNCTION_RECORD["messages"]]
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x) for x in lines] == arr
    assert arr[0]["id"] == "r1"
    # Atomic write: no temporary files left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.json", "out.jsonl"]


# -- prompt / completion ----------------------------------------------------------------------

def test_prompt_completion_with_system_and_metadata(tmp_path):
    path = jsonl(tmp_path / "pc.jsonl", [
        {"prompt": "Hi", "completion": "Hello", "system": "Be brief.", "source": "x"},
        {"prompt": "Bye", "completion": "Ciao"},
        {"prompt": "Q", "completion": "A", "system": ""},
    ])
    reader, parsed = read_all(path)
    assert reader.format == "prompt-completion"
    assert reader.mapping == {"prompt": "prompt", "completion": "completion", "system": "system"}
    assert msgs(parsed[0].record) == [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "Hi"},
                                      {"role": "assistant", "content": "Hello"}]
    assert parsed[0].record.metadata == {"source": "x"}
    assert msgs(parsed[1].record) == [{"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Ciao"}]
    assert [m.role for m in parsed[2].record.messages] == ["user", "assistant"]  # empty system: none


def test_prompt_completion_field_errors(tmp_path):
    path = jsonl(tmp_path / "pc.jsonl", [
        {"prompt": "ok", "completion": "ok"},
        {"prompt": "no completion"},
        {"prompt": 5, "completion": "x"},
        {"prompt": "", "completion": "x"},
        "a string",
    ])
    _, parsed = read_all(path, "prompt-completion")
    got = [(p.index, p.line, [e.key for e in p.errors]) for p in parsed]
    assert got == [(0, 1, []), (1, 2, ["missing_key"]), (2, 3, ["wrong_type"]), (3, 4, ["missing_content"]),
                   (4, 5, ["data_type"])]
    assert "completion" in parsed[1].errors[0].message


def test_question_answer_detected_with_mapping(data_dir):
    reader, parsed = read_all(data_dir / "gsm8k_train_head.jsonl")
    assert reader.format == "prompt-completion"
    assert reader.mapping == {"prompt": "question", "completion": "answer", "system": None}
    assert len(parsed) == 20 and all(p.ok for p in parsed)
    first = parsed[0].record
    assert first.first_user.startswith("Natalia sold clips")
    assert first.answer_text.endswith("#### 72")
    assert first.metadata == {}


def test_explicit_mapping_for_unknown_keys(data_dir):
    path = data_dir / "mmlu_sociology_chinese_head.jsonl"
    with pytest.raises(DatasetError) as exc:
        DatasetReader(path)
    assert exc.value.key == "unknown_format"
    assert "'language', 'text'" in exc.value.message
    mapping = parse_mapping(["prompt=text", "completion=language"])
    reader, parsed = read_all(path, "auto", mapping)
    assert reader.format == "prompt-completion"
    assert len(parsed) == 5 and all(p.ok for p in parsed)
    assert parsed[0].record.answer_text == "chinese"
    _, parsed = read_all(path, "prompt-completion", mapping)
    assert all(p.ok for p in parsed)


def test_parse_mapping_rejects_bad_pairs():
    assert parse_mapping([" prompt = q ", "completion=a"]) == {"prompt": "q", "completion": "a"}
    for bad in (["prompt"], ["answer=a"]):
        with pytest.raises(DatasetError) as exc:
            parse_mapping(bad)
        assert exc.value.key == "bad_mapping"


# -- alpaca ---------------------------------------------------------------------------------------

ALPACA = [
    {"instruction": "Translate", "input": "chat", "output": "cat"},
    {"instruction": "Say hi", "input": "", "output": "hi", "system": "Be nice.",
     "history": [["first q", "first a"], ["second q", "second a"]], "tag": 7},
]


@pytest.mark.parametrize("container", ["json", "jsonl"])
def test_alpaca_with_system_and_history(tmp_path, container):
    if container == "json":
        path = write(tmp_path / "a.json", json.dumps(ALPACA, indent=2))
    else:
        path = jsonl(tmp_path / "a.jsonl", ALPACA)
    reader, parsed = read_all(path)
    assert (reader.format, reader.container) == ("alpaca", container)
    assert msgs(parsed[0].record) == [{"role": "user", "content": "Translate\n\nchat"},
                                      {"role": "assistant", "content": "cat"}]
    assert msgs(parsed[1].record) == [
        {"role": "system", "content": "Be nice."},
        {"role": "user", "content": "first q"}, {"role": "assistant", "content": "first a"},
        {"role": "user", "content": "second q"}, {"role": "assistant", "content": "second a"},
        {"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "hi"}]
    assert parsed[1].record.metadata == {"tag": 7}
    # Elements of a JSON array report the line they start on; lines of JSON Lines their line.
    assert [p.line for p in parsed] == ([2, 7] if container == "json" else [1, 2])


def test_alpaca_field_errors(tmp_path):
    path = jsonl(tmp_path / "a.jsonl", [
        {"instruction": "i", "output": "o"},
        {"instruction": "i"},
        {"instruction": "i", "output": ["o"]},
        {"instruction": "i", "output": "o", "history": "nope"},
        {"instruction": "i", "output": "o", "history": [["q"]]},
        {"instruction": "i", "output": "o", "history": [["q", ""]]},
    ])
    _, parsed = read_all(path, "alpaca")
    assert [[e.key for e in p.errors] for p in parsed] == [
        [], ["missing_key"], ["wrong_type"], ["wrong_type"], ["wrong_type"], ["missing_content"]]


def test_identity_slice_same_instruction_different_answers(data_dir):
    reader, parsed = read_all(data_dir / "identity_slice.json")
    assert (reader.format, reader.container) == ("alpaca", "json")
    assert len(parsed) == 26 and all(p.ok for p in parsed)
    by_user: dict[str, set] = {}
    for p in parsed:
        by_user.setdefault(p.record.first_user, set()).add(p.record.answer_text)
    # Both are kept: conflicting answers are for the scanners to flag, not the reader to drop.
    assert len(by_user["你好"]) == 2
    assert len(by_user["你是谁？"]) == 2
    assert all("{{name}}" in p.record.answer_text or "{{author}}" in p.record.answer_text for p in parsed)


# -- ShareGPT ----------------------------------------------------------------------------------

def test_sharegpt_roles_tool_calls_and_observations(tmp_path):
    rec = {"id": "x1", "system": "top system", "conversations": [
        {"from": "human", "value": "find chicken recipes"},
        {"from": "function_call", "value": json.dumps({"name": "search", "arguments": {"q": "chicken"}})},
        {"from": "observation", "value": "[\"stir fry\"]"},
        {"from": "function_call", "value": json.dumps({"name": "save", "arguments": "{}"})},
        {"from": "observation", "value": "saved"},
        {"from": "gpt", "value": "Stir fry."},
    ], "tools": json.dumps([{"name": "search", "parameters": {"type": "object"}}])}
    reader, parsed = read_all(jsonl(tmp_path / "s.jsonl", [rec]))
    assert reader.format == "sharegpt"
    r = parsed[0].record
    assert msgs(r) == [
        {"role": "system", "content": "top system"},
        {"role": "user", "content": "find chicken recipes"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "search", "arguments": "{\"q\": \"chicken\"}"}}]},
        {"role": "tool", "content": "[\"stir fry\"]", "tool_call_id": "call_0"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "save", "arguments": "{}"}}]},
        {"role": "tool", "content": "saved", "tool_call_id": "call_1"},
        {"role": "assistant", "content": "Stir fry."},
    ]
    assert r.tools == [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
    assert r.metadata == {"id": "x1"}


def test_sharegpt_system_turn_and_role_aliases(tmp_path):
    rec = {"conversations": [{"from": "system", "value": "Be terse."}, {"from": "user", "value": "q"},
                             {"from": "assistant", "value": "a"}, {"from": "human", "value": "q2"},
                             {"from": "gpt", "value": "a2"}]}
    _, parsed = read_all(jsonl(tmp_path / "s.jsonl", [rec]))
    assert [(m.role, m.content) for m in parsed[0].record.messages] == [
        ("system", "Be terse."), ("user", "q"), ("assistant", "a"), ("user", "q2"), ("assistant", "a2")]
    # Written back, the system turn becomes the top-level "system" key.
    write_records([parsed[0].record], tmp_path / "out.jsonl", "sharegpt")
    out = json.loads((tmp_path / "out.jsonl").read_text(encoding="utf-8"))
    assert out["system"] == "Be terse." and [t["from"] for t in out["conversations"]] == ["human", "gpt", "human", "gpt"]


def test_sharegpt_field_errors(tmp_path):
    path = jsonl(tmp_path / "s.jsonl", [
        {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
        {"conversations": [{"from": "alien", "value": "q"}, {"from": "gpt", "value": "a"}]},
        {"conversations": [{"from": "human"}, {"from": "gpt", "value": "a"}]},
        {"conversations": [{"from": "human", "value": ""}, {"from": "gpt", "value": "a"}]},
        {"conversations": [{"from": "human", "value": "q"}]},
        {"conversations": []},
        {"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": "not json"},
                           {"from": "gpt", "value": "a"}]},
        {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], "tools": "{bad"},
    ])
    _, parsed = read_all(path, "sharegpt")
    assert [[e.key for e in p.errors] for p in parsed] == [
        [], ["unrecognized_role"], ["message_missing_key"], ["missing_content"],
        ["example_missing_assistant_message"], ["missing_messages_list"], ["invalid_function_call"],
        ["invalid_tools"]]


def test_glaive_slice_tools_json_string(data_dir):
    reader, parsed = read_all(data_dir / "glaive_toolcall_slice.json")
    assert (reader.format, reader.container) == ("sharegpt", "json")
    assert len(parsed) == 12 and all(p.ok for p in parsed)
    raw = json.loads((data_dir / "glaive_toolcall_slice.json").read_text(encoding="utf-8"))
    for p, src in zip(parsed, raw):
        assert isinstance(src["tools"], str)
        if src["tools"] == "[]":
            assert p.record.tools is None
        else:
            assert p.record.tools == [{"type": "function", "function": f} for f in json.loads(src["tools"])]
        calls = [m for m in p.record.messages if m.tool_calls]
        assert len(calls) == sum(t["from"] == "function_call" for t in src["conversations"])
        for k, m in enumerate(calls):
            assert m.tool_calls[0]["id"] == f"call_{k}"
            json.loads(m.tool_calls[0]["function"]["arguments"])
    first = parsed[0].record
    assert first.by_role("tool")[0].tool_call_id == "call_0"


def test_dummy_conversation_slice(data_dir):
    reader, parsed = read_all(data_dir / "dummy_conversation_slice.json")
    assert reader.format == "sharegpt"
    assert len(parsed) == 10 and all(p.ok for p in parsed)
    assert parsed[0].record.metadata == {"id": "identity_0"}
    assert [m.role for m in parsed[0].record.messages] == ["user", "assistant", "user", "assistant"]


def test_sharegpt_export_of_glaive_reads_back(tmp_path, data_dir):
    recs = [p.record for p in DatasetReader(data_dir / "glaive_toolcall_slice.json")]
    for fmt, name in (("sharegpt", "g.json"), ("openai-chat", "g.jsonl"), ("csv", "g.csv"),
                      ("parquet", "g.parquet")):
        result = write_records(recs, tmp_path / name, fmt)
        assert result.written == 12 and not result.skipped
        back = [p.record for p in DatasetReader(tmp_path / name)]
        assert [msgs(r) for r in back] == [msgs(r) for r in recs]
        assert [r.tools for r in back] == [r.tools for r in recs]


# -- explicit format override ---------------------------------------------------------------------

def test_explicit_format_overrides_detection(tmp_path):
    path = jsonl(tmp_path / "x.jsonl", [{"instruction": "i", "output": "o", "prompt": "p", "completion": "c"}])
    assert DatasetReader(path).format == "alpaca"
    reader, parsed = read_all(path, "prompt-completion")
    assert reader.format == "prompt-completion"
    assert msgs(parsed[0].record) == [{"role": "user", "content": "p"}, {"role": "assistant", "content": "c"}]
    # Forcing a format the records don't have reports every record, with its line.
    _, parsed = read_all(path, "openai-chat")
    assert [(p.line, [e.key for e in p.errors]) for p in parsed] == [(1, ["missing_messages_list"])]


def test_bad_format_name():
    with pytest.raises(DatasetError) as exc:
        DatasetReader("whatever.jsonl", "yaml")
    assert exc.value.key == "bad_format"


# -- CSV and Parquet ------------------------------------------------------------------------------

def test_csv_prompt_completion_positions_and_errors(tmp_path):
    path = write(tmp_path / "a.csv",
                 'prompt,completion,extra\n"multi\nline","ok",1\n\n"x",y,2\n"bad row",1\n'
                 '"q\r\nq","a\r\na",3\nq2,"",4\n')
    reader, parsed = read_all(path)
    assert (reader.format, reader.mapping) == ("csv", {"prompt": "prompt", "completion": "completion"})
    assert [(p.index, p.line, [e.key for e in p.errors]) for p in parsed] == [
        (0, 2, []), (1, 5, []), (2, 6, ["wrong_type"]), (3, 7, []), (4, 10, ["missing_content"])]
    assert msgs(parsed[0].record)[0]["content"] == "multi\nline"
    assert msgs(parsed[3].record) == [{"role": "user", "content": "q\r\nq"}, {"role": "assistant", "content": "a\r\na"}]
    assert parsed[0].record.metadata == {"extra": "1"}


def test_csv_instruction_columns_bom_crlf_and_invalid_utf8(tmp_path):
    data = ("\ufeffinstruction,input,output,system\r\nTranslate,chat,cat,\r\nSay hi,,hi,Be nice.\r\n"
            ).encode("utf-8") + b"caf\xe9,,x,\r\nlast,,y,\r\n"
    reader, parsed = read_all(write(tmp_path / "a.csv", data))
    assert reader.mapping == {"system": "system", "instruction": "instruction", "output": "output", "input": "input"}
    assert [(p.line, [e.key for e in p.errors]) for p in parsed] == [
        (2, []), (3, []), (4, ["invalid_utf8"]), (5, [])]
    assert msgs(parsed[0].record) == [{"role": "user", "content": "Translate\n\nchat"},
                                      {"role": "assistant", "content": "cat"}]
    assert msgs(parsed[1].record)[0] == {"role": "system", "content": "Be nice."}


def test_csv_messages_column_and_explicit_mapping(tmp_path):
    rows = [["id", "chat", "tools"],
            ["1", json.dumps(TOOL_RECORD["messages"]), json.dumps(TOOL_RECORD["tools"])],
            ["2", json.dumps(FUNCTION_RECORD["messages"]), ""],
            ["3", "not json", ""]]
    path = tmp_path / "m.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(DatasetError) as exc:
        DatasetReader(path)
    assert exc.value.key == "no_mapping"
    reader, parsed = read_all(path, "auto", {"messages": "chat", "tools": "tools"})
    assert msgs(parsed[0].record) == TOOL_RECORD["messages"]
    assert parsed[0].record.tools == TOOL_RECORD["tools"]
    assert parsed[0].record.metadata == {"id": "1"}
    assert msgs(parsed[1].record) == FUNCTION_RECORD["messages"]
    assert [e.key for e in parsed[2].errors] == ["missing_messages_list"]
    with pytest.raises(DatasetError) as exc:
        DatasetReader(path, "csv", {"messages": "nope"})
    assert exc.value.key == "bad_mapping"


def test_mmlu_csv_without_header_needs_a_mapping(tmp_path, data_dir):
    src = data_dir / "mmlu_abstract_algebra_head.csv"
    with pytest.raises(DatasetError) as exc:
        DatasetReader(src)
    assert exc.value.key == "no_mapping" and "--map" in exc.value.message
    # With a header row added, a mapping picks the columns; commas and quotes survive.
    path = write(tmp_path / "mmlu.csv", "question,A,B,C,D,answer\n" + src.read_text(encoding="utf-8"))
    reader, parsed = read_all(path, "csv", {"prompt": "question", "completion": "answer"})
    assert len(parsed) == 10 and all(p.ok for p in parsed)
    with open(src, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert [p.record.first_user for p in parsed] == [r[0] for r in rows]
    assert [p.record.answer_text for p in parsed] == [r[5] for r in rows]
    assert parsed[2].record.metadata == {"A": rows[2][1], "B": rows[2][2], "C": rows[2][3], "D": rows[2][4]}
    assert [p.line for p in parsed] == list(range(2, 12))


def test_parquet_native_lists_and_mapping(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    # Native nested columns: Parquet stores every struct field on every message (None when absent).
    table = pa.Table.from_pylist([
        {"messages": TOOL_RECORD["messages"], "source": "a"},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 1}],
         "source": "b"},
        {"messages": [{"role": "user", "content": "q"}], "source": "c"},
    ])
    pq.write_table(table, tmp_path / "n.parquet")
    reader, parsed = read_all(tmp_path / "n.parquet")
    assert (reader.format, reader.container) == ("parquet", "parquet")
    assert msgs(parsed[0].record) == TOOL_RECORD["messages"]
    assert msgs(parsed[1].record) == [{"role": "user", "content": "q"},
                                      {"role": "assistant", "content": "a", "weight": 1}]
    assert parsed[1].record.metadata == {"source": "b"}
    assert [(p.index, p.line, [e.key for e in p.errors]) for p in parsed] == [
        (0, None, []), (1, None, []), (2, None, ["example_missing_assistant_message"])]

    pq.write_table(pa.table({"q": ["one?", "two?"], "a": ["1", "2"], "n": [1, 2]}), tmp_path / "qa.parquet")
    with pytest.raises(DatasetError) as exc:
        DatasetReader(tmp_path / "qa.parquet")
    assert exc.value.key == "no_mapping"
    _, parsed = read_all(tmp_path / "qa.parquet", "auto", {"prompt": "q", "completion": "a"})
    assert [msgs(p.record) for p in parsed][1] == [{"role": "user", "content": "two?"},
                                                   {"role": "assistant", "content": "2"}]
    assert parsed[1].record.metadata == {"n": 2}


def test_broken_parquet_is_a_clear_error(tmp_path):
    path = write(tmp_path / "x.parquet", b"PAR1" + b"garbage" * 50)
    with pytest.raises(DatasetError) as exc:
        DatasetReader(path)
    assert exc.value.key == "invalid_parquet"


# -- writing -------------------------------------------------------------------------------------

def test_writers_skip_what_a_format_cannot_hold(tmp_path):
    tool = Record.from_content(TOOL_RECORD)
    plain = Record([Message("user", "q"), Message("assistant", "a")])
    named = Record([Message("user", "q", name="bob"), Message("assistant", "a")])
    result = write_records([plain, tool, named], tmp_path / "a.jsonl", "alpaca")
    assert (result.written, [pos for pos, _ in result.skipped]) == (1, [1, 2])
    assert "tool" in result.skipped[0][1]
    result = write_records([plain, tool, named], tmp_path / "s.jsonl", "sharegpt")
    # ShareGPT holds the tool call but not message names or weights.
    assert (result.written, [pos for pos, _ in result.skipped]) == (1, [1, 2])
    with pytest.raises(DatasetError):
        dump_record(plain, "yaml")


def test_raw_text_of_a_record(tmp_path):
    path = write(tmp_path / "r.jsonl", "\n" + json.dumps(FUNCTION_RECORD) + "\r\n\n{broken\n")
    reader = DatasetReader(path)
    assert json.loads(reader.raw_text(0)) == FUNCTION_RECORD
    assert reader.raw_text(1) == "{broken"
    arr = DatasetReader(write(tmp_path / "a.json", json.dumps(ALPACA, indent=1)))
    assert json.loads(arr.raw_text(1)) == ALPACA[1]


# -- export loads in Hugging Face datasets ----------------------------------------------------------

def test_exported_openai_chat_loads_with_datasets(tmp_path, monkeypatch, data_dir):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    datasets = pytest.importorskip("datasets")

    recs = []
    for name in ("glaive_toolcall_slice.json", "dummy_conversation_slice.json", "gsm8k_train_head.jsonl",
                 "identity_slice.json"):
        recs += [p.record for p in DatasetReader(data_dir / name)]
    recs += [Record.from_content(TOOL_RECORD), Record.from_content(FUNCTION_RECORD)]
    out = tmp_path / "export" / "train.jsonl"
    result = write_records(recs, out, "openai-chat")
    assert result.written == len(recs) == 70
    ds = datasets.load_dataset("json", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == 70
    assert "messages" in ds.column_names
    # Every row's messages come back as written.
    for row, rec in zip(ds, recs):
        got = row["messages"]
        assert [m["role"] for m in got] == [m.role for m in rec.messages]
        assert [m.get("content") for m in got] == [m.content for m in rec.messages]


# -- real data (read from ../shared, never copied when non-commercial) ---------------------------------

REAL = [
    ("identity.json", "alpaca", "json", 91, 91),
    ("glaive_toolcall_en_demo.json", "sharegpt", "json", 300, 300),
    ("dummy_conversation.json", "sharegpt", "json", 500, 500),
    ("code_alpaca_2k.json", "alpaca", "json", 2017, 2015),
    ("gsm8k_train.jsonl", "prompt-completion", "jsonl", 7473, 7473),
    ("gsm8k_test.jsonl", "prompt-completion", "jsonl", 1319, 1319),
]


@pytest.mark.parametrize("name,fmt,container,records,loaded", REAL)
def test_real_files_load_with_detected_format(realdata, name, fmt, container, records, loaded):
    reader, parsed = read_all(realdata / name)
    assert (reader.format, reader.container) == (fmt, container)
    assert len(parsed) == records
    assert sum(p.ok for p in parsed) == loaded
    assert [p.index for p in parsed] == list(range(records))
    if container == "jsonl":
        assert [p.line for p in parsed] == list(range(1, records + 1))


def test_real_record_counts_match_sources_md(realdata):
    table = (realdata / "SOURCES.md").read_text(encoding="utf-8")
    for name, *_rest, records, _loaded in REAL:
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        assert f"| {records:,} |" in row


def test_code_alpaca_empty_outputs(realdata):
    _, parsed = read_all(realdata / "code_alpaca_2k.json")
    bad = [(p.index, p.line, [(e.key, e.message) for e in p.errors]) for p in parsed if p.errors]
    # Records 237 and 1859 have an empty output; 6-space indent, 5 lines a record.
    assert bad == [(237, 1187, [("missing_content", "field 'output' is empty")]),
                   (1859, 9297, [("missing_content", "field 'output' is empty")])]
    lines = (realdata / "code_alpaca_2k.json").read_text(encoding="utf-8").splitlines()
    assert lines[1186].strip() == "{" and '"output": ""' in lines[1189]


def test_glaive_real_tools_and_calls(realdata):
    raw = json.loads((realdata / "glaive_toolcall_en_demo.json").read_text(encoding="utf-8"))
    _, parsed = read_all(realdata / "glaive_toolcall_en_demo.json")
    assert all(isinstance(r["tools"], str) for r in raw)
    n_calls = sum(t["from"] == "function_call" for r in raw for t in r["conversations"])
    assert sum(len(m.tool_calls) for p in parsed for m in p.record.messages if m.tool_calls) == n_calls
    assert sum(p.record.tools is None for p in parsed) == sum(r["tools"] == "[]" for r in raw)


def test_real_mmlu_files_give_clear_answers(realdata):
    with pytest.raises(DatasetError) as exc:
        DatasetReader(realdata / "mmlu_rephrase" / "sociology_test.csv")
    assert exc.value.key == "no_mapping"
    reader, parsed = read_all(realdata / "mmlu_rephrase" / "sociology_test_chinese.jsonl", "auto",
                              {"prompt": "text", "completion": "language"})
    assert len(parsed) == 201 and all(p.ok for p in parsed)
    # The English rephrasings have a few empty texts: reported, with their lines.
    path = realdata / "mmlu_rephrase" / "sociology_test_rephrase_english_filtered_question.jsonl"
    _, parsed = read_all(path, "prompt-completion", {"prompt": "text", "completion": "language"})
    raw = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    empty = [i + 1 for i, r in enumerate(raw) if r["text"] == ""]
    assert [p.line for p in parsed if p.errors] == empty
    assert len(parsed) == 201


# -- streaming ---------------------------------------------------------------------------------------

def test_jsonl_streams_in_constant_memory(tmp_path):
    line = json.dumps({"messages": [{"role": "user", "content": "q" * 500},
                                    {"role": "assistant", "content": "a" * 500}]}) + "\n"
    path = tmp_path / "big.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(10_000):
            f.write(line)
    assert os.path.getsize(path) > 10_000_000
    reader = DatasetReader(path)
    tracemalloc.start()
    try:
        n = 0
        for p in reader:
            assert p.ok
            n += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 10_000
    assert peak < 2_000_000  # far less than the 10 MB file
