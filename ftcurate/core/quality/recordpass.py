"""One pass over the records on every core: heuristic flags, exact-duplicate fingerprints and
token counts (the per-record Python work of a scan).

Large sets (:data:`MIN_PARALLEL` records or more, two or more cores) are cut into chunks that
worker processes check (``spawn``: no fork of a process that runs Qt threads); smaller ones, a
scan with a real tokenizer for token counts, a main script without an ``if __name__ ==
"__main__":`` guard (see :func:`_main_is_safe`) or ``FTCURATE_WORKERS=1`` run in this process,
with the same results. Each worker gets the records of its chunk and returns plain lists: the flags of
each record, the 16-byte fingerprints of its normalised conversation, prompt and answer (``b""``
when the text normalises to nothing) and its token count. The caller groups the fingerprints
(:func:`groups_of`, :func:`conflicts_of`): the same groups as
:func:`~ftcurate.core.quality.dedup.exact_duplicate_groups` and
:func:`~ftcurate.core.quality.dedup.conflicting_groups`.

Cancelling stops at the next chunk and ends the workers; nothing is kept.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..progress import CancelCheck, ProgressCallback, Reporter

MIN_PARALLEL = 20_000
CHUNK = 4_000


def workers(n: int) -> int:
    """Processes to use for ``n`` records (1: this process)."""
    env = os.environ.get("FTCURATE_WORKERS", "").strip()
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    if env:
        try:
            cores = max(1, int(env))
        except ValueError:
            pass
    if getattr(sys, "frozen", False) or n < MIN_PARALLEL or not _main_is_safe():
        return 1
    return max(1, cores)


def _main_is_safe() -> bool:
    """Whether a ``spawn`` worker may import this program's main module: it runs it again as
    ``__mp_main__``, which is harmless only behind an ``if __name__ == "__main__":`` guard (the
    ``ftcurate`` and ``ftcurate-gui`` commands, ``python -m ...``, ``python -c``). A script
    without one would start the scan again in every worker, so it keeps the work in-process."""
    main = sys.modules.get("__main__")
    if main is None or getattr(getattr(main, "__spec__", None), "name", None):
        return True
    path = getattr(main, "__file__", None)
    if not path:
        return True
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(1 << 20)
    except OSError:
        return False
    return "__name__" in text and "__main__" in text


@dataclass
class PassResult:
    """Per record: ``flags`` ([(flag, reason), ...]; ``()`` none; None: not checked), the 16-byte
    fingerprints of its conversation, prompt and answer (``S16`` arrays, ``b""``: empty) and its
    token count (int64 array). Arrays rather than a million small objects: the scan keeps them
    while it runs."""

    flags: list = field(default_factory=list)
    content: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="S16"))
    prompt: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="S16"))
    answer: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="S16"))
    tokens: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _chunk(records, hs_dict: dict, lowercase: bool, check: Sequence[bool]) -> tuple:
    """Worker: the pass over one chunk of records."""
    from . import dedup
    from .heuristics import HeuristicSettings, check_record
    from .scan import content_text
    from ..io.validate import TokenCounter
    from ..project.records import Record

    hs = HeuristicSettings.from_dict(hs_dict)
    counter = TokenCounter()
    flags, content, prompt, answer, tokens = [], [], [], [], []
    fp = dedup._fingerprint
    norm = dedup.normalize
    for r, want in zip(records, check):
        if isinstance(r, str):  # the record's canonical content JSON (cheap to send)
            r = Record.from_content(r)
        found = check_record(r, hs, counter) if want else None
        flags.append(None if found is None else [list(x) for x in found] if found else ())
        c = norm(content_text(r), lowercase)
        p = norm(r.prompt_text, lowercase)
        content.append(fp(c) if c else b"")
        prompt.append(fp(p) if p else b"")
        answer.append(fp(norm(r.answer_text, lowercase)))
        tokens.append(counter.messages(r)[0])
    return flags, content, prompt, answer, tokens


def record_pass(records: Sequence, hs, lowercase: bool = False, check: Optional[Sequence[bool]] = None,
                progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None,
                message: str = "checking records") -> PassResult:
    """Flags (where ``check[i]``), fingerprints and token counts of every record, on every core
    for large sets. ``records``: :class:`~ftcurate.core.project.records.Record` objects, or their
    canonical content JSON (:meth:`~ftcurate.core.project.records.Record.content_json`): strings
    are sent to the workers several times faster than pickled records, and the checks read only
    the content."""
    n = len(records)
    check = [True] * n if check is None else list(check)
    hs_dict = hs.to_dict()
    rep = Reporter(progress, cancel, total=n, every=1)
    rep.tick(0, message)
    out = PassResult()
    parts: list[list[np.ndarray]] = [[], [], [], []]

    def add(part: tuple) -> None:
        out.flags += part[0]
        for k, dtype in enumerate(("S16", "S16", "S16", np.int64)):
            parts[k].append(np.asarray(part[k + 1], dtype=dtype))

    def done() -> PassResult:
        for k, name in enumerate(("content", "prompt", "answer", "tokens")):
            if parts[k]:
                setattr(out, name, np.concatenate(parts[k]))
        return out

    nproc = workers(n)
    if nproc <= 1:
        for lo in range(0, n, CHUNK):
            add(_chunk(records[lo:lo + CHUNK], hs_dict, lowercase, check[lo:lo + CHUNK]))
            rep.tick(min(n, lo + CHUNK), message)
        return done()
    from ..workerpool import in_order, spawn_pool

    with spawn_pool(nproc) as ex:
        starts = range(0, n, CHUNK)
        calls = ((list(records[lo:lo + CHUNK]), hs_dict, lowercase, check[lo:lo + CHUNK]) for lo in starts)
        # at most two chunks per worker in flight
        for lo, part in zip(starts, in_order(ex, _chunk, calls, rep, 2 * nproc)):
            add(part)
            rep.tick(min(n, lo + CHUNK), message)
    return done()


def _keys(keys) -> np.ndarray:
    return keys if isinstance(keys, np.ndarray) else np.asarray(list(keys), dtype="S16")


def _groups(rows: np.ndarray, group: np.ndarray) -> list[list[int]]:
    """Rows split by group id (ascending rows within a group), groups ordered by first row."""
    if len(rows) == 0:
        return []
    order = np.lexsort((rows, group))
    rows, group = rows[order], group[order]
    out = [g.tolist() for g in np.split(rows, np.flatnonzero(np.diff(group)) + 1)]
    out.sort(key=lambda g: g[0])
    return out


def groups_of(keys) -> list[list[int]]:
    """Groups (>= 2 indices, ascending; ordered by first index) of equal non-empty keys
    (16-byte fingerprints: an ``S16`` array or a sequence of bytes)."""
    k = _keys(keys)
    live = np.flatnonzero(k != b"")
    if len(live) == 0:
        return []
    _u, inv, cnt = np.unique(k[live], return_inverse=True, return_counts=True)
    dup = cnt[inv] > 1
    return _groups(live[dup], inv[dup])


def conflicts_of(prompts, answers) -> list[list[int]]:
    """Records sharing a non-empty prompt key with >= 2 different answer keys (as
    :func:`~ftcurate.core.quality.dedup.conflicting_groups`)."""
    p, a = _keys(prompts), _keys(answers)
    live = np.flatnonzero(p != b"")
    if len(live) == 0:
        return []
    up, pinv = np.unique(p[live], return_inverse=True)
    ua, ainv = np.unique(a[live], return_inverse=True)
    pairs = np.unique(pinv.astype(np.int64) * len(ua) + ainv)  # distinct (prompt, answer)
    answers_of = np.bincount(pairs // len(ua), minlength=len(up))
    bad = answers_of[pinv] > 1
    return _groups(live[bad], pinv[bad])
