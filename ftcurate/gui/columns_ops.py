"""Columns of the records table for the extra fields of the source records (``source``,
``category``...): View ▸ Columns shows or hides them; the search box filters by them with
``field:value`` (a mixin of :class:`~ftcurate.gui.main_window.MainWindow`)."""

from __future__ import annotations

from PySide6.QtWidgets import QMenu

from .workers import describe_error

MAX_OFFERED = 30  # fields offered in the menu (the most common first)


class ColumnsMixin:
    """Metadata columns: chosen per project, remembered with the view state and saved views."""

    def _build_columns(self) -> None:
        self.columns_menu = QMenu("&Columns", self)
        self.columns_menu.setToolTipsVisible(True)
        self.columns_menu.aboutToShow.connect(self._fill_columns_menu)
        self.meta_keys_found: dict[str, int] = {}

    def _refresh_columns(self) -> None:
        """The open project's fields (none without a project)."""
        self.meta_keys_found = {}
        if self.project is not None:
            try:
                self.meta_keys_found = self.project.metadata_keys()
            except Exception:  # noqa: BLE001 - a damaged project: no extra columns
                self.meta_keys_found = {}
        self.model.set_meta_columns([])
        self.table.setup_columns(self.COLUMN_WIDTHS)

    def _fill_columns_menu(self) -> None:
        menu = self.columns_menu
        menu.clear()
        keys = list(self.meta_keys_found)[:MAX_OFFERED]
        if not keys:
            none = menu.addAction("The records have no extra fields")
            none.setEnabled(False)
            return
        shown = set(self.model.meta_keys)
        for key in keys:
            act = menu.addAction(key)
            act.setCheckable(True)
            act.setChecked(key in shown)
            act.setToolTip(f"{self.meta_keys_found[key]:,} of the first records have '{key}'; filter with {key}:VALUE")
            act.toggled.connect(lambda on, k=key: self.show_meta_column(k, on))

    def show_meta_column(self, key: str, on: bool = True) -> None:
        keys = [k for k in self.model.meta_keys if k != key] + ([key] if on else [])
        self.set_meta_columns(keys)

    def set_meta_columns(self, keys) -> None:
        """Show these fields as columns (unknown ones are left out)."""
        if self.project is None:
            return
        keys = [k for k in keys if k in self.meta_keys_found]
        current = self.current_id()
        try:
            for key in keys:
                self.frame.load_meta(self.project, key)
        except Exception as exc:  # noqa: BLE001
            self.report_error("Could not read the field", describe_error(exc))
            return
        self.model.set_meta_columns(keys)
        self.table.setup_columns(self.COLUMN_WIDTHS)
        row = self.model.row_of(current) if current is not None else None
        if row is not None:
            self.select_row(row)
        self._schedule_state_save()
