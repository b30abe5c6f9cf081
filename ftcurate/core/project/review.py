"""Reviewing what the quality scan found, two records at a time: duplicate pairs and leaks.

:func:`duplicate_pairs` turns a project scan report (see docs/scanning.md; every id in it
is a project record id) into :class:`DuplicatePair` rows - each near-duplicate cluster's
members beside its suggested keeper, exact duplicate groups, semantic duplicate pairs (a
cluster of two each) - and :func:`leak_pairs` into :class:`LeakPair` rows (a training record
beside the test or validation record it leaks, with the scan's evidence).
:func:`word_diff` finds the words that differ between two texts so the app can highlight
them; :func:`leak_evidence` and :func:`evidence_spans` say why a leak was flagged and where
that shows in each text.

Every decision here is one store call, so it is one undo step with its own action name in
the decision log: :func:`keep_left`, :func:`keep_right`, :func:`keep_both`,
:func:`reject_both`, :func:`accept_suggestions` (a whole set of clusters at once),
:func:`remove_leak` and :func:`move_leak_to_test`.

No Qt here: the views in ``ftcurate/gui/pair_view.py`` and ``leak_view.py`` call these.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass, replace
from typing import Iterable, Mapping, Optional, Sequence

#: Statuses that keep a record in the exported set. Keeping an edited record leaves it
#: "edited" (the status says that a person changed it, and the edit stays either way).
KEPT = ("approved", "edited")

KINDS = ("exact", "near", "semantic")
LEAK_SECTIONS = ("leakage", "validation_leakage")
#: Leak methods from the most to the least certain (the order the review shows them in).
LEAK_METHODS = ("exact", "ngram", "minhash", "semantic")


# -- duplicate pairs -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DuplicatePair:
    """Two records that look like copies of each other.

    ``kind``: "exact" (identical conversations), "near" (MinHash near-duplicates) or
    "semantic" (same meaning by embeddings). ``cluster``: the number (from 1, in list
    order) of the cluster the pair belongs to: a near-duplicate cluster, an exact group, or
    a semantic pair (a cluster of two). ``keeper``: the record the scan suggests keeping
    (always ``left`` when set), None when there is no suggestion. ``reason``: why that one."""

    left: int
    right: int
    similarity: float
    kind: str
    cluster: Optional[int] = None
    keeper: Optional[int] = None
    reason: str = ""

    @property
    def ids(self) -> tuple[int, int]:
        return (self.left, self.right)


def _key(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def duplicate_pairs(report: Optional[dict], project=None) -> list[DuplicatePair]:
    """The pairs to review in a project scan report, clusters first.

    - each near-duplicate cluster gives one pair per member that is not the keeper, with
      the keeper on the left; the similarity is that of the cluster's verified pair of the
      two when the scan recorded it, else the member's best similarity inside the cluster
      (clusters are connected components, so not every member was compared with the keeper);
    - each exact duplicate group gives (keeper, copy) pairs with similarity 1.0; the keeper
      is the group's first record, or the suggested keeper of a near-duplicate cluster when
      that is one of its members. A group whose records all lie in one near-duplicate
      cluster adds no pairs of its own: it only marks those of that cluster's pairs that join
      two identical records as "exact" (similarity 1.0);
    - each semantic duplicate pair is a cluster of two with a suggested keeper on the left:
      the report's ``keep`` when it names one, else the scan's rule for clusters (the longer
      answer; ties: the record first in the project), read from ``project``'s records;
      without a project, the first record of the pair. Pairs whose two records are already
      in one cluster are left out.

    A pair reported by several sections appears once. Order: clusters (near clusters and
    exact groups) by descending cluster similarity (the lowest similarity of their pairs),
    the pairs of a cluster together by descending similarity; then semantic pairs by
    descending similarity. Clusters are numbered 1, 2, ... in that order."""
    if not report:
        return []
    pairs: dict[tuple[int, int], DuplicatePair] = {}  # insertion order = first seen
    cluster_of: dict[int, int] = {}  # record id -> its near cluster number
    keepers: dict[int, int] = {}  # near cluster keeper id -> cluster number
    n_clusters = 0

    for cluster in report.get("near_duplicate_clusters") or []:
        n_clusters += 1
        members = [int(i) for i in cluster.get("indices") or []]
        if len(members) < 2:
            continue
        keep = cluster.get("keep")
        keep = int(keep) if keep is not None and int(keep) in members else members[0]
        direct: dict[tuple[int, int], float] = {}
        best: dict[int, float] = {}
        for p in cluster.get("pairs") or []:
            a, b, sim = int(p["a"]), int(p["b"]), float(p.get("similarity") or 0.0)
            direct[_key(a, b)] = max(sim, direct.get(_key(a, b), 0.0))
            best[a] = max(sim, best.get(a, 0.0))
            best[b] = max(sim, best.get(b, 0.0))
        keepers[keep] = n_clusters
        for rid in members:
            cluster_of[rid] = n_clusters
            if rid == keep or _key(keep, rid) in pairs:
                continue
            sim = direct.get(_key(keep, rid), best.get(rid, 0.0))
            pairs[_key(keep, rid)] = DuplicatePair(keep, rid, sim, "near", n_clusters, keep,
                                                   str(cluster.get("reason") or ""))

    for group in report.get("exact_duplicates") or []:
        n_clusters += 1
        members = list(dict.fromkeys(int(i) for i in group))
        if len(members) < 2:
            continue
        homes = {cluster_of.get(rid) for rid in members}
        if len(homes) == 1 and None not in homes:
            # inside one near cluster: mark its pairs of identical records, add none
            same = set(members)
            for key, p in pairs.items():
                if p.cluster in homes and p.left in same and p.right in same:
                    pairs[key] = replace(p, kind="exact", similarity=1.0)
            continue
        keep = next((rid for rid in members if rid in keepers), members[0])
        for rid in members:
            if rid == keep:
                continue
            key = _key(keep, rid)
            if key in pairs:
                pairs[key] = replace(pairs[key], kind="exact", similarity=1.0)
            else:
                pairs[key] = DuplicatePair(keep, rid, 1.0, "exact", n_clusters, keep, "identical conversations")

    found: list[dict] = []
    for p in report.get("semantic_duplicates") or []:
        a, b = int(p["a"]), int(p["b"])
        if a == b or _key(a, b) in pairs:
            continue
        if cluster_of.get(a) is not None and cluster_of.get(a) == cluster_of.get(b):
            continue
        pairs[_key(a, b)] = None  # type: ignore[assignment]  # taken; filled in below
        found.append(p)
    chosen = _semantic_keepers(found, project)
    semantic: list[DuplicatePair] = []
    for p in found:
        a, b = int(p["a"]), int(p["b"])
        n_clusters += 1
        keep, reason = chosen.get(_key(a, b), (a, ""))
        pair = DuplicatePair(keep, b if keep == a else a, float(p.get("similarity") or 0.0), "semantic",
                             n_clusters, keep, reason or "first of the two")
        pairs[_key(a, b)] = pair
        semantic.append(pair)

    by_cluster = clusters(p for p in pairs.values() if p.kind != "semantic")
    order = sorted(by_cluster, key=lambda c: (-min(p.similarity for p in by_cluster[c]), c))
    ordered: list[DuplicatePair] = []
    for c in order:
        ordered += sorted(by_cluster[c], key=lambda p: (-p.similarity, p.right))
    ordered += sorted(semantic, key=lambda p: (-p.similarity, min(p.ids), max(p.ids)))
    number: dict[int, int] = {}
    for p in ordered:
        number.setdefault(p.cluster, len(number) + 1)
    return [replace(p, cluster=number[p.cluster]) for p in ordered]


def _semantic_keepers(found: Sequence[dict], project) -> dict[tuple[int, int], tuple[int, str]]:
    """(a, b) -> (keeper, reason) for semantic duplicate pairs: the report's ``keep`` when it
    names one of the two, else the scan's keeper rule for clusters
    (the one near-duplicate clusters get in :mod:`ftcurate.core.quality.dedup`: the longer
    answer, ties the record first in the project) over the two records read from ``project``."""
    out: dict[tuple[int, int], tuple[int, str]] = {}
    todo: list[tuple[int, int]] = []
    for p in found:
        a, b = sorted((int(p["a"]), int(p["b"])))
        keep = p.get("keep")
        if keep is not None and int(keep) in (a, b):
            out[(a, b)] = (int(keep), str(p.get("reason") or ""))
        else:
            todo.append((a, b))
    if not todo or project is None:
        return out
    from ..quality.dedup import _choose_keeper

    wanted = sorted({rid for ab in todo for rid in ab})
    present = [int(row[0]) for row in project.light_rows(wanted)]
    records = {sr.id: sr.record for sr in project.get_many(present)} if present else {}
    for a, b in todo:
        if a not in records or b not in records:
            continue  # a record that is gone: the first one stays on the left
        recs = (records[a], records[b])
        best, reason = _choose_keeper([0, 1], [r.text for r in recs], [r.answer_text for r in recs])
        out[(a, b)] = ((a, b)[best], reason)
    return out


def clusters(pairs: Iterable[DuplicatePair]) -> dict[int, list[DuplicatePair]]:
    """The pairs of each cluster, by cluster number (pairs without a cluster are left out)."""
    out: dict[int, list[DuplicatePair]] = {}
    for p in pairs:
        if p.cluster is not None:
            out.setdefault(p.cluster, []).append(p)
    return out


def pair_decision(left_status: Optional[str], right_status: Optional[str]) -> str:
    """What was decided about a pair, from its two statuses: "kept left", "kept right",
    "kept both", "rejected both", or "" while either side is still unreviewed (or unknown)."""
    if left_status not in KEPT + ("rejected",) or right_status not in KEPT + ("rejected",):
        return ""
    left, right = left_status in KEPT, right_status in KEPT
    if left and right:
        return "kept both"
    if left:
        return "kept left"
    if right:
        return "kept right"
    return "rejected both"


def _statuses(project, ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """record id -> (status, split), for the ids that exist (one cheap query per 500 ids)."""
    ids = list(dict.fromkeys(int(i) for i in ids))
    return {int(row[0]): (row[3], row[2]) for row in project.light_rows(ids)} if ids else {}


def _decide_pair(project, pair: DuplicatePair, keep_left_: bool, keep_right_: bool, action: str) -> int:
    """Give both records of ``pair`` their status in one undo step; a kept record that was
    edited stays "edited". Returns the decision group id."""
    now = _statuses(project, pair.ids)

    def status(rid: int, keep: bool) -> str:
        if not keep:
            return "rejected"
        return "edited" if now.get(rid, ("",))[0] == "edited" else "approved"

    return project.set_statuses({pair.left: status(pair.left, keep_left_),
                                 pair.right: status(pair.right, keep_right_)}, action=action)


def keep_left(project, pair: DuplicatePair) -> int:
    """Approve the left record and reject the right one (one undo step, action "keep_left")."""
    return _decide_pair(project, pair, True, False, "keep_left")


def keep_right(project, pair: DuplicatePair) -> int:
    """Approve the right record and reject the left one (action "keep_right")."""
    return _decide_pair(project, pair, False, True, "keep_right")


def keep_both(project, pair: DuplicatePair) -> int:
    """Approve both: they are not duplicates worth removing (action "keep_both")."""
    return _decide_pair(project, pair, True, True, "keep_both")


def reject_both(project, pair: DuplicatePair) -> int:
    """Reject both records (action "reject_both")."""
    return _decide_pair(project, pair, False, False, "reject_both")


def cluster_similarity(pairs: Sequence[DuplicatePair]) -> float:
    """A cluster's similarity: the lowest of its pairs (every pair is at least that close)."""
    return min((p.similarity for p in pairs), default=0.0)


def similar_enough(similarity: float, min_similarity: float) -> bool:
    """``similarity >= min_similarity`` as people read them: both to the two decimals the
    app shows (a pair shown as 0.95 counts at a threshold of 0.95)."""
    return round(similarity, 2) >= round(min_similarity, 2)


def suggestion_plan(project, pairs: Iterable[DuplicatePair], min_similarity: float,
                    statuses: Optional[Mapping[int, str]] = None) -> dict[int, str]:
    """What :func:`accept_suggestions` would do: ``{record id: new status}``.

    For every cluster (near-duplicate cluster, exact group or semantic pair) whose
    similarity (:func:`cluster_similarity`) is at least ``min_similarity`` (to two decimals,
    :func:`similar_enough`): the suggested keeper is approved and the other members rejected.
    People's decisions come first:

    - only unreviewed records change; an approved, rejected or edited record keeps its status;
    - a cluster whose suggested keeper a person rejected is skipped (they disagreed with
      the suggestion; rejecting the rest would drop every copy);
    - when a person already kept (approved or edited) another member of the cluster, that
      record stands in for the suggestion: the suggested keeper is not approved as well but
      rejected with the other unreviewed members;
    - a record that is a keeper in one cluster and a copy in another is rejected (one copy
      stays either way).

    ``statuses``: the records' current statuses when the caller has them (the app keeps
    them for its table), else they are read from ``project``."""
    groups = {c: ps for c, ps in clusters(pairs).items() if similar_enough(cluster_similarity(ps), min_similarity)}
    members: dict[int, list[int]] = {}
    keeper: dict[int, int] = {}
    for c, ps in groups.items():
        keep = ps[0].keeper if ps[0].keeper is not None else ps[0].left
        keeper[c] = keep
        members[c] = list(dict.fromkeys([keep] + [rid for p in ps for rid in p.ids]))
    if statuses is None:
        now = {rid: st for rid, (st, _split) in
               _statuses(project, (rid for ids in members.values() for rid in ids)).items()}
    else:
        now = statuses
    approve: set[int] = set()
    reject: set[int] = set()
    for c, ids in members.items():
        keep = keeper[c]
        status = {rid: now.get(rid, "missing") for rid in ids}
        if status.get(keep) == "rejected":
            continue
        picked_by_person = any(status[rid] in KEPT for rid in ids if rid != keep)
        for rid in ids:
            if status[rid] != "unreviewed":
                continue
            if rid == keep and not picked_by_person:
                approve.add(rid)
            else:
                reject.add(rid)
    plan = {rid: "approved" for rid in approve - reject}
    plan.update({rid: "rejected" for rid in reject})
    return plan


def accept_suggestions(project, pairs: Iterable[DuplicatePair], min_similarity: float) -> int:
    """Keep the suggested keeper of every cluster at least ``min_similarity`` similar and
    reject its other members, as one store call (one undo step, action
    "accept_suggestions"); see :func:`suggestion_plan` for what is left alone. Returns the
    number of records changed."""
    plan = suggestion_plan(project, pairs, min_similarity)
    if plan:
        project.set_statuses(plan, action="accept_suggestions")
    return len(plan)


# -- leaks -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeakPair:
    """A training record that leaks a held-out record.

    ``section``: "leakage" (the test split) or "validation_leakage" (the validation split);
    ``method``: "exact", "ngram", "minhash" or "semantic"; ``field``: "prompt" or "answer".
    The scan's evidence (the hit's ``evidence``; empty in reports made before it had any):
    ``ngram``, the shared n-gram of an n-gram hit; ``matched_words``, the words the two
    texts share for the other methods."""

    train: int
    test: int
    method: str
    score: float
    field: str
    section: str = "leakage"
    ngram: str = ""
    matched_words: tuple[str, ...] = ()

    @property
    def held_out_split(self) -> str:
        """The split the leaked record is in (where :func:`move_leak_to_test` moves the
        training record)."""
        return "validation" if self.section == "validation_leakage" else "test"

    @property
    def ids(self) -> tuple[int, int]:
        return (self.train, self.test)


def leak_pairs(report: Optional[dict]) -> list[LeakPair]:
    """Leak pairs of a project scan report: test leaks, then validation leaks; in each, the
    most certain methods first (exact, n-gram, MinHash, semantic), then by descending score.
    A (training, held-out) pair found by several methods appears once, with the most
    certain method."""
    if not report:
        return []
    rank = {m: i for i, m in enumerate(LEAK_METHODS)}
    out: list[LeakPair] = []
    for section in LEAK_SECTIONS:
        best: dict[tuple[int, int], LeakPair] = {}
        for h in report.get(section) or []:
            ngram, words = _evidence(h.get("evidence"))
            pair = LeakPair(int(h["index"]), int(h["test_index"]), str(h.get("method", "?")),
                            float(h.get("score") or 0.0), str(h.get("field", "")), section, ngram, words)
            old = best.get(pair.ids)
            if old is None or (rank.get(pair.method, 9), -pair.score) < (rank.get(old.method, 9), -old.score):
                best[pair.ids] = pair
        out += sorted(best.values(), key=lambda p: (rank.get(p.method, 9), -p.score, p.train, p.test))
    return out


def _evidence(value) -> tuple[str, tuple[str, ...]]:
    """(shared n-gram, matched words) of a hit's ``evidence`` object; empty when it has none."""
    if not isinstance(value, dict):
        return "", ()
    ngram = value.get("ngram")
    words = value.get("matched_words")
    words = tuple(str(w) for w in words if str(w).strip()) if isinstance(words, (list, tuple)) else ()
    return (str(ngram).strip() if isinstance(ngram, str) else ""), words


def leak_resolved(status: Optional[str], split: Optional[str]) -> bool:
    """A leak is dealt with once its training record is rejected or out of the train split
    (a record that is no longer in the project, status None, counts as dealt with)."""
    return status is None or status == "rejected" or split != "train"


def remove_leak(project, pair: LeakPair) -> int:
    """Reject the training record (one undo step, action "remove_leak")."""
    return project.set_statuses({pair.train: "rejected"}, action="remove_leak")


def move_leak_to_test(project, pair: LeakPair, split: Optional[str] = None) -> int:
    """Move the training record into the held-out split it leaks (``split``: None for
    :attr:`LeakPair.held_out_split`, i.e. "test" for test leaks, "validation" for
    validation leaks) - one undo step (action "set_split")."""
    return project.set_split(pair.train, split or pair.held_out_split)


def unresolved_leaks(project, report: Optional[dict]) -> list[LeakPair]:
    """The leak pairs whose training record is still in the train split and not rejected."""
    pairs = leak_pairs(report)
    now = _statuses(project, (p.train for p in pairs))
    return [p for p in pairs if not leak_resolved(*now.get(p.train, (None, None)))]


# -- why a leak was flagged -------------------------------------------------------------------

_WORD = re.compile(r"\w+")
#: Words too common to say anything when two texts share them.
STOPWORDS = frozenset("""
a an and are as at be but by can did do does for from had has have he her him his how i if in is it its
me my no not of on or our she so than that the their them then there these they this those to us was we
were what when where which who whom why will with would you your
""".split())


@dataclass(frozen=True, slots=True)
class LeakEvidence:
    """Why a leak was flagged: ``ngram``, a run of words both texts have; ``words``, words
    both texts have (lower case). ``from_scan``: the scan's own evidence; False when it was
    worked out here from the two texts (a report made before the scan kept evidence)."""

    ngram: str = ""
    words: tuple[str, ...] = ()
    from_scan: bool = True

    def __bool__(self) -> bool:
        return bool(self.ngram or self.words)


def field_text(record, field: str) -> str:
    """The part of ``record`` a leak of ``field`` is about, to look for shared words in: the
    user turns for "prompt" (not the system prompt most records share), the assistant turns
    for "answer", every message otherwise."""
    roles = ("user",) if field == "prompt" else ("assistant",) if field == "answer" else None
    return "\n".join(m.content or "" for m in record.messages if roles is None or m.role in roles)


def shared_words(a: str, b: str, limit: int = 40) -> tuple[str, ...]:
    """The words (lower case) both texts have, in the order ``a`` first uses them, without
    common words (:data:`STOPWORDS`) and single letters; at most ``limit``."""
    in_b = set(_WORD.findall((b or "").lower()))
    out: list[str] = []
    for w in dict.fromkeys(_WORD.findall((a or "").lower())):
        if w in in_b and w not in STOPWORDS and (len(w) > 1 or w.isdigit()):
            out.append(w)
            if len(out) >= limit:
                break
    return tuple(out)


def shared_run(a: str, b: str, min_words: int = 4) -> str:
    """The longest run of words both texts have, read as the n-gram scan reads text (lower
    case, punctuation dropped) and joined by spaces; "" when it is under ``min_words`` long."""
    ta, tb = _WORD.findall((a or "").lower()), _WORD.findall((b or "").lower())
    if not ta or not tb:
        return ""
    m = difflib.SequenceMatcher(None, ta, tb, autojunk=False).find_longest_match(0, len(ta), 0, len(tb))
    return " ".join(ta[m.a:m.a + m.size]) if m.size >= min_words else ""


def leak_evidence(pair: LeakPair, train_record=None, test_record=None) -> LeakEvidence:
    """Why ``pair`` was flagged: the scan's evidence when the report has it; else worked out
    from the two records' :func:`field_text` (``from_scan`` False): the longest run of words
    they share for an exact or n-gram hit, the words they share for the other methods (and
    when no run is long enough)."""
    if pair.ngram or pair.matched_words:
        return LeakEvidence(pair.ngram, tuple(dict.fromkeys(w.lower() for w in pair.matched_words)), True)
    if train_record is None or test_record is None:
        return LeakEvidence(from_scan=False)
    a, b = field_text(train_record, pair.field), field_text(test_record, pair.field)
    run = shared_run(a, b) if pair.method in ("exact", "ngram") else ""
    return LeakEvidence(run, () if run else shared_words(a, b), False)


def evidence_spans(text: str, evidence: LeakEvidence) -> list[tuple[int, int]]:
    """Where ``evidence`` shows in ``text``, as sorted, non-overlapping ``(start, end)``
    character spans, case ignored: every place the n-gram's words stand in a row (with any
    punctuation or spacing between them), or, without an n-gram, every shared word."""
    if not text or not evidence:
        return []
    if evidence.ngram:
        pattern = r"\W+".join(re.escape(w) for w in _WORD.findall(evidence.ngram))
    else:
        words = sorted({w for w in evidence.words if w}, key=len, reverse=True)  # longest first
        pattern = "|".join(re.escape(w) for w in words)
    if not pattern:
        return []
    rx = re.compile(rf"(?<!\w)(?:{pattern})(?!\w)", re.IGNORECASE)
    return [(m.start(), m.end()) for m in rx.finditer(text) if m.end() > m.start()]


# -- word-level differences -------------------------------------------------------------------

# a word or a run of punctuation with the whitespace after it (leading whitespace alone)
_TOKEN = re.compile(r"\w+\s*|[^\w\s]+\s*|\s+")
#: Above this estimated matching cost (sum over one text's tokens of their count in the
#: other) the diff first aligns sentences/lines, then compares words inside changed ones.
WORD_BUDGET = 150_000
#: Texts longer than this (characters, both together) are aligned by lines; changed
#: blocks of lines up to BLOCK_CHARS long are then compared word by word.
MAX_CHARS = 400_000
BLOCK_CHARS = 20_000

Opcode = tuple[str, str, str]  # (op, left text, right text); op: equal/delete/insert/replace


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _cost(ka: Sequence[str], kb: Sequence[str]) -> int:
    counts = Counter(kb)
    return sum(counts[k] for k in ka)


def _chunks(tokens: Sequence[str]) -> list[tuple[int, int]]:
    """Token ranges of sentences/lines: a chunk ends after a newline or .!? punctuation."""
    out, start = [], 0
    for i, tok in enumerate(tokens):
        if "\n" in tok or tok[0] in ".!?":
            out.append((start, i + 1))
            start = i + 1
    if start < len(tokens):
        out.append((start, len(tokens)))
    return out


def _diff(ta: Sequence[str], tb: Sequence[str], out: list[Opcode], depth: int = 0) -> None:
    """Append opcodes for two token lists (whitespace does not count when matching)."""
    # trim the common ends first: near-duplicates mostly share long stretches
    ka = [t.rstrip() for t in ta]
    kb = [t.rstrip() for t in tb]
    lo = 0
    while lo < len(ka) and lo < len(kb) and ka[lo] == kb[lo]:
        lo += 1
    hi_a, hi_b = len(ka), len(kb)
    while hi_a > lo and hi_b > lo and ka[hi_a - 1] == kb[hi_b - 1]:
        hi_a -= 1
        hi_b -= 1
    if lo:
        out.append(("equal", "".join(ta[:lo]), "".join(tb[:lo])))
    mid: list[Opcode] = []
    ma, mb = ka[lo:hi_a], kb[lo:hi_b]
    if not ma or not mb:
        if ma or mb:
            mid.append(("delete" if ma else "insert", "".join(ta[lo:hi_a]), "".join(tb[lo:hi_b])))
    elif _cost(ma, mb) <= WORD_BUDGET:
        sm = difflib.SequenceMatcher(None, ma, mb, autojunk=False)
        for op, i1, i2, j1, j2 in sm.get_opcodes():
            mid.append((op, "".join(ta[lo + i1:lo + i2]), "".join(tb[lo + j1:lo + j2])))
    elif depth == 0:
        # too many repeated words to match them all: align sentences, then words inside
        # the sentences that changed (each far cheaper than the whole)
        ca, cb = _chunks(ta[lo:hi_a]), _chunks(tb[lo:hi_b])
        sa = [" ".join(ma[i:j]) for i, j in ca]
        sb = [" ".join(mb[i:j]) for i, j in cb]
        sm = difflib.SequenceMatcher(None, sa, sb, autojunk=False)
        for op, i1, i2, j1, j2 in sm.get_opcodes():
            a0 = lo + (ca[i1][0] if i1 < i2 else 0)
            a1 = lo + (ca[i2 - 1][1] if i1 < i2 else 0)
            b0 = lo + (cb[j1][0] if j1 < j2 else 0)
            b1 = lo + (cb[j2 - 1][1] if j1 < j2 else 0)
            if op == "replace" and i2 - i1 == j2 - j1:
                # as many sentences on each side: most likely each one edited in place
                for (x0, x1), (y0, y1) in zip(ca[i1:i2], cb[j1:j2]):
                    _diff(ta[lo + x0:lo + x1], tb[lo + y0:lo + y1], mid, depth + 1)
            elif op == "replace":
                _diff(ta[a0:a1], tb[b0:b1], mid, depth + 1)
            else:
                mid.append((op, "".join(ta[a0:a1]) if i1 < i2 else "", "".join(tb[b0:b1]) if j1 < j2 else ""))
    else:
        # still too costly: words seen often in the right text may not start a match (they
        # join one when they sit next to it on both sides), which bounds the work
        counts = Counter(mb)
        often = max(2, WORD_BUDGET // max(1, len(ma)))
        popular = {k for k, n in counts.items() if n > often}
        sm = difflib.SequenceMatcher(popular.__contains__, ma, mb, autojunk=False)
        for op, i1, i2, j1, j2 in sm.get_opcodes():
            mid.append((op, "".join(ta[lo + i1:lo + i2]), "".join(tb[lo + j1:lo + j2])))
    out += mid
    if hi_a < len(ka):
        out.append(("equal", "".join(ta[hi_a:]), "".join(tb[hi_b:])))


def _merge(ops: list[Opcode]) -> list[Opcode]:
    """Drop empty opcodes and join neighbours of the same kind."""
    out: list[Opcode] = []
    for op, a, b in ops:
        if not a and not b:
            continue
        if op == "replace" and not a:
            op = "insert"
        elif op == "replace" and not b:
            op = "delete"
        if out and out[-1][0] == op:
            prev = out[-1]
            out[-1] = (op, prev[1] + a, prev[2] + b)
        else:
            out.append((op, a, b))
    return out


def word_diff(a: str, b: str) -> list[Opcode]:
    """Word-level differences between two texts as ``(op, left text, right text)``, with op
    one of "equal", "delete" (only left text), "insert" (only right text), "replace".

    The left texts joined give ``a`` and the right texts ``b`` back exactly. Tokens are
    words and punctuation runs with the whitespace after them; whitespace is ignored when
    matching (an "equal" opcode's two texts may differ in spacing). Matching uses
    difflib's SequenceMatcher without its "popular element" heuristic (autojunk off).
    Long, repetitive texts are aligned by sentences first and compared word by word inside
    the sentences that differ; texts longer than :data:`MAX_CHARS` are aligned by lines
    first. About 50 ms for two 20,000-character texts."""
    a, b = a or "", b or ""
    if a == b:
        return [("equal", a, b)] if a else []
    if not a or not b:
        return [("delete", a, "")] if a else [("insert", "", b)]
    out: list[Opcode] = []
    if len(a) + len(b) > MAX_CHARS:
        la, lb = a.splitlines(keepends=True), b.splitlines(keepends=True)
        sm = difflib.SequenceMatcher(None, la, lb, autojunk=False)
        for op, i1, i2, j1, j2 in sm.get_opcodes():
            left, right = "".join(la[i1:i2]), "".join(lb[j1:j2])
            if op == "replace" and len(left) + len(right) <= BLOCK_CHARS:
                _diff(_tokens(left), _tokens(right), out, depth=1)
            else:
                out.append((op, left, right))
    else:
        _diff(_tokens(a), _tokens(b), out)
    return _merge(out)
