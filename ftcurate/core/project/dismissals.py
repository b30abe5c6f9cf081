"""Dismissed findings: "not a duplicate", "not a leak", "not an outlier", "not a problem".

A reviewer who judges a finding wrong dismisses it. A dismissal is part of the records'
review state (:meth:`Project.dismiss`), so it is a decision like any other: one undo step,
logged with the reviewer and time, exported in the decision log. It names the other record
of a pair by its *content hash*, so a rescan that finds the same pair again finds it
dismissed.

:func:`apply_dismissals` is the one place that reads them: it returns the scan report as
the reviewer should see it, with the dismissed findings left out and counted, and everything
downstream (the views, the filter counts, the training gate, the CLI's report) uses that.
"""

from __future__ import annotations

import copy
from typing import Iterable, Optional

DUPLICATE, LEAK, OUTLIER, LENGTH_OUTLIER = "duplicate", "leak", "outlier", "length_outlier"
FLAG = "flag:"  # + the flag's name, e.g. "flag:refusal"

#: What a dismissal says, by kind.
SAYS = {DUPLICATE: "not a duplicate", LEAK: "not a leak", OUTLIER: "not an outlier",
        LENGTH_OUTLIER: "not a length outlier"}


def says(kind: str) -> str:
    return SAYS.get(kind) or (f"not a problem ({kind[len(FLAG):].replace('_', ' ')})" if kind.startswith(FLAG)
                              else f"not a {kind}")


# -- dismissing ----------------------------------------------------------------------------------


def dismiss_pair(project, a: int, b: int, reason: str = "", reviewer: Optional[str] = None) -> int:
    """"Not a duplicate": records ``a`` and ``b`` (ids) are different examples."""
    h = project.content_hashes([a, b])
    return project.dismiss([(a, DUPLICATE, h[b]), (b, DUPLICATE, h[a])], reason, reviewer)


def dismiss_leak(project, train: int, test: int, reason: str = "", reviewer: Optional[str] = None) -> int:
    """"Not a leak": training record ``train`` is not the held-out record ``test``."""
    h = project.content_hashes([test])
    return project.dismiss([(train, LEAK, h[test])], reason, reviewer)


def dismiss_finding(project, ids: Iterable[int], kind: str, reason: str = "",
                    reviewer: Optional[str] = None) -> int:
    """A single-record finding (``OUTLIER``, ``LENGTH_OUTLIER`` or ``FLAG + name``) is wrong
    for each of ``ids``."""
    return project.dismiss([(int(i), kind, "") for i in ids], reason, reviewer)


# -- reading -------------------------------------------------------------------------------------


def stored_report(project) -> Optional[dict]:
    """The project's last scan report as the reviewer sees it (dismissals applied), or None."""
    try:
        stored = project.load_scan("quality")
    except Exception:  # noqa: BLE001 - an unreadable old report is as good as none
        return None
    report = stored[1] if stored and isinstance(stored[1], dict) else None
    return apply_dismissals(project, report) if report is not None else None


def apply_dismissals(project, report: Optional[dict]) -> Optional[dict]:
    """``report`` (a project scan report: record ids) without its dismissed findings, which
    are counted in ``report["dismissed"]`` instead. The report itself is left unchanged; with
    no dismissal in the project it is returned as it is."""
    if not report or report.get("index") != "record_id":
        return report
    marks = project.dismissed()
    if not marks:
        return report
    by_rid = {rid: {(d["kind"], d["other"]) for d in items} for rid, items in marks.items()}
    partners = _partners(report, set(by_rid))
    hashes = project.content_hashes(partners | set(by_rid))
    out = copy.deepcopy(report)
    counts = {"duplicate pairs": 0, "leaks": 0, "outliers": 0, "flags": 0}

    def pair_off(a: int, b: int) -> bool:
        return ((DUPLICATE, hashes.get(b)) in by_rid.get(a, ()) or (DUPLICATE, hashes.get(a)) in by_rid.get(b, ()))

    def alone(rid: int, kind: str) -> bool:
        return (kind, "") in by_rid.get(int(rid), ())

    # near-duplicate clusters and exact groups: a member dismissed against the keeper leaves
    clusters = []
    for cluster in out.get("near_duplicate_clusters") or []:
        members = [int(i) for i in cluster.get("indices") or []]
        keep = cluster.get("keep")
        keep = int(keep) if keep is not None and int(keep) in members else (members[0] if members else None)
        gone = {m for m in members if m != keep and pair_off(keep, m)}
        counts["duplicate pairs"] += len(gone)
        members = [m for m in members if m not in gone]
        if len(members) < 2:
            continue
        cluster["indices"] = members
        cluster["pairs"] = [p for p in cluster.get("pairs") or []
                            if int(p["a"]) not in gone and int(p["b"]) not in gone]
        clusters.append(cluster)
    if "near_duplicate_clusters" in out:
        out["near_duplicate_clusters"] = clusters
        if "near_duplicates" in out:
            out["near_duplicates"] = [c["indices"] for c in clusters]
    groups = []
    for group in out.get("exact_duplicates") or []:
        members = [int(i) for i in group]
        gone = {m for m in members[1:] if pair_off(members[0], m)}
        counts["duplicate pairs"] += len(gone)
        members = [m for m in members if m not in gone]
        if len(members) >= 2:
            groups.append(members)
    if "exact_duplicates" in out:
        out["exact_duplicates"] = groups
    if "semantic_duplicates" in out:
        keep = [p for p in out["semantic_duplicates"] if not pair_off(int(p["a"]), int(p["b"]))]
        counts["duplicate pairs"] += len(out["semantic_duplicates"]) - len(keep)
        out["semantic_duplicates"] = keep
    for key in ("leakage", "validation_leakage"):
        if key in out:
            keep = [h for h in out[key] if (LEAK, hashes.get(int(h["test_index"]))) not in by_rid.get(int(h["index"]), ())]
            counts["leaks"] += len({int(h["index"]) for h in out[key]}) - len({int(h["index"]) for h in keep})
            out[key] = keep
    for key, kind in (("outliers", OUTLIER), ("length_outliers", LENGTH_OUTLIER)):
        if key in out:
            keep = [h for h in out[key] if not alone(h["index"], kind)]
            counts["outliers"] += len(out[key]) - len(keep)
            out[key] = keep
    if "flags" in out:
        keep = [f for f in out["flags"] if not alone(f["index"], FLAG + str(f.get("flag", "")))]
        counts["flags"] += len(out["flags"]) - len(keep)
        out["flags"] = keep
    out["dismissed"] = counts
    return out


def _partners(report: dict, marked: set[int]) -> set[int]:
    """Ids paired in the report with a record that has dismissals (their hashes are needed)."""
    out: set[int] = set()

    def add(a: int, b: int) -> None:
        if a in marked:
            out.add(b)
        if b in marked:
            out.add(a)

    for cluster in report.get("near_duplicate_clusters") or []:
        members = [int(i) for i in cluster.get("indices") or []]
        if marked.intersection(members):
            out.update(members)
    for group in report.get("exact_duplicates") or []:
        members = [int(i) for i in group]
        if marked.intersection(members):
            out.update(members)
    for p in report.get("semantic_duplicates") or []:
        add(int(p["a"]), int(p["b"]))
    for key in ("leakage", "validation_leakage"):
        for h in report.get(key) or []:
            if int(h["index"]) in marked:
                out.add(int(h["test_index"]))
    return out


# -- what can be dismissed on one record ------------------------------------------------------------


def findings_of(report: Optional[dict], rid: int) -> list[dict]:
    """The findings of ``report`` (a project report, dismissals applied) that name record
    ``rid`` and can be dismissed: ``{"kind", "other", "what"}`` with ``other`` the other
    record's id for pairs (None otherwise) and ``what`` a short text without numbers
    (the caller names the other record as people number it)."""
    if not report:
        return []
    rid = int(rid)
    out: list[dict] = []
    seen: set[tuple] = set()

    def add(kind: str, other: Optional[int], what: str) -> None:
        if (kind, other) not in seen:
            seen.add((kind, other))
            out.append({"kind": kind, "other": other, "what": what})

    for cluster in report.get("near_duplicate_clusters") or []:
        members = [int(i) for i in cluster.get("indices") or []]
        keep = cluster.get("keep")
        keep = int(keep) if keep is not None and int(keep) in members else (members[0] if members else None)
        if rid in members:
            for m in ([x for x in members if x != rid] if rid == keep else [keep]):
                add(DUPLICATE, m, "near duplicate")
    for group in report.get("exact_duplicates") or []:
        members = [int(i) for i in group]
        if rid in members:
            for m in ([x for x in members[1:]] if rid == members[0] else [members[0]]):
                add(DUPLICATE, m, "exact duplicate")
    for p in report.get("semantic_duplicates") or []:
        a, b = int(p["a"]), int(p["b"])
        if rid in (a, b):
            add(DUPLICATE, b if rid == a else a, "semantic duplicate")
    for key in ("leakage", "validation_leakage"):
        for h in report.get(key) or []:
            if int(h["index"]) == rid:
                add(LEAK, int(h["test_index"]), f"leaks a held-out record ({h.get('method', '?')})")
    for key, kind, what in (("outliers", OUTLIER, "outlier"), ("length_outliers", LENGTH_OUTLIER, "length outlier")):
        if any(int(h["index"]) == rid for h in report.get(key) or []):
            add(kind, None, what)
    for f in report.get("flags") or []:
        if int(f["index"]) == rid:
            add(FLAG + str(f.get("flag", "")), None, str(f.get("flag", "")).replace("_", " "))
    return out


def dismiss(project, rid: int, finding: dict, reason: str = "", reviewer: Optional[str] = None) -> int:
    """Dismiss one entry of :func:`findings_of` for record ``rid``."""
    kind, other = finding["kind"], finding.get("other")
    if kind == DUPLICATE:
        return dismiss_pair(project, rid, int(other), reason, reviewer)
    if kind == LEAK:
        return dismiss_leak(project, rid, int(other), reason, reviewer)
    return dismiss_finding(project, [rid], kind, reason, reviewer)
