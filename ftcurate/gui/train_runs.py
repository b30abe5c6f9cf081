"""The Charts tab of the training window: the live charts (loss with validation loss,
learning rate, throughput, GPU memory) and the list of past runs, whose loss curves can be
overlaid and whose settings can fill the form.

:class:`RunsPanel` only shows things: which runs exist, and what the run folder's
``metrics.jsonl`` or the live events say. The training view decides what to list and when.
"""

from __future__ import annotations

import os
from typing import Iterable, Optional

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (QAbstractItemView, QGridLayout, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QPushButton, QVBoxLayout, QWidget)

from ..train.evaluate import REPORT_FILE
from ..train.runner import last_checkpoint, read_metrics
from .charts import COLORS, CompactAxis, LossChart, MetricChart, ScientificAxis, loss_curves
from .theme import muted_label
from .train_common import GIB, has_adapter


CPU_NOTE = "Nothing to show: this run trains on the CPU, which has no GPU memory to measure."
CPU_IDLE_NOTE = "No GPU found: training runs on the CPU, so there is no GPU memory to chart."
MPS_NOTE = "Nothing to show: GPU memory is not measured on Apple GPUs (MPS)."


def run_outcome(events: list[dict]) -> str:
    """How a run ended, from its metric events: "finished", "stopped" (Stop: adapter saved
    early), "early stop" (the validation loss stopped improving), "failed" (a process of a
    multi-process run failed: ftcurate.train.launch) or "" (no end: running, cancelled or
    crashed)."""
    end = next((e for e in reversed(events) if e.get("type") in ("end", "failed")), None)
    if end is None:
        return ""
    if end.get("type") == "failed":
        return "failed"
    if end.get("stopped"):
        return "stopped"
    if end.get("early_stopped"):
        return "early stop"
    return "finished"


def run_device(events: list[dict]) -> str:
    """The device a run trained on ("" when its events do not say)."""
    for e in events:
        if e.get("type") == "start" and e.get("device"):
            return str(e["device"])
    return ""


class RunsPanel(QWidget):
    """Charts on the left, past runs on the right."""

    selected_run_changed = Signal()
    refresh_requested = Signal()  # the Refresh button: the view lists the run folders again
    use_settings_requested = Signal()  # the "Use settings" button

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.default_device = ""  # the machine's training device, once detected
        self._device = ""  # the device of the run the small charts show ("" unknown)
        h = QHBoxLayout(self)
        h.setContentsMargins(4, 4, 4, 4)
        grid = QGridLayout()
        grid.setSpacing(6)
        self.loss_chart = LossChart("Loss")
        self.lr_chart = MetricChart("Learning rate", left_axis=ScientificAxis("left"), short_title="LR")
        self.lr_chart.add_series("lr", COLORS[3])
        self.throughput_chart = MetricChart("Throughput", "tokens/s", left_axis=CompactAxis("left"),
                                            short_title="Speed")
        self.throughput_chart.add_series("tokens_per_second", COLORS[2])
        self.memory_chart = MetricChart("GPU memory", "GiB", short_title="GPU")
        self.memory_chart.add_series("gpu_memory", COLORS[4])
        grid.addWidget(self.loss_chart, 0, 0, 1, 3)
        grid.addWidget(self.lr_chart, 1, 0)
        grid.addWidget(self.throughput_chart, 1, 1)
        grid.addWidget(self.memory_chart, 1, 2)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(1, 2)
        h.addLayout(grid, 1)

        side = QVBoxLayout()
        side.addWidget(QLabel("<b>Past runs</b>"))
        hint = muted_label("Tick runs to overlay their loss curves.")
        side.addWidget(hint)
        self.runs_list = QListWidget()
        self.runs_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.runs_list.itemChanged.connect(self._on_run_item_changed)
        self.runs_list.currentItemChanged.connect(self._on_current_changed)
        side.addWidget(self.runs_list, 1)
        row = QHBoxLayout()
        self.refresh_runs_button = QPushButton("Refresh")
        self.refresh_runs_button.setToolTip("Look for run folders again")
        self.refresh_runs_button.clicked.connect(self.refresh_requested)
        self.use_settings_button = QPushButton("Use settings")
        self.use_settings_button.setToolTip("Fill the settings form with the selected run's run_config.json")
        self.use_settings_button.clicked.connect(self.use_settings_requested)
        row.addWidget(self.refresh_runs_button)
        row.addWidget(self.use_settings_button)
        side.addLayout(row)
        side_w = QWidget()
        side_w.setLayout(side)
        side.setContentsMargins(0, 0, 0, 0)
        side_w.setFixedWidth(190)
        h.addWidget(side_w)

    # -- the runs list --------------------------------------------------------------------------
    def set_runs(self, runs: Iterable[str], select: Optional[str] = None) -> None:
        """List these run folders, keeping ticks and the selection (``select`` wins)."""
        checked = set(self.checked_runs())
        current = select or self.selected_run()
        self.runs_list.blockSignals(True)
        try:
            self.runs_list.clear()
            for path in runs:
                name = os.path.basename(path)
                tags = []
                outcome = run_outcome(read_metrics(path))
                if outcome:
                    tags.append(outcome)
                if has_adapter(path):
                    tags.append("adapter")
                if os.path.isfile(os.path.join(path, REPORT_FILE)):
                    tags.append("evaluated")
                item = QListWidgetItem(name + (f"  ({', '.join(tags)})" if tags else ""))
                item.setData(Qt.ItemDataRole.UserRole, path)
                item.setToolTip(path)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if path in checked else Qt.CheckState.Unchecked)
                self.runs_list.addItem(item)
                if path == current:
                    self.runs_list.setCurrentItem(item)
        finally:
            self.runs_list.blockSignals(False)
        # overlays of runs that are gone go too; ticked ones are re-read (a run may have grown)
        self.set_overlays(self.checked_runs())
        self.use_settings_button.setEnabled(bool(self.selected_run()))
        self.selected_run_changed.emit()

    def run_paths(self) -> list[str]:
        return [self.runs_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.runs_list.count())]

    def checked_runs(self) -> list[str]:
        return [self.runs_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.runs_list.count())
                if self.runs_list.item(i).checkState() == Qt.CheckState.Checked]

    def selected_run(self) -> Optional[str]:
        item = self.runs_list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def select_run(self, path: str) -> None:
        for i in range(self.runs_list.count()):
            if self.runs_list.item(i).data(Qt.ItemDataRole.UserRole) == path:
                self.runs_list.setCurrentRow(i)
                return

    def set_run_checked(self, path: str, checked: bool = True) -> None:
        """Tick a run in the list: its loss curves are overlaid on the loss chart."""
        for i in range(self.runs_list.count()):
            item = self.runs_list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == path:
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def set_overlays(self, run_dirs: list[str]) -> None:
        """Overlay exactly these runs' curves (read from their metrics.jsonl)."""
        labels = {os.path.basename(p): p for p in run_dirs}
        for label in self.loss_chart.overlays():
            if label not in labels:
                self.loss_chart.remove_overlay(label)
        for label, path in labels.items():
            train, evals = loss_curves(read_metrics(path))
            self.loss_chart.add_overlay(label, train, evals)

    @Slot(QListWidgetItem)
    def _on_run_item_changed(self, _item: QListWidgetItem) -> None:
        self.set_overlays(self.checked_runs())

    @Slot()
    def _on_current_changed(self, *_args) -> None:
        self.use_settings_button.setEnabled(bool(self.selected_run()))
        self.selected_run_changed.emit()

    # -- the charts ------------------------------------------------------------------------------
    def reset_live(self) -> None:
        """Empty charts for a new run (overlays of past runs stay)."""
        self.loss_chart.clear_live()
        for chart in (self.lr_chart, self.throughput_chart, self.memory_chart):
            chart.clear_data()
        self._device = ""
        self._sync_memory_note()

    def set_default_device(self, device: str) -> None:
        """The machine's training device ("cuda", "mps", "cpu"; "" while unknown)."""
        if device != self.default_device:
            self.default_device = device or ""
            self._sync_memory_note()

    def _sync_memory_note(self) -> None:
        """The GPU memory chart says why it is empty rather than stay blank."""
        has_points = bool(self.memory_chart.raw("gpu_memory")[0])
        device = self._device or self.default_device
        note = ""
        if not has_points:
            if self._device == "cpu":
                note = CPU_NOTE
            elif self._device == "mps":
                note = MPS_NOTE
            elif not self._device and device == "cpu":
                note = CPU_IDLE_NOTE
        self.memory_chart.set_note(note)

    def load_live_history(self, run_dir: str) -> None:
        """Plot what a resumed run logged up to its newest checkpoint (the runner logs the
        steps after it again)."""
        ckpt = last_checkpoint(run_dir)
        upto = int(os.path.basename(ckpt).split("-")[-1]) if ckpt else 0
        for event in read_metrics(run_dir):
            if int(event.get("step") or 0) <= upto:
                self.plot_event(event)
        self.loss_chart.redraw()

    def show_run_details(self, run: Optional[str]) -> None:
        """The small charts (learning rate, throughput, memory) of a past run (its loss
        curves are the ticked overlays)."""
        charts = (self.lr_chart, self.throughput_chart, self.memory_chart)
        for chart in charts:
            chart.clear_data()
        self._device = ""
        if run:
            for event in read_metrics(run):
                self.plot_event(event, loss=False)
        for chart in charts:
            chart.redraw()
        self._sync_memory_note()

    def plot_event(self, e: dict, loss: bool = True) -> None:
        """One metrics event onto the charts (``loss=False``: the small charts only)."""
        kind = e.get("type")
        if kind == "start" and e.get("device"):
            self._device = str(e["device"])
            self._sync_memory_note()
        step = e.get("step")
        if step is None:
            return
        if "loss" in e and kind in (None, "train"):
            if loss:
                self.loss_chart.add_train_loss(step, e.get("loss"))
            if e.get("learning_rate") is not None:
                self.lr_chart.add_point("lr", step, e["learning_rate"])
            if e.get("tokens_per_second") is not None:
                self.throughput_chart.add_point("tokens_per_second", step, e["tokens_per_second"])
        elif "eval_loss" in e and kind in (None, "eval") and loss:
            self.loss_chart.add_eval_loss(step, e.get("eval_loss"))
        if e.get("gpu_memory_bytes"):
            if not self.memory_chart.raw("gpu_memory")[0]:
                self.memory_chart.set_note("")
            self.memory_chart.add_point("gpu_memory", step, e["gpu_memory_bytes"] / GIB)
