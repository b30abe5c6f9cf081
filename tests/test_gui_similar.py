"""Find similar (S) and search by meaning (Ctrl+Shift+M) in the Records tab (issue 11
capability), keys only, offscreen."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from test_gui import focus_table, home, open_and_wait, window  # noqa: E402,F401

TOPICS = ["How do I bake sourdough bread at home?", "What temperature should I bake bread at?",
          "Tips for kneading bread dough by hand", "How do I change a flat bicycle tyre?",
          "My bike chain keeps slipping, what do I do?", "Which tyre pressure is right for a road bike?",
          "Explain photosynthesis in plants", "What do plant leaves need sunlight for?"]


@pytest.fixture
def topics(tmp_path):
    import json

    lines = [json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "An answer."}]})
             for q in TOPICS]
    path = tmp_path / "topics.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_s_lists_the_records_nearest_in_meaning(qtbot, window, topics):
    project = open_and_wait(qtbot, window, topics)
    focus_table(qtbot, window)
    for _ in range(3):
        qtbot.keyClick(window.table, Qt.Key.Key_J)  # to record 3, the flat tyre
    assert project.get(window.current_id()).index == 3
    with qtbot.waitSignal(window.similar_shown, timeout=120_000):
        qtbot.keyClick(window.table, Qt.Key.Key_S)
    first = [project.get(window.model.id_at(r)).index for r in range(2)]
    assert set(first) == {4, 5}, first  # the other bicycle questions come first
    assert "nearest to record 3" in window.count_label.text()
    assert "Similarity" in window.model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
    qtbot.keyClick(window.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: window.model.rowCount() == project.count())
    assert [window.model.id_at(r) for r in range(3)] == sorted(project.ids())[:3]  # back in file order


def test_search_by_meaning_from_the_keyboard(qtbot, window, topics):
    project = open_and_wait(qtbot, window, topics)
    focus_table(qtbot, window)
    qtbot.keyClick(window.table, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    box = window.filter_bar.search
    qtbot.waitUntil(lambda: QApplication.focusWidget() is box)
    assert window.filter_bar.meaning.isChecked()
    qtbot.keyClicks(box, "baking a loaf")
    with qtbot.waitSignal(window.similar_shown, timeout=120_000):
        qtbot.keyClick(box, Qt.Key.Key_Return)
    top3 = {project.get(window.model.id_at(r)).index for r in range(3)}
    assert top3 == {0, 1, 2}
