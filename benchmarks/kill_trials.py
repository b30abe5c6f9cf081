"""Kill -9 trials of ``ftcurate import`` and ``ftcurate decide`` (issue 12's fault harness).

Each trial starts a real CLI process on one project and kills it with SIGKILL at a random
point (fixed seed): an import after a random share of the time an unkilled import of that
file takes, or the moment its first batch is committed (so every run has partial imports);
a decide after a random number of "approved N" lines. After every kill:

* the project opens for writing (the lock went with the process) and passes
  ``PRAGMA integrity_check``;
* every decision ``decide`` printed before it was killed is in the project;
* no partially imported source is shown as complete (store and ``ftcurate stats --json``
  agree; stats exits 1 while one is incomplete) and ``decide`` never picks one by default;
* importing the same file again completes it - one source, every good record once - and
  says "already in the project" when the killed import had finished.

Usage::

    python benchmarks/kill_trials.py --trials 150 --records 20000 --seed 1

``tests/test_kill.py`` runs a handful of trials of the same harness.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)


@dataclass
class Trial:
    kind: str  # import / import-at-commit / decide
    target: str  # data file or decide's indices
    killed_after: str = ""  # "0.42 s" / "first commit" / "17 lines"
    state: str = ""  # import: none / incomplete / complete; decide: lines printed
    finished_by: str = ""  # the outcome of the import that completed it
    kills: int = 0  # processes killed in this trial
    problems: list = field(default_factory=list)


def _write_data(path: str, n: int, salt: int, bad_every: int) -> tuple[int, int]:
    """A chat JSONL file of ``n`` records, every ``bad_every``-th line broken. Returns
    (records, good records)."""
    good = 0
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            if bad_every and i % bad_every == bad_every - 1:
                f.write('{"messages": [\n')
                continue
            good += 1
            f.write(json.dumps({"messages": [
                {"role": "system", "content": "You are a careful tutor."},
                {"role": "user", "content": f"file {salt} question {i}: what is {i} + {salt}?"},
                {"role": "assistant", "content": f"{i} + {salt} = {i + salt}."}]}) + "\n")
    return n, good


class Harness:
    """One project, data files made on demand, CLI processes killed at random points."""

    def __init__(self, workdir: str, records: int = 10000, seed: int = 0, bad_every: int = 997,
                 python: str = sys.executable) -> None:
        self.dir = workdir
        self.records = records
        self.rng = random.Random(seed)
        self.bad_every = bad_every
        self.python = python
        self.project = os.path.join(workdir, "kill.ftcurate")
        self.files: dict[str, tuple[int, int]] = {}  # abs path -> (records, good)
        self.durations: dict[str, float] = {}  # unkilled import time per file
        self.printed: set[int] = set()  # indices decide said it approved (in the default source)
        self.base: Optional[str] = None
        self.trials: list[Trial] = []

    # -- processes ------------------------------------------------------------------------

    def _cli(self, *args: str, **kw) -> subprocess.Popen:
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        return subprocess.Popen([self.python, "-m", "ftcurate.cli", *args], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)

    def _run(self, *args: str) -> tuple[int, str, str]:
        proc = self._cli(*args)
        out, err = proc.communicate(timeout=600)
        return proc.returncode, out, err

    def new_file(self) -> str:
        path = os.path.join(self.dir, f"data{len(self.files)}.jsonl")
        self.files[path] = _write_data(path, self.records, len(self.files), self.bad_every)
        return path

    def setup(self) -> None:
        """The base file, imported whole: what decide trials decide on."""
        self.base = self.new_file()
        start = time.perf_counter()
        rc, out, err = self._run("import", self.base, "--project", self.project)
        self.durations[self.base] = time.perf_counter() - start
        if rc not in (0, 1):  # 1: the planted bad lines were listed, the rest imported
            raise RuntimeError(f"setup import failed: {err}")

    # -- trials -----------------------------------------------------------------------------

    def import_trial(self, at_commit: bool = False) -> Trial:
        data = self.new_file()
        trial = Trial("import-at-commit" if at_commit else "import", os.path.basename(data))
        while True:  # killed imports of this file until one is not killed
            self._killed_import(data, trial, at_commit)
            trial.problems += self.check()
            if not trial.state:
                trial.state = self._state(data)
            if self.rng.random() < 0.6 or self._state(data) == "complete":
                break
            at_commit = False  # kill the import that resumes it, too
        rc, out, err = self._run("import", data, "--project", self.project)
        if rc not in (0, 1):  # 1: the planted bad lines were listed, the rest imported
            trial.problems.append(f"re-import failed: {err.strip()}")
        trial.finished_by = next((w for w in ("already in the project", "finished the incomplete import",
                                              "imported as source") if w in out), "?")
        if trial.state == "complete" and trial.finished_by != "already in the project":
            trial.problems.append("a finished import was imported again")
        trial.problems += self.check(finished=data)
        self.trials.append(trial)
        return trial

    def _killed_import(self, data: str, trial: Trial, at_commit: bool) -> None:
        proc = self._cli("import", data, "--project", self.project)
        start = time.perf_counter()
        if at_commit:
            self._wait_for_partial(proc, data)
            trial.killed_after = trial.killed_after or "first commit"
        else:
            span = self.durations.get(self.base or data, 1.0)
            delay = self.rng.uniform(0.05, 1.1) * span
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                pass
            trial.killed_after = trial.killed_after or f"{time.perf_counter() - start:.2f} s"
        trial.kills += self._kill(proc)

    def _wait_for_partial(self, proc: subprocess.Popen, data: str, limit: float = 120.0) -> None:
        """Until the file's source shows up incomplete (or the import ends)."""
        deadline = time.monotonic() + limit
        while proc.poll() is None and time.monotonic() < deadline:
            if self._state(data) == "incomplete":
                return
            time.sleep(0.005)

    @staticmethod
    def _kill(proc: subprocess.Popen) -> int:
        """SIGKILL (1) unless it has already ended (0)."""
        killed = 0
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed = 1
        proc.communicate(timeout=60)
        return killed

    def decide_trial(self) -> Trial:
        good = [i for i in range(self.records) if not (self.bad_every and i % self.bad_every == self.bad_every - 1)]
        indices = self.rng.sample(good, min(300, len(good)))
        lines = self.rng.randint(0, 60)
        trial = Trial("decide", f"{len(indices)} indices", killed_after=f"{lines} lines")
        proc = self._cli("decide", self.project, "--approve", *map(str, indices))
        printed = []
        if lines == 0:
            time.sleep(self.rng.uniform(0.0, 0.4))
        else:
            for line in proc.stdout:
                if line.startswith("approved "):
                    printed.append(int(line.split()[1]))
                if len(printed) >= lines:
                    break
        trial.kills += self._kill(proc)
        self.printed.update(printed)
        trial.state = f"{len(printed)} printed"
        trial.problems += self.check()
        self.trials.append(trial)
        return trial

    # -- checks ------------------------------------------------------------------------------

    def _state(self, data: str) -> str:
        """none / incomplete / complete: the file's source as the project shows it now."""
        try:
            conn = sqlite3.connect(f"file:{self.project}?mode=ro", uri=True, timeout=5)
            try:
                rows = conn.execute("SELECT state FROM sources WHERE path = ?", (data,)).fetchall()
            finally:
                conn.close()
        except sqlite3.Error:
            return "none"
        if not rows:
            return "none"
        return "complete" if any(r[0] == "complete" for r in rows) else "incomplete"

    def check(self, finished: Optional[str] = None) -> list[str]:
        from ftcurate.core.project.store import Project, ProjectError

        problems: list[str] = []
        try:
            project = Project.open(self.project)  # writable: the killed process's lock is gone
        except ProjectError as exc:
            return [f"project does not open: {exc}"]
        with project:
            if project._db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                problems.append("integrity_check failed")
            sources = project.sources()
            for s in sources:
                expect = self.files.get(s["path"])
                if expect is None:
                    problems.append(f"unknown source {s['path']}")
                    continue
                total, good = expect
                dup = project._db.execute("SELECT COUNT(*) - COUNT(DISTINCT idx) FROM records WHERE source_id = ?",
                                          (s["id"],)).fetchone()[0]
                if dup:
                    problems.append(f"source {s['id']}: {dup} duplicate records")
                if s["complete"] and (s["records"] != good or s["total"] != total):
                    problems.append(f"source {s['id']} shown complete with {s['records']} of {good} records")
                if not s["complete"] and s["records"] > good:
                    problems.append(f"source {s['id']}: more records than the file has")
            by_path: dict[str, int] = {}
            for s in sources:
                by_path[s["path"]] = by_path.get(s["path"], 0) + 1
            problems += [f"{os.path.basename(p)} imported {n} times" for p, n in by_path.items() if n > 1]
            if finished is not None and not any(s["path"] == finished and s["complete"] for s in sources):
                problems.append(f"{os.path.basename(finished)} not complete after a full import")
            base = next((s for s in sources if s["path"] == self.base), None)
            if base is not None and self.printed:
                approved = {project.get(i).index for i in project.ids(status="approved", source_id=base["id"])}
                lost = self.printed - approved
                if lost:
                    problems.append(f"{len(lost)} printed decisions lost, e.g. {sorted(lost)[:5]}")
            train = [s for s in sources if s["role"] == "train"]
            default = next((s for s in train if s["complete"]), None)
            if default is not None and default["path"] != self.base:
                problems.append("decide's default source is not the first complete one")
        if finished is not None:  # what stats shows was checked right after the kill
            return problems
        rc, out, _ = self._run("stats", self.project, "--json")
        try:
            stats = json.loads(out)
        except ValueError:
            return problems + [f"stats failed (exit {rc})"]
        shown = {s["id"]: s["complete"] for s in stats["sources"]}
        if shown != {s["id"]: s["complete"] for s in sources}:
            problems.append("stats shows sources differently from the store")
        if rc != (1 if stats["incomplete"] else 0):
            problems.append(f"stats exit {rc} with {len(stats['incomplete'])} incomplete source(s)")
        return problems


def run_trials(workdir: str, trials: int, records: int, seed: int, round_size: int = 8,
               log: Optional[Callable[[str], None]] = None) -> list[Harness]:
    """``trials`` trials in rounds of ``round_size``, each round on a new project (so that
    the project, and the checks after each kill, stay small)."""
    rounds: list[Harness] = []
    kinds = ["import", "import-at-commit", "decide"]
    k = 0
    while k < trials:
        h = Harness(os.path.join(workdir, f"round{len(rounds)}"), records=records, seed=seed * 1000 + len(rounds))
        os.makedirs(h.dir, exist_ok=True)
        h.setup()
        rounds.append(h)
        for j in range(min(round_size, trials - k)):
            kind = kinds[j % 3] if j < 3 else h.rng.choice(kinds)
            t = h.import_trial(at_commit=kind == "import-at-commit") if kind != "decide" else h.decide_trial()
            k += 1
            if log:
                log(f"{k:4d} {t.kind:17s} {t.target:15s} killed after {t.killed_after:12s} {t.state:12s} "
                    f"{t.finished_by:30s} {'OK' if not t.problems else '; '.join(t.problems)}")
    return rounds


def summary(rounds: list[Harness]) -> dict:
    trials = [t for h in rounds for t in h.trials]
    out: dict = {"trials": len(trials), "problems": sum(len(t.problems) for t in trials), "by_kind": {}}
    for t in trials:
        d = out["by_kind"].setdefault(t.kind, {})
        key = t.state if t.kind != "decide" else "decide"
        d[key] = d.get(key, 0) + 1
        if t.kind != "decide":
            d["finished by: " + t.finished_by] = d.get("finished by: " + t.finished_by, 0) + 1
    out["processes_killed"] = sum(t.kills for t in trials)
    out["decisions_printed_and_kept"] = sum(len(h.printed) for h in rounds)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=150)
    ap.add_argument("--records", type=int, default=20000, help="records per imported file")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--round-size", type=int, default=8, help="trials per project before a fresh one")
    ap.add_argument("--keep", help="work in this folder (kept) instead of a temporary one")
    ap.add_argument("--out", help="write the summary and every trial as JSON here")
    args = ap.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or tmp
        os.makedirs(workdir, exist_ok=True)
        rounds = run_trials(workdir, args.trials, args.records, args.seed, args.round_size, log=print)
    result = summary(rounds)
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["records_per_file"] = args.records
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({**result, "trial_log": [t.__dict__ for h in rounds for t in h.trials]}, f, indent=1)
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
