"""Extra fields of the source records as optional, filterable columns (issue 11 capability)."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from ftcurate.core.project.table import split_meta_query  # noqa: E402
from ftcurate.gui.models import RecordTableModel  # noqa: E402
from test_gui import focus_table, home, open_and_wait, window  # noqa: E402,F401


@pytest.fixture
def with_fields(tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"a{i}"}],
             "source": ["web", "book"][i % 2], "category": "math" if i < 3 else "small talk", "difficulty": i}
            for i in range(6)]
    path = tmp_path / "fields.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_split_meta_query():
    assert split_meta_query('category:math how many', ["category"]) == ({"category": "math"}, "how many")
    assert split_meta_query('Category:"small talk"', ["category"]) == ({"category": "small talk"}, "")
    assert split_meta_query("time: 10:30", ["category"]) == ({}, "time: 10:30")


def test_fields_as_columns_filtered_from_the_search_box(qtbot, window, with_fields):
    project = open_and_wait(qtbot, window, with_fields)
    assert set(window.meta_keys_found) == {"source", "category", "difficulty"}
    window._fill_columns_menu()  # View ▸ Columns
    act = next(a for a in window.columns_menu.actions() if a.text() == "category")
    act.trigger()
    col = len(RecordTableModel.COLUMNS)
    assert window.model.headerData(col, Qt.Orientation.Horizontal) == "category"
    assert window.model.index(0, col).data() == "math"
    focus_table(qtbot, window)
    qtbot.keyClick(window.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(window.filter_bar.search, 'category:"small talk" source:web')
    qtbot.keyClick(window.filter_bar.search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.model.rowCount() == 1)
    assert project.get(window.model.id_at(0)).index == 4
    # remembered with the project's view state
    window.save_view_state()
    assert project.meta_get("gui_state")["columns"] == ["category"]
