"""Review-app benchmark: open a 1M-record JSONL to a usable table, filter, memory, and the GUI
event loop's latency while background work runs.

A script, not a test. Run it offscreen:

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_gui.py            # 1M records (~2-3 min)
    QT_QPA_PLATFORM=offscreen python benchmarks/bench_gui.py --quick    # 100k records (~30 s)

(the first run also writes the 1M-record file, ~700 MB, in ~15 s).

Every measurement is printed next to a baseline measured in the same run on the same data:

(a) time to a usable table: ``LineIndex.build`` + ``FileTableModel`` + a ``QTableView`` shown
    and its first screen painted (``grab``), in a fresh process, with the file's pages dropped
    from the OS page cache first (``posix_fadvise``, this file only), vs. the current path (import
    the file into a project with ``ingest.import_dataset``, then show it). The import is timed
    on the first ``--baseline-records`` records (100k) and extrapolated linearly to the file.
(b) filtering: ``RecordFrame.select`` (numpy masks over status/split/flags/score columns) and
    handing the ids to ``RecordTableModel.set_ids``, vs. the SQL ``Project.ids(status=...)``,
    on the imported 100k project; for 1M rows, a RecordFrame of synthetic columns and a 1M-row
    project of small records (built with ``Project.add_records``; ``--no-sql-1m`` skips it and
    extrapolates the 100k SQL time instead).
(c) peak RSS of the process that opened the file-backed table, vs. the file size.
(d) event-loop latency: a 10 ms ``QTimer`` (PreciseTimer) in the GUI thread, lateness of each
    tick = gap to the previous tick minus 10 ms; while nothing runs (baseline), while
    ``scan_records`` runs in a ``Worker`` (``--scan-records`` records, 20k; the first scan in the
    process also loads the models, so it is reported apart), while ``tasks.open_dataset``
    imports ``--import-records`` records in a ``Worker`` (the background import of the new open
    path), and while ``LineIndex.build`` of the whole file runs in a ``Worker``. A
    FileTableModel table and a TaskProgress are shown, as in the window. The scan and the import
    are run again with two proposed fixes: :func:`gil_yield_patch` (applied by monkeypatching)
    and ``gc.freeze()`` once the models are loaded. The stage of the three worst ticks of each
    run and the longest garbage-collector pause are printed.

Targets (from the issue): usable table <= 10 s, filter <= 200 ms, memory <= 3x the file,
event-loop p99 <= 50 ms.

Generated files are kept in ``$TMPDIR/ftcurate-bench-gui/`` and reused by later runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

DATA_DIR = os.path.join(tempfile.gettempdir(), "ftcurate-bench-gui")

# -- data ------------------------------------------------------------------------------------

_SYLLABLES = ("ka lo mi ne ra to su pe di an or ex in un re co pro tra str ent ion ing ed er al "
              "the and for num sum val cat dog tree line data test mod").split()
SYSTEMS = (
    "You are a helpful assistant.",
    "You are a patient math tutor. Explain each step briefly.",
    "You are a customer-support agent for an online store. Be polite and concise.",
    "You are an expert Python programmer. Answer with working code and a short explanation.",
    "You answer questions about history accurately and cite dates where relevant.",
)


def _vocabulary(rng: random.Random, n: int = 4000) -> list[str]:
    words = set()
    while len(words) < n:
        words.add("".join(rng.choices(_SYLLABLES, k=rng.choice((1, 1, 2, 2, 3)))))
    return sorted(words)


def make_file(path: str, n: int, seed: int = 0) -> None:
    """``n`` OpenAI-chat records: a system prompt, a user turn (~24 words, ~130 characters)
    and an answer (~38 words, ~230 characters); one in ten has a second user/assistant
    exchange. About 700 bytes a line."""
    import orjson

    rng = random.Random(seed)
    vocab = _vocabulary(rng)
    tmp = path + ".part"
    t = time.perf_counter()
    with open(tmp, "wb") as f:
        batch: list[bytes] = []
        for i in range(n):
            nu = max(3, int(rng.lognormvariate(3.0, 0.6)))
            na = max(3, int(rng.lognormvariate(3.4, 0.7)))
            msgs = [{"role": "system", "content": SYSTEMS[i % len(SYSTEMS)]},
                    {"role": "user", "content": f"Q{i}: " + " ".join(rng.choices(vocab, k=nu)) + "?"},
                    {"role": "assistant", "content": " ".join(rng.choices(vocab, k=na)) + "."}]
            if i % 10 == 3:
                msgs += [{"role": "user", "content": "And " + " ".join(rng.choices(vocab, k=nu // 2)) + "?"},
                         {"role": "assistant", "content": " ".join(rng.choices(vocab, k=na // 2)) + "."}]
            batch.append(orjson.dumps({"messages": msgs}))
            if len(batch) >= 20000:
                f.write(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            f.write(b"\n".join(batch) + b"\n")
    os.replace(tmp, path)
    print(f"  generated {path} ({os.path.getsize(path) / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s",
          flush=True)


def head_file(src: str, dst: str, n: int) -> None:
    """The first ``n`` lines of ``src``."""
    if os.path.exists(dst):
        return
    with open(src, "rb") as f, open(dst + ".part", "wb") as out:
        for k, line in enumerate(f):
            if k >= n:
                break
            out.write(line)
    os.replace(dst + ".part", dst)


def dataset(n: int) -> str:
    os.makedirs(DATA_DIR, exist_ok=True)
    path = os.path.join(DATA_DIR, f"chat-{n}.jsonl")
    if not os.path.exists(path):
        make_file(path, n)
    return path


# -- measurement helpers ---------------------------------------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:  # pragma: no cover
        return float("nan")


def median_time(fn, repeat: int = 5) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2], out


def run_step(step: str, args: argparse.Namespace, **extra) -> dict:
    """Run one step in a fresh interpreter (clean peak RSS); return its JSON result."""
    cmd = [sys.executable, os.path.abspath(__file__), "--step", step, "--records", str(args.records),
           "--baseline-records", str(args.baseline_records), "--scan-records", str(args.scan_records)]
    if args.no_sql_1m:
        cmd.append("--no-sql-1m")
    if getattr(args, "app_cold", False):
        cmd.append("--app-cold")
    for k, v in extra.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        sys.stderr.write(out.stdout[-4000:] + out.stderr[-8000:])
        raise RuntimeError(f"step {step} failed")
    for line in out.stderr.splitlines():
        if line.startswith("  "):
            print(line, flush=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def note(text: str) -> None:
    print("  " + text, file=sys.stderr, flush=True)


# -- (a) + (c): open to a usable table -----------------------------------------------------------


def evict(path: str) -> bool:
    """Drop the file's pages from the OS page cache (this file only), so the next read comes
    from the disk. False where the OS cannot."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def _make_view(model):
    """A table set up as the main window sets up its record table."""
    from PySide6.QtCore import QSize, Qt
    from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

    view = QTableView()
    view.setModel(model)
    view.setSortingEnabled(True)
    view.horizontalHeader().setSortIndicator(0, Qt.SortOrder.AscendingOrder)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setAlternatingRowColors(True)
    view.setShowGrid(False)
    view.setWordWrap(False)
    view.setIconSize(QSize(12, 12))
    vh = view.verticalHeader()
    vh.hide()
    vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    vh.setDefaultSectionSize(view.fontMetrics().height() + 10)
    hh = view.horizontalHeader()
    first = model.COLUMNS.index("First user turn")
    hh.setSectionResizeMode(first, QHeaderView.ResizeMode.Stretch)
    view.resize(1280, 860)
    return view


def step_open(args: argparse.Namespace) -> dict:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from ftcurate.core.io.lineindex import LineIndex
    from ftcurate.gui.file_model import FileTableModel

    path = dataset(args.records)
    size = os.path.getsize(path)
    cold = evict(path)  # as when a file is opened for the first time
    rss0 = rss_mb()
    t0 = time.perf_counter()
    index = LineIndex.build(path)
    t1 = time.perf_counter()
    model = FileTableModel(index)
    view = _make_view(model)
    view.show()
    app.processEvents()
    pixmap = view.grab()  # paints the first screen (the rows the view asks for are parsed now)
    t2 = time.perf_counter()
    first_text = model.summary_at(0).first_user if len(index) else ""
    # jumping around stays cheap: the middle and the end of the file
    jumps = []
    for row in (len(index) // 2, len(index) - 1):
        t = time.perf_counter()
        view.scrollTo(model.index(row, 0))
        app.processEvents()
        view.grab()
        jumps.append(time.perf_counter() - t)
    t = time.perf_counter()
    text = model.record_text(len(index) // 3)
    detail = time.perf_counter() - t
    peak = peak_rss_mb()
    rss_after = rss_mb()
    t = time.perf_counter()
    LineIndex.build(path).close()
    warm = time.perf_counter() - t
    return {
        "cold": cold, "build_warm_s": warm,
        "records": len(index), "file_mb": size / 1e6, "build_s": t1 - t0, "view_s": t2 - t1,
        "usable_s": t2 - t0, "jump_middle_ms": jumps[0] * 1e3, "jump_end_ms": jumps[1] * 1e3,
        "detail_ms": detail * 1e3, "fetches": model.fetches, "cached_rows": model.cached_rows(),
        "index_mb": index.nbytes / 1e6, "rss_before_mb": rss0, "rss_after_mb": rss_after,
        "peak_rss_mb": peak, "painted": not pixmap.isNull(), "first_row": first_text[:60],
        "detail_chars": len(text),
    }


# -- (a) baseline + (b): import, then filter ------------------------------------------------------


def _tiny_records(n: int):
    from ftcurate.core.project.records import Message, Record, Source

    for i in range(n):
        yield Record(messages=[Message("user", f"q{i}"), Message("assistant", f"a{i}")],
                     source=Source("tiny.jsonl", i + 1, i))


def _decide_some(project, rng: random.Random) -> None:
    """Approve ~30 %, reject ~10 % and move ~10 % to validation (untimed setup)."""
    ids = project.ids()
    picks = rng.sample(ids, int(len(ids) * 0.5))
    k = len(ids) // 10
    project.approve(picks[: 3 * k])
    project.reject(picks[3 * k: 4 * k])
    project.set_split(picks[4 * k: 5 * k], "validation")


def _sql_filters(project) -> dict:
    return {
        "status=approved": median_time(lambda: project.ids(status="approved"))[0],
        "status=rejected, split=train": median_time(lambda: project.ids(status="rejected", split="train"))[0],
    }


def _frame_filters(frame) -> dict:
    return {
        "status=approved": median_time(lambda: frame.select(status="approved"))[0],
        "status=rejected, split=train": median_time(lambda: frame.select(status="rejected", split="train"))[0],
        "flag=any": median_time(lambda: frame.select(flag="any"))[0],
        "score >= 0.8 and unreviewed": median_time(lambda: frame.select(score_min=0.8, status="unreviewed"))[0],
    }


def _handoff(ids) -> float:
    """Give an id array to the store-backed table model (what the window does after a filter)."""
    from PySide6.QtWidgets import QApplication

    from ftcurate.gui.models import RecordTableModel

    QApplication.instance() or QApplication([])
    model = RecordTableModel()
    return median_time(lambda: model.set_ids(ids), repeat=3)[0]


def synthetic_frame(n: int, seed: int = 0):
    import numpy as np

    from ftcurate.core.project.table import FINDING_KINDS, RecordFrame

    rng = np.random.default_rng(seed)
    frame = RecordFrame(
        ids=np.arange(1, n + 1, dtype=np.int64),
        index=np.arange(n, dtype=np.int64),
        status=rng.choice(np.array([0, 1, 2], np.int8), n, p=[0.6, 0.3, 0.1]),
        split=rng.choice(np.array([0, 1], np.int8), n, p=[0.9, 0.1]),
        chars=rng.integers(200, 3000, n, dtype=np.int32),
        messages=np.full(n, 3, np.int16),
        labeled=rng.random(n) < 0.02,
        flags=np.where(rng.random(n) < 0.05,
                       np.uint64(1) << rng.integers(0, len(FINDING_KINDS), n).astype(np.uint64),
                       np.uint64(0)).astype(np.uint64),
        score=rng.random(n, dtype=np.float32),
    )
    return frame


def step_filter(args: argparse.Namespace) -> dict:
    from ftcurate.core.io.ingest import import_dataset
    from ftcurate.core.project.store import Project

    try:
        from ftcurate.core.project.table import RecordFrame
    except ImportError:  # pragma: no cover - table.py is part of the same change
        RecordFrame = None

    full = dataset(args.records)
    n_base = min(args.baseline_records, args.records)
    head = os.path.join(DATA_DIR, f"chat-{args.records}-head{n_base}.jsonl")
    head_file(full, head, n_base)
    tmp = tempfile.mkdtemp(prefix="ftcurate-bench-gui-")
    out: dict = {"baseline_records": n_base, "head_mb": os.path.getsize(head) / 1e6}
    try:
        project = Project.create(os.path.join(tmp, "head.ftcurate"))
        t = time.perf_counter()
        report = import_dataset(project, head)
        out["import_s"] = time.perf_counter() - t
        out["imported"] = report.loaded
        note(f"import of {n_base:,} records: {out['import_s']:.1f} s")
        rng = random.Random(0)
        _decide_some(project, rng)
        out["sql_100k"] = _sql_filters(project)
        if RecordFrame is not None:
            t = time.perf_counter()
            frame = RecordFrame.from_project(project)
            out["frame_build_100k_s"] = time.perf_counter() - t
            out["frame_100k"] = _frame_filters(frame)
            ids = frame.select(status="approved")
            out["handoff_100k_s"] = _handoff(ids)
            assert list(ids) == project.ids(status="approved"), "numpy and SQL filters disagree"
        project.close()

        n = args.records
        if RecordFrame is not None:
            frame = synthetic_frame(n)
            out["frame_1m"] = _frame_filters(frame)
            out["handoff_1m_s"] = _handoff(frame.select(status="approved"))
            out["handoff_1m_all_s"] = _handoff(frame.ids)
        if not args.no_sql_1m and n > n_base:
            big = Project.create(os.path.join(tmp, "tiny.ftcurate"))
            src = big.add_source(os.path.join(tmp, "tiny.jsonl"), "openai-chat")
            t = time.perf_counter()
            big.add_records(src, _tiny_records(n))
            out["tiny_project_build_s"] = time.perf_counter() - t
            note(f"{n:,}-record project of small records for the SQL baseline: {out['tiny_project_build_s']:.1f} s")
            _decide_some(big, rng)
            out["sql_1m"] = _sql_filters(big)
            if RecordFrame is not None:
                t = time.perf_counter()
                real = RecordFrame.from_project(big)
                out["frame_build_1m_s"] = time.perf_counter() - t
                out["frame_1m_real"] = _frame_filters(real)
            big.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["has_frame"] = RecordFrame is not None
    return out


# -- (d) event-loop latency ---------------------------------------------------------------------------


class _Ticker:
    def __init__(self, interval_ms: int = 10) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.interval = interval_ms
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.times: list[float] = []

    def _tick(self) -> None:
        self.times.append(time.perf_counter())

    def start(self) -> None:
        self.times = []
        self.timer.start()

    def stop(self) -> dict:
        import numpy as np

        self.timer.stop()
        gaps = np.diff(np.asarray(self.times)) * 1e3
        late = np.maximum(gaps - self.interval, 0.0)
        if not len(late):
            return {"ticks": len(self.times), "p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
        return {"ticks": len(self.times), "p50_ms": float(np.percentile(late, 50)),
                "p99_ms": float(np.percentile(late, 99)), "max_ms": float(late.max()),
                "over_50ms": int((late > 50).sum())}


def gil_yield_patch():
    """The fix this benchmark proposes, applied by monkeypatching: ``Reporter.tick`` / ``check``
    (called per record by the import and most scan stages) sleep 0.1 ms at most every 5 ms
    when they run outside the main thread. Returns a function that undoes it."""
    import threading

    from ftcurate.core import progress as P

    tick, check = P.Reporter.tick, P.Reporter.check
    state = {"t": 0.0}
    main = threading.main_thread()

    def pause() -> None:
        now = time.perf_counter()
        if now - state["t"] > 0.005 and threading.current_thread() is not main:
            time.sleep(0.0001)
            state["t"] = time.perf_counter()

    def patched_tick(self, done, message=""):
        pause()
        return tick(self, done, message)

    def patched_check(self):
        pause()
        return check(self)

    P.Reporter.tick, P.Reporter.check = patched_tick, patched_check

    def undo() -> None:
        P.Reporter.tick, P.Reporter.check = tick, check

    return undo


def step_latency(args: argparse.Namespace) -> dict:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

    app = QApplication.instance() or QApplication([])
    from ftcurate.core.io.formats import DatasetReader
    from ftcurate.core.io.lineindex import LineIndex
    from ftcurate.core.quality.scan import ScanSettings, scan_records
    from ftcurate.gui import tasks
    from ftcurate.gui.file_model import FileTableModel
    from ftcurate.gui.workers import TaskProgress, Worker

    full = dataset(args.records)
    n_imp = min(args.import_records, args.records)
    head = os.path.join(DATA_DIR, f"chat-{args.records}-head{n_imp}.jsonl")
    head_file(full, head, n_imp)

    # a window like the app's: the file-backed table and the task progress bar
    index = LineIndex.build(full)
    win = QWidget()
    lay = QVBoxLayout(win)
    model = FileTableModel(index)
    view = _make_view(model)
    bar = TaskProgress()
    lay.addWidget(view)
    lay.addWidget(bar)
    win.resize(1280, 900)
    win.show()
    app.processEvents()
    ticker = _Ticker(10)
    out: dict = {}

    def idle(seconds: float) -> dict:
        loop = QEventLoop()
        ticker.start()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()
        return ticker.stop()

    def during(fn, *a, title: str, **kw) -> dict:
        """Run ``fn`` in a Worker while the ticker runs; name the stage of the worst ticks."""
        stages: list[tuple[float, str]] = [(time.perf_counter(), "start")]

        def logged(*fa, progress=None, cancel=None, **fkw):
            def prog(done, total, message=""):
                stage = str(message).split(":")[0]
                if ".jsonl" in stage:  # "importing big.jsonl" -> "importing"
                    stage = stage.split()[0]
                stages.append((time.perf_counter(), stage))
                progress(done, total, message)
            return fn(*fa, progress=prog, cancel=cancel, **fkw)

        import gc

        pauses: list[tuple[int, float]] = []
        started: dict[int, float] = {}

        def on_gc(phase, info):
            if phase == "start":
                started[0] = time.perf_counter()
            elif 0 in started:
                pauses.append((info["generation"], time.perf_counter() - started.pop(0)))

        gc.callbacks.append(on_gc)
        loop = QEventLoop()
        worker = Worker(logged, *a, title=title, **kw)
        bar.track(worker)
        result: dict = {}
        worker.finished.connect(lambda r: result.setdefault("value", r))
        worker.failed.connect(lambda m, d: result.setdefault("error", m + "\n" + d))
        worker.ended.connect(loop.quit)
        ticker.start()
        t = time.perf_counter()
        worker.start()
        loop.exec()
        times = list(ticker.times)
        stats = ticker.stop()
        gc.callbacks.remove(on_gc)
        full = [d for g, d in pauses if g == 2]
        stats["gc_full"] = len(full)
        stats["gc_max_ms"] = max((d for _, d in pauses), default=0.0) * 1e3
        stats["work_s"] = time.perf_counter() - t
        if "error" in result:
            raise RuntimeError(result["error"])
        worst = []
        gaps = [(b - a, a) for a, b in zip(times, times[1:])]
        for gap, a in sorted(gaps, reverse=True)[:3]:
            stage = [m for ts, m in stages if ts <= a + 0.01][-1:] or ["?"]
            worst.append(f"{gap * 1e3 - ticker.interval:.0f} ms in {stage[0]}")
        stats["worst"] = worst
        stats["_value"] = result.get("value")
        return stats

    out["idle"] = idle(3.0)
    note(f"idle: p99 {out['idle']['p99_ms']:.1f} ms")

    records = []
    for parsed in DatasetReader(head):
        if parsed.ok:
            records.append(parsed.record)
            if len(records) >= args.scan_records:
                break
    settings = ScanSettings(leakage=False, semantic_leakage=False, outlier_model="static-wordllama")
    try:  # the records as the app's scans hold them (scan_files / scan_project)
        from ftcurate.core.project.columns import RecordColumns
        train = RecordColumns(enumerate(records))
    except ImportError:  # older code
        train = list(enumerate(records))
    out["scan_records"] = len(train)

    def app_scan(*a, progress=None, cancel=None, **kw):
        """What the app's scan worker does first: the heavy imports with the collector paused."""
        from ftcurate.gui.tasks import import_heavy_modules

        import_heavy_modules(progress=progress)
        return scan_records(*a, progress=progress, cancel=cancel, **kw)

    def scan(key: str, label: str, fn=scan_records) -> None:
        stats = during(fn, train, settings=settings, title="scan")
        stats.pop("_value", None)
        out[key] = stats
        note(f"scan of {len(train):,} records, {label}: {stats['work_s']:.1f} s, p99 {stats['p99_ms']:.1f} ms, "
             f"worst: {'; '.join(stats['worst'])}; longest GC pause {stats['gc_max_ms']:.0f} ms "
             f"({stats['gc_full']} full collections)")

    def import_(key: str, label: str) -> None:
        tmp = tempfile.mkdtemp(prefix="ftcurate-bench-gui-")
        try:
            stats = during(tasks.open_dataset, head, tmp, title="import")
            res = stats.pop("_value")
            if res is not None and getattr(res, "project", None) is not None:
                res.project.close()
            out[key] = stats
            note(f"background import of {n_imp:,} records, {label}: {stats['work_s']:.1f} s, "
                 f"p99 {stats['p99_ms']:.1f} ms, worst: {'; '.join(stats['worst'])}; longest GC pause "
                 f"{stats['gc_max_ms']:.0f} ms ({stats['gc_full']} full collections)")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    if getattr(args, "app_cold", False):  # one cold scan per process: this run measures the app's way
        scan("scan_cold", "first scan in the process (loads models), heavy imports with the GC paused",
             fn=app_scan)
    else:
        scan("scan_cold", "first scan in the process (loads models)")
    scan("scan", "warm")
    import_("import", "as is")
    # the proposed fixes: a GIL yield in Reporter, and gc.freeze() once the models are loaded
    # (a full collection then skips the ~600k objects of torch, transformers, Qt...)
    import gc

    undo = gil_yield_patch()
    gc.freeze()
    try:
        scan("scan_yield", "warm, with the fixes")
        import_("import_yield", "with the fixes")
    finally:
        undo()
        gc.unfreeze()
    out["import_records"] = n_imp

    stats = during(LineIndex.build, full, title="index")
    built = stats.pop("_value")
    if built is not None:
        built.close()
    out["index"] = stats
    note(f"index build of {args.records:,} records: {stats['work_s']:.1f} s, p99 {stats['p99_ms']:.1f} ms")
    model.close()
    win.close()
    return out


# -- report ----------------------------------------------------------------------------------------------


def fmt_s(x: float) -> str:
    return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.2f} s"


def report(args, op: dict, flt: dict, lat: dict) -> None:
    n = op["records"]
    size_mb = op["file_mb"]
    base_per_rec = flt["import_s"] / flt["baseline_records"]
    base_open = base_per_rec * n
    rows = []
    cache = " (file not in the page cache)" if op.get("cold") else ""
    rows.append((f"(a) open to a usable table{cache}", fmt_s(op["usable_s"]),
                 f"import {fmt_s(base_open)} (extrapolated from {flt['baseline_records']:,}: "
                 f"{fmt_s(flt['import_s'])})", f"{op['usable_s'] / base_open:.4f}x",
                 "<= 10 s", op["usable_s"] <= 10))
    rows.append(("    of which: LineIndex.build", fmt_s(op["build_s"]), "", "", "", None))
    if "build_warm_s" in op:
        rows.append(("    LineIndex.build again (file in the page cache)", fmt_s(op["build_warm_s"]),
                     "", "", "", None))
    rows.append(("    of which: model + view + first paint", fmt_s(op["view_s"]), "", "", "", None))
    rows.append(("    jump to the middle / end (paint)", f"{op['jump_middle_ms']:.1f} / {op['jump_end_ms']:.1f} ms",
                 "", "", "", None))
    if flt.get("has_frame"):
        nb = flt["baseline_records"]
        groups = [(f"{nb:,} rows (imported file)", "frame_100k", "sql_100k", "frame_build_100k_s",
                   "handoff_100k_s")]
        if "frame_1m_real" in flt:
            groups.append((f"{n:,} rows (project of small records)", "frame_1m_real", "sql_1m",
                           "frame_build_1m_s", None))
        if "frame_1m" in flt:
            groups.append((f"{n:,} rows (synthetic columns)", "frame_1m", None, None, "handoff_1m_s"))
        for label, key, sql_key, build_key, handoff_key in groups:
            sql = flt.get(sql_key) if sql_key else None
            for cond, t in flt[key].items():
                if sql and cond in sql:
                    base, ratio = f"SQL {fmt_s(sql[cond])}", f"{t / sql[cond]:.3f}x"
                elif sql_key is None and "sql_1m" not in flt and cond in flt["sql_100k"]:
                    est = flt["sql_100k"][cond] * n / nb
                    base, ratio = f"SQL ~{fmt_s(est)} (extrapolated)", f"{t / est:.3f}x"
                else:
                    base, ratio = "", ""
                rows.append((f"(b) filter {cond}, {label}", fmt_s(t), base, ratio, "<= 200 ms", t <= 0.2))
            if build_key and build_key in flt:
                rows.append(("    RecordFrame.from_project (once, after the import)", fmt_s(flt[build_key]),
                             "", "", "", None))
            if handoff_key and handoff_key in flt:
                rows.append(("    + RecordTableModel.set_ids(ids of status=approved)", fmt_s(flt[handoff_key]),
                             "", "", "", None))
        if "handoff_1m_all_s" in flt:
            rows.append((f"    RecordTableModel.set_ids(all {n:,} ids)", fmt_s(flt["handoff_1m_all_s"]),
                         "", "", "", None))
    peak = op["peak_rss_mb"] * 1.048576  # MiB -> MB
    rows.append(("(c) peak RSS, file-backed table", f"{peak:,.0f} MB", f"file {size_mb:,.0f} MB",
                 f"{peak / size_mb:.2f}x file", "<= 3x file", peak <= 3 * size_mb))
    rows.append(("    of which Python + Qt before opening", f"{op['rss_before_mb'] * 1.048576:,.0f} MB",
                 "", "", "", None))
    rows.append(("    LineIndex arrays", f"{op['index_mb']:,.0f} MB", "", "", "", None))
    idle = lat["idle"]
    for key, label in (("scan_cold", f"first scan of {lat['scan_records']:,} records (cold)"),
                       ("scan", f"scan of {lat['scan_records']:,} records (warm)"),
                       ("scan_yield", "same scan, GIL yield + gc.freeze()"),
                       ("import", f"background import of {lat['import_records']:,} records"),
                       ("import_yield", "same import, GIL yield + gc.freeze()"),
                       ("index", f"LineIndex.build of {n:,} records")):
        s = lat[key]
        if s["ticks"] < 3:
            rows.append((f"(d) tick lateness during {label} ({s['work_s']:.2f} s)", "too short to measure",
                         "", "", "", None))
            continue
        rows.append((f"(d) tick lateness during {label} ({s['work_s']:.1f} s)",
                     f"p50 {s['p50_ms']:.1f} / p99 {s['p99_ms']:.1f} / max {s['max_ms']:.1f} ms",
                     f"idle p50 {idle['p50_ms']:.1f} / p99 {idle['p99_ms']:.1f} / max {idle['max_ms']:.1f} ms",
                     f"p99 {s['p99_ms'] / max(idle['p99_ms'], 0.01):.1f}x", "p99 <= 50 ms", s["p99_ms"] <= 50))
        if "worst" in s:
            rows.append(("    worst ticks (stage)", "; ".join(s["worst"]),
                         f"longest GC pause {s['gc_max_ms']:.0f} ms", "", "", None))
    w = [max(len(str(r[i])) for r in rows) for i in range(5)]
    head = ("measurement", "value", "baseline (same run)", "ratio", "target")
    w = [max(w[i], len(head[i])) for i in range(5)]
    print()
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(head)) + "  ok")
    for r in rows:
        ok = "" if r[5] is None else ("yes" if r[5] else "NO")
        print("  ".join(str(r[i]).ljust(w[i]) for i in range(5)) + "  " + ok)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000, help="records in the generated file")
    ap.add_argument("--baseline-records", type=int, default=100_000,
                    help="records imported for the import baseline and the 100k filter test")
    ap.add_argument("--scan-records", type=int, default=20_000, help="records scanned in the latency test")
    ap.add_argument("--import-records", type=int, default=100_000,
                    help="records imported in the background in the latency test")
    ap.add_argument("--no-sql-1m", action="store_true",
                    help="skip building a 1M-row project for the SQL filter baseline (extrapolate)")
    ap.add_argument("--quick", action="store_true", help="100k records, 20k baseline, 2k scanned")
    ap.add_argument("--app-cold", action="store_true",
                    help="run the first (cold) scan the app's way: torch & co. imported with the GC paused, "
                         "then frozen (compare with a run without it)")
    ap.add_argument("--json", help="also write the raw results to this file")
    ap.add_argument("--report-from", help="print the table of a JSON file written by --json, run nothing")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.records = min(args.records, 100_000)
        args.baseline_records = min(args.baseline_records, 20_000)
        args.scan_records = min(args.scan_records, 2000)
        args.import_records = min(args.import_records, 10_000)
    if args.report_from:
        with open(args.report_from, encoding="utf-8") as f:
            res = json.load(f)
        report(argparse.Namespace(**res["args"]), res["open"], res["filter"], res["latency"])
        return
    if args.step:
        fn = {"open": step_open, "filter": step_filter, "latency": step_latency}[args.step]
        print(json.dumps(fn(args), default=str))
        return

    import numpy
    import PySide6

    print(f"Machine: {os.cpu_count()} CPU cores, Python {sys.version.split()[0]}, numpy {numpy.__version__}, "
          f"PySide6 {PySide6.__version__}, load average {os.getloadavg()[0]:.2f}")
    t = time.perf_counter()
    path = dataset(args.records)
    print(f"File: {path}, {args.records:,} records, {os.path.getsize(path) / 1e6:,.0f} MB")
    print("(a, c) opening the file-backed table (fresh process)...", flush=True)
    op = run_step("open", args)
    print(f"  usable in {op['usable_s']:.2f} s, peak RSS {op['peak_rss_mb']:.0f} MB", flush=True)
    print("(a baseline, b) import + filters (fresh process)...", flush=True)
    flt = run_step("filter", args)
    print("(d) event-loop latency (fresh process)...", flush=True)
    lat = run_step("latency", args, import_records=args.import_records)
    results = {"open": op, "filter": flt, "latency": lat, "args": vars(args)}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2, default=str)
    report(args, op, flt, lat)
    print(f"\nTotal benchmark time {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
