"""The local engine: :func:`ftcurate.core.quality.scan.scan_files` in this process, plus a folder of
shards read as one dataset.

A folder of shards is one dataset: its files (``*.jsonl``, ``*.json``, ``*.parquet``, ``*.csv``;
hidden files skipped) in name order, records numbered across them: shard k's record i is
number ``first_k + i``, ``first_k`` the records of the shards before it. The report lists each
shard with its first number (``"shards"``). The Ray engine numbers them the same way.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

from ..progress import CancelCheck, ProgressCallback

SHARD_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


def shard_files(folder: str) -> list[str]:
    """The shard files of ``folder`` in name order (raises ValueError when there are none)."""
    names = sorted(n for n in os.listdir(folder)
                   if not n.startswith(".") and n.lower().endswith(SHARD_SUFFIXES)
                   and os.path.isfile(os.path.join(folder, n)))
    if not names:
        raise ValueError(f"{folder}: no dataset shards in this folder (*.jsonl, *.json, *.parquet, *.csv)")
    return [os.path.join(folder, n) for n in names]


def read_shard(path: str, fmt: str = "auto", mapping: Optional[dict] = None, first: int = 0,
               split: str = "train") -> tuple[list, int, int, str]:
    """``(items, rejected, records, format)`` of one file: ``items`` pairs ``(first + index,
    Record)`` of its valid records; ``records`` counts valid and rejected ones."""
    from ..io.formats import DatasetReader

    reader = DatasetReader(path, fmt, mapping, split=split)
    items, rejected, count = [], 0, 0
    for p in reader:
        count = max(count, p.index + 1)
        if p.ok:
            items.append((first + p.index, p.record))
        else:
            rejected += 1
    return items, rejected, count, reader.format


def scan_files(train_path: str, test_path: Optional[str] = None, fmt: str = "auto", mapping: Optional[dict] = None,
               settings=None, progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None,
               on_result=None) -> dict:
    from ..quality import scan as qscan

    s = dataclasses.replace(settings or qscan.ScanSettings(), engine="local")
    if not os.path.isdir(train_path):
        return qscan.scan_files(train_path, test_path, fmt, mapping, s, progress=progress, cancel=cancel,
                                on_result=on_result)
    from ..project.columns import RecordColumns

    # the shards' records as one column store (one shard's records as objects at a time)
    train, shards, rejected, first, formats = RecordColumns(), [], 0, 0, set()
    for path in shard_files(train_path):
        items, rej, count, form = read_shard(path, fmt, mapping, first)
        for key, record in items:
            train.append(key, record)
        del items
        rejected += rej
        formats.add(form)
        shards.append({"file": os.path.basename(path), "first": first, "records": count})
        first += count
    test, test_rejected, test_count = [], 0, 0
    if test_path:
        test, test_rejected, test_count, _ = read_shard(test_path, split="test")
    report = qscan.scan_records(train, test, settings=s, progress=progress, cancel=cancel, on_result=on_result)
    report.update({"index": "file", "train_file": train_path, "shards": shards,
                   "format": formats.pop() if len(formats) == 1 else "mixed",
                   "records": first, "scanned": len(train), "rejected": rejected})
    if test_path:
        report.update({"test_file": test_path, "test_records": test_count, "test_rejected": test_rejected})
    return report
