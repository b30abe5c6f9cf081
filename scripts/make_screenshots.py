"""Regenerate the user guide's screenshots (``docs/images``) from the bundled sample.

It builds a project in a temporary ``FTCURATE_HOME``: imports ``resources/sample`` with its
held-out file, scans it, records some review decisions and trains the demo model on it, then
saves a PNG of every view (through ``ftcurate gui --screenshot --tab``, the same path users
have) and of the dialogs. The Evaluate tab is shown on a second project, the help-desk sample
(``resources/sample/helpdesk``), which the demo model learns: reviewed as a careful reviewer
would (the planted problems and the records the scan finds leaking rejected, the rest
approved), trained with the demo settings on the approved records and again on the
uncurated data, evaluated (base, few-shot, tuned, raw) and given a pilot curve. The
evaluation's verdict and numbers are printed. Offscreen; nothing leaves the temporary folder
but the PNGs.

    .venv/bin/python scripts/make_screenshots.py [--out docs/images] [--theme light]

Open the PNGs afterwards and look at them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "resources", "sample", "chat_train.jsonl")
HELDOUT = os.path.join(ROOT, "resources", "sample", "heldout_test.jsonl")
HELPDESK = os.path.join(ROOT, "resources", "sample", "helpdesk")
HELPDESK_KEY = os.path.join(ROOT, "tests", "data", "helpdesk_manifest.json")
TABS = ("records", "duplicates", "leakage", "map", "overview", "training")


def cli(*args: str) -> None:
    """Run an ``ftcurate`` command in this process, quietly; stop on failure."""
    from ftcurate.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(args))
    if code not in (0, 1):  # validate/scan say 1 when they found problems
        sys.exit(f"ftcurate {' '.join(args)} failed ({code}):\n{out.getvalue()}")


def build_project(work: str) -> tuple[str, str, str]:
    """The sample project, scanned and partly reviewed, with one evaluated demo run."""
    from ftcurate.core.project.store import Project
    from ftcurate.core.project.table import RecordFrame
    from ftcurate.gui.train_view import runs_root

    project_path = os.path.join(work, "sample.ftcurate")
    cli("import", SAMPLE, "--project", project_path, "--test", HELDOUT, "--reviewer", "ana")
    cli("scan", project_path)

    project = Project.open(project_path)
    try:
        report = project.load_scan("quality")[1]
        frame = RecordFrame.from_project(project)
        frame.apply_report(report)
        train = frame.mask(split="train")
        clean = [int(i) for i in frame.ids[train & (frame.flags == 0)]]
        flagged = [int(i) for i in frame.ids[train & (frame.flags != 0)]]
        project.approve(clean[:200], reviewer="ana")
        project.reject(flagged[:6], reviewer="ana")
        project.add_label(clean[:5], "style", reviewer="ana")
        # the Duplicates view opens on a near (not exact) pair, where the word diff shows
        near = next(((c["pairs"][0]["a"], c["pairs"][0]["b"]) for c in report.get("near_duplicate_clusters", [])
                     if c["pairs"] and c["pairs"][0]["similarity"] < 0.97), None)
        state = project.meta_get("gui_state") or {}
        if near:
            state["pairs"] = [int(near[0]), int(near[1])]
        project.meta_set("gui_state", state)
    finally:
        project.close()

    model = os.path.join(work, "demo-model")
    cli("demo-model", model)
    run = os.path.join(runs_root(project_path), time.strftime("%Y%m%d-%H%M%S"))
    cli("train", "--model", model, "--data", project_path, "--output", run, "--epochs", "3", "--lr", "1e-3",
        "--eval-steps", "20", "--allow-leakage")
    return project_path, model, run


def build_helpdesk(work: str, model: str) -> tuple[str, str]:
    """The help-desk sample reviewed, trained (curated and raw), evaluated, with a pilot curve."""
    import json

    from ftcurate.core.project.store import Project
    from ftcurate.gui.train_view import runs_root
    from ftcurate.train.model import DEMO_TRAIN_SETTINGS

    project_path = os.path.join(work, "helpdesk.ftcurate")
    cli("import", os.path.join(HELPDESK, "helpdesk_train.jsonl"), "--project", project_path, "--test",
        os.path.join(HELPDESK, "helpdesk_test.jsonl"), "--reviewer", "ana")
    cli("scan", project_path)
    with open(HELPDESK_KEY, encoding="utf-8") as f:
        planted = {p["index"] for items in json.load(f)["planted"].values() for p in items}
    project = Project.open(project_path)
    try:
        report = project.load_scan("quality")[1]
        leaking = {int(h["index"]) for h in report.get("leakage") or []}
        train = list(project.iter_records(split="train"))
        bad = [sr.id for sr in train if sr.index in planted or sr.id in leaking]
        project.approve([sr.id for sr in train if sr.id not in bad], reviewer="ana")
        project.reject(bad, reviewer="ana")
    finally:
        project.close()
    settings = []
    for key, flag in (("learning_rate", "--lr"), ("epochs", "--epochs"), ("batch_size", "--batch-size"),
                      ("max_seq_len", "--max-seq-len")):
        settings += [flag, str(DEMO_TRAIN_SETTINGS[key])]
    run = os.path.join(runs_root(project_path), time.strftime("%Y%m%d-%H%M%S"))
    cli("train", "--model", model, "--data", project_path, "--output", run, *settings)
    cli("train", "--model", model, "--data", project_path, "--uncurated", "--output", run + "-raw", *settings)
    schema = os.path.join(HELPDESK, "helpdesk_schema.json")
    cli("evaluate", "--model", model, "--adapter", run, "--raw-adapter", run + "-raw", "--data", project_path,
        "--max-new-tokens", "24", "--json-schema", schema, "--metrics", "exact,json_valid,json_schema,loss")
    cli("pilot", "--model", model, "--data", project_path, "--output",
        os.path.join(runs_root(project_path), "pilot-" + time.strftime("%Y%m%d-%H%M%S")), "--sizes", "50,100",
        "--metrics", "exact", "--max-new-tokens", "24", *settings)
    with open(os.path.join(run, "eval_report.json"), encoding="utf-8") as f:
        evaluation = json.load(f)
    print("help-desk evaluation (clean items where leaked):")
    for line in evaluation["verdict"]:
        print("  " + line)
    for name, s in (evaluation.get("clean_only") or evaluation["systems"]).items():
        print(f"  {name}: n={s['n']} " + ", ".join(f"{m} {v['mean']:.3f} {v['ci95']}" for m, v in s["metrics"].items()
                                                  if v.get("mean") is not None))
    return project_path, run


def shoot_tabs(project_path: str, out: str, theme: str, env: dict) -> list[str]:
    code = "import sys; from ftcurate.cli import main; sys.exit(main(['gui', *sys.argv[1:]]))"
    written = []
    jobs = [(f"{tab}.png", [project_path, "--tab", tab]) for tab in TABS]
    jobs.append(("records-dark.png", [project_path, "--tab", "records", "--theme", "dark"]))
    jobs.append(("start.png", []))  # last: the project is among the recent ones by now
    for name, args in jobs:
        png = os.path.join(out, name)
        args = args + ["--screenshot", png] + ([] if "--theme" in args else ["--theme", theme])
        proc = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=ROOT, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            sys.exit(f"screenshot {name} failed:\n{proc.stderr}")
        written.append(png)
    return written


def shoot_dialogs(project_path: str, model: str, helpdesk: str, helpdesk_run: str, out: str,
                  theme: str) -> list[str]:
    """Dialogs and sub-views the tabs do not show, grabbed from a window in this process."""
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from ftcurate.gui import settings as appsettings
    from ftcurate.gui.app import _quiet_offscreen_warnings
    from ftcurate.gui.dialogs import ExportDialog, ImportDialog, ScanSettingsDialog
    from ftcurate.gui.main_window import MainWindow
    from ftcurate.gui.theme import apply_theme

    _quiet_offscreen_warnings()
    app = QApplication.instance() or QApplication(["ftcurate"])  # noqa: F841 - kept alive while grabbing
    QApplication.setApplicationName(appsettings.APP_NAME)
    QApplication.setOrganizationName(appsettings.ORG_NAME)
    apply_theme(theme)

    def wait_until(cond, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        loop = QEventLoop()
        while not cond():
            if time.monotonic() > deadline:
                sys.exit("timed out waiting for the window")
            QTimer.singleShot(20, loop.quit)
            loop.exec()

    def settle(ms: int = 300) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    written = []

    def save(widget, name: str) -> None:
        settle()
        path = os.path.join(out, name)
        if not widget.grab().save(path, "PNG"):
            sys.exit(f"cannot write {path}")
        written.append(path)

    window = MainWindow(interactive=False, restore_geometry=False)
    window.resize(1280, 800)
    window.show()
    loaded: list = []
    window.project_loaded.connect(loaded.append)
    window.open_path(project_path)
    wait_until(lambda: bool(loaded))

    dialog = ImportDialog(SAMPLE, parent=window, interactive=False)
    dialog.resize(1000, 700)
    dialog.show()
    ready: list = []
    dialog.validation_ready.connect(ready.append)
    wait_until(lambda: bool(ready))
    save(dialog, "import.png")
    dialog.close()

    dialog = ScanSettingsDialog(window)
    dialog.show()
    save(dialog, "scan-settings.png")
    dialog.close()

    dialog = ExportDialog(loaded[0], settings=window.settings, parent=window, interactive=False)
    dialog.show()
    save(dialog, "export.png")
    dialog.close()

    window.show_shortcuts()
    save(window._shortcuts_dialog, "shortcuts.png")
    window._shortcuts_dialog.close()

    window.close_project()
    window.open_path(helpdesk)
    wait_until(lambda: len(loaded) > 1)
    window.show_tab("training")
    view = window.training_view
    view.set_model_dir(model)
    view.select_run(helpdesk_run)
    view.tabs.setCurrentIndex(1)  # Evaluate: the run's report, base / few-shot / tuned / raw
    panel = view.eval_panel
    panel.results.pages.setCurrentIndex(0)
    save(window, "evaluate.png")
    panel.results.pages.setCurrentIndex(1)
    i = panel.filter_combo.findText("Tuned right, raw wrong")
    panel.filter_combo.setCurrentIndex(max(0, i))
    save(window, "evaluate-answers.png")
    panel.results.pages.setCurrentIndex(2)
    save(window, "pilot.png")
    window.close_project()
    window.close()
    return written


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "images"))
    p.add_argument("--theme", default="light", choices=("light", "dark"))
    args = p.parse_args(argv)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ftcurate-shots-") as work:
        os.environ["FTCURATE_HOME"] = os.path.join(work, "home")
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        project_path, model, run = build_project(work)
        helpdesk, helpdesk_run = build_helpdesk(work, model)
        env = dict(os.environ)
        written = shoot_tabs(project_path, out, args.theme, env)
        written += shoot_dialogs(project_path, model, helpdesk, helpdesk_run, out, args.theme)
    for path in written:
        print(os.path.relpath(path, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
