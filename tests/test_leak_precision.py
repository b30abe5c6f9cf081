"""Leak findings a reviewer can believe (issue 11 item 19), on small fixed slices of real data:
rephrased test items are found (recall >= 0.9) while at most 1% of clean training rows are
flagged, by every leakage method of the scan together; each leak says why (evidence).

Data: GSM8K (MIT) and MMLU / llm-decontaminator rephrasings (Apache-2.0, MMLU MIT) from
../shared/realdata (skipped when missing), and tests/data/gsm8k_test_rephrased.jsonl (GSM8K test
questions rephrased by hand for this project). The full measurement, at several training-set
sizes, is benchmarks/bench_semantic.py (docs/benchmarks.md)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ftcurate.core.project.records import Record
from ftcurate.core.quality.embeddings import DictCache
from ftcurate.core.quality.scan import ScanSettings, scan_records

DATA = Path(__file__).resolve().parent / "data"
LEAK_ONLY = ScanSettings(near_duplicates=False, outliers=False, semantic_duplicates=False, length_outliers=False)

pytestmark = [pytest.mark.realdata, pytest.mark.slow]  # MiniLM embeds a few hundred texts


def rec(prompt: str, answer: str = "") -> Record:
    msgs = [{"role": "user", "content": prompt}]
    if answer:
        msgs.append({"role": "assistant", "content": answer})
    return Record.from_content({"messages": msgs})


def jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def cache():
    return DictCache()


def check(report: dict, n_clean: int, planted: dict[int, int]) -> tuple[float, float, list[dict]]:
    """(recall of the planted pairs, share of clean rows flagged, leak entries)."""
    leaks = report["leakage"]
    found = {(h["index"], h["test_index"]) for h in leaks}
    recall = sum((i, j) in found for i, j in planted.items()) / len(planted)
    flagged = {h["index"] for h in leaks if h["index"] < n_clean}
    return recall, len(flagged) / n_clean, leaks


def check_evidence(leaks: list[dict]) -> None:
    json.dumps(leaks)
    for h in leaks:
        ev = h["evidence"]
        if h["method"] == "ngram":
            assert isinstance(ev["ngram"], str) and len(ev["ngram"].split()) >= 8
        else:
            words = ev["matched_words"]
            assert isinstance(words, list) and len(words) <= 12 and all(isinstance(w, str) for w in words)
        if h["method"] == "semantic":
            assert isinstance(ev["margin"], float) and 0 < h["score"] <= 1


def test_gsm8k_rephrasings_found_and_same_template_problems_not_flagged(realdata, cache):
    """GSM8K training rows against GSM8K test questions (same style, same templates, other
    numbers): the hand-written rephrasings are found, the clean rows are not flagged."""
    train = jsonl(realdata / "gsm8k_train.jsonl")[:400]
    test_all = jsonl(realdata / "gsm8k_test.jsonl")
    reph = jsonl(DATA / "gsm8k_test_rephrased.jsonl")
    targets = sorted({r["test_index"] for r in reph})
    # a test slice: the rephrased items and the ones around them (similar problems nearby)
    keep = sorted(set(targets) | set(range(0, 270)))
    pos = {j: p for p, j in enumerate(keep)}
    test = [(p, rec(test_all[j]["question"], test_all[j]["answer"])) for p, j in enumerate(keep)]
    rows = [(i, rec(r["question"], r["answer"])) for i, r in enumerate(train)]
    planted = {}
    for k, r in enumerate(reph):
        planted[len(rows)] = pos[r["test_index"]]
        rows.append((len(rows), rec(r["text"])))
    report = scan_records(rows, test, settings=LEAK_ONLY, cache=cache)
    recall, fp, leaks = check(report, len(train), planted)
    assert recall >= 0.9, recall
    assert fp <= 0.01, (fp, [h for h in leaks if h["index"] < len(train)])
    check_evidence(leaks)


def test_mmlu_rephrasings_found_among_clean_rows(realdata, cache):
    """Rephrased MMLU sociology questions among GSM8K training rows (and Code Alpaca rows when
    that file is there): found; the clean rows are not flagged."""
    with open(realdata / "mmlu_rephrase" / "sociology_test.csv", newline="", encoding="utf-8") as f:
        mmlu = [row for row in csv.reader(f)][:120]
    reph = [d["text"].strip() for d in
            jsonl(realdata / "mmlu_rephrase" / "sociology_test_rephrase_english_filtered_question.jsonl")][:120]
    test = [(j, rec(row[0], row["ABCD".index(row[5]) + 1])) for j, row in enumerate(mmlu)]
    clean = [rec(r["question"], r["answer"]) for r in jsonl(realdata / "gsm8k_train.jsonl")[1000:1300]]
    alpaca = realdata / "code_alpaca_2k.json"
    if alpaca.exists():
        with alpaca.open(encoding="utf-8") as f:
            clean += [rec((d["instruction"] + "\n" + d["input"]).strip(), d["output"]) for d in json.load(f)[:200]]
    rows = list(enumerate(clean))
    planted = {}
    for j, t in enumerate(reph):
        if t and j % 2 == 0:  # every other item leaks, the others are test items nobody copied
            planted[len(rows)] = j
            rows.append((len(rows), rec(t)))
    report = scan_records(rows, test, settings=LEAK_ONLY, cache=cache)
    recall, fp, leaks = check(report, len(clean), planted)
    assert recall >= 0.9, recall
    assert fp <= 0.01, (fp, [h for h in leaks if h["index"] < len(clean)])
    check_evidence(leaks)
    sem = [h for h in leaks if h["method"] == "semantic"]
    assert sem and all(h["evidence"]["matched_words"] is not None for h in sem)
