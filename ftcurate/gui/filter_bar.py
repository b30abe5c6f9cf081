"""The filter bar above the records table: status, split, finding, label, score, text.

:class:`FilterBar` only holds the choices; the window turns :meth:`FilterBar.state`
into a :meth:`ftcurate.core.project.table.RecordFrame.select` call (and a text search in a
worker). The state is a plain dict, so it is saved per project and restored on reopen.
"""

from __future__ import annotations

from typing import Iterable, Optional

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QLineEdit, QToolButton, QWidget

from ..core.project.records import SPLITS
from ..core.project.store import STATUSES
from ..core.project.table import FINDING_KINDS
from .models import STATUS_LABELS

_NO_SCORE = -1.0  # the spin box's "no bound" value (scores are >= 0)


class FilterBar(QWidget):
    """Emits :attr:`changed` when a choice changes (text: after a short pause)."""

    changed = Signal()
    meaning_requested = Signal(str)  # Enter in the search box in "by meaning" mode

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        self.status = QComboBox()
        self.status.addItem("All statuses", None)
        for st in STATUSES:
            self.status.addItem(STATUS_LABELS[st], st)
        self.status.setToolTip("Show only records with this review status")
        self.split = QComboBox()
        self.split.addItem("All splits", None)
        for sp in SPLITS:
            self.split.addItem(sp.capitalize(), sp)
        self.split.setToolTip("Show only training, validation or test records")
        self.flag = QComboBox()
        self.flag.setToolTip("Show only records the last quality scan flagged with this finding")
        self.label = QComboBox()
        self.label.setToolTip("Show only records that carry this label")
        self.score = QDoubleSpinBox()
        self.score.setRange(_NO_SCORE, 1000.0)
        self.score.setDecimals(2)
        self.score.setSingleStep(0.05)
        self.score.setSpecialValueText("any score")
        self.score.setValue(_NO_SCORE)
        self.score.setToolTip("Show only records whose outlier score is at least this (from the last scan); "
                              "the lowest value means any score")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search text…  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Show only records whose messages contain this text (case-insensitive); "
                               "FIELD:VALUE keeps the records whose source field has that value "
                               "(e.g. category:math; View ▸ Columns shows the fields)")
        self.meaning = QToolButton()
        self.meaning.setText("≈ by meaning")
        self.meaning.setCheckable(True)
        self.meaning.setToolTip("Search by meaning instead of by text: Enter lists the records nearest in meaning "
                                "to what you typed, nearest first (Ctrl+Shift+M)")
        self.meaning.toggled.connect(self._on_meaning_toggled)
        self.count_label = QLabel()
        self.count_label.setStyleSheet("color: palette(placeholder-text)")
        lay.addWidget(QLabel("Show"))
        for w in (self.status, self.split, self.flag, self.label):
            lay.addWidget(w)
        lay.addWidget(QLabel("Score ≥"))
        lay.addWidget(self.score)
        lay.addWidget(self.search, 1)
        lay.addWidget(self.meaning)
        lay.addWidget(self.count_label)
        self.set_flag_counts({})
        self.set_labels({})

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(300)
        self._timer.timeout.connect(self.changed)
        self.search.textChanged.connect(lambda _t: None if self.meaning.isChecked() else self._timer.start())
        self.search.returnPressed.connect(self._on_return)
        for combo in (self.status, self.split, self.flag, self.label):
            combo.currentIndexChanged.connect(lambda _i: self._now())
        self.score.valueChanged.connect(lambda _v: self._timer.start())

    def _now(self) -> None:
        self._timer.stop()
        self.changed.emit()

    def stop_timer(self) -> None:
        self._timer.stop()

    # -- choices ---------------------------------------------------------------------------
    def _refill(self, combo: QComboBox, first: str, items: Iterable[tuple[str, object]]) -> None:
        keep = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(first, None)
        for text, data in items:
            combo.addItem(text, data)
        i = combo.findData(keep)
        combo.setCurrentIndex(i if i >= 0 else 0)
        combo.blockSignals(False)

    def _on_return(self) -> None:
        if self.meaning.isChecked():
            text = self.search.text().strip()
            if text:
                self.meaning_requested.emit(text)
        else:
            self._now()

    def _on_meaning_toggled(self, on: bool) -> None:
        self.search.setPlaceholderText("Search by meaning, then Enter…" if on else "Search text…  (Ctrl+F)")
        if self.search.text().strip():
            self._timer.stop()
            self.changed.emit()  # the text stops (or starts) filtering by words

    def set_meaning_mode(self, on: bool) -> None:
        self.meaning.setChecked(on)

    def set_flag_counts(self, counts: dict[str, int]) -> None:
        """Offer the finding kinds of the last scan (with counts); keeps the choice."""
        items = [("Any finding", "any"), ("No finding", "none")] if counts else []
        items += [(f"{k} ({n:,})", k) for k in FINDING_KINDS if (n := counts.get(k))]
        self._refill(self.flag, "All findings", items)
        self.flag.setEnabled(bool(counts))

    def set_labels(self, labels: dict[str, int]) -> None:
        self._refill(self.label, "All labels", [(f"{k} ({n:,})", k) for k, n in labels.items()])
        self.label.setEnabled(bool(labels))

    # -- state -----------------------------------------------------------------------------
    def state(self) -> dict:
        score = self.score.value()
        return {
            "status": self.status.currentData(),
            "split": self.split.currentData(),
            "flag": self.flag.currentData(),
            "label": self.label.currentData(),
            "score_min": None if score <= _NO_SCORE else round(score, 4),
            "text": "" if self.meaning.isChecked() else self.search.text().strip(),
        }

    def is_default(self) -> bool:
        return not any(self.state().values())

    def set_state(self, state: dict, emit: bool = False) -> None:
        """Restore a :meth:`state` (unknown values fall back to "all")."""
        widgets = (self.status, self.split, self.flag, self.label, self.score, self.search)
        for w in widgets:
            w.blockSignals(True)
        for combo, key in ((self.status, "status"), (self.split, "split"), (self.flag, "flag"), (self.label, "label")):
            i = combo.findData(state.get(key))
            combo.setCurrentIndex(i if i >= 0 else 0)
        score = state.get("score_min")
        self.score.setValue(float(score) if isinstance(score, (int, float)) else _NO_SCORE)
        self.search.setText(str(state.get("text") or ""))
        for w in widgets:
            w.blockSignals(False)
        self._timer.stop()
        if emit:
            self.changed.emit()

    def reset(self) -> None:
        """Everything back to "all", without emitting :attr:`changed`."""
        self.meaning.blockSignals(True)
        self.meaning.setChecked(False)
        self.meaning.blockSignals(False)
        self.search.setPlaceholderText("Search text…  (Ctrl+F)")
        self.set_state({})

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()
