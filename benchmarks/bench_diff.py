"""Word diff of the Duplicates view on long texts: ftcurate's review.word_diff against
difflib.SequenceMatcher over the same words (the baseline), in the same run.

    .venv/bin/python benchmarks/bench_diff.py [--sizes 20000 120000 600000]
"""

from __future__ import annotations

import argparse
import difflib
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ftcurate.core.project import review  # noqa: E402


def texts(size: int, seed: int = 1) -> tuple[str, str]:
    rng = random.Random(seed)
    vocab = ["the", "a", "of", "=", "and", "is", "to", ".", ","] + [f"w{i}" for i in range(500)]
    words = [rng.choice(vocab) for _ in range(size // 4)]
    other = list(words)
    for _ in range(size // 200):
        other[rng.randrange(len(other))] = rng.choice(vocab)
    return " ".join(words)[:size], " ".join(other)[:size]


def best(fn, repeat: int = 3) -> float:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[20_000, 120_000, 600_000])
    args = p.parse_args()
    print("| characters | word_diff (s) | difflib (s) | difflib / word_diff |")
    print("|---|---|---|---|")
    for size in args.sizes:
        a, b = texts(size)
        ours = best(lambda: review.word_diff(a, b))
        base = best(lambda: difflib.SequenceMatcher(None, a.split(" "), b.split(" "), autojunk=False).get_opcodes(),
                    repeat=1)
        print(f"| {size:,} | {ours:.3f} | {base:.3f} | x{base / ours:.1f} |")


if __name__ == "__main__":
    main()
