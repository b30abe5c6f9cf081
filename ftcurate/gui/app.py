"""Entry point of the desktop app: ``ftcurate gui [PATH] [--screenshot FILE]``.

PATH may be an ``.ftcurate`` project or a dataset file (JSON Lines, JSON, CSV,
Parquet); a dataset is imported into a project in the app's data folder
(``$FTCURATE_HOME/projects`` when that variable is set). ``--screenshot FILE`` saves a
PNG of the window once the project is shown, then exits (0, or 2 when PATH cannot be
opened); it runs headless (Qt's offscreen platform) when there is no display.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Optional, Sequence

EXIT_OK, EXIT_FAIL, EXIT_TIMEOUT = 0, 2, 3
# --tab names -> the window's view keys
TABS = {"records": "records", "duplicates": "pairs", "leakage": "leaks", "map": "map", "overview": "overview",
        "training": "training"}
SCREENSHOT_TIMEOUT_S = float(os.environ.get("FTCURATE_SCREENSHOT_TIMEOUT", "600"))
_SETTLE_MS = 250  # let layouts and the first table rows settle before grabbing


def _parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ftcurate gui", description="Open the ftcurate desktop app.")
    p.add_argument("path", nargs="?", help="dataset file or .ftcurate project to open")
    p.add_argument("--screenshot", metavar="FILE", help="save a PNG of the window once drawn, then exit")
    p.add_argument("--tab", choices=sorted(TABS), help="the view to show once the project is open")
    p.add_argument("--theme", choices=("system", "light", "dark"), help="colour theme (remembered)")
    return p.parse_args(list(argv) if argv is not None else None)


def _has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _quiet_offscreen_warnings() -> None:
    """The offscreen platform warns about window hints it ignores; keep stderr for real errors."""
    from PySide6.QtCore import qInstallMessageHandler

    noise = ("does not support propagateSizeHints",)

    def handler(mode, context, message):  # noqa: ANN001
        if not any(n in message for n in noise):
            sys.stderr.write(message + "\n")

    qInstallMessageHandler(handler)


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = _parse(argv if argv is not None else sys.argv[1:])
    except SystemExit as exc:  # --help or a usage error (argparse printed it)
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_FAIL

    screenshot = os.path.abspath(args.screenshot) if args.screenshot else None
    if not os.environ.get("QT_QPA_PLATFORM") and not _has_display():
        if screenshot:
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
        else:
            print("ftcurate gui: no display found (set DISPLAY, or use --screenshot FILE to run headless)",
                  file=sys.stderr)
            return EXIT_FAIL
    if args.path and not os.path.exists(args.path):
        message = f"{args.path}: no such file"
        if screenshot:
            print(f"ftcurate gui: {message}", file=sys.stderr)
            return EXIT_FAIL
        # interactive: the window shows the error

    from .qtlibs import check as check_qt_libraries

    problem = check_qt_libraries()  # Qt would abort with a message that does not say what to install
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_FAIL

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from .settings import APP_NAME, ORG_NAME
    from .widgets import app_icon

    if screenshot:
        _quiet_offscreen_warnings()

    app = QApplication.instance()
    owns_app = app is None
    if app is None:
        QApplication.setApplicationName(APP_NAME)
        QApplication.setOrganizationName(ORG_NAME)
        QApplication.setApplicationDisplayName("ftcurate")
        app = QApplication([sys.argv[0] if sys.argv else "ftcurate"])
        from . import settings as appsettings
        from .theme import apply_theme, saved_theme

        qsettings = appsettings.make_settings()
        if args.theme:
            qsettings.setValue("view/theme", args.theme)
        apply_theme(saved_theme(qsettings))
        from . import wheel_guard

        wheel_guard.install(app)  # the wheel changes a spin box or combo box only once it has focus
    app.setWindowIcon(app_icon())

    from .main_window import MainWindow

    state = {"code": EXIT_OK, "done": False}

    def finish(code: int) -> None:
        if not state["done"]:
            state["done"] = True
            state["code"] = code
            QTimer.singleShot(0, lambda: app.exit(code))  # also right if the loop has not started yet

    def excepthook(exc_type, exc, tb) -> None:  # noqa: ANN001
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        if screenshot:
            print(f"ftcurate gui: unexpected error: {exc_type.__name__}: {exc}", file=sys.stderr)
            finish(EXIT_FAIL)
        else:
            box = QMessageBox(QMessageBox.Icon.Critical, "Unexpected error",
                              f"Something went wrong: {exc}\n\nYour decisions so far are saved.",
                              QMessageBox.StandardButton.Ok)
            box.setDetailedText(details)
            box.exec()

    old_hook = sys.excepthook
    sys.excepthook = excepthook
    window = MainWindow(interactive=screenshot is None, restore_geometry=screenshot is None)
    try:
        if screenshot:
            window.resize(1280, 800)

            def grab() -> None:
                try:
                    os.makedirs(os.path.dirname(screenshot) or ".", exist_ok=True)
                    ok = window.grab().save(screenshot, "PNG")
                except Exception as exc:  # noqa: BLE001
                    ok = False
                    print(f"ftcurate gui: cannot save the screenshot: {exc}", file=sys.stderr)
                if not ok:
                    print(f"ftcurate gui: cannot write {screenshot}", file=sys.stderr)
                    finish(EXIT_FAIL)
                else:
                    finish(EXIT_OK)

            def settle_then_grab(*_a) -> None:
                if args.tab and window.project is not None:
                    window.show_tab(TABS[args.tab])
                    view = window.views.get(TABS[args.tab])
                    if view is not None and hasattr(view, "compute_if_needed"):
                        view.compute_if_needed()  # the map: wait for it below
                QTimer.singleShot(_SETTLE_MS, wait_then_grab)

            def wait_then_grab() -> None:
                # background work a view started (the embedding map) is drawn before the grab
                busy = any(getattr(v, "is_computing", lambda: False)() for v in window.views.values())
                if busy or any(w.is_running() for w in window._workers) or window.is_loading():
                    QTimer.singleShot(_SETTLE_MS, wait_then_grab)
                    return
                QTimer.singleShot(_SETTLE_MS, grab)

            def failed(message: str, _details: str) -> None:
                print(f"ftcurate gui: {message}", file=sys.stderr)
                finish(EXIT_FAIL)

            def timeout() -> None:
                print(f"ftcurate gui: gave up after {SCREENSHOT_TIMEOUT_S:.0f} s waiting for the project",
                      file=sys.stderr)
                finish(EXIT_TIMEOUT)

            window.project_loaded.connect(settle_then_grab)
            window.load_failed.connect(failed)
            window.load_cancelled.connect(lambda: failed("cancelled", ""))
            QTimer.singleShot(int(SCREENSHOT_TIMEOUT_S * 1000), timeout)

        window.show()
        if args.path:
            window.open_path(args.path)
        if args.tab and not screenshot:
            window.project_loaded.connect(lambda _p: window.show_tab(TABS[args.tab]))
        elif screenshot:
            settle_then_grab()
        code = app.exec()
        if state["done"]:
            code = state["code"]
        return int(code)
    finally:
        try:
            window.close()  # saves settings, stops workers, closes the project
        finally:
            sys.excepthook = old_hook
            if owns_app:
                window.deleteLater()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
