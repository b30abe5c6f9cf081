"""The main window's actions, menus, toolbar and status bar, and the shortcut sheet (a mixin of
:class:`~ftcurate.gui.main_window.MainWindow`)."""

from __future__ import annotations

import html
import os
from typing import Iterable

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QLabel, QMenu, QMessageBox, QToolBar

from .. import __version__
from ..core.project.store import STATUSES
from . import theme
from .theme import readable
from .models import STATUS_COLORS, STATUS_LABELS
from .keys import is_single_key, key_shortcut
from .widgets import ShortcutsDialog, drawn_icon
from .workers import TaskProgress


class ChromeMixin:
    """Actions (one per command, with keys and tooltips), menus, toolbar, status bar."""

    def _action(self, text: str, slot, shortcuts: Iterable[str] = (), tip: str = "", icon=None,
                checkable: bool = False, repeat: bool = False) -> QAction:
        """An action with keys; single keys (A, Shift+R, ?) only act where the user can see
        the focus and never while they type (see :mod:`ftcurate.gui.keys`)."""
        act = QAction(text, self)
        act.setProperty("help", text)  # the shortcuts sheet shows this, not the changing menu text
        if icon is not None:
            act.setIcon(icon)
        keys = [QKeySequence(k) for k in shortcuts]
        act.setShortcuts([k for k in keys if not is_single_key(k)])
        single = [k for k in keys if is_single_key(k)]
        if single:
            key_shortcut(self, act, single, self._key_blocked, repeat=repeat)
        if tip:
            keytext = keys[0].toString(QKeySequence.SequenceFormat.NativeText) if keys else ""
            act.setToolTip(f"{tip} ({keytext})" if keytext else tip)
            act.setStatusTip(tip)
        act.setCheckable(checkable)
        if checkable:
            act.toggled.connect(slot)
        else:
            act.triggered.connect(lambda checked=False: slot())
        self.addAction(act)  # shortcuts work while the menu bar is hidden, too
        return act

    def _build_actions(self) -> None:
        a = self._action
        self.act_open_dataset = a("Open &dataset…", self.choose_dataset, ["Ctrl+O"], "Open a dataset file",
                                  drawn_icon("open-dataset"))
        self.act_open_project = a("Open &project…", self.choose_project, ["Ctrl+Shift+O"],
                                  "Open an .ftcurate project", drawn_icon("open-project"))
        self.act_open_sample = a("Open &sample", self.open_sample, [], "Open the bundled sample dataset")
        self.act_open_helpdesk = a("Open &help-desk sample", self.open_helpdesk_sample, [],
                                   "Open the bundled help-desk sample: JSON answers that the demo model learns in "
                                   "a few minutes (to see the Evaluate tab tell tuned from base)")
        self.act_close = a("&Close project", self.close_project, ["Ctrl+W"], "Close the open project")
        self.act_quit = a("&Quit", self.close, ["Ctrl+Q"], "Quit ftcurate")
        self.act_undo = a("&Undo", self.undo, ["Ctrl+Z"], "Undo the last decision", drawn_icon("undo"))
        self.act_redo = a("&Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], "Redo the last undone decision",
                          drawn_icon("redo"))
        self.act_find = a("&Find…", self.focus_search, ["Ctrl+F"], "Search the records")
        self.act_approve = a("&Approve", lambda: self.decide("approve"), ["A"], "Approve the selected records",
                             drawn_icon("approve", STATUS_COLORS["approved"]))
        self.act_reject = a("&Reject", lambda: self.decide("reject"), ["R"], "Reject the selected records",
                            drawn_icon("reject", STATUS_COLORS["rejected"]))
        self.act_reset = a("Reset to &unreviewed", lambda: self.decide("reset"), ["U"],
                           "Mark the selected records unreviewed again", drawn_icon("reset"))
        self.act_next = a("&Next record", lambda: self.move_selection(1), ["J"], "Go to the next record",
                          drawn_icon("next"), repeat=True)
        self.act_prev = a("&Previous record", lambda: self.move_selection(-1), ["K"],
                          "Go to the previous record", drawn_icon("previous"), repeat=True)
        self.act_next_unreviewed = a("Next &unreviewed", self.next_unreviewed, ["N"],
                                     "Go to the next unreviewed record", drawn_icon("next-unreviewed"))
        self.act_advance = a("Advance after decision", self._set_advance, [],
                             "Move to the next record after approving or rejecting one", checkable=True)
        self.act_advance.setChecked(self._setting_bool("review/advance", True))
        self.act_shortcuts = a("&Keyboard shortcuts", self.show_shortcuts, ["F1", "?"], "List the keyboard shortcuts")
        self.act_about = a("&About ftcurate", self.show_about, [], "About ftcurate")
        self.act_scan = a("Run quality &scan…", self.run_scan, ["Ctrl+Shift+S"],
                          "Find duplicates, outliers, leakage and bad answers", drawn_icon("scan"))
        self.act_edit = a("&Edit record…", self.edit_current, ["E"], "Edit the current record in place (the original "
                          "is kept)", drawn_icon("edit"))
        self.act_restore = a("Restore &original", self.restore_current, [],
                             "Drop the edit of the current record and bring back the original")
        self.act_labels = a("&Label…", self.focus_labels, ["L"], "Type labels for the selected records")
        self.act_dismiss = a("&Dismiss a finding…", self.dismiss_current_finding, ["Shift+D"],
                             "The scan got this record wrong: dismiss one of its findings (not a duplicate, "
                             "not a leak, not an outlier...), with an optional reason; a rescan keeps it dismissed")
        self.act_approve_shown = a("Approve all &shown…", lambda: self.decide_shown("approve"), ["Shift+A"],
                                   "Approve every record the current filter shows (asks first; one undo step)")
        self.act_reject_shown = a("Reject all s&hown…", lambda: self.decide_shown("reject"), ["Shift+R"],
                                  "Reject every record the current filter shows (asks first; one undo step)")
        self.act_label_shown = a("Label all shown…", self.label_shown, ["Shift+L"],
                                 "Add a label to every record the current filter shows (one undo step)")
        self.act_clear_filters = a("&Clear filters", self.clear_filters, ["Ctrl+Shift+F"],
                                   "Show every record: all statuses, splits, findings and labels, no search")
        self.act_reviewer = a("Reviewer &name…", self.ask_reviewer_name, [],
                              "Your name in the decision log (remembered; used in every project you open)")
        self.act_scan_settings = a("Scan &settings…", self.edit_scan_settings, [],
                                   "Thresholds and switches of the quality scan")
        self.act_export = a("&Export…", self.export_dialog, ["Ctrl+E"], "Write the curated dataset, its card and "
                            "the decision log", drawn_icon("export"))
        self.act_import = a("&Import dataset…", self.import_dialog, ["Ctrl+I"],
                            "Import a dataset with a preview: format, column mapping, test set")
        self.act_scan.setIconText("Scan")
        self.act_export.setIconText("Export")
        self.act_approve.setIconText("Approve")
        self.act_reject.setIconText("Reject")
        self.act_reset.setIconText("Reset")
        self.act_prev.setIconText("Previous")
        self.act_next.setIconText("Next")
        self.act_next_unreviewed.setIconText("Next unreviewed")
        self.act_edit.setIconText("Edit")
        self.act_open_dataset.setIconText("Open dataset")
        self.act_open_project.setIconText("Open project")

    def _build_tab_actions(self) -> None:
        """Alt+1…Alt+N show a tab; Ctrl+Tab / Ctrl+PgDown and Ctrl+Shift+Tab / Ctrl+PgUp step
        through them (listed in View ▸ Go to and the shortcut sheet)."""
        self.tab_actions = []
        for i in range(self.tabs.count()):
            title = self.tabs.tabText(i)
            plain = title.replace("&&", "&")
            act = self._action(f"&{i + 1} {title}", lambda i=i: self.go_to_tab(i), [f"Alt+{i + 1}"],
                               f"Show the {plain} tab")
            act.setProperty("help", f"Go to the {plain} tab")
            self.tab_actions.append(act)
        self.act_next_tab = self._action("&Next tab", lambda: self.step_tab(1), ["Ctrl+Tab", "Ctrl+PgDown"],
                                         "Show the next tab")
        self.act_prev_tab = self._action("&Previous tab", lambda: self.step_tab(-1),
                                         ["Ctrl+Shift+Tab", "Ctrl+Shift+Backtab", "Ctrl+PgUp"],
                                         "Show the previous tab")

    def go_to_tab(self, index: int) -> None:
        """Show tab ``index`` and put the keyboard focus in its main list, so its keys work."""
        if self.project is None or not 0 <= index < self.tabs.count():
            return
        self.stack.setCurrentWidget(self.review_page)
        self.tabs.setCurrentIndex(index)
        view = self._tab_view(index)
        if view is self.records_page:
            self.table.setFocus(Qt.FocusReason.ShortcutFocusReason)
        elif hasattr(view, "focus_list"):
            view.focus_list()
        elif hasattr(view, "focus_main"):
            view.focus_main()
        elif hasattr(view, "table"):
            view.table.setFocus(Qt.FocusReason.ShortcutFocusReason)
        else:
            view.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def step_tab(self, step: int) -> None:
        if self.tabs.count():
            self.go_to_tab((self.tabs.currentIndex() + step) % self.tabs.count())

    def _key_blocked(self, action: QAction) -> None:
        """A single key pressed while the focus is somewhere the user cannot see (or in a
        text box): nothing happens, and the status bar says why."""
        what = str(action.property("help") or action.text()).split("\t")[0].replace("&", "").rstrip("…")
        self.statusBar().showMessage(f"{what}: not done — the keyboard focus is not on the records. "
                                     "Click the table or press Alt+1.", 6000)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(self.act_open_dataset)
        m.addAction(self.act_open_project)
        m.addAction(self.act_open_sample)
        m.addAction(self.act_open_helpdesk)
        m.addAction(self.act_import)
        self.recent_menu = QMenu("Open &recent", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        m.addMenu(self.recent_menu)
        m.addSeparator()
        m.addAction(self.act_export)
        m.addSeparator()
        m.addAction(self.act_close)
        m.addSeparator()
        m.addAction(self.act_quit)

        m = mb.addMenu("&Edit")
        m.addAction(self.act_undo)
        m.addAction(self.act_redo)
        m.addSeparator()
        m.addAction(self.act_find)
        m.addAction(self.act_meaning)
        m.addAction(self.act_clear_filters)
        m.addSeparator()
        m.addAction(self.act_reviewer)
        edit_menu = m

        m = mb.addMenu("&Scan")
        m.addAction(self.act_scan)
        m.addAction(self.act_scan_settings)
        self.scan_menu = m

        m = mb.addMenu("&Review")
        for act in (self.act_approve, self.act_reject, self.act_reset, self.act_edit, self.act_restore,
                    self.act_labels, self.act_dismiss, self.act_similar):
            m.addAction(act)
        m.addSeparator()
        for act in (self.act_approve_shown, self.act_reject_shown, self.act_label_shown):
            m.addAction(act)
        m.addSeparator()
        for act in (self.act_next, self.act_prev, self.act_next_unreviewed):
            m.addAction(act)
        m.addSeparator()
        m.addAction(self.act_advance)
        review_menu = m

        self.view_menu = mb.addMenu("&View")
        self.tab_menu = self.view_menu.addMenu("&Go to")
        for act in self.tab_actions:
            self.tab_menu.addAction(act)
        self.tab_menu.addSeparator()
        self.tab_menu.addAction(self.act_next_tab)
        self.tab_menu.addAction(self.act_prev_tab)
        self.theme_menu = self.view_menu.addMenu("&Theme")
        theme_group = QActionGroup(self)
        current = theme.saved_theme(self.settings)
        for key, label in theme.THEMES.items():
            act = self.theme_menu.addAction(label)
            act.setCheckable(True)
            act.setChecked(key == current)
            act.setActionGroup(theme_group)
            act.triggered.connect(lambda checked=False, k=key: self.set_theme(k))
        self.view_menu.addAction(self.problems_dock.toggleViewAction())
        self.view_menu.addAction(self.findings_dock.toggleViewAction())
        self._annotation_menus(edit_menu, review_menu, self.view_menu)

        m = mb.addMenu("&Help")
        m.addAction(self.act_shortcuts)
        m.addAction(self.act_about)

    def _build_toolbar(self) -> None:
        tb = QToolBar("Main toolbar", self)
        tb.setObjectName("MainToolbar")
        tb.setMovable(False)
        tb.setIconSize(QSize(18, 18))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        # the whole bar fits a 1024-pixel window: the file and scan/export commands come first,
        # with their names; moving and undoing are icons (their names are in the tooltips)
        groups = ((self.act_open_dataset, self.act_open_project), (self.act_scan, self.act_export),
                  (self.act_approve, self.act_reject, self.act_reset, self.act_edit),
                  (self.act_prev, self.act_next, self.act_next_unreviewed), (self.act_undo, self.act_redo))
        icon_only = (self.act_prev, self.act_next, self.act_undo, self.act_redo, self.act_reset, self.act_edit)
        for i, group in enumerate(groups):
            if i:
                tb.addSeparator()
            for act in group:
                tb.addAction(act)
                if act in icon_only:
                    tb.widgetForAction(act).setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        self.toolbar = tb
        self.view_menu.addAction(tb.toggleViewAction())

    def _build_statusbar(self) -> None:
        sb = self.statusBar()
        self.counts_label = QLabel()
        self.counts_label.setTextFormat(Qt.TextFormat.RichText)
        self.progress_panel = TaskProgress()
        sb.addPermanentWidget(self.progress_panel)
        sb.addPermanentWidget(self.counts_label)

    def _update_title(self) -> None:
        if self.project is None:
            self.setWindowTitle("ftcurate")
        else:
            name = os.path.splitext(os.path.basename(self.project.path))[0]
            self.setWindowTitle(f"{name} — ftcurate")

    WIDE_STATUS = 1280  # window width from which the status bar also names the reviewer and held-out count

    def _update_counts(self) -> None:
        """The review counts in the status bar: statuses of the records under review (the
        held-out test records are not reviewed and are counted apart), compact so that the
        status messages beside them are not clipped; the full sentence is the tooltip."""
        if self.project is None:
            self.counts_label.setText("")
            self.counts_label.setToolTip("")
            return
        counts = self.project.status_counts()
        held = self.project.status_counts(split="test")
        review = {st: counts.get(st, 0) - held.get(st, 0) for st in STATUSES}
        total, test = sum(review.values()), sum(held.values())
        decided = total - review.get("unreviewed", 0)
        dot = {st: readable(STATUS_COLORS[st], 3.0).name() for st in ("unreviewed", "approved")}
        text = (f'<span style="color:{dot["unreviewed"]}">&#9679;</span>&nbsp;'
                f'{review.get("unreviewed", 0):,}&nbsp;unreviewed&nbsp;&nbsp;'
                f'<span style="color:{dot["approved"]}">&#9679;</span>&nbsp;{decided:,}&nbsp;decided')
        who = self.project.reviewer
        if self.width() >= self.WIDE_STATUS:  # room for the held-out count and the reviewer
            if test:
                text += f"&nbsp;&nbsp;&middot;&nbsp;&nbsp;{test:,}&nbsp;held-out"
            if who:
                short = who if len(who) <= 18 else who[:16].rstrip() + "…"
                text += f"&nbsp;&nbsp;&middot;&nbsp;&nbsp;{html.escape(short)}"
        self.counts_label.setText(text + "&nbsp;")
        tip = ", ".join(f"{review[st]:,} {STATUS_LABELS[st].lower()}" for st in STATUSES)
        tip = f"{total:,} records under review: {tip}."
        if test:
            tip += f"\n{test:,} held-out test records are kept out of review, training and export."
        tip += (f"\nDecisions are logged under the name {who} (Edit ▸ Reviewer name…)." if who else
                "\nSet your name for the decision log: Edit ▸ Reviewer name….")
        self.counts_label.setToolTip(tip)

    def _update_enabled(self) -> None:
        has = self.project is not None
        on_records = has and self.tabs.currentIndex() == 0  # the Records tab
        for act in (self.act_close, self.act_find, self.act_export, self.act_clear_filters):
            act.setEnabled(has)
        # the one-key review actions act on the Records table: off while another view
        # (with its own keys) is in front
        for act in (self.act_approve, self.act_reject, self.act_reset, self.act_next, self.act_prev,
                    self.act_next_unreviewed, self.act_edit, self.act_labels, self.act_approve_shown,
                    self.act_reject_shown, self.act_label_shown, self.act_dismiss, self.act_similar,
                    *self._label_actions):
            act.setEnabled(on_records)
        if self.is_previewing():  # browsing a big file while it imports
            self.act_next.setEnabled(True)
            self.act_prev.setEnabled(True)
        if not on_records:
            self.act_restore.setEnabled(False)
        self.act_scan.setEnabled(has and not self.is_scanning())
        self.act_undo.setEnabled(has and self.project.can_undo())
        self.act_redo.setEnabled(has and self.project.can_redo())
        if has:
            nxt = self.project.peek_undo()
            self.act_undo.setText(f"&Undo {nxt['action'].replace('_', ' ')}" if nxt else "&Undo")
            nxt = self.project.peek_redo()
            self.act_redo.setText(f"&Redo {nxt['action'].replace('_', ' ')}" if nxt else "&Redo")
        else:
            self.act_undo.setText("&Undo")
            self.act_redo.setText("&Redo")
        self.act_undo.setIconText("Undo")
        self.act_redo.setIconText("Redo")

    def review_actions(self) -> list[QAction]:
        actions = [self.act_approve, self.act_reject, self.act_reset, self.act_edit, self.act_labels, self.act_dismiss,
                   self.act_similar, self.act_meaning,
                   self.act_next, self.act_prev, self.act_next_unreviewed, self.act_approve_shown,
                   self.act_reject_shown, self.act_label_shown, self.act_undo, self.act_redo, self.act_find,
                   self.act_clear_filters, self.act_scan, self.act_export, self.act_import, self.act_open_dataset,
                   self.act_open_project, self.act_close, self.act_shortcuts, self.act_quit,
                   *self.tab_actions, self.act_next_tab, self.act_prev_tab, *self.annotation_actions()]
        for view in self.views.values():
            actions += list(view.actions()) if hasattr(view, "actions") else []
        return actions

    def show_shortcuts(self) -> None:
        if self._shortcuts_dialog is None:
            from ..core.project.annotation import guidelines

            text = guidelines(self.project) if self.project is not None else ""
            self._shortcuts_dialog = ShortcutsDialog(self.review_actions(), self, guidelines=text)
        self._shortcuts_dialog.show()
        self._shortcuts_dialog.raise_()

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About ftcurate",
            f"<h3>ftcurate {__version__}</h3>"
            "<p>Curate fine-tuning datasets: review conversations, find duplicates, outliers, "
            "leakage and bad answers, then export a clean set.</p>"
            "<p>Everything runs on this computer; nothing is sent anywhere.</p>"
            "<p>Licensed under the Apache License 2.0.</p>",
        )
