"""`ftcurate import` of a large OpenAI-chat JSON Lines file, whole process (issue 14).

Side by side, in the same run, on the same file (benchmarks/bench_load.py's generator:
system + user + assistant, ~378 bytes a record), each in a fresh process, one after the other:

  * ``json.loads``: ``[json.loads(l) for l in open(f, 'rb') if l.strip()]`` - a plain parse of
    the file that keeps the objects (the yardstick of bench_load.py);
  * ``baseline``: ``python -m ftcurate.cli import FILE --project P`` with the code of a commit
    before the import work (``git archive`` into a temporary folder, as bench_scale.py does);
  * ``now``: the same command with the current code (the working tree, or ``--now-commit``);
  * ``now, one process``: the same with ``FTCURATE_WORKERS=1`` (the file read in the main
    process; what a 1-core machine gets).

Each import goes into a new project file next to the data. Printed: wall time, CPU time of the
process and its workers, peak RSS (largest process), the load average, and the ratios against
the baseline and against the plain parse of the same round. ``--check`` compares the stored
rows (index, line, split, content, hash, metadata), the review rows and the source summary of
the two projects of a round.

Usage:
  python benchmarks/bench_import.py --n 1000000 [--rounds 2] [--check]
  python benchmarks/bench_import.py --n 200000 --baseline-commit <sha> --skip json
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from bench_load import make_file  # noqa: E402

BASELINE = "6826aaa"  # main before the import work of issue 14

PARSE = "import json, sys\nrows = [json.loads(l) for l in open(sys.argv[1], 'rb') if l.strip()]\nprint(len(rows))\n"


def unpack(commit: str, dest: str) -> str:
    """The ftcurate package of ``commit`` in ``dest`` (git archive)."""
    os.makedirs(dest)
    tar = os.path.join(dest, "code.tar")
    subprocess.run(["git", "-C", ROOT, "archive", "-o", tar, commit, "ftcurate"], check=True)
    with tarfile.open(tar) as tf:
        tf.extractall(dest, filter="data")
    os.remove(tar)
    return dest


def load_average() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def run(cmd: list[str], cwd: str, env: dict) -> dict:
    """Run ``cmd``: wall time, CPU time (the process and its workers) and peak RSS of its
    largest process (``wait4``)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"wall": wall, "rc": proc.returncode, "cpu": usage.ru_utime + usage.ru_stime,
                "rss_mb": usage.ru_maxrss / 1024, "load": load_average(),
                "out": out.read().decode("utf-8", "replace"), "err": err.read().decode("utf-8", "replace")}


def import_cmd(project: str, data: str) -> list[str]:
    return [sys.executable, "-m", "ftcurate.cli", "import", data, "--project", project, "--json"]


def fresh(path: str) -> str:
    for suffix in ("", "-wal", "-shm", ".lock"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return path


def stored(path: str) -> tuple:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT idx, line, split, content, content_hash, metadata FROM records ORDER BY id").fetchall()
        reviews = db.execute("SELECT status, edited, labels, note FROM reviews ORDER BY record_id").fetchall()
        src = db.execute("SELECT format, role, sha256, total, state, options, error_counts, errors_left_out "
                         "FROM sources").fetchall()
        errors = db.execute("SELECT line, idx, key, message FROM import_errors ORDER BY id").fetchall()
    finally:
        db.close()
    return rows, reviews, src, errors


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--baseline-commit", default=BASELINE)
    ap.add_argument("--now-commit", default=".", help="'.' (default): the working tree; else a commit, unpacked")
    ap.add_argument("--skip", nargs="*", default=[], choices=["json", "baseline", "serial"])
    ap.add_argument("--check", action="store_true", help="compare what the baseline and now stored")
    ap.add_argument("--dir", help="folder for the data and projects (default: a temporary one)")
    args = ap.parse_args()
    tmp = args.dir or tempfile.mkdtemp(prefix="ftcurate-bench-import-")
    os.makedirs(tmp, exist_ok=True)
    data = os.path.join(tmp, f"chat-{args.n}.jsonl")
    if not os.path.exists(data):
        make_file(data, args.n)
    size_mb = os.path.getsize(data) / 1e6
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("FTCURATE_WORKERS", None)
    code = tempfile.mkdtemp(prefix="ftcurate-code-")
    base = None if "baseline" in args.skip else unpack(args.baseline_commit, os.path.join(code, "base"))
    now = ROOT if args.now_commit == "." else unpack(args.now_commit, os.path.join(code, "now"))
    print(f"file: {args.n:,} records, {size_mb:.0f} MB; {os.cpu_count()} cores; baseline {args.baseline_commit}, "
          f"now {args.now_commit}; load average {load_average()}", flush=True)
    runs = [("json.loads", None), ("baseline", base), ("now", now), ("now, one process", now)]
    for rnd in range(1, args.rounds + 1):
        results: dict = {}
        for name, root in runs:
            if (name == "json.loads" and "json" in args.skip) or (name == "baseline" and root is None) \
                    or (name == "now, one process" and "serial" in args.skip):
                continue
            if name == "json.loads":
                res = run([sys.executable, "-c", PARSE, data], ROOT, env)
            else:
                project = fresh(os.path.join(tmp, f"{name.split(',')[0]}-{'1' if 'one' in name else 'n'}.ftcurate"))
                e = dict(env, FTCURATE_WORKERS="1") if "one process" in name else env
                res = run(import_cmd(project, data), root, e)
                res["project"] = project
                if res["rc"] == 0:
                    imp = json.loads(res["out"])["imports"][0]
                    assert imp["added"] == args.n, imp
            if res["rc"] != 0:
                raise SystemExit(f"{name} failed (exit {res['rc']}):\n{res['err'][-3000:]}")
            results[name] = res
            print(f"round {rnd}  {name:18s} {res['wall']:7.1f} s   cpu {res['cpu']:6.1f} s   peak RSS "
                  f"{res['rss_mb']:6.0f} MB   load {res['load']}", flush=True)
        parse = results.get("json.loads")
        old = results.get("baseline")
        for name in ("baseline", "now", "now, one process"):
            r = results.get(name)
            if r is None:
                continue
            ratios = []
            if parse:
                ratios.append(f"{r['wall'] / parse['wall']:5.2f}x the plain parse")
            if old and name != "baseline":
                ratios.append(f"{r['wall'] / old['wall']:5.2f}x the baseline ({old['wall'] / r['wall']:.1f}x faster)")
            if ratios:
                print(f"  {name:18s} " + ",  ".join(ratios))
        if args.check and old and "now" in results:
            same = stored(old["project"]) == stored(results["now"]["project"])
            print(f"  stored rows, reviews, source and errors identical (baseline vs now): {same}", flush=True)
            if not same:
                raise SystemExit("the projects differ")
    if not args.dir:
        for f in os.listdir(tmp):
            os.remove(os.path.join(tmp, f))
        os.rmdir(tmp)
    import shutil

    shutil.rmtree(code, ignore_errors=True)


if __name__ == "__main__":
    main()
