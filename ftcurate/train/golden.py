"""The golden (held-out) set of an evaluation: its records, how reports name them, and which
of them the training data leaks.

Records are named by their 0-based index in their source file (the number ``ftcurate
decide`` takes), never by a store id. A golden item is *leaked* when the project's last scan
found a record of the training split that copies or rephrases it (whatever that record's
review state: the raw data holds it either way). Reports give every number for the clean
items too, and the verdict uses those.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

from ..core.project.records import Record
from .data import is_project_file


class GoldenError(ValueError):
    """The golden set cannot be used (no such file, no records, no project test split)."""


@dataclass
class Golden:
    records: list[Record]
    indices: list[int]  # 0-based index of each record in its source file
    sources: list[str]  # each record's source file name ("" for records given directly)
    leaked: list[bool]
    origin: str = "records"  # the file or project, in words
    project_path: Optional[str] = None  # the project the leak check used
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def n_leaked(self) -> int:
        return sum(self.leaked)

    def leaked_indices(self) -> list[int]:
        return [i for i, bad in zip(self.indices, self.leaked) if bad]


def _project_leaked_test_ids(project) -> set[int]:
    """Store ids of test records that the last scan found leaked by a record that is still in
    the training split (whatever its review state)."""
    stored = project.load_scan("quality")
    if not stored:
        return set()
    _, report = stored
    if not isinstance(report, dict) or report.get("index", "record_id") != "record_id":
        return set()
    hits = [h for h in report.get("leakage") or [] if isinstance(h, dict)]
    if not hits:
        return set()
    wanted = sorted({int(h["index"]) for h in hits} | {int(h["test_index"]) for h in hits})
    split: dict[int, str] = {}
    for rid in wanted:
        try:
            split[rid] = project.get(rid).split
        except KeyError:
            continue
    return {int(h["test_index"]) for h in hits
            if split.get(int(h["index"])) == "train" and split.get(int(h["test_index"])) == "test"}


def _from_project(path: str, split: str = "test") -> Golden:
    from ..core.project.store import Project

    with Project.open(path, readonly=True) as project:
        names = {s["id"]: os.path.basename(str(s["path"] or "")) for s in project.sources()}
        # the test split is the golden set whatever its review state; validation: not rejected
        stored = [sr for sr in project.iter_records(split=split) if split == "test" or sr.status != "rejected"]
        if not stored:
            if split != "test":
                raise GoldenError(f"{path}: the project has no {split} records to evaluate on")
            raise GoldenError(f"{path}: the project has no test (held-out) records; import one with "
                              "`ftcurate import FILE --project P --role test`")
        leaked_ids = _project_leaked_test_ids(project) if split == "test" else set()
    return Golden(records=[sr.record for sr in stored], indices=[sr.index for sr in stored],
                  sources=[names.get(sr.source_id, "") for sr in stored],
                  leaked=[sr.id in leaked_ids for sr in stored], origin=os.path.abspath(path),
                  project_path=os.path.abspath(path))


def _leaked_in_file(path: str, project_path: str) -> Optional[set[int]]:
    """Indices (in ``path``) of the items of a held-out file that the project's last scan found
    leaked, when the project holds this same file as test data; None when it does not."""
    from ..core.io.ingest import file_sha256
    from ..core.project.store import Project

    digest = file_sha256(path)
    with Project.open(project_path, readonly=True) as project:
        sources = [s for s in project.sources() if s.get("role") == "test" and s.get("sha256") == digest]
        if not sources:
            return None
        ids = {s["id"] for s in sources}
        leaked_ids = _project_leaked_test_ids(project)
        if not leaked_ids:
            return set()
        out = set()
        for rid in leaked_ids:
            try:
                sr = project.get(rid)
            except KeyError:
                continue
            if sr.source_id in ids:
                out.add(sr.index)
    return out


def _prompt_records(reader, wanted: set[int]) -> dict[int, Record]:
    """Chat records without an assistant turn (prompts only), read from the raw objects."""
    from ..core.project.records import Message

    out: dict[int, Record] = {}
    for item in reader._raw():
        if item.index not in wanted or item.error is not None or not isinstance(item.obj, dict):
            continue
        msgs = item.obj.get("messages")
        turns = [Message(m["role"], m["content"]) for m in msgs if isinstance(m, dict)
                 and m.get("role") in ("system", "user") and isinstance(m.get("content"), str)] \
            if isinstance(msgs, list) else []
        if any(m.role == "user" for m in turns):
            out[item.index] = Record(turns)
    return out


def _from_file(path: str, project_path: Optional[str]) -> Golden:
    from ..core.io.formats import DatasetReader

    records, indices, bad = [], [], 0
    prompts_only: set[int] = set()
    reader = DatasetReader(path)
    found: dict[int, Record] = {}
    for item in reader:
        if item.ok:
            found[item.index] = item.record
        elif [e.key for e in item.errors] == ["example_missing_assistant_message"]:
            prompts_only.add(item.index)  # a golden prompt without a reference answer
        else:
            bad += 1
    if prompts_only:
        found.update(_prompt_records(reader, prompts_only))
        bad += len(prompts_only) - sum(1 for i in prompts_only if i in found)
    for index in sorted(found):
        records.append(found[index])
        indices.append(index)
    if not records:
        raise GoldenError(f"{path}: no usable records")
    golden = Golden(records=records, indices=indices, sources=[os.path.basename(path)] * len(records),
                    leaked=[False] * len(records), origin=os.path.abspath(path))
    if bad:
        golden.notes.append(f"{bad} record(s) of {os.path.basename(path)} could not be read and are left out "
                            "(see `ftcurate validate`).")
    if project_path and os.path.isfile(project_path):
        try:
            leaked = _leaked_in_file(path, project_path)
        except Exception as exc:  # noqa: BLE001 - the leak check is extra information
            golden.notes.append(f"Could not check leakage against {os.path.basename(project_path)}: {exc}")
            leaked = None
        if leaked is not None:
            golden.leaked = [i in leaked for i in indices]
            golden.project_path = os.path.abspath(project_path)
    return golden


def load_golden(source: Union[str, Sequence[Record]], project_path: Optional[str] = None,
                split: str = "test") -> Golden:
    """The golden set: a project's test split (every test record, whatever its review state;
    ``split="validation"``: its validation records that are not rejected), a dataset file, or
    records given directly. ``project_path``: the training project, whose last scan says
    which items of a held-out *file* leak (when it holds that file as test data). Raises
    GoldenError."""
    if not isinstance(source, (str, os.PathLike)):
        records = list(source)
        if not records:
            raise GoldenError("no golden records")
        return Golden(records=records, indices=list(range(len(records))), sources=[""] * len(records),
                      leaked=[False] * len(records))
    path = os.fspath(source)
    if not os.path.exists(path):
        raise GoldenError(f"{path}: no such file")
    if os.path.isdir(path):
        raise GoldenError(f"{path} is a folder: give a held-out dataset file or a project")
    if is_project_file(path):
        return _from_project(path, split)
    return _from_file(path, project_path)
