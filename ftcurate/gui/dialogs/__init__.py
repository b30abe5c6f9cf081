"""The app's dialogs, one module each: scan settings, export and import.

* :mod:`.scan_settings`: :class:`ScanSettingsDialog` (generated from the scan settings
  dataclasses), :func:`load_scan_settings` / :func:`save_scan_settings`.
* :mod:`.export_dialog`: :class:`ExportDialog` (export in a worker, with progress and cancel).
* :mod:`.import_dialog`: :class:`ImportDialog` (format, column mapping, held-out data, preview
  and validation of the chosen files).
* :mod:`.common`: labels, styles and helpers they share.

Errors are shown as text inside the dialogs (never a traceback). ``interactive=False`` (tests,
screenshots) never opens a file chooser or a question box.
"""

from .common import CONTAINER_LABELS, ERROR_STYLE, FORMAT_LABELS, MUTED_STYLE
from .export_dialog import (EXPORT_FOLDER_KEY, EXPORT_FORMAT_KEY, EXPORT_INCLUDE_KEY, EXPORT_SEED_KEY, EXPORT_VAL_KEY,
                            INCLUDE_LABELS, ExportDialog)
from .import_dialog import (DATASET_FILTER, MAPPING_HELP, MAX_PROBLEMS_SHOWN, TABULAR_LAYOUTS, ImportDialog,
                            PreviewModel, ProblemsModel)
from .scan_settings import SCAN_SETTINGS_KEY, ScanSettingsDialog, load_scan_settings, save_scan_settings

__all__ = [
    "CONTAINER_LABELS", "ERROR_STYLE", "FORMAT_LABELS", "MUTED_STYLE",
    "EXPORT_FOLDER_KEY", "EXPORT_FORMAT_KEY", "EXPORT_INCLUDE_KEY", "EXPORT_SEED_KEY", "EXPORT_VAL_KEY",
    "INCLUDE_LABELS", "ExportDialog",
    "DATASET_FILTER", "MAPPING_HELP", "MAX_PROBLEMS_SHOWN", "TABULAR_LAYOUTS", "ImportDialog", "PreviewModel",
    "ProblemsModel",
    "SCAN_SETTINGS_KEY", "ScanSettingsDialog", "load_scan_settings", "save_scan_settings",
]
