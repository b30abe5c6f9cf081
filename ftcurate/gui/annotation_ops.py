"""The main window's annotation setup (a mixin of :class:`~ftcurate.gui.main_window.MainWindow`):
the project's label set with one key per label, the guidelines panel, and saved views.

What is stored, and its checks, is :mod:`ftcurate.core.project.annotation`; this module
only shows it and turns keys and menu picks into calls.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDockWidget, QInputDialog, QMenu, QTextBrowser

from ..core.project import annotation as ann
from .annotation_dialogs import GuidelinesDialog, LabelSetDialog
from .keys import key_shortcut
from .workers import describe_error

NO_GUIDELINES = ("*No guidelines yet.* Write how this project is reviewed — what to approve, what to reject, "
                 "what each label means — with **Edit ▸ Guidelines…**.")


class AnnotationMixin:
    """Label set keys, the guidelines panel and saved views."""

    def _build_annotation(self) -> None:
        a = self._action
        self.act_label_set = a("Label &set…", self.edit_label_set, [],
                               "The project's labels: name, colour and the key that toggles each")
        self.act_edit_guidelines = a("&Guidelines…", self.edit_guidelines, [],
                                     "Write the project's review guidelines (Markdown)")
        self.act_save_view = a("&Save current view…", self.save_current_view, ["Ctrl+Shift+V"],
                               "Name the current filter and sort, to recall them later (kept in the project)")
        self.act_delete_view = a("&Delete a saved view…", self.delete_saved_view, [], "Forget a saved view")
        self.labels_menu = QMenu("&Toggle label", self)
        self.saved_views_menu = QMenu("Saved &views", self)
        self.saved_views_menu.aboutToShow.connect(self._fill_saved_views_menu)
        self._label_actions: list[QAction] = []
        self._label_shortcuts: list = []
        self.label_defs: list[ann.LabelDef] = []

        self.guidelines_view = QTextBrowser()
        self.guidelines_view.setObjectName("GuidelinesView")
        self.guidelines_view.setOpenExternalLinks(True)
        dock = QDockWidget("Guidelines", self)
        dock.setObjectName("GuidelinesDock")
        dock.setWidget(self.guidelines_view)
        dock.setAllowedAreas(Qt.DockWidgetArea.RightDockWidgetArea | Qt.DockWidgetArea.LeftDockWidgetArea
                             | Qt.DockWidgetArea.BottomDockWidgetArea)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        dock.hide()
        self.guidelines_dock = dock
        toggle = dock.toggleViewAction()
        toggle.setShortcut(QKeySequence("F2"))
        toggle.setText("&Guidelines")
        toggle.setProperty("help", "Show or hide the guidelines beside the record")
        self.act_show_guidelines = toggle

    def _annotation_menus(self, edit_menu: QMenu, review_menu: QMenu, view_menu: QMenu) -> None:
        edit_menu.addAction(self.act_label_set)
        edit_menu.addAction(self.act_edit_guidelines)
        review_menu.addSeparator()
        review_menu.addMenu(self.labels_menu)
        view_menu.addAction(self.act_show_guidelines)
        view_menu.addMenu(self.columns_menu)
        view_menu.addMenu(self.saved_views_menu)

    def annotation_actions(self) -> list[QAction]:
        """For the shortcut sheet."""
        return [*self._label_actions, self.act_show_guidelines, self.act_save_view]

    # -- project ---------------------------------------------------------------------------------
    def _refresh_annotation(self) -> None:
        """The open project's label set, guidelines and saved views (or none)."""
        project = self.project
        self.label_defs = ann.label_set(project) if project is not None else []
        self._rebuild_label_keys()
        text = ann.guidelines(project) if project is not None else ""
        self.guidelines_view.setMarkdown(text or NO_GUIDELINES)
        self.model.set_label_colors({d.name: d.color for d in self.label_defs})
        self._shortcuts_dialog = None  # rebuilt with the new keys and guidelines
        for act in (self.act_label_set, self.act_edit_guidelines, self.act_save_view, self.act_delete_view):
            act.setEnabled(project is not None)

    def _rebuild_label_keys(self) -> None:
        for sc in self._label_shortcuts:
            sc.setEnabled(False)
            sc.setParent(None)
        for act in self._label_actions:
            self.removeAction(act)
            act.deleteLater()
        self._label_shortcuts, self._label_actions = [], []
        self.labels_menu.clear()
        for d in self.label_defs:
            act = QAction(d.name, self)
            act.setProperty("help", f"Toggle the label '{d.name}' on the selected records")
            act.setToolTip(f"Give the selected records the label '{d.name}', or take it away when they all have it")
            act.triggered.connect(lambda _c=False, name=d.name: self.toggle_label(name))
            self.addAction(act)
            if d.key:
                self._label_shortcuts += key_shortcut(self, act, [QKeySequence(d.key)], self._key_blocked)
            self.labels_menu.addAction(act)
            self._label_actions.append(act)
        self.labels_menu.setEnabled(bool(self._label_actions))
        if not self._label_actions:
            empty = self.labels_menu.addAction("No label set: Edit ▸ Label set…")
            empty.setEnabled(False)
        self._update_enabled()

    # -- labels ---------------------------------------------------------------------------------
    def toggle_label(self, name: str) -> None:
        """Give the selected records ``name``, or take it from them when they all carry it
        (one undo step)."""
        ids = self.selected_ids()
        if self.project is None or not ids:
            return
        self.ensure_reviewer()
        have = set(self.project.ids_with_label(name))
        remove = all(i in have for i in ids)
        call = (lambda: self.project.remove_label(ids, name)) if remove else (lambda: self.project.add_label(ids, name))
        if self._apply("labels", call, ids):
            self._refresh_labels()
            n = len(ids)
            self.statusBar().showMessage(
                f"{'Took' if remove else 'Gave'} the label '{name}' {'from' if remove else 'to'} {n:,} "
                f"record{'s' if n != 1 else ''} (saved; Ctrl+Z undoes)", 5000)

    def edit_label_set(self) -> None:
        if self.project is None:
            return
        dialog = LabelSetDialog(self.label_defs, self.project.all_labels(), self)
        self.label_set_dialog = dialog  # tests drive it

        def save() -> None:
            try:
                ann.set_label_set(self.project, dialog.label_defs())
            except Exception as exc:  # noqa: BLE001 - shown to the user
                self.report_error("Could not save the label set", describe_error(exc))
                return
            self._refresh_annotation()
            self._refresh_labels()
            self.statusBar().showMessage("Label set saved", 4000)

        self._open_dialog(dialog, save)

    # -- guidelines -------------------------------------------------------------------------------
    def edit_guidelines(self) -> None:
        if self.project is None:
            return
        dialog = GuidelinesDialog(ann.guidelines(self.project), self)
        self.guidelines_dialog = dialog  # tests drive it

        def save() -> None:
            try:
                ann.set_guidelines(self.project, dialog.text())
            except Exception as exc:  # noqa: BLE001
                self.report_error("Could not save the guidelines", describe_error(exc))
                return
            self._refresh_annotation()
            self.guidelines_dock.show()
            self.statusBar().showMessage("Guidelines saved", 4000)

        self._open_dialog(dialog, save)

    def _open_dialog(self, dialog: QDialog, on_accept) -> None:
        """Modal when interactive; in tests and screenshots the dialog stays open to be
        driven with keys, and ``on_accept`` runs when it is accepted."""
        if self.interactive:
            if dialog.exec() == QDialog.DialogCode.Accepted:
                on_accept()
            return
        dialog.accepted.connect(on_accept)
        dialog.show()

    # -- saved views ------------------------------------------------------------------------------
    def saved_view_state(self) -> dict:
        sort = list(self.model.sort_key) if self.model.sort_key[0] != "rank" else ["id", False]
        return {"filter": self.filter_bar.state(), "sort": sort, "columns": list(self.model.meta_keys)}

    def save_current_view(self) -> None:
        if self.project is None:
            return
        name = self.ask_text("Save view", "Name of this view (its filter and sort):")
        if not name or not name.strip():
            return
        try:
            ann.save_view(self.project, name, self.saved_view_state())
        except Exception as exc:  # noqa: BLE001
            self.report_error("Could not save the view", describe_error(exc))
            return
        self.statusBar().showMessage(f"View '{' '.join(name.split())}' saved (View ▸ Saved views)", 5000)

    def apply_saved_view(self, name: str) -> None:
        if self.project is None:
            return
        state = ann.saved_views(self.project).get(name)
        if state is None:
            self.statusBar().showMessage(f"No saved view '{name}'", 4000)
            return
        self.tabs.setCurrentWidget(self.records_page)
        self._apply_sort(state.get("sort"))
        if isinstance(state.get("columns"), list):
            self.set_meta_columns([str(k) for k in state["columns"]])
        filt = state.get("filter")
        self.filter_bar.set_state(filt if isinstance(filt, dict) else {})
        self.apply_filter()
        self.statusBar().showMessage(f"View '{name}'", 4000)

    def delete_saved_view(self) -> None:
        if self.project is None:
            return
        names = sorted(ann.saved_views(self.project))
        if not names:
            self.statusBar().showMessage("No saved views", 4000)
            return
        name, ok = QInputDialog.getItem(self, "Delete a saved view", "View:", names, 0, False)
        if ok and name and ann.delete_view(self.project, name):
            self.statusBar().showMessage(f"View '{name}' deleted", 4000)

    def _fill_saved_views_menu(self) -> None:
        menu = self.saved_views_menu
        menu.clear()
        names = sorted(ann.saved_views(self.project)) if self.project is not None else []
        for name in names:
            menu.addAction(name, lambda n=name: self.apply_saved_view(n))
        if not names:
            none = menu.addAction("No saved views yet")
            none.setEnabled(False)
        menu.addSeparator()
        menu.addAction(self.act_save_view)
        menu.addAction(self.act_delete_view)

    def _apply_sort(self, sort: Optional[list]) -> None:
        from .models import RecordTableModel

        if isinstance(sort, list) and len(sort) == 2 and sort[0] in RecordTableModel._SORT_KEYS:
            col = RecordTableModel._SORT_KEYS.index(sort[0])
            order = Qt.SortOrder.DescendingOrder if sort[1] else Qt.SortOrder.AscendingOrder
            self.table.horizontalHeader().setSortIndicator(col, order)  # sorts the model too
