"""Loading benchmark: stream a large OpenAI-chat JSONL through validation and into a project.

Prints times and peak memory as ratios against baselines run in the same process on
the same file:
  * baseline A: `[json.loads(line) for line in f]` (parse only, keeps every object),
  * baseline B: `pandas.read_json(lines=True)` (a common way to load such files).
The same records are also written as a JSON array (one element a line, as the exporter
writes it) and validated: its peak memory is compared with the JSON Lines validation of the
same run (arrays stream element by element), next to `json.load` of the array.
Usage: python benchmarks/bench_load.py [--n 1000000] [--keep] [--only validate]
  --only validate: just the two validations (JSON Lines, JSON array) and json.load(array)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

WORDS = ("the a cat dog number sum apples train model answer question twelve seven minus plus "
         "divide times total each how many left price store bought gave").split()


def make_file(path: str, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            q = " ".join(rng.choices(WORDS, k=rng.randint(8, 30)))
            a = " ".join(rng.choices(WORDS, k=rng.randint(5, 40)))
            f.write(json.dumps({"messages": [{"role": "system", "content": "You are a tutor."},
                                             {"role": "user", "content": f"{i}: {q}?"},
                                             {"role": "assistant", "content": a + "."}]}) + "\n")


def peak_rss_of(code: str) -> tuple[float, float]:
    """Run code in a fresh interpreter; return (seconds, peak RSS MB)."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(out.stderr)
    dt = time.perf_counter() - t
    return dt, float(out.stdout.strip().splitlines()[-1])


RSS = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--only", choices=["validate"], help="run only the validations (and json.load of the array)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ftcurate-bench-")
    path = os.path.join(tmp, "big.jsonl")
    make_file(path, args.n)
    size_mb = os.path.getsize(path) / 1e6
    array = os.path.join(tmp, "big.json")
    with open(path, encoding="utf-8") as src, open(array, "w", encoding="utf-8") as dst:
        dst.write("[\n")
        for i, line in enumerate(src):
            dst.write(("" if i == 0 else ",\n") + "  " + line.rstrip("\n"))
        dst.write("\n]\n")
    print(f"file: {args.n:,} records, {size_mb:.0f} MB (JSON array: {os.path.getsize(array) / 1e6:.0f} MB)")
    base = f"import sys; sys.path.insert(0, {ROOT!r}); P = {path!r}\n"
    array_runs = {
        "baseline json.load(array)": base + f"import json\nrows=json.load(open({array!r}, 'rb'))\n" + RSS,
        "ftcurate validate JSON array": base + "from ftcurate.core.io.validate import validate_path\n"
                                        f"r=validate_path({array!r})\nassert r.loaded == r.records\n" + RSS,
    }
    runs = {
        "baseline json.loads list": base + "import json\nrows=[json.loads(l) for l in open(P, 'rb') if l.strip()]\n" + RSS,
        "baseline pandas.read_json": base + "import pandas as pd\ndf=pd.read_json(P, lines=True)\n" + RSS,
        "ftcurate validate (stream)": base + "from ftcurate.core.io.validate import validate_path\n"
                                      "r=validate_path(P)\nassert r.loaded == r.records\n" + RSS,
        "ftcurate import into project": base + "import os\nfrom ftcurate.core.project.store import Project\n"
                                        "from ftcurate.core.io.ingest import import_dataset\n"
                                        f"pp={os.path.join(tmp, 'p.ftcurate')!r}\n"
                                        "[os.remove(pp + s) for s in ('', '-wal', '-shm') if os.path.exists(pp + s)]\n"
                                        "p=Project.open(pp, create=True)\nr=import_dataset(p, P)\np.close()\n" + RSS,
    }
    runs.update(array_runs)
    if args.only == "validate":
        runs = {k: v for k, v in runs.items() if "validate" in k or k == "baseline json.load(array)"}
    results = {}
    for name, code in runs.items():
        gc.collect()
        results[name] = peak_rss_of(code)
        print(f"{name:32s} {results[name][0]:7.1f} s   peak RSS {results[name][1]:7.0f} MB "
              f"({results[name][1] / size_mb:.2f}x file)")
    if "baseline json.loads list" in results:
        t0, m0 = results["baseline json.loads list"]
        print("\nratios against baseline json.loads list (time, memory):")
        for name, (t, m) in results.items():
            print(f"  {name:32s} time {t / t0:5.2f}x   memory {m / m0:5.2f}x")
    t0, m0 = results["ftcurate validate (stream)"]
    print("\nratios against ftcurate validate of the JSON Lines file (time, memory):")
    for name in ("ftcurate validate JSON array", "baseline json.load(array)"):
        t, m = results[name]
        print(f"  {name:32s} time {t / t0:5.2f}x   memory {m / m0:5.2f}x")
    if not args.keep:
        for f in os.listdir(tmp):
            os.remove(os.path.join(tmp, f))
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
