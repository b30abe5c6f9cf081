"""What the Evaluate tab shows of a report: the verdict, the metric table (systems by metrics,
mean and 95% interval; all items or the clean ones), the bars of one metric, and one row per
golden item with the reference, each system's answer with a tick or cross per metric,
filters such as "tuned wrong, few-shot right", and sorting by disagreement.

Everything here reads a report dict (:func:`ftcurate.train.compare.compare`); nothing is
computed that the report does not hold, except which rows a filter keeps.
"""

from __future__ import annotations

import html
from typing import Optional

from PySide6.QtCore import QEvent, Qt, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QHBoxLayout, QHeaderView, QLabel, QSplitter,
                               QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget)

from ..train.metrics import LOSS_METRICS, METRICS
from ..train.verdict import fmt_interval, fmt_value
from . import theme
from .eval_charts import MetricBars, PilotChart
from .train_common import wrap_label

_NO_CHART = ("perplexity", "length_ratio")


def upgrade_report(report: Optional[dict]) -> Optional[dict]:
    """A report of an older ftcurate (base/tuned loss and a few generations) in today's shape."""
    if not isinstance(report, dict) or "systems" in report:
        return report
    systems, examples = {}, []
    for name in ("base", "tuned"):
        m = report.get(name)
        if isinstance(m, dict):
            systems[name] = {"kind": name, "n": report.get("examples", 0) if isinstance(report.get("examples"), int)
                             else 0, "metrics": {k: {"mean": m.get(k), "ci95": None} for k in ("loss", "perplexity")}}
    for i, g in enumerate(report.get("generations") or []):
        examples.append({"index": i, "source": "", "prompt": g.get("prompt", ""), "reference": g.get("reference", ""),
                         "leaked": False, "outputs": {n: g.get(n) for n in systems},
                         "scores": {n: {} for n in systems}})
    return {**report, "systems": systems, "examples": examples, "metrics": ["loss", "perplexity"],
            "headline": "loss", "verdict": [], "clean_only": None, "leaked": [], "status": "complete",
            "old_format": True}


def right(metric: Optional[str], value: Optional[float]) -> Optional[bool]:
    """Is a per-example score a success? (rates: 1; scores: at least 0.5; None: no score)."""
    if metric is None or value is None or metric not in METRICS:
        return None
    info = METRICS[metric]
    if info.kind == "rate":
        ok = value >= 1.0
        return ok if info.higher_is_better else not ok
    if info.kind == "score":
        return value >= 0.5
    return None


def disagreement(example: dict, metric: Optional[str]) -> float:
    """How split the systems are on an item: min(#right, #wrong) for rates, max - min of scores."""
    values = [s.get(metric) for s in (example.get("scores") or {}).values() if s.get(metric) is not None] \
        if metric else []
    if not values:
        return 0.0
    if METRICS[metric].kind == "rate":
        ok = sum(1 for v in values if v >= 1.0)
        return float(min(ok, len(values) - ok))
    return round(max(values) - min(values), 3)


class NumericItem(QTableWidgetItem):
    """A cell that sorts by a number, not by its text."""

    def __init__(self, text: str, value: float) -> None:
        super().__init__(text)
        self.setData(Qt.ItemDataRole.UserRole, float(value))

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a = self.data(Qt.ItemDataRole.UserRole)
        b = other.data(Qt.ItemDataRole.UserRole)
        if isinstance(a, float) and isinstance(b, float):
            return a < b
        return super().__lt__(other)


class EvalResults(QWidget):
    """The verdict above three pages: Summary (table and bars), Answers (per item), Pilot."""

    example_activated = Signal(dict)  # an example's row was double-clicked (open the record)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.report: Optional[dict] = None
        self._filters: list[tuple[str, object]] = []
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        self.verdict_label = wrap_label()
        self.verdict_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        v.addWidget(self.verdict_label)
        self.pages = QTabWidget()
        self.pages.setDocumentMode(True)
        v.addWidget(self.pages, 1)

        # Summary
        summary = QWidget()
        sv = QVBoxLayout(summary)
        sv.setContentsMargins(0, 4, 0, 0)
        row = QHBoxLayout()
        self.clean_check = QCheckBox("Clean golden items only")
        self.clean_check.setToolTip("Leave out the golden items that training records leak (last scan): the "
                                    "verdict uses these numbers")
        self.clean_check.toggled.connect(self._fill_summary)
        self.chart_metric_combo = QComboBox()
        self.chart_metric_combo.setToolTip("The metric the bars show")
        self.chart_metric_combo.currentIndexChanged.connect(self._fill_chart)
        row.addWidget(self.clean_check)
        row.addStretch(1)
        row.addWidget(QLabel("Chart"))
        row.addWidget(self.chart_metric_combo)
        sv.addLayout(row)
        split = QSplitter(Qt.Orientation.Vertical)
        split.setChildrenCollapsible(False)
        self.metrics_table = QTableWidget(0, 0)
        self.metrics_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metrics_table.setTabKeyNavigation(False)  # Tab moves on to the next widget (arrows between cells)
        self.metrics_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.metrics_table.horizontalHeader().setStretchLastSection(True)
        self.metrics_table.setWordWrap(False)
        self.bars = MetricBars()
        split.addWidget(self.metrics_table)
        split.addWidget(self.bars)
        split.setSizes([140, 220])
        sv.addWidget(split, 1)
        self.pages.addTab(summary, "Summary")

        # Answers
        answers = QWidget()
        av = QVBoxLayout(answers)
        av.setContentsMargins(0, 4, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Show"))
        self.filter_combo = QComboBox()
        self.filter_combo.setToolTip("Golden items by how the systems did on the verdict's metric")
        self.filter_combo.currentIndexChanged.connect(self._apply_filter)
        row.addWidget(self.filter_combo, 1)
        self.shown_label = QLabel()
        row.addWidget(self.shown_label)
        av.addLayout(row)
        self.marks_label = QLabel()
        self.marks_label.setWordWrap(True)
        av.addWidget(self.marks_label)
        self.gen_table = QTableWidget(0, 0)
        self.gen_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.gen_table.setTabKeyNavigation(False)
        self.gen_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.gen_table.setWordWrap(True)
        self.gen_table.setSortingEnabled(True)
        self.gen_table.verticalHeader().setVisible(False)
        self.gen_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.gen_table.verticalHeader().setDefaultSectionSize(self.fontMetrics().lineSpacing() * 4 + 8)
        self.gen_table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.gen_table.setToolTip("Double-click a row to open its record")
        self.gen_table.cellDoubleClicked.connect(self._on_double_click)
        av.addWidget(self.gen_table, 1)
        self.pages.addTab(answers, "Answers")

        # Pilot
        pilot = QWidget()
        pv = QVBoxLayout(pilot)
        pv.setContentsMargins(0, 4, 0, 0)
        self.pilot_label = wrap_label()
        pv.addWidget(self.pilot_label)
        self.pilot_chart = PilotChart()
        pv.addWidget(self.pilot_chart, 1)
        self.pages.addTab(pilot, "Pilot curve")
        self.show_pilot(None)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self.report is not None:
            self.show_report(self.report)  # the answers' colours follow the theme

    # -- the report ---------------------------------------------------------------------------------
    def show_report(self, report: Optional[dict]) -> None:
        self.report = report = upgrade_report(report)
        if not report:
            self.verdict_label.setText("")
            self.metrics_table.clear()
            self.metrics_table.setRowCount(0)
            self.metrics_table.setColumnCount(0)
            self.gen_table.setRowCount(0)
            self.gen_table.setColumnCount(0)
            self.bars.show_metric(None, None)
            self.filter_combo.clear()
            self.marks_label.setText("")
            self.shown_label.setText("")
            return
        lines = report.get("verdict") or []
        status = report.get("status")
        color = theme.colors().warn if status not in ("complete", None) else None
        text = "<br>".join(f"<b>{html.escape(v)}</b>" for v in lines)
        if color and status == "running":
            text = text or "Evaluating…"
        self.verdict_label.setText(text)
        leaked = bool(report.get("clean_only"))
        self.clean_check.setVisible(leaked)
        was = self.clean_check.blockSignals(True)
        self.clean_check.setChecked(leaked)  # the verdict uses the clean items
        self.clean_check.blockSignals(was)
        metrics = [m for m in report.get("metrics") or [] if m in METRICS]
        current = self.chart_metric_combo.currentData()
        was = self.chart_metric_combo.blockSignals(True)
        self.chart_metric_combo.clear()
        for m in metrics:
            if m not in _NO_CHART:
                self.chart_metric_combo.addItem(METRICS[m].label, m)
        pick = current if current in metrics else report.get("headline")
        i = self.chart_metric_combo.findData(pick)
        self.chart_metric_combo.setCurrentIndex(max(0, i))
        self.chart_metric_combo.blockSignals(was)
        self._fill_summary()
        self._fill_examples()

    def _systems(self) -> dict:
        report = self.report or {}
        if self.clean_check.isChecked() and report.get("clean_only"):
            return report["clean_only"]
        return report.get("systems") or {}

    @Slot()
    def _fill_summary(self, *_args) -> None:
        report = self.report or {}
        metrics = [m for m in report.get("metrics") or [] if m in METRICS]
        systems = self._systems()
        t = self.metrics_table
        t.clear()
        t.setColumnCount(len(metrics) + 1)
        t.setRowCount(len(systems))
        t.setHorizontalHeaderLabels(["n"] + [METRICS[m].label for m in metrics])
        for c, m in enumerate(metrics, 1):
            t.horizontalHeaderItem(c).setToolTip(METRICS[m].help)
        t.setVerticalHeaderLabels(list(systems))
        headline = report.get("headline")
        best = self._best(systems, headline)
        for r, (name, s) in enumerate(systems.items()):
            item = QTableWidgetItem(str(s.get("n", 0)))
            item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            t.setItem(r, 0, item)
            for c, m in enumerate(metrics, 1):
                v = (s.get("metrics") or {}).get(m) or {}
                text = fmt_value(m, v.get("mean")) if v.get("mean") is not None else "–"
                if v.get("ci95") and v["ci95"][0] != v["ci95"][1]:
                    text += f"  [{fmt_interval(m, v['ci95'])}]"
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setToolTip(f"{name}: {METRICS[m].label} {text} (mean, 95% bootstrap interval; "
                                f"{v.get('n', 0)} items scored)")
                if m == headline and name == best:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                t.setItem(r, c, item)
        self._fill_chart()

    @staticmethod
    def _best(systems: dict, metric: Optional[str]) -> Optional[str]:
        if not metric or metric not in METRICS or METRICS[metric].higher_is_better is None:
            return None
        vals = [(s["metrics"].get(metric, {}).get("mean"), n) for n, s in systems.items()
                if (s.get("metrics") or {}).get(metric, {}).get("mean") is not None]
        if not vals:
            return None
        pick = max if METRICS[metric].higher_is_better else min
        return pick(vals)[1]

    @Slot()
    def _fill_chart(self, *_args) -> None:
        metric = self.chart_metric_combo.currentData()
        note = " (clean items)" if self.clean_check.isChecked() and (self.report or {}).get("clean_only") else ""
        self.bars.show_metric(self._systems(), metric, note)

    # -- answers ------------------------------------------------------------------------------------
    def _fill_examples(self) -> None:
        report = self.report or {}
        names = list((report.get("systems") or {}))
        examples = report.get("examples") or []
        headline = report.get("headline")
        marks = [m for m in report.get("metrics") or [] if m in METRICS and METRICS[m].kind == "rate"]
        self.marks_label.setText(("Marks in each answer: " + ", ".join(METRICS[m].label for m in marks)
                                  + " (✓ passed, ✗ failed)") if marks else "")
        t = self.gen_table
        t.setSortingEnabled(False)
        t.clear()
        headers = ["Record", "Reference"] + names + ["Disagree"]
        t.setColumnCount(len(headers))
        t.setHorizontalHeaderLabels(headers)
        t.horizontalHeaderItem(len(headers) - 1).setToolTip(
            "How split the systems are on this item (sort to see the items they disagree on first)")
        t.setRowCount(len(examples))
        placeholder = self.palette().placeholderText()
        partial = report.get("status") == "running"
        colors = theme.colors()
        for r, ex in enumerate(examples):
            label = str(ex.get("index", r)) + (" (leaked)" if ex.get("leaked") else "")
            item = NumericItem(label, ex.get("index", r))
            item.setData(Qt.ItemDataRole.UserRole + 1, r)
            item.setToolTip((f"Record {ex.get('index')} of {ex.get('source')}" if ex.get("source") else
                             f"Golden item {ex.get('index')}") + f"\n\nPrompt:\n{ex.get('prompt', '')}")
            t.setItem(r, 0, item)
            ref = QTableWidgetItem(ex.get("reference") or "")
            ref.setToolTip(ex.get("reference") or "(no reference)")
            t.setItem(r, 1, ref)
            for c, name in enumerate(names, 2):
                out = (ex.get("outputs") or {}).get(name)
                scores = (ex.get("scores") or {}).get(name) or {}
                ticks = "" if out is None else " ".join("✓" if scores.get(m) >= 1 else "✗" for m in marks
                                                        if scores.get(m) is not None)
                if out is None:
                    shown = "(generating…)" if partial else "(not generated)"
                else:
                    shown = out if out.strip() else "(empty answer)"
                cell = QTableWidgetItem(f"{ticks}  {shown}" if ticks else shown)
                if out is None or not out.strip():
                    cell.setForeground(placeholder)
                    font = cell.font()
                    font.setItalic(True)
                    cell.setFont(font)
                else:
                    ok = right(headline, scores.get(headline))
                    if ok is not None:
                        cell.setForeground(QColor(colors.ok if ok else colors.bad))
                detail = "\n".join(f"{METRICS[m].label}: {fmt_value(m, v)}" for m, v in scores.items()
                                   if m in METRICS and v is not None)
                cell.setToolTip(f"{out or ''}\n\n{detail}".strip())
                cell.setTextAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
                t.setItem(r, c, cell)
            d = disagreement(ex, headline)
            t.setItem(r, len(headers) - 1, NumericItem(f"{d:g}", d))
        header = t.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(headers) - 1, QHeaderView.ResizeMode.ResizeToContents)
        t.setSortingEnabled(True)
        self._build_filters(names, report)

    def _build_filters(self, names: list[str], report: dict) -> None:
        kinds = {n: (report.get("systems") or {}).get(n, {}).get("kind") for n in names}
        tuned = next((n for n, k in kinds.items() if k == "tuned"), None)
        others = [(n, {"base": "base", "fewshot": "few-shot", "raw": "raw"}[k]) for n, k in kinds.items()
                  if k in ("base", "fewshot", "raw")]
        filters: list[tuple[str, object]] = [("All items", None)]
        if tuned:
            for other, word in others:
                filters.append((f"Tuned wrong, {word} right", (tuned, False, other, True)))
                filters.append((f"Tuned right, {word} wrong", (tuned, True, other, False)))
        filters.append(("Systems disagree", "disagree"))
        if report.get("leaked"):
            filters += [("Leaked items", "leaked"), ("Clean items", "clean")]
        current = self.filter_combo.currentText()
        was = self.filter_combo.blockSignals(True)
        self.filter_combo.clear()
        for text, data in filters:
            self.filter_combo.addItem(text, data)
        self._filters = filters
        i = self.filter_combo.findText(current)
        self.filter_combo.setCurrentIndex(max(0, i))
        self.filter_combo.blockSignals(was)
        self._apply_filter()

    def _example_of_row(self, row: int) -> Optional[dict]:
        item = self.gen_table.item(row, 0)
        if item is None or not self.report:
            return None
        i = item.data(Qt.ItemDataRole.UserRole + 1)
        examples = self.report.get("examples") or []
        return examples[i] if isinstance(i, int) and 0 <= i < len(examples) else None

    def keeps(self, example: dict, rule: object) -> bool:
        """Does the filter ``rule`` (a filter combo's data) keep this golden item?"""
        if rule is None:
            return True
        headline = (self.report or {}).get("headline")
        if rule == "disagree":
            return disagreement(example, headline) > 0
        if rule == "leaked":
            return bool(example.get("leaked"))
        if rule == "clean":
            return not example.get("leaked")
        a, a_ok, b, b_ok = rule  # type: ignore[misc]
        scores = example.get("scores") or {}
        return right(headline, (scores.get(a) or {}).get(headline)) is a_ok and \
            right(headline, (scores.get(b) or {}).get(headline)) is b_ok

    @Slot()
    def _apply_filter(self, *_args) -> None:
        rule = self.filter_combo.currentData()
        shown = 0
        for row in range(self.gen_table.rowCount()):
            ex = self._example_of_row(row)
            keep = ex is not None and self.keeps(ex, rule)
            self.gen_table.setRowHidden(row, not keep)
            shown += keep
        total = self.gen_table.rowCount()
        self.shown_label.setText(f"{shown} of {total}" if total else "")

    def shown_indices(self) -> list[int]:
        """The golden items the table shows now (their record indices, in table order)."""
        out = []
        for row in range(self.gen_table.rowCount()):
            if not self.gen_table.isRowHidden(row):
                ex = self._example_of_row(row)
                if ex is not None:
                    out.append(int(ex.get("index", row)))
        return out

    @Slot(int, int)
    def _on_double_click(self, row: int, _col: int) -> None:
        ex = self._example_of_row(row)
        if ex is not None:
            self.example_activated.emit(ex)

    # -- pilot -------------------------------------------------------------------------------------
    def show_pilot(self, result: Optional[dict]) -> None:
        self.pilot_chart.show_pilot(result)
        lines = (result or {}).get("verdict") or []
        self.pilot_label.setText("<br>".join(f"<b>{html.escape(v)}</b>" for v in lines))


__all__ = ["EvalResults", "upgrade_report", "right", "disagreement", "LOSS_METRICS"]
