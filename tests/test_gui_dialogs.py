"""GUI tests of the dialogs (pytest-qt, offscreen): scan settings, export, import.

The dialogs run with ``interactive=False`` (no file chooser, no question box) and are
driven through their widgets; waiting is on a signal or a condition, never a fixed sleep.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import fields
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings, QStandardPaths, Qt  # noqa: E402
from PySide6.QtWidgets import (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QTabBar,  # noqa: E402
                               QWidget)

from ftcurate.core.quality.heuristics import HeuristicSettings  # noqa: E402
from ftcurate.core.project.records import Message, Record, Source  # noqa: E402
from ftcurate.core.quality.scan import ScanSettings  # noqa: E402
from ftcurate.core.project.store import Project  # noqa: E402
from ftcurate.gui import tasks  # noqa: E402
from ftcurate.gui.dialogs import (EXPORT_FOLDER_KEY, EXPORT_FORMAT_KEY, ExportDialog, ImportDialog,  # noqa: E402
                                  ScanSettingsDialog, load_scan_settings, save_scan_settings)

TIMEOUT = 30_000


# -- helpers -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _test_mode():
    QStandardPaths.setTestModeEnabled(True)  # never the real user folders


@pytest.fixture
def qsettings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def input_widgets(root: QWidget) -> list[QWidget]:
    """The knobs a user can operate (not the parts inside a spin box, combo box, tab bar or table)."""
    out = []
    for w in root.findChildren(QWidget):
        if not isinstance(w, (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit)):
            continue
        if isinstance(w.parentWidget(), (QAbstractSpinBox, QComboBox, QTabBar)) or w.objectName().startswith("qt_"):
            continue  # parts of Qt's own widgets (a table's corner button...)
        out.append(w)
    return out


def make_project(tmp_path: Path, n: int = 10, approve: int = 6) -> Project:
    p = Project.create(tmp_path / "p.ftcurate")
    sid = p.add_source(tmp_path / "data.jsonl", "openai-chat", total=n)
    p.add_records(sid, (Record([Message("system", "be brief"), Message("user", f"question {i}"),
                                Message("assistant", f"answer {i}")], source=Source("data.jsonl", i + 1, i))
                        for i in range(n)))
    p.approve(p.ids()[:approve])
    p.reject(p.ids()[approve:approve + 1])
    return p


def chat_line(i: int) -> str:
    return json.dumps({"messages": [{"role": "user", "content": f"question {i}"},
                                    {"role": "assistant", "content": f"answer {i}"}]})


def write_csv(path: Path, n: int) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["q_text", "a_text", "topic"])  # no column names the reader knows
        for i in range(n):
            w.writerow([f"What is {i} squared?", str(i * i), "math"])
    return path


def wait_validated(qtbot, dialog: ImportDialog) -> None:
    qtbot.waitUntil(lambda: dialog.report is not None and not dialog.is_busy(), timeout=TIMEOUT)


# -- scan settings -------------------------------------------------------------------------------


def test_scan_settings_round_trip_tooltips_and_defaults(qtbot, qsettings):
    dialog = ScanSettingsDialog(interactive=False)
    qtbot.addWidget(dialog)
    # one knob per field, nested heuristics included: generated from the dataclasses
    expected = {f.name for f in fields(ScanSettings) if f.name != "heuristics"}
    expected |= {"heuristics." + f.name for f in fields(HeuristicSettings)}
    assert set(dialog.knobs) == expected
    for path, knob in dialog.knobs.items():
        head, _, name = path.rpartition(".")
        cls = HeuristicSettings if head else ScanSettings
        help_text = next(f.metadata["help"] for f in fields(cls) if f.name == name)
        assert knob.widget.toolTip() == help_text, path
    for w in input_widgets(dialog):
        assert w.toolTip().strip(), f"{type(w).__name__} {w.objectName() or w.text()!r} has no tooltip"
    assert dialog.settings() == ScanSettings()

    custom = ScanSettings(lowercase=True, minhash_threshold=0.7, num_perm=64, ngram=3, seed=9,
                          lsh_storage={"type": "dict", "basename": "x"}, embedding_model="minilm",
                          outlier_model="static-wordllama", auto_accurate_max=2000, knn_k=7, iqr_factor=2.5,
                          semantic_threshold=0.9, leakage=False, leak_ngram=8, semantic_leakage=False,
                          heuristics=HeuristicSettings(max_tokens=2048, language=True, target_language="de",
                                                       repetition_threshold=0.6, pii=False))
    dialog.set_settings(custom)
    assert dialog.settings() == custom
    assert dialog.ok_button.isEnabled()
    # switches disable the settings that only matter when they are on
    assert not dialog.knobs["leak_ngram"].widget.isEnabled()
    dialog.knobs["leakage"].widget.setChecked(True)
    assert dialog.knobs["leak_ngram"].widget.isEnabled()

    # saved as JSON in QSettings and read back (also by a fresh QSettings on the same file)
    save_scan_settings(qsettings, custom)
    qsettings.sync()
    assert load_scan_settings(QSettings(qsettings.fileName(), QSettings.Format.IniFormat)) == custom
    assert load_scan_settings(QSettings(str(Path(qsettings.fileName()).with_name("none.ini")),
                                        QSettings.Format.IniFormat)) == ScanSettings()

    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.RestoreDefaults), Qt.MouseButton.LeftButton)
    assert dialog.settings() == ScanSettings()


def test_scan_settings_bad_input_disables_ok(qtbot):
    dialog = ScanSettingsDialog(interactive=False)
    qtbot.addWidget(dialog)
    lsh = dialog.knobs["lsh_storage"].widget
    lsh.setText('{"type": "redis", ')
    assert not dialog.ok_button.isEnabled()
    assert dialog.error_label.isVisibleTo(dialog) and "not valid JSON" in dialog.error_label.text()
    with pytest.raises(ValueError):
        dialog.settings()
    dialog.accept()  # Enter can't save it either
    assert dialog.result() != dialog.DialogCode.Accepted

    lsh.setText("[1, 2]")
    assert not dialog.ok_button.isEnabled() and "JSON object" in dialog.error_label.text()
    lsh.setText('{"type": "dict"}')
    assert dialog.ok_button.isEnabled() and not dialog.error_label.isVisibleTo(dialog)
    assert dialog.settings().lsh_storage == {"type": "dict"}

    model = dialog.knobs["embedding_model"].widget
    model.setEditText("/no/such/model/folder")
    assert not dialog.ok_button.isEnabled() and "Embedding model" in dialog.error_label.text()
    model.setEditText("minilm")
    assert dialog.ok_button.isEnabled()
    lsh.setText("")
    assert dialog.settings().lsh_storage is None


def test_stored_settings_that_no_longer_exist_are_dropped(qsettings):
    data = ScanSettings(ngram=4).to_dict()
    data["removed_long_ago"] = 1
    qsettings.setValue("scan/settings", json.dumps(data))
    assert load_scan_settings(qsettings) == ScanSettings(ngram=4)
    qsettings.setValue("scan/settings", "{not json")
    assert load_scan_settings(qsettings) == ScanSettings()


# -- export -------------------------------------------------------------------------------------


def test_export_dialog_runs_a_real_export(qtbot, tmp_path, qsettings):
    project = make_project(tmp_path)  # 6 approved, 1 rejected, 3 unreviewed
    dialog = ExportDialog(project, settings=qsettings, interactive=False)
    qtbot.addWidget(dialog)
    assert [dialog.format_combo.itemData(i) for i in range(dialog.format_combo.count())] == \
        ["openai-chat", "prompt-completion", "alpaca", "sharegpt", "csv", "parquet"]
    for w in input_widgets(dialog):
        assert w.toolTip().strip(), f"{type(w).__name__} {w.text() if hasattr(w, 'text') else ''!r}"
    # a default file name beside the dataset, named after it
    assert dialog.dest_edit.text() == str(tmp_path / "data-curated.jsonl")
    assert "<b>6</b> training records" in dialog.count_label.text()
    dialog.include_combo.setCurrentIndex(dialog.include_combo.findData("not-rejected"))
    assert "<b>9</b> training records" in dialog.count_label.text()
    dialog.include_combo.setCurrentIndex(dialog.include_combo.findData("approved"))

    out_dir = tmp_path / "exports"
    dialog.set_destination(str(out_dir / "curated.jsonl"))
    assert "does not exist" in dialog.error_label.text()
    assert dialog.start_export() is None and not dialog.is_running()  # checked again on a click
    out_dir.mkdir()

    with qtbot.waitSignal(dialog.export_finished, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    summary = blocker.args[0]
    out = out_dir / "curated.jsonl"
    assert summary.path == str(out) and summary.written == 6
    assert len(out.read_text(encoding="utf-8").splitlines()) == 6
    assert Path(summary.card) == out_dir / "curated.card.md" and Path(summary.card).is_file()
    assert Path(summary.log) == out_dir / "curated.decisions.csv" and Path(summary.log).is_file()
    assert "approve" in Path(summary.log).read_text(encoding="utf-8")
    shown = dialog.result_view.toPlainText()
    assert all(str(p) in shown for p in (out, summary.card, summary.log))
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)

    # parquet with a validation split: 6 approved -> 3 train + 3 validation
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("parquet"))
    assert dialog.dest_edit.text().endswith("curated.parquet")  # the extension follows the format
    dialog.val_spin.setValue(50.0)
    dialog.seed_spin.setValue(4)
    assert "<b>3</b> training records and <b>3</b> validation" in dialog.count_label.text()
    with qtbot.waitSignal(dialog.export_finished, timeout=TIMEOUT) as blocker:
        dialog.start_export()
    summary = blocker.args[0]
    import pyarrow.parquet as pq

    assert pq.read_table(summary.files["train"]).num_rows == 3
    assert pq.read_table(summary.files["validation"]).num_rows == 3
    assert summary.files["validation"] == str(out_dir / "curated.validation.parquet")
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT)

    # the format and folder are remembered for the next export
    assert qsettings.value(EXPORT_FORMAT_KEY) == "parquet"
    assert qsettings.value(EXPORT_FOLDER_KEY) == str(out_dir)
    again = ExportDialog(project, settings=qsettings, interactive=False)
    qtbot.addWidget(again)
    assert again.fmt == "parquet" and again.dest_edit.text() == str(out_dir / "data-curated.parquet")
    assert again.export_options().val_fraction == 0.5 and again.export_options().seed == 4
    project.close()


def test_export_failure_is_reported_as_text(qtbot, tmp_path, monkeypatch):
    project = make_project(tmp_path)
    dialog = ExportDialog(project, interactive=False)
    qtbot.addWidget(dialog)
    dialog.set_destination(str(tmp_path / "x.jsonl"))

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "x.jsonl"))

    monkeypatch.setattr(tasks, "export_project", broken)
    with qtbot.waitSignal(dialog.export_failed, timeout=TIMEOUT) as blocker:
        dialog.start_export()
    assert "No space left" in blocker.args[0] and "Traceback" in blocker.args[1]
    assert "No space left" in dialog.error_label.text() and "Traceback" not in dialog.error_label.text()
    qtbot.waitUntil(lambda: dialog.export_button.isEnabled(), timeout=TIMEOUT)
    project.close()


# -- import ------------------------------------------------------------------------------------


def test_import_csv_with_a_column_mapping(qtbot, tmp_path):
    data = write_csv(tmp_path / "squares.csv", 20)
    dialog = ImportDialog(str(data), interactive=False)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.preview is not None, timeout=TIMEOUT)
    # no mapping fits these column names: the mapping editor asks for one
    assert dialog.preview.error_key == "no_mapping"
    assert dialog.mapping_box.isVisibleTo(dialog) and not dialog.ok_button.isEnabled()
    prompt_combo = dialog.column_combos["prompt"]
    assert [prompt_combo.itemText(i) for i in range(prompt_combo.count())] == ["(none)", "q_text", "a_text", "topic"]
    for w in input_widgets(dialog):
        assert w.toolTip().strip(), f"{type(w).__name__} {w.objectName()!r}"

    prompt_combo.setCurrentIndex(prompt_combo.findText("q_text"))
    assert "completion" in dialog.error_label.text() and not dialog.ok_button.isEnabled()
    with qtbot.waitSignal(dialog.preview_ready, timeout=TIMEOUT):
        dialog.column_combos["completion"].setCurrentIndex(dialog.column_combos["completion"].findText("a_text"))
    wait_validated(qtbot, dialog)
    model = dialog.preview_model
    assert model.rowCount() == 20
    assert model.index(3, 2).data() == "user, assistant"
    assert model.index(3, 3).data() == "What is 3 squared?" and model.index(3, 4).data() == "9"
    assert model.index(3, 1).data() == "5"  # the physical line of the row
    assert dialog.report.loaded == 20 and dialog.ok_button.isEnabled()
    # taking a column away and putting it back reads the file again
    completion = dialog.column_combos["completion"]
    completion.setCurrentIndex(0)
    assert not dialog.ok_button.isEnabled() and dialog.preview_model.rowCount() == 0
    with qtbot.waitSignal(dialog.preview_ready, timeout=TIMEOUT):
        completion.setCurrentIndex(completion.findText("a_text"))
    wait_validated(qtbot, dialog)
    assert dialog.preview_model.rowCount() == 20 and dialog.ok_button.isEnabled()

    dialog.set_test_fraction(0.25, seed=3)
    options = dialog.import_options()
    assert options == tasks.ImportOptions(str(data), "auto", {"prompt": "q_text", "completion": "a_text"},
                                          None, 0.25, 3)
    result = tasks.open_dataset(options.path, tmp_path / "projects", (), options)
    with result.project as project:
        assert project.count() == 20
        assert project.count(split="test") == 5 and project.count(split="train") == 15
        sr = project.get(project.ids()[0])
        assert sr.record.first_user == "What is 0 squared?" and sr.record.metadata == {"topic": "math"}
        # the split is a recorded decision, so the decision log shows it
        assert {h["action"] for h in project.history()} == {"set_split"}

    # the same options open the same project again; other options make another one
    again = tasks.open_dataset(options.path, tmp_path / "projects", (), options)
    assert again.project.path == result.project.path and not again.created
    again.project.close()
    other = tasks.import_with_options(tasks.ImportOptions(str(data), mapping=options.mapping, test_fraction=0.5,
                                                          seed=3), tmp_path / "projects")
    assert other.project.path != result.project.path and other.project.count(split="test") == 10
    other.project.close()


def test_import_options_with_a_test_file(qtbot, tmp_path):
    data = write_csv(tmp_path / "train.csv", 12)
    test = write_csv(tmp_path / "test.csv", 4)
    dialog = ImportDialog(str(data), interactive=False)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.preview is not None, timeout=TIMEOUT)
    dialog.set_mapping({"prompt": "q_text", "completion": "a_text", "metadata": ""})
    wait_validated(qtbot, dialog)
    dialog.set_test_file(str(tmp_path / "missing.csv"))
    assert not dialog.ok_button.isEnabled() and "no such file" in dialog.error_label.text()
    dialog.set_test_file(str(test))
    assert not dialog.ok_button.isEnabled()  # until the test file is checked (issue 11, item 16)
    qtbot.waitUntil(lambda: dialog.test_report is not None and not dialog.is_busy(), timeout=TIMEOUT)
    assert dialog.ok_button.isEnabled()
    assert "Test file: 4 records" in dialog.test_summary.text()
    options = dialog.import_options()
    assert options.test_file == str(test) and options.test_fraction == 0.0
    result = tasks.open_dataset(str(data), tmp_path / "projects", (), options)
    with result.project as project:  # the test file is read with the same mapping
        assert project.count(split="train") == 12 and project.count(split="test") == 4
    assert [r.loaded for r in result.reports] == [12, 4]


def test_import_jsonl_lists_problems_and_shows_the_raw_line(qtbot, tmp_path):
    lines = [chat_line(i) for i in range(10)]
    lines.insert(3, '{"messages": [ this is not json')  # line 4
    lines.insert(6, json.dumps({"messages": [{"role": "user", "content": "no answer"}]}))  # line 7
    lines.insert(8, "")  # a blank line: line numbers stay physical
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    dialog = ImportDialog(str(path), interactive=False)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    wait_validated(qtbot, dialog)
    assert "OpenAI chat" in dialog.detected_label.text()
    assert dialog.report.loaded == 10 and dialog.report.rejected == 2
    model = dialog.problems_model
    rows = [(model.index(r, 0).data(), model.index(r, 2).data()) for r in range(model.rowCount())]
    assert rows == [("4", "invalid_json"), ("7", "example_missing_assistant_message")]
    assert "2 with problems" in dialog.status_label.text()
    assert dialog.preview_model.rowCount() == 12
    assert dialog.preview_model.index(3, 2).data() == "can't be imported"
    assert dialog.ok_button.isEnabled()  # bad records are skipped on import

    dialog.tabs.setCurrentIndex(1)
    view = dialog.problems_view
    qtbot.waitUntil(lambda: view.isVisible(), timeout=5000)
    rect = view.visualRect(model.index(1, 3))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert dialog.raw_view.toPlainText() == lines[6]
    assert dialog.raw_view.isReadOnly() and "Line 7" in dialog.raw_label.text()
    qtbot.keyClick(view, Qt.Key.Key_Up)  # keyboard: the previous problem
    assert dialog.raw_view.toPlainText() == '{"messages": [ this is not json'

    # another format: nothing can be read that way, and the dialog says so
    with qtbot.waitSignal(dialog.validation_ready, timeout=TIMEOUT):
        dialog.set_format("alpaca")
    wait_validated(qtbot, dialog)
    assert dialog.report.loaded == 0 and not dialog.ok_button.isEnabled()
    assert "No record" in dialog.error_label.text()
    assert dialog.import_options().fmt == "alpaca"


def test_unreadable_file_is_reported_in_the_dialog(qtbot, tmp_path):
    path = tmp_path / "noise.jsonl"
    path.write_bytes(b"\x00\x01\x02 not a dataset \xff\xfe" * 50)
    dialog = ImportDialog(str(path), interactive=False)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.preview_ready, timeout=TIMEOUT) as blocker:
        pass
    assert not blocker.args[0].ok
    assert "binary" in dialog.error_label.text() and "Traceback" not in dialog.error_label.text()
    assert not dialog.ok_button.isEnabled()


# -- the Qt-free helpers ---------------------------------------------------------------------------


def test_preview_and_raw_text_of_json_arrays_and_csv(tmp_path):
    arr = tmp_path / "a.json"
    arr.write_text("[\n" + ",\n".join(json.dumps(json.loads(chat_line(i)), indent=1) for i in range(3)) + "\n]\n",
                   encoding="utf-8")
    prev = tasks.preview_dataset(str(arr), limit=2)
    assert prev.ok and prev.container == "json" and prev.format == "openai-chat" and len(prev.rows) == 2
    raw = tasks.raw_record_text(str(arr), "json", prev.rows[1].line, 1)
    assert json.loads(raw.rstrip().rstrip(","))["messages"][0]["content"] == "question 1"

    table = write_csv(tmp_path / "t.csv", 3)
    assert tasks.raw_record_text(str(table), "csv", 3, 1) == "What is 1 squared?,1,math"
    bad = tasks.preview_dataset(str(table))
    assert bad.error_key == "no_mapping" and bad.columns == ["q_text", "a_text", "topic"]
    assert tasks.preview_dataset(str(tmp_path / "nope.jsonl")).error_key == "not_found"
    with pytest.raises(ValueError):
        tasks.ImportOptions(str(table), test_fraction=1.0)
