"""What the parts of the training window share: where runs live, small formatting helpers,
the status colours, and :class:`WorkerPool` (the workers a view has started).

No widget state lives here; the parts are :mod:`.train_settings` (what to train),
:mod:`.train_runs` (live charts and past runs), :mod:`.train_eval` (base vs tuned) and
:mod:`.train_view` (the run itself, which ties them together).
"""

from __future__ import annotations

import html
import os
import re
import time
from typing import Any, Optional

from PySide6.QtCore import QEvent, QEventLoop, QObject, Qt, QTimer, Slot
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from ..core.project.store import Project
from ..train.runner import METRICS_FILE, RUN_CONFIG_FILE, last_checkpoint
from . import settings as appsettings
from . import theme
from .workers import Worker

RUNS_DIRNAME = "runs"
DEMO_DIRNAME = "demo-model"
ADAPTER_CONFIG = "adapter_config.json"  # written by peft beside the adapter weights

GIB = float(1 << 30)
DATASET_FILTER = "Datasets (*.jsonl *.json *.csv *.tsv *.parquet);;All files (*)"

# Status colours are named, not given: rich text says ``color_token("ok")`` and a
# :class:`ThemedLabel` puts in the theme's colour when it shows the text (and again after
# a theme change), so a colour is always readable on the theme's background.
KINDS = ("ok", "warn", "bad", "muted", "text", "link")
_TOKEN = re.compile("\ue000(" + "|".join(KINDS) + ")\ue001")


# -- runs on disk ----------------------------------------------------------------------------------


def runs_root(project_path: Optional[str]) -> str:
    """Where new runs go: beside the project (its own subfolder), else in the data folder."""
    if project_path:
        folder, name = os.path.split(os.path.abspath(project_path))
        return os.path.join(folder, RUNS_DIRNAME, os.path.splitext(name)[0])
    return str(appsettings.data_dir() / RUNS_DIRNAME)


def new_run_dir(root: str) -> str:
    """``root/<YYYYmmdd-HHMMSS>`` that does not exist yet (``-2``, ``-3``... on a clash)."""
    base = os.path.join(root, time.strftime("%Y%m%d-%H%M%S"))
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}-{n}"
    return path


def is_run_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, METRICS_FILE)) or os.path.isfile(os.path.join(path, RUN_CONFIG_FILE))


def list_runs(root: str) -> list[str]:
    """Run folders directly under ``root``, newest first."""
    try:
        names = os.listdir(root)
    except OSError:
        return []
    runs = [os.path.join(root, n) for n in names if is_run_dir(os.path.join(root, n))]
    return sorted(runs, key=lambda p: (os.path.getmtime(p), p), reverse=True)


def has_checkpoint(run_dir: Optional[str]) -> bool:
    return bool(run_dir) and last_checkpoint(run_dir) is not None


def has_adapter(run_dir: Optional[str]) -> bool:
    return bool(run_dir) and os.path.isfile(os.path.join(run_dir, ADAPTER_CONFIG))


def approved_counts(project: Project) -> dict[str, int]:
    """Approved (or edited) records per split, and all test records (the held-out set)."""
    out = {}
    for split in ("train", "validation"):
        counts = project.status_counts(split=split)
        out[split] = counts.get("approved", 0) + counts.get("edited", 0)
    out["test"] = project.count(split="test")
    return out


# -- text ------------------------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def num(value: Any, fmt: str = ".4f") -> str:
    """``value`` formatted, or an en dash when it is not a number."""
    try:
        return format(float(value), fmt)
    except (TypeError, ValueError):
        return "–"


def wrap_label(text: str = "") -> ThemedLabel:
    label = ThemedLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
    return label


def color_token(kind: str) -> str:
    """Stands for the theme's colour ``kind`` ("ok", "warn", "bad", "muted"...) in rich text
    shown by a :class:`ThemedLabel` (see :func:`themed`)."""
    return f"\ue000{kind}\ue001"


def themed(text: str) -> str:
    """``text`` with each :func:`color_token` replaced by the current theme's colour."""
    if "\ue000" not in text:
        return text
    colors = theme.colors()
    return _TOKEN.sub(lambda m: getattr(colors, m.group(1)), text)


def status_line(kind: str, symbol: str, text: str) -> str:
    """Rich text: a symbol in the theme's colour ``kind``, then the (escaped) text."""
    return f'<span style="color:{color_token(kind)}">{symbol}</span> {html.escape(text, quote=False)}'


class ThemedLabel(QLabel):
    """A label whose rich text may name theme colours (:func:`color_token`): they are
    filled in when the text is set and again when the theme changes."""

    def __init__(self, text: str = "", parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._raw = ""
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        self._raw = text
        super().setText(themed(text))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and "\ue000" in self._raw:
            super().setText(themed(self._raw))


class ExplainedError(Exception):
    """An error with advice, shown as two paragraphs (TrainError's message and advice)."""

    def __init__(self, message: str, advice: str = "") -> None:
        super().__init__(message)
        self.message, self.advice = message, advice

    def __str__(self) -> str:
        return f"{self.message}\n\n{self.advice}" if self.advice else self.message


# -- workers --------------------------------------------------------------------------------------------


class WorkerPool(QObject):
    """Starts workers and keeps them until they have ended; :meth:`shutdown` cancels and
    waits for the ones still running."""

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.workers: list[Worker] = []

    def start(self, worker: Worker) -> Worker:
        self.workers.append(worker)
        worker.ended.connect(self._forget)
        return worker.start()

    # Signals connect to methods, not to lambdas that hold ``self``: such a cycle lets the
    # garbage collector delete a parentless view behind Qt's back.
    @Slot()
    def _forget(self) -> None:
        worker = self.sender()
        if worker in self.workers:
            self.workers.remove(worker)
        if isinstance(worker, Worker):
            worker.deleteLater()

    def shutdown(self, timeout_ms: int = 60000) -> None:
        pending = [w for w in self.workers if w.is_running()]
        for worker in pending:
            worker.cancel()
        if not pending:
            return
        # Worker.wait() alone would block the queued "cancelled"/"finished" signals that
        # let the thread quit: wait in a local event loop until every worker has ended.
        loop = QEventLoop()
        left = set(pending)

        def ended(w: Worker) -> None:
            left.discard(w)
            if not left:
                loop.quit()

        for worker in pending:
            worker.ended.connect(lambda w=worker: ended(w))
        QTimer.singleShot(timeout_ms, loop.quit)
        if left:
            loop.exec()
