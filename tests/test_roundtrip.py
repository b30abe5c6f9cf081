"""Property tests: writing records in a format and reading them back gives the same records.

Each strategy generates only records the format can hold (see the writers' NotRepresentable
rules); the text strategy leans on the characters that break naive writers: newlines, CRs,
quotes, commas, tabs, backslashes, emoji and other non-ASCII text.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftcurate.core.io.formats import DatasetReader, write_records
from ftcurate.core.project.records import Message, Record

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Keys that some format reads as content: metadata must not use them.
RESERVED = {"messages", "tools", "functions", "conversations", "system", "prompt", "completion",
            "question", "answer", "response", "query", "instruction", "input", "output", "history"}

# Characters that break naive writers, mixed into any other (non-surrogate) characters.
TRICKY = list("\n\r\"',;\t\\{}[]# ") + ["😀", "🎉", "é", "中", "\u2028", "\u0085", "\ufeff", "\x00", "\x1b", "\u200d"]
_chars = st.characters(blacklist_categories=("Cs",))  # no lone surrogates: not encodable as UTF-8
text = st.one_of(
    st.text(st.one_of(st.sampled_from(TRICKY), _chars), min_size=1, max_size=16),
    st.sampled_from(["a\r\nb", "say \"hi\", ok", "👩‍💻 done", "line1\nline2\r\n", "x,y\rz", "\\n"]))
names = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789", min_size=1, max_size=10)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**53, 2**53),
                         st.floats(allow_nan=False, allow_infinity=False), text)
json_values = st.recursive(json_scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.dictionaries(names, kids, max_size=3)), max_leaves=4)
meta_keys = st.one_of(names, text).filter(lambda k: k not in RESERVED)
metadata = st.dictionaries(meta_keys, json_values, max_size=3)
arguments = st.dictionaries(names, json_scalars, max_size=3).map(lambda d: json.dumps(d, ensure_ascii=False))
tool_defs = st.lists(st.builds(
    lambda name, desc: {"type": "function", "function": {
        "name": name, "description": desc,
        "parameters": {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}}},
    names, text), min_size=1, max_size=3)


def assert_same(read: list[Record], written: list[Record]) -> None:
    assert len(read) == len(written)
    for got, want in zip(read, written):
        assert [m.to_dict() for m in got.messages] == [m.to_dict() for m in want.messages]
        assert got.tools == want.tools
        assert got.metadata == want.metadata


def roundtrip(records: list[Record], fmt: str, suffix: str) -> list[Record]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"out{suffix}"
        result = write_records(records, path, fmt)
        assert result.skipped == []
        assert result.written == len(records)
        parsed = list(DatasetReader(path, fmt))
        assert [p.errors for p in parsed if p.errors] == []
        assert [p.index for p in parsed] == list(range(len(records)))
        return [p.record for p in parsed]


# -- prompt / completion ------------------------------------------------------------------

@st.composite
def pc_records(draw):
    msgs = []
    system = draw(st.one_of(st.none(), text))
    if system is not None:
        msgs.append(Message("system", system))
    msgs += [Message("user", draw(text)), Message("assistant", draw(text))]
    return Record(messages=msgs, metadata=draw(metadata))


@SETTINGS
@given(st.lists(pc_records(), min_size=1, max_size=5), st.sampled_from([".jsonl", ".json"]))
def test_prompt_completion_roundtrip(records, suffix):
    assert_same(roundtrip(records, "prompt-completion", suffix), records)


# -- alpaca ---------------------------------------------------------------------------------

@st.composite
def alpaca_records(draw):
    msgs = []
    system = draw(st.one_of(st.none(), text))
    if system is not None:
        msgs.append(Message("system", system))
    for _ in range(draw(st.integers(0, 3))):  # history pairs, then the last turn
        msgs += [Message("user", draw(text)), Message("assistant", draw(text))]
    msgs += [Message("user", draw(text)), Message("assistant", draw(text))]
    return Record(messages=msgs, metadata=draw(metadata))


@SETTINGS
@given(st.lists(alpaca_records(), min_size=1, max_size=5), st.sampled_from([".jsonl", ".json"]))
def test_alpaca_roundtrip(records, suffix):
    assert_same(roundtrip(records, "alpaca", suffix), records)


# -- sharegpt ---------------------------------------------------------------------------------

@st.composite
def sharegpt_records(draw):
    msgs = []
    system = draw(st.one_of(st.none(), text))
    if system is not None:
        msgs.append(Message("system", system))
    calls = 0
    for _ in range(draw(st.integers(1, 4))):
        msgs.append(Message("user", draw(text)))
        # Tool calls: one call per assistant turn, each answered by a tool message.
        for _ in range(draw(st.integers(0, 2))):
            call_id = f"call_{calls}"
            calls += 1
            msgs.append(Message("assistant", None, tool_calls=[{
                "id": call_id, "type": "function",
                "function": {"name": draw(names), "arguments": draw(arguments)}}]))
            msgs.append(Message("tool", draw(text), tool_call_id=call_id))
        msgs.append(Message("assistant", draw(text)))
    tools = draw(st.one_of(st.none(), tool_defs))
    return Record(messages=msgs, tools=tools, metadata=draw(metadata))


@SETTINGS
@given(st.lists(sharegpt_records(), min_size=1, max_size=4), st.sampled_from([".jsonl", ".json"]))
def test_sharegpt_roundtrip(records, suffix):
    assert_same(roundtrip(records, "sharegpt", suffix), records)


# -- OpenAI chat, CSV, Parquet: anything -------------------------------------------------------

@st.composite
def chat_records(draw):
    msgs = []
    if draw(st.booleans()):
        msgs.append(Message("system", draw(text), name=draw(st.one_of(st.none(), names))))
    calls = 0
    uses_tools = False
    for _ in range(draw(st.integers(1, 3))):
        msgs.append(Message("user", draw(text), name=draw(st.one_of(st.none(), names))))
        kind = draw(st.sampled_from(["plain", "plain", "tool_calls", "function_call"]))
        if kind == "tool_calls":
            uses_tools = True
            ids = []
            tc = []
            for _ in range(draw(st.integers(1, 2))):
                ids.append(f"call_{calls}")
                calls += 1
                tc.append({"id": ids[-1], "type": "function",
                           "function": {"name": draw(names), "arguments": draw(arguments)}})
            msgs.append(Message("assistant", draw(st.one_of(st.none(), text)), tool_calls=tc,
                                weight=draw(st.one_of(st.none(), st.sampled_from([0, 1])))))
            for call_id in ids:
                msgs.append(Message("tool", draw(text), tool_call_id=call_id))
        elif kind == "function_call":
            fname = draw(names)
            msgs.append(Message("assistant", draw(st.one_of(st.none(), text)),
                                function_call={"name": fname, "arguments": draw(arguments)}))
            msgs.append(Message("function", draw(text), name=fname))
        msgs.append(Message("assistant", draw(text), name=draw(st.one_of(st.none(), names)),
                            weight=draw(st.one_of(st.none(), st.sampled_from([0, 1])))))
    tools = draw(tool_defs) if uses_tools and draw(st.booleans()) else None
    return Record(messages=msgs, tools=tools, metadata=draw(metadata))


@SETTINGS
@given(st.lists(chat_records(), min_size=1, max_size=4),
       st.sampled_from([("openai-chat", ".jsonl"), ("openai-chat", ".json"), ("csv", ".csv"),
                        ("parquet", ".parquet")]))
def test_chat_tabular_roundtrip(records, fmt_suffix):
    fmt, suffix = fmt_suffix
    assert_same(roundtrip(records, fmt, suffix), records)


@SETTINGS
@given(st.lists(chat_records(), min_size=1, max_size=3))
def test_openai_chat_detected_without_override(records):
    """What we write is detected as what it is (auto format)."""
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, suffix in (("openai-chat", ".jsonl"), ("csv", ".csv"), ("parquet", ".parquet")):
            path = Path(tmp) / f"auto{suffix}"
            write_records(records, path, fmt)
            reader = DatasetReader(path)
            assert reader.format == fmt
            assert_same([p.record for p in reader], records)


@pytest.mark.parametrize("fmt", ["prompt-completion", "alpaca"])
def test_plain_formats_skip_what_they_cannot_hold(tmp_path, fmt):
    ok = Record([Message("user", "q"), Message("assistant", "a")])
    tool = Record([Message("user", "q"), Message("assistant", None, tool_calls=[
        {"id": "call_0", "type": "function", "function": {"name": "f", "arguments": "{}"}}]),
        Message("tool", "r", tool_call_id="call_0"), Message("assistant", "a")])
    result = write_records([ok, tool, ok], tmp_path / "out.jsonl", fmt)
    assert result.written == 2
    assert [pos for pos, _ in result.skipped] == [1]
    assert len(list(DatasetReader(tmp_path / "out.jsonl", fmt))) == 2
