"""Reviewing in the Records tab: filters, selection and navigation, decisions, labels, notes,
edits, undo (a mixin of :class:`~ftcurate.gui.main_window.MainWindow`).

Decisions are quick single transactions that run in the GUI thread, saved before the call returns."""

from __future__ import annotations

import html
from bisect import bisect_right
from typing import Iterable, Optional

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QModelIndex, Qt, Slot
from PySide6.QtWidgets import QDialog, QInputDialog, QMessageBox, QWidget

from ..core.project.dismissals import dismiss, findings_of, says
from ..core.project.store import Project
from ..core.project.errors import DamagedRecord
from ..core.project.table import split_meta_query
from . import settings as appsettings
from . import tasks
from .record_editor import EditDialog
from .scan_view import findings_from_report
from .workers import Worker, describe_error

PAST = {"approve": "Approved", "reject": "Rejected", "reset": "Reset"}


class ReviewMixin:
    """Filters, selection, decisions, labels, notes, edits and undo of the Records tab."""

    def apply_filter(self) -> None:
        """Show the records matching the filter bar: status, split, finding, label, score
        (numpy masks over the record frame, milliseconds) and text (a worker)."""
        self.filter_bar.stop_timer()
        if self.project is None:
            return
        self._end_ranking()
        self._filter_gen += 1
        gen = self._filter_gen
        if self._search_worker is not None:
            self._search_worker.cancel()
            self._search_worker = None
        state = self.filter_bar.state()
        meta, text = split_meta_query(state["text"], getattr(self, "meta_keys_found", {}))
        state = dict(state, text=text, meta=meta)
        for key in meta:
            self.frame.load_meta(self.project, key)  # read once, then kept
        if not text:
            self._set_filtered_ids(self._frame_select(state), gen)
            return
        worker = Worker(tasks.search_ids, self.project, text, state["status"], state["split"], title="Searching",
                        parent=self)
        worker.finished.connect(lambda ids, g=gen, st=state: self._set_filtered_ids(self._frame_select(st, ids), g))
        worker.failed.connect(lambda message, details: self.report_error("Search failed", message, details))
        self._search_worker = worker
        worker.ended.connect(lambda w=worker: setattr(self, "_search_worker", None)
                             if self._search_worker is w else None)
        self._start(worker)

    def _frame_select(self, state: dict, only_ids=None):
        label_ids = self.project.ids_with_label(state["label"]) if state.get("label") else None
        return self.frame.select(status=state.get("status"), split=state.get("split"), flag=state.get("flag"),
                                 label_ids=label_ids, score_min=state.get("score_min"), only_ids=only_ids,
                                 meta=state.get("meta"))

    def _set_filtered_ids(self, ids, gen: int) -> None:
        if gen != self._filter_gen or self.project is None:
            return  # a newer filter has been asked for
        keep = self.current_id()
        self.model.set_ids(ids)
        self._update_filter_label()
        row = self.model.row_of(keep) if keep is not None else None
        if row is None and self.model.rowCount():
            row = 0
        if row is not None:
            self.select_row(row)
        else:
            self.detail.show_placeholder("No record matches the filter.")
            self.notes.set_record(None)
        self._state_timer.start()
        self.filter_applied.emit(len(ids))

    def clear_filters(self) -> None:
        ranked = self.model.sort_key[0] == "rank"
        if self.project is not None and (ranked or not self.filter_bar.is_default() or self.filter_bar.meaning.isChecked()):
            self.filter_bar.reset()
            self.apply_filter()

    def focus_search(self) -> None:
        if self.project is not None:
            self.tabs.setCurrentWidget(self.records_page)
            self.filter_bar.focus_search()

    def current_id(self) -> Optional[int]:
        if self.is_previewing():
            return None
        idx = self.table.currentIndex()
        return self.model.id_at(idx.row()) if idx.isValid() else None

    def selected_ids(self) -> list[int]:
        if self.is_previewing():
            return []
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        if not rows and self.table.currentIndex().isValid():
            rows = [self.table.currentIndex().row()]
        return [rid for rid in (self.model.id_at(r) for r in rows) if rid is not None]

    def select_row(self, row: int) -> None:
        model = self.table.model()
        if not 0 <= row < model.rowCount():
            return
        index = model.index(row, 0)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.table.selectionModel().setCurrentIndex(index, flags)
        self.table.scrollTo(index)

    def select_ids(self, ids: Iterable[int]) -> None:
        rows = sorted(r for r in (self.model.row_of(i) for i in ids) if r is not None)
        if not rows:
            return
        self.select_row(rows[0])
        if len(rows) > 1:
            sel = QItemSelection()
            last = self.model.columnCount() - 1
            for r in rows:
                sel.select(self.model.index(r, 0), self.model.index(r, last))
            self.table.selectionModel().select(sel, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def move_selection(self, delta: int) -> None:
        n = self.table.model().rowCount()
        if not n:
            return
        cur = self.table.currentIndex()
        row = cur.row() + delta if cur.isValid() else 0
        self.select_row(max(0, min(n - 1, row)))

    def next_unreviewed(self) -> None:
        if self.project is None or not self.model.rowCount():
            return
        todo = self.project.ids(status="unreviewed")
        cur = self.current_id()
        start = bisect_right(todo, cur) if cur is not None else 0
        for pos, wrapped in ((range(start, len(todo)), False), (range(0, start), True)):
            for i in pos:
                row = self.model.row_of(todo[i])
                if row is not None and todo[i] != cur:
                    self.select_row(row)
                    if wrapped:
                        self.statusBar().showMessage("Wrapped around to the top", 4000)
                    return
        self.statusBar().showMessage("No unreviewed record left in this view", 5000)

    @Slot(QModelIndex, QModelIndex)
    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.notes.commit()  # a note being typed belongs to the record it was typed for
        self._show_current()

    def _on_selection_changed(self, *_args) -> None:
        """More or fewer rows selected: the detail pane and the notes say how many."""
        if self.detail.selected != len(self.selected_ids()):
            self._show_current()

    def _show_current(self) -> None:
        if self.is_previewing():
            row = self.table.currentIndex().row()
            self.detail.show_placeholder("Importing… this is the record as it stands in the file:")
            self.detail.append(f"<pre>{html.escape(self.file_model.record_text(row))}</pre>")
            self.notes.set_record(None)
            return
        rid = self.current_id()
        if rid is None or self.project is None:
            self.detail.show_placeholder()
            self.notes.set_record(None)
            return
        try:
            sr = self.project.get(rid)
        except DamagedRecord as exc:
            self.detail.show_placeholder(f"{exc} `ftcurate stats` lists every damaged record.")
            self.notes.set_record(None)
            return
        except KeyError:
            self.detail.show_placeholder("This record is no longer in the project.")
            self.notes.set_record(None)
            return
        many = len(self.selected_ids())
        self.detail.show_record(sr, self.record_findings(rid), selected=many)
        self.notes.set_record(sr, many=many)
        self.act_restore.setEnabled(sr.is_edited)
        self._state_timer.start()

    def record_findings(self, record_id: int) -> list[tuple[str, str]]:
        """What the last scan found about one record: (kind, reason) pairs."""
        if not self.report:
            return []
        if self._findings_index is None:
            index: dict[int, list] = {}
            for f in findings_from_report(self.report, numbers=self._record_numbers(self.report)):
                index.setdefault(f.record_id, []).append((f.kind, f.detail))
            self._findings_index = index
        return self._findings_index.get(record_id, [])

    def show_record_id(self, record_id: int) -> None:
        """Select and show one record; clears the filters first when they hide it."""
        if self.project is None:
            return
        row = self.model.row_of(record_id)
        if row is None:
            self._reset_filters()
            row = self.model.row_of(record_id)
        if row is None:
            self.statusBar().showMessage("That record is no longer in the project", 5000)
            return
        self.select_row(row)
        if self.tabs.currentWidget() is not self.records_page:  # "open in Records" from another view
            self.tabs.setCurrentWidget(self.records_page)
            self.table.setFocus(Qt.FocusReason.OtherFocusReason)

    def _reset_filters(self) -> None:
        """All statuses, all splits, no search text: every record shown (at once, no worker)."""
        self.filter_bar.stop_timer()
        self._filter_gen += 1
        if self._search_worker is not None:
            self._search_worker.cancel()
            self._search_worker = None
        self._reset_filter_widgets()
        self.model.set_ids(self.frame.ids)
        self._update_filter_label()
        self.statusBar().showMessage("Filters cleared to show the record", 4000)

    def decide(self, action: str) -> None:
        """Approve / reject / reset the selected records; saved before this returns."""
        if self.project is None:
            return
        ids = self.selected_ids()
        if not ids:
            self.statusBar().showMessage("Select a record first", 4000)
            return
        self.ensure_reviewer()
        try:
            getattr(self.project, action)(ids)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            import traceback

            self.report_error("Could not save the decision", describe_error(exc), traceback.format_exc())
            return
        self._after_change(ids)
        n = len(ids)
        self.statusBar().showMessage(f"{PAST[action]} {n:,} record{'s' if n != 1 else ''} (saved)", 4000)
        if n == 1 and action != "reset" and self.act_advance.isChecked():
            self.move_selection(1)

    def _apply(self, what: str, call, ids: list) -> bool:
        """Run one store call (a saved decision); report a failure in a dialog."""
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - shown to the user
            import traceback

            self.report_error(f"Could not save the {what}", describe_error(exc), traceback.format_exc())
            return False
        self._after_change(ids)
        return True

    def _confirm(self, title: str, text: str) -> bool:
        """Ask before a bulk change (always yes when not interactive: tests, screenshots)."""
        if not self.interactive:
            return True
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                      QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def shown_ids(self) -> list[int]:
        return [int(i) for i in self.model.ids()]

    def decide_shown(self, action: str) -> None:
        """Approve or reject every record the filter shows, after asking: one undo step."""
        if self.project is None:
            return
        ids = self.shown_ids()
        if not ids:
            self.statusBar().showMessage("No record is shown", 4000)
            return
        self.ensure_reviewer()
        verb = {"approve": "Approve", "reject": "Reject"}[action]
        filtered = self.model.rowCount() != self.project.count()
        scope = "every record the current filter shows" if filtered else "every record in the project"
        if not self._confirm(f"{verb} {len(ids):,} records?",
                             f"{verb} {scope} ({len(ids):,} records)?\n\nThis is one step: Ctrl+Z undoes it."):
            return
        if self._apply("decision", lambda: getattr(self.project, action)(ids), ids):
            self.statusBar().showMessage(f"{PAST[action]} {len(ids):,} records (saved; Ctrl+Z undoes)", 6000)

    def label_shown(self) -> None:
        """Add one label to every record the filter shows (one undo step)."""
        if self.project is None or not self.model.rowCount():
            return
        ids = self.shown_ids()
        label = self.ask_text("Label all shown", f"Label to add to the {len(ids):,} records shown:")
        if not label or not label.strip():
            return
        if self._apply("labels", lambda: self.project.add_label(ids, label.strip()), ids):
            self._refresh_labels()
            self.statusBar().showMessage(f"Labelled {len(ids):,} records '{label.strip()}' (saved)", 6000)

    def ask_text(self, title: str, prompt: str, text: str = "") -> Optional[str]:
        """A one-line question (tests replace it: offscreen there is nobody to answer)."""
        answer, ok = QInputDialog.getText(self, title, prompt, text=text)
        return answer if ok else None

    def reviewer_name(self) -> str:
        return appsettings.reviewer_name(self.settings)

    def ask_reviewer_name(self) -> None:
        current = self.reviewer_name() or (self.project.reviewer if self.project is not None else "") or ""
        name = self.ask_text("Reviewer name", "Your name in the decision log of every project you open:", current)
        if name is not None:
            self.set_reviewer_name(name)

    def ensure_reviewer(self) -> None:
        """Before the first decision with no reviewer name, ask for it once (remembered; a
        cancelled question is not asked again): the decision log's reviewer column is empty
        otherwise."""
        if not self.ask_reviewer_first or self.project is None:
            return
        if self.reviewer_name() or self.project.reviewer:
            return
        if self.settings.value("review/name_asked", False) in (True, "true", "1", 1):
            return
        self.settings.setValue("review/name_asked", True)
        name = self.ask_text("Your name", "Your name for the decision log (who decided what; remembered, "
                             "and changeable in Edit ▸ Reviewer name…):", "")
        if name and name.strip():
            self.set_reviewer_name(name)

    def set_reviewer_name(self, name: str) -> None:
        """Remember the name and log the open project's next decisions under it."""
        appsettings.set_reviewer_name(name, self.settings)
        if self.project is not None:
            self._apply_reviewer(self.project)
        self._update_counts()

    def _apply_reviewer(self, project: Project) -> None:
        """Decisions made from here on carry the remembered name (a project imported with a
        reviewer keeps that one until a name is set in the app)."""
        name = self.reviewer_name()
        if name and project.reviewer != name:
            try:
                project.reviewer = name
            except Exception:  # noqa: BLE001 - a read-only project: its decisions cannot change anyway
                pass

    def set_labels(self, labels: list) -> None:
        """Give the selected records these labels (from the notes panel)."""
        ids = self.selected_ids()
        if self.project is None or not ids:
            return
        self.ensure_reviewer()
        if self._apply("labels", lambda: self.project.set_labels(ids, labels), ids):
            self._refresh_labels()
            self.statusBar().showMessage(f"Labels saved for {len(ids):,} record{'s' if len(ids) != 1 else ''}", 4000)

    def set_note(self, record_id: int, note: str) -> None:
        if self.project is None:
            return
        self.ensure_reviewer()
        if self._apply("note", lambda: self.project.set_note(record_id, note), [record_id]):
            self.statusBar().showMessage("Note saved", 3000)

    def focus_labels(self) -> None:
        if self.project is not None and self.current_id() is not None:
            self.tabs.setCurrentWidget(self.records_page)
            self.notes.labels.setFocus()
            self.notes.labels.selectAll()

    def _refresh_labels(self) -> None:
        """Labels in use, and the label set's labels even before any record has them."""
        labels = self.project.all_labels() if self.project is not None else {}
        for d in getattr(self, "label_defs", []):
            labels.setdefault(d.name, 0)
        labels = dict(sorted(labels.items()))
        self.filter_bar.set_labels(labels)
        self.notes.set_known_labels(labels)
        self.frame_labels_changed()

    def frame_labels_changed(self) -> None:
        """The Labels column shows or hides with the labels in use."""
        self.table.update_empty_columns()

    def edit_current(self) -> None:
        """Edit the current record in a dialog; the checked result is saved as an edit."""
        rid = self.current_id()
        if self.project is None or rid is None:
            return
        if len(self.selected_ids()) > 1:
            self.statusBar().showMessage("Edits are for one record at a time: select a single record to edit it",
                                         5000)
            return
        dialog = EditDialog(self.project.get(rid), self)
        self.edit_dialog = dialog  # tests drive it
        if not self.interactive:
            dialog.setModal(False)
            dialog.accepted.connect(lambda: self._save_edit(rid, dialog))
            dialog.show()
            return
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self._save_edit(rid, dialog)

    def _save_edit(self, rid: int, dialog: "EditDialog") -> None:
        record = dialog.record()
        if record is None or dialog.unchanged():
            self.statusBar().showMessage("Nothing changed", 3000)
            return
        self.ensure_reviewer()
        if self._apply("edit", lambda: self.project.edit(rid, record), [rid]):
            self.statusBar().showMessage("Edit saved; the original is kept (Restore original brings it back)", 6000)

    def restore_current(self) -> None:
        rid = self.current_id()
        if self.project is None or rid is None or not self.project.get(rid).is_edited:
            return
        if self._apply("restore", lambda: self.project.restore_original(rid), [rid]):
            self.statusBar().showMessage("Original restored (Ctrl+Z undoes)", 5000)

    def undo(self) -> None:
        self._undo_redo(True)

    def redo(self) -> None:
        self._undo_redo(False)

    def _undo_redo(self, undo: bool) -> None:
        if self.project is None:
            return
        info = self.project.peek_undo() if undo else self.project.peek_redo()
        try:
            ids = self.project.undo() if undo else self.project.redo()
        except Exception as exc:  # noqa: BLE001
            import traceback

            self.report_error("Could not undo" if undo else "Could not redo", describe_error(exc),
                              traceback.format_exc())
            return
        if ids is None:
            self.statusBar().showMessage("Nothing to undo" if undo else "Nothing to redo", 4000)
            return
        self._after_change(ids, dismissal=(info or {}).get("action") == "dismiss")
        self._refresh_labels()
        self.select_ids(ids)
        what = (info or {}).get("action", "decision").replace("_", " ")
        self.statusBar().showMessage(
            f"{'Undid' if undo else 'Redid'} {what} of {len(ids):,} record{'s' if len(ids) != 1 else ''}", 4000)

    def _after_change(self, ids: list, source: Optional[QWidget] = None, dismissal: Optional[bool] = None) -> None:
        """The store changed these records: repaint the table, counts and the other views.
        A dismissed finding (``dismissal``; by default: the last decision was one) changes
        the report everyone shows."""
        self.model.refresh(ids)
        self._update_counts()
        self._update_enabled()
        if dismissal is None:
            dismissal = (self.project.peek_undo() or {}).get("action") == "dismiss" if self.project else False
        if dismissal:
            self.reapply_dismissals()  # the views, flags and findings without it
        elif self.current_id() in ids:
            self._show_current()
        if not dismissal:
            for view in self.views.values():
                if view is not source:
                    view.refresh(list(ids))
        self.records_changed.emit(list(ids))

    def dismiss_current_finding(self) -> None:
        """Dismiss one finding of the current record as wrong ("not a duplicate of 12",
        "not an outlier", ...), with an optional reason: a decision (Ctrl+Z undoes it) that a
        rescan keeps."""
        rid = self.current_id()
        if self.project is None or rid is None:
            return
        found = findings_of(self.report, rid)
        if not found:
            self.statusBar().showMessage("The last scan found nothing about this record to dismiss", 4000)
            return
        numbers = self._record_numbers(self.report)
        labels = []
        for f in found:
            other = f" {numbers.get(f['other'], '?')}" if f["other"] is not None else ""
            what = f["what"] + (" of" if f["kind"] == "duplicate" else "") + other
            labels.append(f"{says(f['kind']).capitalize()} — {what}")
        choice = self.ask_choice("Dismiss a finding", "Which finding of this record is wrong?", labels)
        if choice is None:
            return
        finding = found[labels.index(choice)]
        reason = self.ask_text("Why (optional)", "Why is it wrong? (kept in the decision log)") or ""
        self.ensure_reviewer()
        if self._apply("dismissal", lambda: dismiss(self.project, rid, finding, reason), [rid, *(
                [finding["other"]] if finding["other"] is not None else [])]):
            self.statusBar().showMessage(f"Dismissed: {choice} (saved; Ctrl+Z undoes)", 5000)

    def ask_choice(self, title: str, prompt: str, items: list[str]) -> Optional[str]:
        """Pick one of ``items`` (tests replace it: offscreen there is nobody to answer)."""
        item, ok = QInputDialog.getItem(self, title, prompt, items, 0, False)
        return item if ok else None

    def _reset_filter_widgets(self) -> None:
        """Every filter back to "all", search box empty, without firing the filter."""
        self.filter_bar.reset()

    def _update_filter_label(self) -> None:
        if self.project is None:
            self.count_label.setText("")
            return
        shown = self.model.rowCount()
        total = self.project.count()
        self.count_label.setText(f"{shown:,} records" if shown == total else f"{shown:,} of {total:,} records")
