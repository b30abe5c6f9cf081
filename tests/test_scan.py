"""The full quality scan on the bundled sample: every planted problem is found, the report has
the documented keys, settings save/load, project scans cache per record, cancel works."""

from __future__ import annotations

import json
import os

import pytest

from ftcurate.cli import main
from ftcurate.core.progress import Cancelled
from ftcurate.core.quality.scan import ScanSettings, scan_files, scan_project, summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "resources", "sample", "chat_train.jsonl")
HELDOUT = os.path.join(ROOT, "resources", "sample", "heldout_test.jsonl")
MANIFEST = json.load(open(os.path.join(ROOT, "tests", "data", "sample_manifest.json"), encoding="utf-8"))


@pytest.fixture(scope="module")
def report():
    return scan_files(SAMPLE, HELDOUT)


def _group_of(groups, i):
    for g in groups:
        if i in g:
            return set(g)
    return set()


def test_report_keys_and_counts(report):
    for key in ("records", "exact_duplicates", "near_duplicates", "outliers", "leakage", "flags", "settings"):
        assert key in report
    assert report["records"] == MANIFEST["records"]
    assert report["scanned"] + report["rejected"] == report["records"]
    assert all(len(g) >= 2 for g in report["exact_duplicates"])
    assert all(len(c) >= 2 for c in report["near_duplicates"])
    json.dumps(report)  # JSON-ready
    assert "exact duplicate groups" in summary(report)


def test_exact_and_normalised_duplicates(report):
    for group in MANIFEST["exact_duplicate_groups"] + MANIFEST["normalised_duplicate_groups"]:
        assert set(group) <= _group_of(report["exact_duplicates"], group[0]), group


def test_near_duplicates_clustered_with_keeper(report):
    for i, j, _ in MANIFEST["near_duplicate_pairs"]:
        cluster = _group_of(report["near_duplicates"], i)
        assert j in cluster, (i, j)
    for c in report["near_duplicate_clusters"]:
        assert c["keep"] in c["indices"] and c["reason"]
        assert all(0.0 <= p["similarity"] <= 1.0 for p in c["pairs"])


def test_conflicting_examples(report):
    for pair in MANIFEST["conflicting_pairs"]:
        i, j = pair[0], pair[1]
        assert j in _group_of(report["conflicting"], i)


def test_outliers_found(report):
    flagged = {o["index"] for o in report["outliers"]}
    planted = set(MANIFEST["outliers"])
    assert len(planted & flagged) >= len(planted) - 1, (planted - flagged)
    assert all(isinstance(o["score"], float) for o in report["outliers"])


def test_leakage_exact_and_rephrased(report):
    hits = {(h["index"], h["test_index"]): h for h in report["leakage"]}
    for tr, te in MANIFEST["leak_exact"]:
        assert (tr, te) in hits
        assert any(h["method"] == "exact" for h in report["leakage"] if (h["index"], h["test_index"]) == (tr, te))
    found = [(tr, te) for tr, te in MANIFEST["leak_rephrased"] if (tr, te) in hits]
    assert len(found) >= len(MANIFEST["leak_rephrased"]) - 1
    leaked = {h["index"] for h in report["leakage"]}
    planted = {tr for tr, _ in MANIFEST["leak_exact"] + MANIFEST["leak_rephrased"]}
    assert len(leaked - planted) <= 2, leaked - planted  # few false alarms
    for h in report["leakage"]:
        assert h["method"] in ("exact", "ngram", "minhash", "semantic")


def test_flags(report):
    by_flag = {}
    for f in report["flags"]:
        by_flag.setdefault(f["flag"], set()).add(f["index"])
    expect = {"placeholder_answer": "placeholder_answers", "truncated_answer": "truncated_answers",
              "refusal": "refusals", "pii": "pii", "mojibake": "mojibake", "repetition": "repetition",
              "unseen_media": "image_reference", "too_long": "too_long", "empty_answer": "whitespace_answers"}
    for flag, key in expect.items():
        assert set(MANIFEST[key]) <= by_flag.get(flag, set()), (flag, key)


def test_settings_json_roundtrip_and_help():
    s = ScanSettings(minhash_threshold=0.9)
    s.heuristics.language = True
    again = ScanSettings.from_json(s.to_json())
    assert again == s
    assert ScanSettings.help("minhash_threshold")
    with pytest.raises(ValueError):
        ScanSettings.from_dict({"nope": 1})


def test_cli_scan_writes_report(tmp_path, capsys):
    out = tmp_path / "report.json"
    code = main(["scan", SAMPLE, "--test", HELDOUT, "--out", str(out), "--set", "semantic_leakage=false",
                 "--set", "outliers=false"])
    assert code == 0
    rep = json.loads(out.read_text(encoding="utf-8"))
    assert rep["settings"]["semantic_leakage"] is False
    assert rep["records"] == MANIFEST["records"]
    assert "near-duplicate clusters" in capsys.readouterr().out
    assert main(["scan", SAMPLE, "--set", "no_such=1"]) == 2


def test_project_scan_is_cached_and_stored(tmp_path):
    from ftcurate.core.io.ingest import import_dataset
    from ftcurate.core.project.store import Project

    settings = ScanSettings(semantic_leakage=False)
    with Project.open(str(tmp_path / "p.ftcurate"), create=True) as p:
        import_dataset(p, SAMPLE)
        import_dataset(p, HELDOUT, role="test")
        first = scan_project(p, settings)
        assert p.load_scan("quality")[1]["records"] == first["records"]
        # Edit one record: the re-scan embeds and checks only that one.
        rid = p.ids(split="train")[0]
        rec = p.get(rid).record
        rec.messages[-1].content += " Edited."
        p.edit(rid, rec)
        calls = {"embedded": 0}
        import ftcurate.core.quality.heuristics as h

        orig = h.check_record

        def counting(*a, **k):
            calls["embedded"] += 1
            return orig(*a, **k)

        h.check_record = counting
        try:
            second = scan_project(p, settings)
        finally:
            h.check_record = orig
        assert calls["embedded"] == 1
        assert second["exact_duplicates"] == first["exact_duplicates"]


def test_cancel_stops_the_scan():
    seen = []

    def cancel():
        return len(seen) > 2

    with pytest.raises(Cancelled):
        scan_files(SAMPLE, HELDOUT, progress=lambda d, t, m: seen.append(m), cancel=cancel)


def test_near_duplicates_through_datasketch_minhashlsh_storage():
    """The LSH index can live in a datasketch MinHashLSH storage backend (dict storage here)."""
    s = ScanSettings(lsh_storage={"type": "dict"}, outliers=False, semantic_duplicates=False, leakage=False)
    rep = scan_files(SAMPLE, settings=s)
    for i, j, _ in MANIFEST["near_duplicate_pairs"]:
        assert j in _group_of(rep["near_duplicates"], i)
