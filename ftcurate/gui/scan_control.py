"""The quality scan from the main window: run it in a worker, show results as each scanner
finishes (a mixin of :class:`~ftcurate.gui.main_window.MainWindow`)."""

from __future__ import annotations

import gc
from typing import Optional

from PySide6.QtCore import Qt, Slot

from ..core.quality.scan import scan_project
from ..core.project.store import Project
from ..core.project.dismissals import apply_dismissals
from ..core.project.numbering import report_record_ids
from .scan_view import scan_summary
from .workers import Worker

def _scan_and_settle(project, progress=None, cancel=None, **kwargs):
    """The quality scan (in a ``heavy`` worker: torch & co. are imported first with the
    garbage collector paused), then move what it loaded (models: ~600k objects) out of the
    collector's reach: a full collection over them holds the GIL for ~0.4 s and freezes the
    GUI (see benchmarks/bench_gui.py)."""
    report = scan_project(project, progress=progress, cancel=cancel, **kwargs)
    gc.collect()
    gc.freeze()
    return report


class ScanMixin:
    """Runs the quality scan and shows its report in the table, the views and the Findings dock."""

    def is_scanning(self) -> bool:
        return self._scan_worker is not None and self._scan_worker.is_running()

    def run_scan(self) -> None:
        """Run the quality scan of the open project in a worker; the report fills the Findings dock."""
        if self.project is None or self.is_scanning():
            return
        project = self.project
        if self.scan_settings is None:
            from .dialogs import load_scan_settings

            self.scan_settings = load_scan_settings(self.settings)
        worker = Worker(_scan_and_settle, project, settings=self.scan_settings, title="Scanning", parent=self,
                        event_kw="on_result", heavy=True)
        partial: dict = {"index": "record_id"}
        worker.event.connect(lambda item, p=project, d=partial: self._on_scan_partial(p, d, item))
        worker.finished.connect(lambda report, p=project: self._on_scan_finished(p, report))
        worker.failed.connect(self._on_scan_failed)
        worker.cancelled.connect(self._on_scan_cancelled)
        worker.ended.connect(lambda w=worker: self._on_scan_ended(w))
        self._scan_worker = worker
        self._start(worker)
        self._update_enabled()

    def _on_scan_partial(self, project: Project, partial: dict, item) -> None:
        """A scanner finished: show its results at once (the full report follows)."""
        if project is not self.project or not isinstance(item, tuple) or len(item) != 2:
            return
        section, value = item
        partial[section] = value
        if section in ("flags", "exact_duplicates", "near_duplicate_clusters", "outliers", "leakage"):
            self._set_report(dict(partial))
            self.statusBar().showMessage(f"Scan: {section.replace('_', ' ')} done", 3000)

    def _on_scan_finished(self, project: Project, report: dict) -> None:
        if project is not self.project:
            return  # the project was closed meanwhile
        self._set_report(report)
        self._show_report(report)
        self.findings_dock.raise_()
        self.resizeDocks([self.findings_dock], [max(self.findings_dock.height(), 240)], Qt.Orientation.Vertical)
        self.statusBar().showMessage(scan_summary(report, short=True), 30000)
        self.scan_finished.emit(report)

    @Slot(str, str)
    def _on_scan_failed(self, message: str, details: str) -> None:
        self.report_error("Scan failed", message, details)
        self.scan_failed.emit(message, details)

    @Slot()
    def _on_scan_cancelled(self) -> None:
        self.statusBar().showMessage("Scan cancelled", 5000)
        self.scan_cancelled.emit()

    def _on_scan_ended(self, worker: Worker) -> None:
        if self._scan_worker is worker:
            self._scan_worker = None
        self._update_enabled()

    def _record_numbers(self, report: Optional[dict]) -> dict:
        """Record id -> the number people see and ``decide`` takes (its index in its file),
        for the records the report names; cached until the next report."""
        if self.project is None or not report:
            return {}
        if self._numbers is None:
            ids = sorted(report_record_ids(report))
            self._numbers = self.frame.numbers(ids)
        return self._numbers

    def _set_report(self, report: Optional[dict]) -> None:
        """A new scan report (as scanned): table flags and scores, filter choices, views and
        detail pane show it with the reviewers' dismissals applied."""
        self._raw_report = report
        if self.project is not None and not self.project.closed:
            report = apply_dismissals(self.project, report)
        self.report = report
        self._findings_index = None
        self._numbers = None
        self.frame.apply_report(report)
        self.filter_bar.set_flag_counts(self.frame.flag_counts())
        self.model.refresh_all()
        self.table.update_empty_columns()
        for view in self.views.values():
            view.set_report(report)
        self._show_current()

    def _show_report(self, report: Optional[dict], show_dock: bool = True) -> None:
        self.findings.set_report(report, has_project=self.project is not None, numbers=self._record_numbers(report))
        self.findings_dock.setWindowTitle(f"Findings ({self.findings_model.total():,})" if report else "Findings")
        if show_dock:
            self._set_dock(self.findings_dock, True)

    def reapply_dismissals(self) -> None:
        """A finding was dismissed (or a dismissal undone): show the report again without it."""
        self._set_report(self._raw_report)
        self._show_report(self.report, show_dock=False)

    def _show_stored_scan(self, project: Project) -> None:
        report = self.report
        problems = self.problems_model.rowCount() > 0
        self._show_report(report if isinstance(report, dict) else None)
        if report or not problems:
            self.findings_dock.raise_()
        else:
            self.problems_dock.raise_()
        if not problems:
            self.resizeDocks([self.findings_dock], [200], Qt.Orientation.Vertical)
