"""The Evaluate tab: systems side by side, verdict, charts, the per-item table with filters and
click-through, partial results, the pilot curve, and the Training tab's uncurated twin run.

The comparison itself is a fake with compare()'s signature (the engine has its own tests);
the widgets are driven with keys on the focused widget (offscreen)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from gui_keys import press_until
from PySide6.QtCore import QSettings, Qt

from ftcurate.core.project.records import Message, Record
from ftcurate.gui.train_common import WorkerPool
from ftcurate.gui.train_eval import EvaluatePanel, read_report
from ftcurate.train.compare import EvalStopped

TIMEOUT = 180_000  # the worker imports torch first (heavy=True)


def _run(folder: Path) -> str:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    return str(folder)


def _metric(mean, lo, hi, n=4):
    return {"mean": mean, "ci95": [lo, hi], "n": n}


def fake_report(status: str = "complete") -> dict:
    names = ("base", "fewshot", "tuned", "raw")
    exact = {"base": 0.0, "fewshot": 0.25, "tuned": 1.0, "raw": 0.5}
    systems = {n: {"kind": n, "n": 4, "adapter": None, "empty": 0,
                   "metrics": {"exact": _metric(exact[n], max(0, exact[n] - .25), min(1, exact[n] + .25)),
                               "loss": _metric(2.0 if n in ("base", "fewshot") else 0.5, 0.4, 2.2)}}
               for n in names}
    outputs = {  # item -> system -> answer; tuned right everywhere, few-shot right on item 1 only
        0: {"base": "x", "fewshot": "red", "tuned": "blue", "raw": "red"},
        1: {"base": "", "fewshot": "blue", "tuned": "blue", "raw": "blue"},
        2: {"base": "x", "fewshot": "red", "tuned": "blue", "raw": "blue"},
        3: {"base": "x", "fewshot": "red", "tuned": "blue", "raw": "red"},
    }
    examples = [{"index": i, "source": "golden.jsonl", "prompt": f"Flag of team {i}?", "reference": "blue",
                 "leaked": i == 2, "outputs": outputs[i],
                 "scores": {n: {"exact": float(outputs[i][n] == "blue"), "loss": 1.0} for n in names}}
                for i in range(4)]
    return {"version": 2, "status": status, "metrics": ["exact", "loss"], "headline": "exact", "systems": systems,
            "clean_only": {n: {**s, "n": 3} for n, s in systems.items()}, "leaked": [2],
            "examples": examples, "n_golden": 4, "has_references": True, "comparisons": [],
            "verdict": ["The tuned model beats 5-shot prompting by +75 points of exact match (95% CI +50 to +100).",
                        "Curated beats raw by +50 points of exact match (95% CI +25 to +75): the curation paid off."],
            "warnings": []}


@pytest.fixture
def panel(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    pool = WorkerPool()
    p = EvaluatePanel(settings, pool, lambda: str(tmp_path / "model"))
    p.interactive = False
    qtbot.addWidget(p)
    p.resize(1024, 700)
    p.show()
    yield p
    pool.shutdown()


def _golden_project(tmp_path) -> str:
    from ftcurate.core.io.ingest import import_dataset
    from ftcurate.core.project.store import Project

    rec = Record([Message("user", "Flag?"), Message("assistant", "blue")])
    for name, n in (("train.jsonl", 3), ("golden.jsonl", 4)):
        (tmp_path / name).write_text("".join(json.dumps(rec.content_dict()) + "\n" for _ in range(n)))
    path = str(tmp_path / "p.ftcurate")
    with Project.open(path, create=True) as project:
        import_dataset(project, str(tmp_path / "train.jsonl"))
        import_dataset(project, str(tmp_path / "golden.jsonl"), role="test")
    return path


def test_the_tab_fills_verdict_table_charts_and_answers_and_saves_the_report(qtbot, panel, tmp_path):
    calls = []

    def comparer(model_dir, golden, adapters=(), raw_adapter=None, settings=None, progress=None, cancel=None,
                 on_partial=None, project_path=None):
        calls.append(dict(model_dir=model_dir, golden=golden, adapters=adapters, raw=raw_adapter, settings=settings))
        progress(1, 4, "base: answering")
        on_partial(fake_report("running"))
        return fake_report()

    run = _run(tmp_path / "runs" / "a")
    raw = _run(tmp_path / "runs" / "a-raw")
    project = _golden_project(tmp_path)
    errors = []
    panel.error_reported.connect(lambda *a: errors.append(a))
    panel.evaluator = comparer
    panel.set_project_path(project)
    panel.set_run(run, True)
    assert panel.raw_check.isEnabled() and panel.raw_check.isChecked()  # the uncurated twin was found
    panel.eval_source_combo.setCurrentIndex(0)  # the project's test split
    panel.fewshot_k_spin.setFocus()
    qtbot.keyClick(panel.fewshot_k_spin, Qt.Key.Key_Down)  # 4 shots
    panel.eval_button.setFocus()
    with qtbot.waitSignal(panel.evaluation_finished, timeout=TIMEOUT):
        qtbot.keyClick(panel.eval_button, Qt.Key.Key_Space)
    assert not errors, errors
    call = calls[0]
    assert call["adapters"] == [run] and call["raw"] == raw and call["golden"] == project
    assert call["settings"].baselines == ["base", "fewshot", "tuned", "raw"] and call["settings"].fewshot.k == 4
    assert call["settings"].cache_path == os.path.join(run, "eval_cache.jsonl")
    # verdict on top
    assert "beats 5-shot prompting by +75 points" in panel.verdict_label.text()
    assert "Curated beats raw" in panel.verdict_label.text()
    # table: systems by metrics, the clean items first (the verdict uses them)
    t = panel.metrics_table
    assert [t.verticalHeaderItem(r).text() for r in range(t.rowCount())] == ["base", "fewshot", "tuned", "raw"]
    assert [t.horizontalHeaderItem(c).text() for c in range(t.columnCount())] == ["n", "exact match", "loss"]
    assert panel.results.clean_check.isChecked() and t.item(2, 0).text() == "3"
    assert t.item(2, 1).text().startswith("100.0%") and "[" in t.item(2, 1).text()
    assert t.item(2, 1).font().bold()  # the best on the headline metric
    # bars with intervals
    assert panel.bars.names == ["base", "fewshot", "tuned", "raw"] and panel.bars.means == [0, 25, 100, 50]
    assert panel.bars.intervals[2] == [75, 100]
    # answers: one row per golden item, ticks, and filters
    g = panel.gen_table
    assert g.rowCount() == 4
    headers = [g.horizontalHeaderItem(c).text() for c in range(g.columnCount())]
    assert headers == ["Record", "Reference", "base", "fewshot", "tuned", "raw", "Disagree"]
    assert g.item(0, 4).text() == "✓  blue" and g.item(1, 2).text() == "✗  (empty answer)"
    assert g.item(2, 0).text() == "2 (leaked)"
    combo = panel.filter_combo
    combo.setFocus()
    i = combo.findText("Tuned right, few-shot wrong")
    press_until(qtbot, combo, Qt.Key.Key_Down, lambda: combo.currentIndex() == i, limit=20)
    assert panel.results.shown_indices() == [0, 2, 3]
    i = combo.findText("Tuned right, raw wrong")
    key = Qt.Key.Key_Down if combo.currentIndex() < i else Qt.Key.Key_Up
    press_until(qtbot, combo, key, lambda: combo.currentIndex() == i, limit=20)
    assert panel.results.shown_indices() == [0, 3]
    # sorting by disagreement puts the split items first
    g.sortItems(g.columnCount() - 1, Qt.SortOrder.DescendingOrder)
    assert [int(g.item(r, 0).data(Qt.ItemDataRole.UserRole)) for r in range(2)] != [1, 1]
    # click-through: the golden item's record in the project
    wanted = []
    panel.record_requested.connect(wanted.append)
    panel.results._on_double_click(0, 0)  # the first row after sorting
    assert len(wanted) == 1 and isinstance(wanted[0], int)
    # the report is saved beside the run, as JSON, Markdown and HTML; reopening shows it at once
    for name in ("eval_report.json", "eval_report.md", "eval_report.html"):
        assert os.path.isfile(os.path.join(run, name)), name
    panel.show_report(None)
    panel.show_run_report(run)
    assert panel.gen_table.rowCount() == 4 and read_report(run)["verdict"]


def test_cancel_shows_the_partial_report_marked(qtbot, panel, tmp_path):
    gate = threading.Event()

    def comparer(model_dir, golden, adapters=(), raw_adapter=None, settings=None, progress=None, cancel=None,
                 on_partial=None, project_path=None):
        partial = fake_report("running")
        for ex in partial["examples"]:
            ex["outputs"]["tuned"] = None
        on_partial(partial)
        while not cancel():
            gate.wait(0.01)
        raise EvalStopped({**partial, "status": "cancelled", "verdict": ["Cancelled: the numbers cover the "
                                                                          "answers generated so far."]})

    heldout = tmp_path / "golden.jsonl"
    heldout.write_text("{}\n")
    panel.evaluator = comparer
    panel.set_run(_run(tmp_path / "run"), True)
    panel.eval_source_combo.setFocus()
    qtbot.keyClick(panel.eval_source_combo, Qt.Key.Key_End)  # File…
    panel.heldout_edit.setFocus()
    qtbot.keyClicks(panel.heldout_edit, str(heldout))
    assert panel.eval_source() == ("file", str(heldout))
    panel.eval_button.setFocus()
    qtbot.keyClick(panel.eval_button, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: panel.gen_table.rowCount() == 4, timeout=TIMEOUT)
    assert panel.gen_table.item(0, 4).text() == "(generating…)"
    panel.eval_cancel_button.setFocus()
    qtbot.keyClick(panel.eval_cancel_button, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not panel.is_evaluating(), timeout=TIMEOUT)
    assert "cancelled" in panel.eval_status.text() and "partial" in panel.eval_status.text()
    assert panel.verdict_label.text().startswith("<b>Cancelled")
    assert read_report(str(tmp_path / "run"))["status"] == "cancelled"  # saved, marked


def test_metrics_menu_and_an_old_report(qtbot, panel):
    assert panel.chosen_metrics() is None and panel.metrics_button.text() == "Auto"
    panel.metric_actions["exact"].trigger()
    panel.metric_actions["chrf"].trigger()
    assert panel.chosen_metrics() == ["exact", "chrf"] and not panel.auto_metrics_action.isChecked()
    assert panel.metrics_button.text() == "exact match, chrF"
    panel.auto_metrics_action.trigger()
    assert panel.chosen_metrics() is None
    # a report of an older ftcurate still shows (loss and the few answers it had)
    panel.show_report({"base": {"loss": 2.0, "perplexity": 7.4}, "tuned": {"loss": 1.0, "perplexity": 2.7},
                       "generations": [{"prompt": "p", "reference": "r", "base": "", "tuned": "r"}], "examples": 3})
    assert panel.metrics_table.rowCount() == 2 and panel.gen_table.rowCount() == 1


def test_pilot_curve_fills_in_point_by_point(qtbot, panel, tmp_path):
    from ftcurate.train import TrainConfig

    points = []

    def piloter(config, data, golden, output, settings=None, progress=None, cancel=None, on_point=None):
        result = {"metric": "exact", "status": "running", "points": [], "verdict": []}
        for n, mean in ((0, 0.0), (100, 0.4), (200, 0.7)):
            result["points"].append({"n": n, "mean": mean, "ci95": [max(0, mean - .1), mean + .1]})
            on_point(json.loads(json.dumps(result)))
            points.append(n)
        result.update(status="complete", verdict=["Still rising: more examples of the same kind would likely help."])
        return result

    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps(Record([Message("user", "q"), Message("assistant", "a")]).content_dict()) + "\n")
    heldout = tmp_path / "golden.jsonl"
    heldout.write_text("{}\n")
    panel.piloter = piloter
    panel.pilot_inputs = lambda: (TrainConfig(model_dir="m", output_dir=str(tmp_path / "p")), str(train),
                                  str(tmp_path / "pilot-1"))
    panel.set_heldout_file(str(heldout))
    panel._update_buttons()
    panel.pilot_button.setFocus()
    with qtbot.waitSignal(panel.pilot_finished, timeout=TIMEOUT):
        qtbot.keyClick(panel.pilot_button, Qt.Key.Key_Space)
    assert points == [0, 100, 200]
    assert panel.pilot_chart.xs == [0, 100, 200] and panel.pilot_chart.means == [0.0, 40.0, 70.0]
    assert "Still rising" in panel.results.pilot_label.text()


def test_training_tab_trains_the_uncurated_twin(qtbot, tmp_path, monkeypatch):
    from ftcurate.gui.train_view import TrainingView
    from ftcurate.train import TrainConfig

    monkeypatch.setenv("FTCURATE_HOME", str(tmp_path / "home"))
    project = _golden_project(tmp_path)
    from ftcurate.core.project.store import Project

    with Project.open(project) as p:
        p.approve(p.ids(split="train")[:2])
    seen: list[TrainConfig] = []

    class Result:
        stopped = early_stopped = False
        global_step = max_steps = 1
        final_loss = best_eval_loss = elapsed = None

    def runner(config, data, progress=None, cancel=None, on_event=None, stop=None, resume=False):
        seen.append((config, len(data.train)))
        os.makedirs(config.output_dir, exist_ok=True)
        Path(config.output_dir, "adapter_config.json").write_text("{}")
        Path(config.output_dir, "run_config.json").write_text(json.dumps(config.to_dict()))
        return Result()

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    view = TrainingView(settings=settings, interactive=False, runner=runner)
    qtbot.addWidget(view)
    model = tmp_path / "model"
    model.mkdir()
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        (model / name).write_text("{}")
    view.set_model_dir(str(model))
    view.set_project(None, project)
    view.raw_run_check.setFocus()
    qtbot.keyClick(view.raw_run_check, Qt.Key.Key_Space)
    assert view.raw_run_check.isChecked()
    finished = []
    view.run_finished.connect(finished.append)
    assert view.start()
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=TIMEOUT)
    (curated, n_curated), (raw, n_raw) = seen
    assert not curated.uncurated and raw.uncurated and n_raw == 3 > n_curated
    assert finished[1] == finished[0] + "-raw" and raw.learning_rate == curated.learning_rate
    view.shutdown()


def test_each_bundled_sample_gets_its_own_held_out_file():
    from ftcurate.gui import settings as appsettings
    from ftcurate.gui import tasks

    main = appsettings.sample_dataset()
    helpdesk = appsettings.helpdesk_sample()
    assert main is not None and helpdesk is not None
    assert [os.path.basename(p) for p in tasks.sample_test_files(str(main), appsettings.SAMPLE_DIR)] == \
        ["heldout_test.jsonl"]
    assert [os.path.basename(p) for p in tasks.sample_test_files(str(helpdesk), appsettings.SAMPLE_DIR)] == \
        ["helpdesk_test.jsonl"]
