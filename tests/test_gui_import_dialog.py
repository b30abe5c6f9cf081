"""The import dialog, driven with keys (issue 11, item 16): a mixed-format file is read as its
majority format (and the dialog says it is mixed), the problem summary counts records, no
"missing system" noise for formats without a system turn, and the chosen test file is
checked and summarised before Import is possible. Offscreen; waits on conditions."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QStandardPaths, Qt  # noqa: E402

from ftcurate.gui.dialogs import ImportDialog  # noqa: E402
from gui_keys import focused, tab_to  # noqa: E402

TIMEOUT = 30_000


@pytest.fixture(autouse=True)
def _test_mode():
    QStandardPaths.setTestModeEnabled(True)


def wait_checked(qtbot, dialog) -> None:
    qtbot.waitUntil(lambda: dialog.report is not None and not dialog.is_busy(), timeout=TIMEOUT)


def mixed_file(path, n_chat: int = 30, n_pc: int = 120):
    chat = [json.dumps({"messages": [{"role": "user", "content": f"question {i}"},
                                     {"role": "assistant", "content": f"answer {i}"}]}) for i in range(n_chat)]
    pc = [json.dumps({"prompt": f"What is {i} + {i}?", "completion": str(2 * i)}) for i in range(n_pc)]
    path.write_text("\n".join(chat + pc) + "\n", encoding="utf-8")
    return path


def test_mixed_file_record_counts_and_the_test_file_by_keyboard(qtbot, tmp_path, data_dir):
    path = mixed_file(tmp_path / "mixed.jsonl")
    dialog = ImportDialog(str(path), interactive=False)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    wait_checked(qtbot, dialog)

    # The 30 chat records come first, but most records are prompt/completion: read that way.
    assert "Prompt / completion" in dialog.detected_label.text()
    status = dialog.status_label.text()
    assert dialog.report.loaded == 120 and dialog.report.rejected == 30
    # records, not issues: each chat record lacks both prompt and completion (60 issues)
    assert dialog.report.error_counts == {"missing_key": 60}
    assert "30 with problems" in status and "records with missing key 30" in status and "60" not in status
    assert "Mixed formats" in status and "30 OpenAI chat" in status
    assert "missing system" not in status  # prompt/completion has no system turn
    assert dialog.tabs.tabText(1) == "P&roblems (30)"

    # Keys: the format box, one down = OpenAI chat; then the 30 chat records are the ones read.
    dialog.format_combo.setFocus()
    qtbot.waitUntil(lambda: focused() is dialog.format_combo)
    with qtbot.waitSignal(dialog.validation_ready, timeout=TIMEOUT):
        qtbot.keyClick(focused(), Qt.Key.Key_Down)
    wait_checked(qtbot, dialog)
    assert dialog.import_options().fmt == "openai-chat"
    assert (dialog.report.loaded, dialog.report.rejected) == (30, 120)
    assert "missing system 30" in dialog.status_label.text()  # OpenAI chat: its recipe's warning
    qtbot.keyClick(focused(), Qt.Key.Key_Up)  # back to "Detect automatically"
    wait_checked(qtbot, dialog)
    assert dialog.import_options().fmt == "auto" and dialog.report.loaded == 120

    # Tab to the held-out choice, arrow to "Test file", Tab to the path and type it.
    tab_to(qtbot, dialog.test_none)
    qtbot.keyClick(focused(), Qt.Key.Key_Down)
    assert dialog.test_from_file.isChecked() and focused() is dialog.test_from_file
    qtbot.keyClick(focused(), Qt.Key.Key_Tab)
    assert focused() is dialog.test_edit
    test = data_dir / "gsm8k_test_head.jsonl"  # 10 GSM8K question/answer records
    qtbot.keyClicks(focused(), str(test))
    assert not dialog.ok_button.isEnabled()  # not before the test file is checked
    qtbot.waitUntil(lambda: dialog.test_report is not None and not dialog.is_busy(), timeout=TIMEOUT)
    summary = dialog.test_summary.text()
    assert dialog.test_summary.isVisible()
    assert "Test file: 10 records" in summary and "<b>10</b> can be imported" in summary
    assert "Prompt / completion" in summary and "missing system" not in summary
    assert dialog.ok_button.isEnabled()
    assert dialog.import_options().test_file == str(test)

    # A test file that can't be read: said, and Import is off.
    bad = tmp_path / "noise.jsonl"
    bad.write_bytes(b"\x00\x01\x02 not a dataset \xff\xfe" * 50)
    qtbot.keyClick(focused(), Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(focused(), str(bad))
    qtbot.waitUntil(lambda: "can't be read" in dialog.test_summary.text() and not dialog.is_busy(),
                    timeout=TIMEOUT)
    assert "binary" in dialog.test_summary.text()
    assert not dialog.ok_button.isEnabled() and "can't be read" in dialog.error_label.text()

    # Back to no held-out data (Shift+Tab to the radio, arrow up): Import is on again.
    qtbot.keyClick(focused(), Qt.Key.Key_Tab, Qt.KeyboardModifier.ShiftModifier)
    assert focused() is dialog.test_from_file
    qtbot.keyClick(focused(), Qt.Key.Key_Up)
    assert dialog.test_none.isChecked() and not dialog.test_summary.isVisible()
    assert dialog.ok_button.isEnabled()


def test_test_file_with_problems_is_summarised_by_records(qtbot, tmp_path):
    data = mixed_file(tmp_path / "train.jsonl", 0, 20)
    test = tmp_path / "test.jsonl"
    test.write_text("\n".join([json.dumps({"prompt": "a", "completion": "b"}), "{broken",
                               json.dumps({"prompt": "", "completion": ""})]) + "\n", encoding="utf-8")
    dialog = ImportDialog(str(data), interactive=False)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    wait_checked(qtbot, dialog)
    assert not dialog.test_edit.isEnabled()  # until "Test file" is chosen
    dialog.test_none.setFocus()
    qtbot.waitUntil(lambda: focused() is dialog.test_none)
    qtbot.keyClick(focused(), Qt.Key.Key_Down)
    qtbot.keyClick(focused(), Qt.Key.Key_Tab)
    assert focused() is dialog.test_edit
    qtbot.keyClicks(focused(), str(test))
    qtbot.waitUntil(lambda: dialog.test_report is not None and not dialog.is_busy(), timeout=TIMEOUT)
    summary = dialog.test_summary.text()
    # 3 records, 1 loads; the empty one has two issues but is one record
    assert "3 records" in summary and "<b>1</b> can be imported" in summary
    assert "2 with problems" in summary and "missing content 1" in summary and "invalid json 1" in summary
    assert dialog.ok_button.isEnabled()
