"""Fuzzing the dataset loaders with mutations of real files (issue 12).

Each source file (tests/data slices, the bundled sample, and ../shared/realdata when it is
there) is mutated many times with a fixed seed: truncation at a random byte, byte flips,
junk insertion, deleted and duplicated spans, deep nesting, huge integers, broken UTF-8,
and for CSV cuts and quote-free damage. Every mutant is read the way ``validate`` and
``import`` read it (:class:`DatasetReader` through :func:`checked_records`) and, for a
share of them, through the ``validate`` command; JSON Lines mutants also through the GUI's
:class:`LineIndex`. A *fault* is any of:

* an exception other than :class:`DatasetError` (the clear whole-file error), or a
  ``validate`` exit code other than 0/1/2, or output that is not one JSON object;
* ``loaded + rejected != records``;
* a complete record that the mutation did not touch (its bytes and the byte on either side
  are unchanged, nothing was inserted right next to it, the separators around it are not
  damaged) and that loaded before the mutation, missing from what loads after it (a silent
  drop);
* a JSON array cut before its closing bracket without a ``truncated_json`` error, or a CSV
  row cut inside a quoted field without an ``unterminated_field`` error.

Usage: python benchmarks/fuzz_loaders.py [--mutants-per-file 300] [--seed 0] [--no-realdata]
(tests/test_fuzz_loaders.py runs a small, fixed-seed version of the same harness.)
"""

from __future__ import annotations

import argparse
import bisect
import collections
import contextlib
import csv
import io
import json
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from ftcurate.core.io.formats import DatasetError, DatasetReader  # noqa: E402
from ftcurate.core.io.lineindex import LineIndex  # noqa: E402
from ftcurate.core.io.validate import StatsAccumulator, checked_records, finish, new_report  # noqa: E402
from ftcurate.core.progress import Reporter  # noqa: E402

DATA = os.path.join(ROOT, "tests", "data")
REALDATA = os.path.join(os.path.dirname(ROOT), "shared", "realdata")


# -- sources ---------------------------------------------------------------------------------------

@dataclass
class Source:
    name: str
    data: bytes
    kind: str  # jsonl / json / csv / parquet
    mapping: Optional[dict] = None
    spans: list = field(default_factory=list)  # (start byte, end byte) of each record
    contents: list = field(default_factory=list)  # canonical content of each record, None if rejected
    format: str = ""

    @property
    def suffix(self) -> str:
        return {"jsonl": ".jsonl", "json": ".json", "csv": ".csv", "parquet": ".parquet"}[self.kind]


def _json_spans(text: str) -> list:
    dec = json.JSONDecoder()
    spans, pos = [], text.index("[") + 1
    byte, done = 0, 0  # byte offset of text[done]
    while True:
        while text[pos] in " \t\r\n,":
            pos += 1
        if text[pos] == "]":
            return spans
        _, end = dec.raw_decode(text, pos)
        byte += len(text[done:pos].encode("utf-8"))
        start = byte
        byte += len(text[pos:end].encode("utf-8"))
        done = end
        spans.append((start, byte))
        pos = end


def _jsonl_spans(data: bytes) -> list:
    spans, pos = [], 0
    for line in data.split(b"\n"):
        if line.strip():
            spans.append((pos, pos + len(line)))
        pos += len(line) + 1
    return spans


def _csv_spans(data: bytes) -> list:
    text = data.decode("utf-8")
    line_starts = [0] + [i + 1 for i, c in enumerate(data) if c == 10]
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader)
    spans, start = [], reader.line_num  # 0-based line where the next row starts
    for _row in reader:
        end_line = reader.line_num
        end = line_starts[end_line] - 1 if end_line < len(line_starts) else len(data)
        spans.append((line_starts[start], end))
        start = end_line
    return spans


def _prepare(src: Source, workdir: str) -> Optional[Source]:
    path = os.path.join(workdir, "original" + src.suffix)
    with open(path, "wb") as f:
        f.write(src.data)
    try:
        reader = DatasetReader(path, "auto", src.mapping)
    except DatasetError:
        return None
    src.format = reader.format
    src.contents = [p.record.content_json() if p.ok else None for p in reader]
    if src.kind == "jsonl":
        src.spans = _jsonl_spans(src.data)
    elif src.kind == "json":
        src.spans = _json_spans(src.data.decode("utf-8"))
    elif src.kind == "csv":
        src.spans = _csv_spans(src.data)
    if src.spans and len(src.spans) != len(src.contents):
        raise RuntimeError(f"{src.name}: {len(src.spans)} spans for {len(src.contents)} records")
    return src


def _records_json(path: str) -> list:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return json.loads(text) if text.lstrip().startswith("[") else [json.loads(x) for x in text.splitlines() if x.strip()]


def _array_prefix(text: str, max_chars: int) -> str:
    """The array's elements that start in the first ``max_chars``, as written, closed again."""
    spans = _json_spans(text)
    enc = text.encode("utf-8")
    keep = [s for s in spans if s[0] < max_chars] or spans[:1]
    return enc[:keep[-1][1]].decode("utf-8") + "\n]\n"


def _csv_bytes(rows: list, header: list) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _parquet_bytes(records: list, workdir: str) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = os.path.join(workdir, "p.parquet")
    table = pa.table({"prompt": [r["question"] for r in records], "completion": [r["answer"] for r in records]})
    pq.write_table(table, path, row_group_size=max(1, len(records) // 4))
    with open(path, "rb") as f:
        return f.read()


def sources(workdir: str, realdata: bool = True, max_bytes: Optional[int] = None) -> list[Source]:
    """The files to mutate: tests/data slices and the sample (always), real files (when
    ``realdata`` and the folder exists), each cut to its first ``max_bytes`` (whole records)."""
    out: list[Source] = []

    def add_array(name: str, text: str) -> None:
        if max_bytes:
            text = _array_prefix(text, max_bytes)
        out.append(Source(name, text.encode("utf-8"), "json"))
        objs = json.loads(text)
        out.append(Source(name + " (one line)", json.dumps(objs, ensure_ascii=False).encode("utf-8"), "json"))

    def add_jsonl(name: str, data: bytes) -> None:
        if max_bytes and len(data) > max_bytes:
            data = data[: data.index(b"\n", max_bytes) + 1]
        out.append(Source(name, data, "jsonl"))

    def read(path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    for name in ("identity_slice.json", "glaive_toolcall_slice.json", "dummy_conversation_slice.json"):
        add_array(name, read(os.path.join(DATA, name)).decode("utf-8"))
    for name in ("gsm8k_train_head.jsonl",):
        add_jsonl(name, read(os.path.join(DATA, name)))
    sample = read(os.path.join(ROOT, "resources", "sample", "chat_train.jsonl"))
    add_jsonl("sample chat_train.jsonl", sample if max_bytes else sample)
    gsm = _records_json(os.path.join(DATA, "gsm8k_train_head.jsonl"))
    out.append(Source("gsm8k_train_head as CSV", _csv_bytes([[r["question"], r["answer"]] for r in gsm],
                                                            ["question", "answer"]), "csv"))
    mmlu = read(os.path.join(DATA, "mmlu_abstract_algebra_head.csv"))
    out.append(Source("mmlu_abstract_algebra_head.csv (+ header)", b"question,A,B,C,D,answer\n" + mmlu, "csv",
                      {"prompt": "question", "completion": "A"}))
    out.append(Source("gsm8k_train_head as Parquet", _parquet_bytes(gsm, workdir), "parquet"))
    if realdata and os.path.isdir(REALDATA):
        for name in ("identity.json", "glaive_toolcall_en_demo.json", "dummy_conversation.json",
                     "code_alpaca_2k.json"):
            add_array("realdata/" + name, read(os.path.join(REALDATA, name)).decode("utf-8"))
        for name in ("gsm8k_train.jsonl", "gsm8k_test.jsonl"):
            add_jsonl("realdata/" + name, read(os.path.join(REALDATA, name)))
        for name in ("abstract_algebra_test.csv", "sociology_test.csv"):
            data = read(os.path.join(REALDATA, "mmlu_rephrase", name))
            if max_bytes and len(data) > max_bytes:
                data = data[: data.index(b"\n", max_bytes) + 1]
            out.append(Source(f"realdata/mmlu_rephrase/{name} (+ header)", b"question,A,B,C,D,answer\n" + data,
                              "csv", {"prompt": "question", "completion": "A"}))
    return out


# -- mutations -------------------------------------------------------------------------------------------

JUNK = [b"garbage", b"}", b"]", b"{", b",", b"[", b":", b'"', b"\\", b"null", b"// comment", b"\n", b"\r\n",
        b",,", b"}{", b"][", b"\t", b"0x1F", b"NaN", b"\xef\xbb\xbf"]
BAD_UTF8 = [b"\xff", b"\xc3\x28", b"\x80", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\xc0\xaf"]
Mutation = Callable[[random.Random, bytes, str], tuple[bytes, list]]


def _truncate(rng, data, kind):
    cut = rng.randrange(1, len(data))
    return data[:cut], [(cut - 1, len(data))]


def _flip(rng, data, kind):
    d = bytearray(data)
    touched = []
    for _ in range(rng.randint(1, 4)):
        p = rng.randrange(len(d))
        if kind == "csv":  # a flip that adds or removes a quote re-reads the rest of the file: no oracle
            if d[p] == 34:
                continue
            value = rng.choice([b for b in range(256) if b != 34])
        else:
            value = rng.randrange(256)
        d[p] = value
        touched.append((p, p + 1))
    return bytes(d), touched


def _inserted(data: bytes, p: int, piece: bytes) -> tuple[bytes, list]:
    """``piece`` inserted at ``p``. A piece with an odd number of quotes opens a string that
    runs to the end of the line (a JSON string can't span lines): the rest of that line is
    touched too."""
    touched = [(p, p)]
    last_line = piece.rsplit(b"\n", 1)[-1]  # strings end at a line end: the last line decides
    if len(re.findall(rb'(?<!\\)"', last_line)) % 2:
        end = data.find(b"\n", p)
        touched.append((p, len(data) if end < 0 else end))
    return data[:p] + piece + data[p:], touched


def _insert(rng, data, kind, pieces=None):
    p = rng.randrange(len(data) + 1)
    piece = rng.choice(pieces or JUNK)
    if kind == "csv":
        piece = piece.replace(b'"', b"'")
    return _inserted(data, p, piece)


def _delete(rng, data, kind):
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.randint(1, 40))
    if kind == "csv" and b'"' in data[a:b]:
        return _flip(rng, data, kind)
    return data[:a] + data[b:], [(a, b)]


def _duplicate(rng, data, kind):
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.randint(1, 200))
    piece = data[a:b]
    if kind == "csv":  # a quote added inside a quoted field re-reads the rest of the file: no oracle
        piece = piece.replace(b'"', b"'")
    p = rng.randrange(len(data) + 1)
    return _inserted(data, p, piece)


def _boundary(rng, data):
    """A place between two records (after a "," or a newline), else anywhere."""
    cands = [i + 1 for i in range(len(data)) if data[i] in (10, 44)]
    return rng.choice(cands) if cands else rng.randrange(len(data) + 1)


def _deep(rng, data, kind):
    n = rng.choice([2_000, 100_000])
    p = _boundary(rng, data)
    piece = b"[" * n + b"]" * n + (b"," if kind == "json" else b"\n")
    return data[:p] + piece + data[p:], [(p, p)]


def _huge_int(rng, data, kind):
    p = _boundary(rng, data)
    if kind == "json":
        piece = b'{"instruction": "x", "output": "y", "n": ' + b"7" * 5000 + b"},"
    elif kind == "jsonl":
        piece = b'{"prompt": "x", "completion": "y", "n": ' + b"7" * 5000 + b"}\n"
    else:
        piece = b"7" * 5000
    return data[:p] + piece + data[p:], [(p, p)]


def _bad_utf8(rng, data, kind):
    return _insert(rng, data, kind, BAD_UTF8)


MUTATIONS: dict[str, Mutation] = {
    "truncate": _truncate, "flip": _flip, "junk": _insert, "delete": _delete, "duplicate": _duplicate,
    "deep_nesting": _deep, "huge_int": _huge_int, "bad_utf8": _bad_utf8,
}
PARQUET_MUTATIONS = ("truncate", "flip", "delete")


# -- checking one mutant -------------------------------------------------------------------------------------

@dataclass
class Outcome:
    faults: list = field(default_factory=list)
    file_error: Optional[str] = None  # DatasetError key
    records: int = 0
    loaded: int = 0
    rejected: int = 0


def _touches(span: tuple, touched: list, before: int, after: int) -> bool:
    """Whether a record was touched: its bytes or the byte on either side of them changed,
    something was inserted there, or the separators around it (bytes ``before``..``after``
    outside the record) were damaged (deleted or overwritten: then the record can't be told
    from its neighbour). Text inserted between records leaves them untouched."""
    s, e = span
    for a, b in touched:
        if s < b + 1 and a - 1 < e:
            return True
        if a < b and a < after and before < b:
            return True
    return False


def _cli(path: str, mapping: Optional[dict]) -> Optional[str]:
    from ftcurate.cli import main

    args = ["validate", path, "--json"]
    for k, v in (mapping or {}).items():
        args += ["--map", f"{k}={v}"]
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(args)
    except BaseException as exc:  # noqa: BLE001 - anything escaping main is a fault
        return f"validate command raised {type(exc).__name__}: {exc}"
    if rc not in (0, 1, 2):
        return f"validate exit code {rc}"
    if "Traceback" in err.getvalue():
        return "validate printed a traceback"
    try:
        payload = json.loads(out.getvalue())
    except ValueError:
        return f"validate output is not JSON: {out.getvalue()[:200]!r}"
    if rc == 2 and "error" not in payload:
        return "exit 2 without an error key"
    if rc != 2 and payload.get("loaded", 0) + payload.get("rejected", 0) != payload.get("records"):
        return "validate: loaded + rejected != records"
    return None


def check(src: Source, data: bytes, touched: list, label: str, path: str, cli: bool = False) -> Outcome:
    out = Outcome()
    with open(path, "wb") as f:
        f.write(data)
    try:
        reader = DatasetReader(path, "auto", src.mapping)
        report = new_report(reader)
        acc = StatsAccumulator()
        loaded = collections.Counter(r.content_json() for r in checked_records(reader, report, acc, Reporter()))
        finish(report, acc, None)
    except DatasetError as exc:
        out.file_error = exc.key
        reader = None
    except Exception as exc:  # noqa: BLE001 - the point of the exercise
        out.faults.append(f"{label}: {type(exc).__name__}: {exc}")
        return out
    if cli:
        problem = _cli(path, src.mapping)
        if problem:
            out.faults.append(f"{label}: {problem}")
    if src.kind == "jsonl":
        try:
            with LineIndex.build(path) as index:
                for i in range(len(index)):
                    index.summary(i)
        except DatasetError:
            pass
        except Exception as exc:  # noqa: BLE001
            out.faults.append(f"{label}: LineIndex: {type(exc).__name__}: {exc}")
    if reader is None:
        return out
    out.records, out.loaded, out.rejected = report.records, report.loaded, report.rejected
    if report.loaded + report.rejected != report.records:
        out.faults.append(f"{label}: loaded {report.loaded} + rejected {report.rejected} != records {report.records}")
    if reader.format != src.format or not src.spans:
        return out
    if src.kind == "csv" and any(a - 1 < src.spans[0][0] for a, _ in touched):
        return out  # the header changed: the columns are others
    for i, (span, content) in enumerate(zip(src.spans, src.contents)):
        before = src.spans[i - 1][1] if i else span[0] - 1
        after = src.spans[i + 1][0] if i + 1 < len(src.spans) else span[1] + 1
        if content is None or _touches(span, touched, before, after):
            continue
        if loaded[content] <= 0:
            out.faults.append(f"{label}: record {i} (bytes {span[0]}-{span[1]}) was not touched but did not load")
            continue
        loaded[content] -= 1
    if label.startswith("truncate") and src.kind == "json":
        cut = touched[0][0] + 1
        closing = src.data.rstrip().rfind(b"]")
        if cut <= closing and "truncated_json" not in report.error_counts:
            out.faults.append(f"{label}: array cut at byte {cut} without a truncated_json error")
    if label.startswith("truncate") and src.kind == "csv":
        cut = touched[0][0] + 1
        starts = [s for s, _ in src.spans]
        k = bisect.bisect_right(starts, cut) - 1
        if k >= 0 and src.data[starts[k]:cut].count(b'"') % 2 and cut < src.spans[k][1]:
            if not any(e.index == k and e.key == "unterminated_field" for e in report.errors):
                out.faults.append(f"{label}: CSV row {k} cut inside a quoted field without unterminated_field")
    return out


# -- the run -------------------------------------------------------------------------------------------------------

@dataclass
class Summary:
    files: int = 0
    mutants: int = 0
    faults: list = field(default_factory=list)
    file_errors: collections.Counter = field(default_factory=collections.Counter)
    by_mutation: collections.Counter = field(default_factory=collections.Counter)
    records: int = 0
    rejected: int = 0
    seconds: float = 0.0


def run(mutants_per_file: int = 300, seed: int = 0, realdata: bool = True, max_bytes: Optional[int] = None,
        cli_every: int = 10, workdir: Optional[str] = None, log: Optional[Callable[[str], None]] = None) -> Summary:
    t0 = time.perf_counter()
    summary = Summary()
    with tempfile.TemporaryDirectory(prefix="ftcurate-fuzz-", dir=workdir) as tmp:
        srcs = [s for s in (_prepare(s, tmp) for s in sources(tmp, realdata, max_bytes)) if s is not None]
        summary.files = len(srcs)
        for n_src, src in enumerate(srcs):
            rng = random.Random(f"{seed}:{src.name}")
            names = PARQUET_MUTATIONS if src.kind == "parquet" else tuple(MUTATIONS)
            path = os.path.join(tmp, "mutant" + src.suffix)
            for k in range(mutants_per_file):
                name = names[k % len(names)]
                data, touched = MUTATIONS[name](rng, src.data, src.kind)
                label = f"{name} #{k} of {src.name}"
                res = check(src, data, touched, label, path, cli=cli_every > 0 and k % cli_every == 0)
                summary.mutants += 1
                summary.by_mutation[name] += 1
                summary.records += res.records
                summary.rejected += res.rejected
                if res.file_error:
                    summary.file_errors[res.file_error] += 1
                if res.faults:
                    summary.faults += res.faults
                    bad = os.path.join(tmp, f"fault{len(summary.faults)}{src.suffix}")
                    with open(bad, "wb") as f:
                        f.write(data)
            if log:
                log(f"  [{n_src + 1}/{len(srcs)}] {src.name}: {mutants_per_file} mutants, "
                    f"{len(summary.faults)} faults so far")
    summary.seconds = time.perf_counter() - t0
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mutants-per-file", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-realdata", action="store_true", help="only tests/data and the sample")
    ap.add_argument("--max-bytes", type=int, default=None, help="cut each source to its first records")
    ap.add_argument("--cli-every", type=int, default=10, help="run the validate command on every Nth mutant")
    args = ap.parse_args()
    s = run(args.mutants_per_file, args.seed, not args.no_realdata, args.max_bytes, args.cli_every, log=print)
    print(f"\n{s.files} source files, {s.mutants:,} mutated files ({dict(s.by_mutation)}), {s.seconds:.0f} s")
    print(f"records read {s.records:,}, rejected {s.rejected:,}; whole-file errors: {dict(s.file_errors)}")
    print(f"faults: {len(s.faults)}")
    for fault in s.faults[:50]:
        print("  " + fault)
    sys.exit(1 if s.faults else 0)


if __name__ == "__main__":
    main()
