"""Where a quality scan runs: ``local`` (this process, :mod:`ftcurate.core.quality.scan`) or
``ray`` (a Ray cluster, :mod:`ftcurate.core.engines.ray_engine`). Both take the same input (a
dataset file, a folder of shards, a project's records) and give the same report
(docs/scanning.md); the setting is ``ScanSettings.engine`` (``ftcurate scan --engine``).

:func:`scan_files` and :func:`scan_records_with` are what :func:`ftcurate.core.quality.scan.scan_files`
and ``scan_project`` hand over to when the engine is not ``local`` (or the input is a folder).
"""

from __future__ import annotations

from typing import Optional

from ..progress import CancelCheck, ProgressCallback

ENGINES = ("local", "ray")


def _check(engine: str) -> str:
    if engine not in ENGINES:
        raise ValueError(f"unknown scan engine {engine!r}: use one of {', '.join(ENGINES)}")
    return engine


def scan_files(train_path: str, test_path: Optional[str] = None, fmt: str = "auto", mapping: Optional[dict] = None,
               settings=None, progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None,
               on_result=None) -> dict:
    """Scan a dataset file or a folder of shards (and a held-out file) with ``settings.engine``."""
    from ..quality.scan import ScanSettings

    s = settings or ScanSettings()
    if _check(s.engine) == "ray":
        from .ray_engine import scan_files as ray_scan_files

        return ray_scan_files(train_path, test_path, fmt, mapping, s, progress=progress, cancel=cancel,
                              on_result=on_result)
    from .local import scan_files as local_scan_files

    return local_scan_files(train_path, test_path, fmt, mapping, s, progress=progress, cancel=cancel,
                            on_result=on_result)


def scan_records_with(engine: str, train, test=(), validation=(), settings=None,
                      progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None,
                      on_result=None) -> dict:
    """:func:`ftcurate.core.quality.scan.scan_records` on ``engine`` (records already in memory,
    e.g. a project's)."""
    if _check(engine) == "ray":
        from .ray_engine import scan_records as ray_scan_records

        return ray_scan_records(train, test, validation, settings=settings, progress=progress, cancel=cancel,
                                on_result=on_result)
    from ..quality.scan import scan_records

    return scan_records(train, test, validation, settings=settings, progress=progress, cancel=cancel,
                        on_result=on_result)
