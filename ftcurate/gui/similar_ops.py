"""Find records by meaning from the Records tab (a mixin of
:class:`~ftcurate.gui.main_window.MainWindow`): S lists the records nearest in meaning to the
current one; "≈ by meaning" in the filter bar searches by meaning instead of by words. The
work is :mod:`ftcurate.core.quality.similar`, in a worker."""

from __future__ import annotations

from PySide6.QtCore import Qt

from ..core.quality.similar import Similar, search_by_meaning, similar_to_record
from .workers import Worker


class SimilarMixin:
    """Nearest records by meaning, shown in the table nearest first."""

    def _build_similar(self) -> None:
        a = self._action
        self.act_similar = a("Find &similar", self.find_similar, ["S"],
                             "List the records nearest in meaning to this one, nearest first "
                             "(Ctrl+Shift+F shows every record again)")
        self.act_meaning = a("Search by &meaning…", self.focus_meaning_search, ["Ctrl+Shift+M"],
                             "Type what you look for; Enter lists the records nearest in meaning")
        self.filter_bar.meaning_requested.connect(self.search_meaning)
        # a click on a column sorts by it again: the nearest-first order ends, the arrow shows
        self.table.horizontalHeader().sectionClicked.connect(
            lambda _c: self.table.horizontalHeader().setSortIndicatorShown(True))
        self._similar_worker = None

    def find_similar(self) -> None:
        rid = self.current_id()
        if self.project is None or rid is None:
            return
        self._run_similar(similar_to_record, rid, f"Finding records like record {self.project.get(rid).index}")

    def focus_meaning_search(self) -> None:
        if self.project is None:
            return
        self.tabs.setCurrentWidget(self.records_page)
        self.filter_bar.set_meaning_mode(True)
        self.filter_bar.focus_search()

    def search_meaning(self, text: str) -> None:
        if self.project is not None and text.strip():
            self._run_similar(search_by_meaning, text, "Searching by meaning")

    def _run_similar(self, fn, arg, title: str) -> None:
        if self._similar_worker is not None:
            self._similar_worker.cancel()
        worker = Worker(fn, self.project, arg, title=title, parent=self, heavy=True)
        worker.finished.connect(self._show_similar)
        worker.failed.connect(lambda message, details: self.report_error("Search failed", message, details))
        worker.ended.connect(lambda w=worker: setattr(self, "_similar_worker", None)
                             if self._similar_worker is w else None)
        self._similar_worker = worker
        self._start(worker)

    def _show_similar(self, found: Similar) -> None:
        if self.project is None or self.project.closed:
            return
        self.tabs.setCurrentWidget(self.records_page)
        self._filter_gen += 1  # a pending text search must not replace this list
        self.model.set_ranked(found.ids.tolist(), found.scores.tolist())
        self.table.horizontalHeader().setSortIndicatorShown(False)
        n = self.model.rowCount()
        what = found.query if found.query.startswith("record ") else f"“{found.query}”"
        self.count_label.setText(f"{n:,} nearest to {what}")
        self.count_label.setToolTip("Nearest in meaning first. Ctrl+Shift+F or a click on a column header "
                                    "shows the records as before.")
        if n:
            self.select_row(0)
        self.table.setFocus(Qt.FocusReason.OtherFocusReason)
        self.statusBar().showMessage(f"{n:,} records nearest in meaning to {what} (nearest first)", 6000)
        self.similar_shown.emit(n)

    def _end_ranking(self) -> None:
        """Leave the nearest-first list (a filter, a sort or Clear filters asked for another)."""
        if self.model.sort_key[0] == "rank":
            self.model.sort_key = ("id", False)
            self.table.horizontalHeader().setSortIndicatorShown(True)
            self.table.horizontalHeader().setSortIndicator(0, Qt.SortOrder.AscendingOrder)
            self.count_label.setToolTip("")
