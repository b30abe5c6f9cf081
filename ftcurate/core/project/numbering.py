"""One numbering for records everywhere people read them.

Inside a project, records are stored under SQLite row ids; people see, and ``ftcurate decide``
takes, a record's **0-based index in its source file** (a JSONL line among the records, a JSON
array element, a CSV row). The two differ as soon as the import dropped a row. Every view,
message and report that names a record uses the index; the helpers here translate.
"""

from __future__ import annotations

import copy
from typing import Any, Iterable, Optional

#: What a numbered report's ``"index"`` field says its numbers are.
SOURCE_INDEX = "source_index"


def record_numbers(project, ids: Iterable[int]) -> dict[int, int]:
    """Record id -> its index in its source file, for the ids still in the project."""
    out: dict[int, int] = {}
    for rid, idx, *_ in project.light_rows(sorted({int(i) for i in ids})):
        out[int(rid)] = int(idx)
    return out


def first_numbers(project, ids: Iterable[int], n: int = 5) -> str:
    """The first ``n`` records as people number them, for a message: "5, 117, 230 and 4 more"."""
    ids = list(ids)
    nums = record_numbers(project, ids[:n])
    shown = ", ".join(str(nums.get(int(i), i)) for i in ids[:n])
    more = len(ids) - n
    return shown + (f" and {more:,} more" if more > 0 else "")


def report_record_ids(report: Optional[dict], scanned: bool = False) -> set[int]:
    """Every record id a project scan report names as a finding (training, test and validation
    records); ``scanned``: also the ids of every scanned record (``scanned_ids``)."""
    out: set[int] = set()
    if not report:
        return out

    def add(rid):
        out.add(int(rid))
        return rid

    _walk(report, add, scanned)
    return out


def number_report(project, report: dict) -> dict:
    """A copy of a project scan report (record ids) with every record named by its index in
    its source file (``"index": "source_index"``): the numbers ``ftcurate decide`` takes."""
    if report.get("index") != "record_id":
        return report
    numbers = record_numbers(project, report_record_ids(report, scanned=True))
    out = copy.deepcopy(report)
    _walk(out, lambda rid: numbers.get(int(rid), rid), scanned=True)
    out["index"] = SOURCE_INDEX
    out["numbering"] = ("each record is named by its 0-based index in its source file "
                        "(the number `ftcurate decide` takes)")
    return out


# -- where a report holds record ids ----------------------------------------------------------

_GROUP_LISTS = ("exact_duplicates", "conflicting", "near_duplicates", "test_duplicates")
_HIT_LISTS = ("outliers", "length_outliers", "flags", "leakage", "validation_leakage", "against_index")


def _walk(report: dict, fix, scanned: bool) -> None:
    """Apply ``fix`` (id -> new value) to every record id in ``report`` (``scanned``: the
    ``scanned_ids`` list too), in place."""

    def ids(values: Any) -> list:
        return [fix(v) for v in values] if isinstance(values, list) else values

    for key in _GROUP_LISTS:
        groups = report.get(key)
        if isinstance(groups, list):
            report[key] = [ids(g) for g in groups]
    for cluster in report.get("near_duplicate_clusters") or []:
        if not isinstance(cluster, dict):
            continue
        cluster["indices"] = ids(cluster.get("indices") or [])
        if cluster.get("keep") is not None:
            cluster["keep"] = fix(cluster["keep"])
        for pair in cluster.get("pairs") or []:
            _pair(pair, fix)
    for pair in report.get("semantic_duplicates") or []:
        _pair(pair, fix)
    for key in _HIT_LISTS:
        for hit in report.get(key) or []:
            if isinstance(hit, dict):
                for field in ("index", "test_index"):
                    if hit.get(field) is not None:
                        hit[field] = fix(hit[field])
    if scanned and isinstance(report.get("scanned_ids"), list):
        report["scanned_ids"] = ids(report["scanned_ids"])


def _pair(pair: Any, fix) -> None:
    if isinstance(pair, dict):
        for field in ("a", "b"):
            if pair.get(field) is not None:
                pair[field] = fix(pair[field])
