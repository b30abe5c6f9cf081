"""The loader fuzzing harness (benchmarks/fuzz_loaders.py), small and with a fixed seed:
mutations of real files (tests/data slices, the sample, ../shared/realdata slices when
there) never make validate / import reading raise, exit with a traceback, or silently drop
a complete record (issue 12). The larger run and its results: docs/formats.md."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _harness():
    spec = importlib.util.spec_from_file_location("fuzz_loaders", REPO / "benchmarks" / "fuzz_loaders.py")
    if spec.name in sys.modules:
        return sys.modules[spec.name]
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_mutated_real_files_never_crash_or_lose_records(tmp_path):
    fuzz = _harness()
    # Every mutation kind once per source file, each source cut to its first ~10 KB of whole
    # records: a few seconds.
    summary = fuzz.run(mutants_per_file=len(fuzz.MUTATIONS), seed=12, max_bytes=10_000, cli_every=6,
                       workdir=str(tmp_path))
    assert summary.files >= 11 and summary.mutants >= 11 * len(fuzz.PARQUET_MUTATIONS)
    assert summary.faults == [], "\n".join(summary.faults[:20])
    assert summary.records > 0 and summary.rejected > 0  # the mutants did break records


def test_the_oracle_sees_a_silent_drop(tmp_path):
    """The harness would notice a reader that drops a complete record (checked against a
    fake reader that loses the last record of every file)."""
    fuzz = _harness()
    src = next(s for s in (fuzz._prepare(s, str(tmp_path)) for s in fuzz.sources(str(tmp_path), False, 16_000))
               if s is not None and s.kind == "jsonl")
    lines = src.data.split(b"\n")
    dropped = b"\n".join(lines[:-2]) + b"\n"  # the last record removed: as if never read
    outcome = fuzz.check(src, dropped, [(0, 0)], "drop", str(tmp_path / "m.jsonl"))
    assert any("did not load" in f for f in outcome.faults)
