"""The Leakage tab: training records that leak a test (or validation) record.

The left lists the leak pairs of the last scan report (:func:`ftcurate.core.project.review.leak_pairs`:
exact matches first, then n-gram, MinHash and semantic ones) in a :class:`LeaksModel` with
the training record's status and split; the right says why the pair was flagged - the
method, the score and what it means, and the evidence (the shared n-gram or the matched
words, from the scan or, for an older report, worked out by
:func:`ftcurate.core.project.review.leak_evidence`) - and shows the training record beside
the held-out record it leaks with that evidence highlighted in both. Keys: Delete / D
removes the training record from training (rejects it), T moves it to the test split (the
validation split for a validation leak), Space / PageDown next leak, Shift+Space / PageUp
previous; after a decision the view moves on to the next leak still unresolved. Each
decision is one store call, so one undo step.
"""

from __future__ import annotations

import html
from typing import Any, Callable, Optional

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from ..core.project import review
from ..core.project.dismissals import dismiss_leak
from ..core.project.review import LeakEvidence, LeakPair
from ..core.project.store import Project, StoredRecord
from .models import STATUS_COLORS, STATUS_LABELS
from .pair_panes import _EVIDENCE_COLORS, FIELD_ROLES, MUTED, evidence_html, is_dark, message_text, muted
from .pair_review import PairReviewView, PairRowsModel, plural

NO_PROJECT_TEXT = "No project open — open a dataset or a project to check it for leakage."
NO_REPORT_TEXT = "No leakage report — run Scan ▸ Run quality scan"
NO_HELD_OUT_TEXT = ("Nothing to check: the project has no test or validation records. Import a held-out set "
                    "as the test split (File ▸ Import dataset), then run Scan ▸ Run quality scan.")
NO_LEAKS_TEXT = "No leaks: no training record matches a test or validation record."

_METHOD_LABELS = {"exact": "exact match", "ngram": "n-gram overlap", "minhash": "near match (MinHash)",
                  "semantic": "same meaning"}
_METHOD_TIPS = {
    "exact": "The same {field} text as the held-out record",
    "ngram": "Shares a long run of words (a 13-word n-gram) with the held-out record's {field}",
    "minhash": "Nearly the same prompt as the held-out record (MinHash Jaccard similarity)",
    "semantic": "The held-out question in other words (embedding similarity, confirmed by the accurate model)",
}
_SHOWN_WORDS = 25  # matched words listed in the info line (all are highlighted)
_QUOTE_CHARS = 160  # the longest shared run quoted in full in the info line


def score_meaning(pair: LeakPair, evidence: Optional[LeakEvidence] = None) -> str:
    """What the score of ``pair`` says, in words ("62% of the test answer's 13-word runs are in
    the training record")."""
    field, held, score = pair.field or "text", pair.held_out_split, pair.score
    if pair.method == "exact":
        return f"the same {field} as the {held} record (ignoring case and spacing)"
    if pair.method == "ngram":
        n = len(evidence.ngram.split()) if evidence is not None and evidence.ngram and evidence.from_scan else 0
        runs = f"{n}-word runs" if n else "long runs of words (n-grams)"
        return f"{score:.0%} of the {held} {field}'s {runs} are in the training record"
    if pair.method == "minhash":
        return f"about {score:.0%} of the two prompts' 5-word shingles are shared (MinHash estimate)"
    if pair.method == "semantic":
        return (f"the same question in other words: embedding similarity {score:.2f} of the prompts (1 = the same "
                "meaning), confirmed by the accurate model")
    return f"score {score:.2f} of 1"


def evidence_text(evidence: LeakEvidence, highlighted: int, quote: str = "") -> str:
    """The evidence line of the info label (HTML): the shared run of words (``quote``: as the
    training record writes it) or the matched words."""
    if evidence.ngram:
        quote = quote or evidence.ngram
        if len(quote) > _QUOTE_CHARS:  # the whole run is highlighted in the records
            quote = quote[:_QUOTE_CHARS].rsplit(" ", 1)[0] + " …"
        text = f"shared words in a row: <b>“{html.escape(quote)}”</b>"
    elif evidence.words:
        shown = ", ".join(html.escape(w) for w in evidence.words[:_SHOWN_WORDS])
        more = len(evidence.words) - _SHOWN_WORDS
        text = f"matched words: <b>{shown}</b>" + (f" and {more:,} more" if more > 0 else "")
    else:
        return f'<span style="color:{muted()}">no shared words to show</span>'
    if highlighted:
        color = _EVIDENCE_COLORS[is_dark()]
        text += f' (<span style="background-color:{color}">highlighted</span> in the records)'
    if not evidence.from_scan:
        text += f' <span style="color:{muted()}">— worked out here: this scan report has no evidence</span>'
    return text


class LeaksModel(PairRowsModel):
    """Leak pairs: the training record (status icon), the held-out record, method, score,
    and the training record's status and split now."""

    COLUMNS = ("Train", "Leaks", "Method", "Score", "Status", "Split")
    COL_TRAIN, COL_HELD_OUT, COL_METHOD, COL_SCORE, COL_STATUS, COL_SPLIT = range(6)
    TIPS = ("The training record", "The held-out (test or validation) record it leaks",
            "How the leak was found: exact, n-gram overlap, MinHash or semantic",
            "Strength of the match (0-1)", "Review status of the training record",
            "Split of the training record (moved out of train: resolved)")

    def resolved(self, pair: LeakPair) -> bool:
        return review.leak_resolved(self.status(pair.train), self.split(pair.train))

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        p: LeakPair = self._rows[index.row()]
        col = index.column()
        if col == self.COL_TRAIN:
            return self._record_cell(p.train, role)
        done = self.resolved(p)
        status, split = self.status(p.train), self.split(p.train)
        if role == Qt.ItemDataRole.DisplayRole:
            if col == self.COL_HELD_OUT:
                return f"{p.held_out_split} {self.number(p.test)}"
            if col == self.COL_METHOD:
                return p.method
            if col == self.COL_SCORE:
                return f"{p.score:.2f}"
            if col == self.COL_STATUS:
                return STATUS_LABELS.get(status, status or "?")
            if col == self.COL_SPLIT:
                return split or "?"
        elif role == Qt.ItemDataRole.ToolTipRole:
            if col == self.COL_HELD_OUT:
                return (f"{p.held_out_split.capitalize()} record {self.number(p.test)} (id {p.test})\n"
                        "Double-click to open it in the Records tab")
            if col == self.COL_METHOD:
                return _METHOD_TIPS.get(p.method, p.method).format(field=p.field or "text")
            if col == self.COL_SCORE:
                return f"score {p.score:.4f}: {score_meaning(p)}"
            if col in (self.COL_STATUS, self.COL_SPLIT):
                return "Resolved: the training record is rejected or out of the train split" if done else \
                    "Unresolved: the training record is still trained on"
        elif role == Qt.ItemDataRole.ForegroundRole:
            if col == self.COL_STATUS and status:
                return QColor(STATUS_COLORS.get(status, MUTED))
            if col == self.COL_SPLIT and split and split != "train":
                return QColor(STATUS_COLORS["approved"])
            if done:
                return QColor(muted())
        elif role == Qt.ItemDataRole.TextAlignmentRole and col == self.COL_SCORE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class LeakView(PairReviewView):
    """Leak pairs of the last scan: the training record beside the held-out record it leaks."""

    NO_PROJECT_TEXT = NO_PROJECT_TEXT
    NO_REPORT_TEXT = NO_REPORT_TEXT
    NOTHING_TEXT = NO_LEAKS_TEXT
    WHAT = "leak"

    def _make_model(self) -> LeaksModel:
        return LeaksModel(self)

    def _build_actions(self) -> None:
        a = self._action
        self.act_remove = a("Remove from training", self.remove_leak, ["Delete", "D"],
                            "Reject the training record so that it is not trained on")
        self.act_move = a("Move to test", self.move_to_test, ["T"],
                          "Move the training record into the test split (the validation split for a "
                          "validation leak), where it is held out with the record it matches")
        self.act_not_leak = a("Not a leak", self.not_a_leak, ["N"],
                              "The training record is a different item from the held-out one: dismiss the finding "
                              "(the training gate stops counting it; a rescan keeps it dismissed; Ctrl+Z undoes)")
        self.act_not_leak_why = a("Not a leak, with a reason…", lambda: self.not_a_leak(ask=True), ["Shift+N"],
                                  "Dismiss the finding and say why (kept in the decision log)", button=False)
        self.button_row.add_gap(12)
        self.act_prev = a("◀ Previous", self.previous_pair, ["Shift+Space", "PgUp"], "Go to the previous leak",
                          repeat=True)
        self.act_next = a("Next ▶", self.next_pair, ["Space", "PgDown"], "Go to the next leak", repeat=True)
        self.act_prev.setProperty("help", "Leaks: previous leak")
        self.act_next.setProperty("help", "Leaks: next leak")

    def _build_extras(self) -> None:
        hh = self.table.horizontalHeader()
        for col, width in ((LeaksModel.COL_TRAIN, 56), (LeaksModel.COL_HELD_OUT, 64), (LeaksModel.COL_METHOD, 66),
                           (LeaksModel.COL_SCORE, 44), (LeaksModel.COL_STATUS, 84)):
            hh.resizeSection(col, width)

    # -- content ------------------------------------------------------------------------------------
    def _pairs_from_report(self, report: Optional[dict]) -> list[LeakPair]:
        return review.leak_pairs(report)

    def _is_done(self, pair: LeakPair) -> bool:
        return self.model.resolved(pair)

    def _empty_text(self) -> Optional[str]:
        text = super()._empty_text()
        report = self.report
        if text == NO_LEAKS_TEXT and report is not None and not report.get("test_records") \
                and "validation_leakage" not in report:
            return NO_HELD_OUT_TEXT
        return text

    def _summary(self) -> str:
        pairs = self.model.rows()
        open_ = sum(1 for p in pairs if not self._is_done(p))
        records = len({p.train for p in pairs})
        head = f"<b>{plural(len(pairs), 'leak')}</b> from {plural(records, 'training record')}"
        return head + (f"<br>{open_:,} unresolved" if open_ else "<br>Every leak is resolved.")

    def _render(self, pair: LeakPair, records: dict[int, StoredRecord]) -> None:
        row = self.current_row()
        held = pair.held_out_split
        method = html.escape(_METHOD_LABELS.get(pair.method, pair.method))
        parts = [f"<b>Leak {row + 1:,} of {self.model.rowCount():,}</b>",
                 f"<b>{method}</b> of the {html.escape(pair.field or 'text')}",
                 f"leaks {held} record {html.escape(self.model.number(pair.test))}"]
        if self.model.resolved(pair):
            parts.append(f'<span style="color:{STATUS_COLORS["approved"]}">resolved</span>')
        self.act_move.setText("Move to validation  (T)" if held == "validation" else "Move to test  (T)")
        if self._show_missing(records, pair.ids):
            evidence = review.leak_evidence(pair)
            self.info_label.setText(" &middot; ".join(parts) + self._why(pair, evidence, 0))
            return
        train, test = records[pair.train], records[pair.test]
        evidence = review.leak_evidence(pair, train.record, test.record)
        quote = self._quote(train, evidence, pair.field)
        lhtml, lfound = evidence_html(train, "Training record", evidence, pair.field, self.record_findings(pair.train))
        rhtml, rfound = evidence_html(test, f"{held.capitalize()} record", evidence, pair.field,
                                      self.record_findings(pair.test))
        self.info_label.setText(" &middot; ".join(parts) + self._why(pair, evidence, lfound + rfound, quote))
        self.left_pane.show_html(lhtml, pair.train)
        self.right_pane.show_html(rhtml, pair.test)

    @staticmethod
    def _why(pair: LeakPair, evidence: LeakEvidence, highlighted: int, quote: str = "") -> str:
        """Why the pair was flagged: the score and what it means, then the evidence."""
        return (f"<br>score <b>{pair.score:.2f}</b>: {html.escape(score_meaning(pair, evidence))}"
                f"<br>{evidence_text(evidence, highlighted, quote)}")

    @staticmethod
    def _quote(sr: StoredRecord, evidence: LeakEvidence, field: str) -> str:
        """The shared n-gram as the record writes it (case, punctuation), "" when not found."""
        if not evidence.ngram:
            return ""
        roles = FIELD_ROLES.get(field)
        for m in sr.record.messages:
            if roles is None or m.role in roles:
                text = message_text(m)
                spans = review.evidence_spans(text, evidence)
                if spans:
                    return " ".join(text[spans[0][0]:spans[0][1]].split())
        return ""

    # -- decisions ---------------------------------------------------------------------------------------
    def _decide(self, fn: Callable[[Project, LeakPair], int], verb: str) -> None:
        pair = self.current_pair()
        project = self._project()
        if pair is None or project is None:
            return
        what = f"Training record {self.model.number(pair.train)} was not {verb}"
        if self._store_call("Could not save the decision", what, lambda: fn(project, pair)):
            self._decided([pair.train])

    def remove_leak(self) -> None:
        """Reject the current pair's training record (one undo step)."""
        self._decide(review.remove_leak, "removed")

    def not_a_leak(self, ask: bool = False) -> None:
        """Dismiss the current leak as "not a leak" (one undo step; survives a rescan)."""
        reason = ""
        if ask:
            reason = self.ask_reason("Not a leak", "Why is the training record not the held-out item?")
            if reason is None:
                return
        self._decide(lambda project, pair: dismiss_leak(project, pair.train, pair.test, reason), "dismissed")

    def move_to_test(self) -> None:
        """Move the current pair's training record to the held-out split it leaks (one undo step)."""
        self._decide(review.move_leak_to_test, "moved")
