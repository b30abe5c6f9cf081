"""One numbering everywhere (issue 11, item 4): after an import dropped rows, every view,
message and report names a record by its 0-based index in its source file, the number
``ftcurate decide`` takes, never the project's row id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ftcurate.core.io.ingest import import_dataset
from ftcurate.core.project.numbering import first_numbers, number_report, record_numbers, report_record_ids
from ftcurate.core.project.store import Project
from ftcurate.core.quality.scan import ScanSettings, scan_project

FAST = ScanSettings(semantic_leakage=False, semantic_duplicates=False, outliers=False, length_outliers=False,
                    outlier_model="static-wordllama")


def alpaca_with_dropped_rows(path: Path) -> Path:
    """Ten alpaca rows; rows 2 and 5 have empty outputs (dropped at import, like
    code_alpaca_2k's 237 and 1859); row 8 repeats row 7 exactly."""
    rows = [{"instruction": f"Task {i}: write a Python function named f{i} that returns the number {i}",
             "input": "", "output": f"def f{i}():\n    return {i}"} for i in range(10)]
    rows[2]["output"] = ""
    rows[5]["output"] = ""
    rows[8] = dict(rows[7])
    path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path):
    data = alpaca_with_dropped_rows(tmp_path / "alpaca.json")
    with Project.open(str(tmp_path / "p.ftcurate"), create=True) as proj:
        import_dataset(proj, str(data))
        yield proj


def test_ids_and_numbers_differ_after_dropped_rows(project):
    numbers = record_numbers(project, project.ids())
    assert sorted(numbers.values()) == [0, 1, 3, 4, 6, 7, 8, 9]
    assert any(rid != idx for rid, idx in numbers.items()), "the test needs ids and indices that differ"
    assert first_numbers(project, project.ids()[-3:], n=2) == "7, 8 and 1 more"


def test_project_scan_report_names_records_as_decide_does(project):
    report = scan_project(project, FAST)
    assert report["index"] == "record_id"
    numbered = number_report(project, report)
    assert numbered["index"] == "source_index"
    assert [sorted(g) for g in numbered["exact_duplicates"]] == [[7, 8]]
    assert sorted(numbered["scanned_ids"]) == [0, 1, 3, 4, 6, 7, 8, 9]
    assert report["index"] == "record_id"  # the stored report is left as it was
    assert report_record_ids(report) == set(report["exact_duplicates"][0])


def test_cli_scan_report_numbers_are_the_ones_decide_takes(tmp_path):
    data = alpaca_with_dropped_rows(tmp_path / "alpaca.json")
    proj = tmp_path / "w.ftcurate"
    settings = tmp_path / "fast.json"
    settings.write_text(FAST.to_json(), encoding="utf-8")
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "ftcurate.cli", *args], capture_output=True, text=True,
                              env=env, timeout=300)

    assert cli("import", str(data), "--project", str(proj)).returncode == 1  # two rows could not be read
    out = tmp_path / "r.json"
    r = cli("scan", str(proj), "--settings", str(settings), "--out", str(out))
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert report["index"] == "source_index"
    group = sorted(report["exact_duplicates"][0])
    assert group == [7, 8]
    # the number in the report is the one decide takes: it reaches the record the report means
    r = cli("decide", str(proj), "--reject", str(group[1]))
    assert r.returncode == 0 and r.stdout.strip() == "rejected 8", (r.stdout, r.stderr)
    with Project.open(str(proj)) as p:
        rejected = [sr for sr in p.iter_records() if sr.status == "rejected"]
        assert [sr.index for sr in rejected] == [8]
        assert "f7" in rejected[0].record.messages[-1].content


def test_scan_set_parses_booleans_strictly(tmp_path, capsys):
    """`scan --set leakage=no` must not be read as leakage ON (issue 12 item 7, every
    dataclass config: ScanSettings.from_dict is as strict as the JSON loader)."""
    from ftcurate.cli import main

    data = alpaca_with_dropped_rows(tmp_path / "a.json")
    assert main(["scan", str(data), "--set", "leakage=no"]) == 2
    assert "'leakage' must be true or false" in capsys.readouterr().err
    with pytest.raises(ValueError):
        ScanSettings.from_dict({**ScanSettings().to_dict(), "semantic_leakage": "off"})
    assert ScanSettings.from_dict({**ScanSettings().to_dict(), "leakage": "false"}).leakage is False
