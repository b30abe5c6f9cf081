"""The Duplicates tab: near-duplicate, exact and semantic pairs side by side.

The left of the tab lists the pairs of the last scan report
(:func:`ftcurate.core.project.review.duplicate_pairs`: every pair belongs to a cluster - a
near-duplicate cluster, an exact group, or a semantic pair, a cluster of two - with the
scan's suggested keeper ★ on the left) in a :class:`PairsModel`, with both records' status,
and a box that accepts the suggested keeper of every cluster at or above a similarity. The
right shows the two records of the current pair (:mod:`ftcurate.gui.pair_panes`) with the
words that differ highlighted and what the scan found about each. Keys: 1 / Ctrl+Left
approve left and reject right, 2 / Ctrl+Right approve right and reject left, B approve both,
X reject both, Space / PageDown next pair, Shift+Space / PageUp previous pair; after a
decision the view moves on to the next pair still to decide. The shared machinery (focus,
Tab order, buttons, store calls) is :class:`ftcurate.gui.pair_review.PairReviewView`.
"""

from __future__ import annotations

import html
import traceback
from typing import Any, Callable, Optional

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Slot
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QDoubleSpinBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout

from ..core.project import review
from ..core.project.dismissals import dismiss_pair
from ..core.project.review import DuplicatePair
from ..core.project.store import Project, StoredRecord
from .models import STATUS_COLORS
from .pair_panes import _DIFF_COLORS, MUTED, RecordPane, diff_html, message_text, muted  # noqa: F401 - re-exported
from .pair_review import PairReviewView, PairRowsModel, plural

NO_PROJECT_TEXT = "No project open — open a dataset or a project to review its duplicates."
NO_REPORT_TEXT = "No duplicate pairs — run Scan ▸ Run quality scan"
NO_PAIRS_TEXT = "No duplicate pairs: the last scan found no exact, near or semantic duplicates."

_KIND_LABELS = {"exact": "exact duplicate", "near": "near duplicate", "semantic": "semantic duplicate"}
_KIND_TIPS = {
    "exact": "The same conversation (after normalising whitespace)",
    "near": "Near-duplicates: most word 5-grams shared (MinHash, Jaccard similarity)",
    "semantic": "Same meaning in other words (embedding cosine similarity); a cluster of two",
}


def _esc(text: Optional[str]) -> str:
    return html.escape(text or "", quote=True)


# -- the table model ------------------------------------------------------------------------------------


class PairsModel(PairRowsModel):
    """Duplicate pairs: both records (status icon, ★ on the suggested keeper), similarity,
    kind and what was decided."""

    COLUMNS = ("Left", "Right", "Sim.", "Kind", "Decision")
    COL_LEFT, COL_RIGHT, COL_SIM, COL_KIND, COL_DECISION = range(5)
    TIPS = ("Left record (★: the scan's suggested keeper)", "Right record", "Similarity of the two records",
            "exact, near or semantic duplicate", "What was decided (empty: still to decide)")

    def decision(self, pair: DuplicatePair) -> str:
        return review.pair_decision(self.status(pair.left), self.status(pair.right))

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        p: DuplicatePair = self._rows[index.row()]
        col = index.column()
        if col in (self.COL_LEFT, self.COL_RIGHT):
            rid = p.left if col == self.COL_LEFT else p.right
            return self._record_cell(rid, role, " ★" if rid == p.keeper else "")
        decided = self.decision(p)
        if role == Qt.ItemDataRole.DisplayRole:
            if col == self.COL_SIM:
                return f"{p.similarity:.2f}"
            if col == self.COL_KIND:
                return p.kind
            if col == self.COL_DECISION:
                return decided
        elif role == Qt.ItemDataRole.ToolTipRole:
            if col == self.COL_KIND:
                tip = _KIND_TIPS.get(p.kind, p.kind)
                return tip + (f"\nCluster {p.cluster}" if p.cluster is not None else "")
            if col == self.COL_SIM:
                return f"similarity {p.similarity:.4f}"
            if col == self.COL_DECISION:
                return decided or "Still to decide: a record of the pair is unreviewed"
        elif role == Qt.ItemDataRole.ForegroundRole:
            if col == self.COL_DECISION:
                return QColor(STATUS_COLORS["rejected"] if decided == "rejected both" else STATUS_COLORS["approved"])
            if decided:
                return QColor(muted())
        elif role == Qt.ItemDataRole.TextAlignmentRole and col == self.COL_SIM:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


# -- the Duplicates tab ------------------------------------------------------------------------------------


class PairView(PairReviewView):
    """Duplicate pairs of the last scan, side by side, decided with one key each."""

    NO_PROJECT_TEXT = NO_PROJECT_TEXT
    NO_REPORT_TEXT = NO_REPORT_TEXT
    NOTHING_TEXT = NO_PAIRS_TEXT
    WHAT = "duplicate pair"

    def _make_model(self) -> PairsModel:
        return PairsModel(self)

    def _build_actions(self) -> None:
        # the labels say everything a key does: keeping a record approves it
        a = self._action
        self.act_keep_left = a("Approve left, reject right", self.keep_left, ["1", "Ctrl+Left"],
                               "Keep the left record: approve it, and reject the right one")
        self.act_keep_right = a("Approve right, reject left", self.keep_right, ["2", "Ctrl+Right"],
                                "Keep the right record: approve it, and reject the left one")
        self.act_keep_both = a("Approve both", self.keep_both, ["B"],
                               "Keep both records (approve them): they are not copies worth removing")
        self.act_reject_both = a("Reject both", self.reject_both, ["X"], "Reject both records")
        self.act_not_duplicate = a("Not a duplicate", self.not_a_duplicate, ["N"],
                                   "The two records are different examples: dismiss the finding, keep both as "
                                   "they are (a rescan keeps it dismissed; Ctrl+Z undoes)")
        self.act_not_duplicate_why = a("Not a duplicate, with a reason…", lambda: self.not_a_duplicate(ask=True),
                                       ["Shift+N"], "Dismiss the finding and say why (kept in the decision log)",
                                       button=False)
        self.button_row.add_gap(12)
        self.act_prev = a("◀ Previous", self.previous_pair, ["Shift+Space", "PgUp"], "Go to the previous pair",
                          repeat=True)
        self.act_next = a("Next ▶", self.next_pair, ["Space", "PgDown"], "Go to the next pair", repeat=True)
        self.act_prev.setProperty("help", "Duplicate pairs: previous pair")
        self.act_next.setProperty("help", "Duplicate pairs: next pair")

    def _build_extras(self) -> None:
        self._sims: dict[int, float] = {}
        self._sims_of: Optional[list] = None
        hh = self.table.horizontalHeader()
        hh.resizeSection(PairsModel.COL_LEFT, 70)
        hh.resizeSection(PairsModel.COL_RIGHT, 66)
        hh.resizeSection(PairsModel.COL_SIM, 46)
        hh.resizeSection(PairsModel.COL_KIND, 70)

        box = QGroupBox("Accept the scan's suggestions")
        box.setToolTip("For every duplicate cluster (near-duplicate cluster, exact group or semantic pair) at least "
                       "this similar: approve the suggested keeper (★) and reject the other copies. Records you "
                       "already decided are left alone. One undo step.")
        lay = QVBoxLayout(box)
        lay.setSpacing(4)
        row = QHBoxLayout()
        row.addWidget(QLabel("Clusters with similarity ≥"))
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(50, 100)
        self.threshold_slider.setToolTip("Lowest similarity of the clusters whose suggestion is accepted")
        self.threshold_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the keyboard has the number box
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.5, 1.0)
        self.threshold_spin.setSingleStep(0.01)
        self.threshold_spin.setDecimals(2)
        self.threshold_spin.setToolTip(self.threshold_slider.toolTip())
        self.threshold_slider.valueChanged.connect(lambda v: self.threshold_spin.setValue(v / 100))
        self.threshold_spin.valueChanged.connect(self._on_threshold)
        row.addWidget(self.threshold_slider, 1)
        row.addWidget(self.threshold_spin)
        lay.addLayout(row)
        self.plan_label = QLabel()
        self.plan_label.setWordWrap(True)
        self.plan_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # muted, in any theme
        lay.addWidget(self.plan_label)
        self.accept_button = QPushButton("Accept suggestions…")
        self.accept_button.setToolTip("Approve the suggested keeper and reject the other copies of every cluster "
                                      "above the similarity (asks first; Ctrl+Z undoes it in one step)")
        self.accept_button.setAutoDefault(True)  # Enter presses it (Space is "next pair")
        self.accept_button.clicked.connect(self.accept_suggestions)
        lay.addWidget(self.accept_button)
        self.left_layout.addWidget(box)
        self._focus_chain += [self.threshold_spin, self.accept_button]
        self.threshold_spin.setValue(0.95)

    # -- content ---------------------------------------------------------------------------------------
    def _pairs_from_report(self, report: Optional[dict]) -> list[DuplicatePair]:
        return review.duplicate_pairs(report, self._project())

    def _is_done(self, pair: DuplicatePair) -> bool:
        return bool(self.model.decision(pair))

    def _summary(self) -> str:
        pairs = self.model.rows()
        todo = sum(1 for p in pairs if not self._is_done(p))
        n_clusters = len({p.cluster for p in pairs if p.cluster is not None})
        kinds = ", ".join(f"{sum(1 for p in pairs if p.kind == k):,} {k}" for k in review.KINDS
                          if any(p.kind == k for p in pairs))
        head = f"<b>{plural(len(pairs), 'duplicate pair')}</b> ({kinds}) in {plural(n_clusters, 'cluster')}"
        return head + (f"<br>{todo:,} still to decide" if todo else "<br>Every pair is decided.")

    def _render(self, pair: DuplicatePair, records: dict[int, StoredRecord]) -> None:
        row = self.current_row()
        parts = [f"<b>Pair {row + 1:,} of {self.model.rowCount():,}</b>",
                 _esc(_KIND_LABELS.get(pair.kind, pair.kind)), f"similarity <b>{pair.similarity:.2f}</b>"]
        if pair.cluster is not None:
            parts.append(f"cluster {pair.cluster}")
        if pair.keeper is not None:
            parts.append(f"suggested keeper: <b>record {_esc(self.model.number(pair.keeper))}</b>"
                         + (f" ({_esc(pair.reason)})" if pair.reason else ""))
        decided = self.model.decision(pair)
        if decided:
            parts.append(f'<span style="color:{STATUS_COLORS["approved"]}">{_esc(decided)}</span>')
        if self._show_missing(records, pair.ids):
            self.info_label.setText(" &middot; ".join(parts))
            return
        keeper = ('<br><span style="color:#2b8a3e; font-weight:600">&#9733; suggested keeper</span>'
                  + (f' <span style="color:{muted()}">({_esc(pair.reason)})</span>' if pair.reason else ""))
        lhtml, rhtml, differ = diff_html(records[pair.left], records[pair.right], "Left: record", "Right: record",
                                         keeper if pair.keeper == pair.left else "",
                                         keeper if pair.keeper == pair.right else "",
                                         self.record_findings(pair.left), self.record_findings(pair.right))
        if not differ:
            parts.append("the texts are identical")
        self.info_label.setText(" &middot; ".join(parts))
        self.left_pane.show_html(lhtml, pair.left)
        self.right_pane.show_html(rhtml, pair.right)

    # -- decisions ------------------------------------------------------------------------------------
    def _decide(self, fn: Callable[[Project, DuplicatePair], int]) -> None:
        pair = self.current_pair()
        project = self._project()
        if pair is None or project is None:
            return
        what = (f"The decision on records {self.model.number(pair.left)} and {self.model.number(pair.right)} "
                "was not saved")
        if self._store_call("Could not save the decision", what, lambda: fn(project, pair)):
            self._decided(list(pair.ids))

    def keep_left(self) -> None:
        """Approve the left record and reject the right one (one undo step)."""
        self._decide(review.keep_left)

    def keep_right(self) -> None:
        """Approve the right record and reject the left one (one undo step)."""
        self._decide(review.keep_right)

    def keep_both(self) -> None:
        """Approve both records (one undo step)."""
        self._decide(review.keep_both)

    def reject_both(self) -> None:
        """Reject both records (one undo step)."""
        self._decide(review.reject_both)

    def not_a_duplicate(self, ask: bool = False) -> None:
        """Dismiss the current pair as "not a duplicate" (one undo step; survives a rescan)."""
        reason = ""
        if ask:
            reason = self.ask_reason("Not a duplicate", "Why are these two different examples?")
            if reason is None:
                return
        self._decide(lambda project, pair: dismiss_pair(project, pair.left, pair.right, reason))

    def threshold(self) -> float:
        return round(self.threshold_spin.value(), 2)

    def set_threshold(self, value: float) -> None:
        self.threshold_spin.setValue(value)

    def _plan(self, fresh: bool = False) -> Optional[dict[int, str]]:
        """What accepting would change: from the statuses the table holds, or (``fresh``)
        read from the store."""
        project = self._project()
        if project is None or not self.model.rowCount():
            return {}
        statuses = None if fresh else {rid: info[2] for rid, info in self.model.info.items()}
        try:
            return review.suggestion_plan(project, self._pairs_above(), self.threshold(), statuses)
        except Exception as exc:  # noqa: BLE001
            self.error_reported.emit("Could not read the records", f"Reading the clusters' statuses failed: {exc}",
                                     traceback.format_exc())
            return None

    def _cluster_sims(self) -> dict[int, float]:
        """Each cluster's similarity, computed once per list of pairs."""
        rows = self.model.rows()
        if self._sims_of is not rows:
            self._sims = {c: review.cluster_similarity(ps) for c, ps in review.clusters(rows).items()}
            self._sims_of = rows
        return self._sims

    def _pairs_above(self) -> list[DuplicatePair]:
        """The pairs of the clusters at least as similar as the threshold (as shown: two decimals)."""
        sims, threshold = self._cluster_sims(), self.threshold()
        return [p for p in self.model.rows()
                if p.cluster is not None and review.similar_enough(sims[p.cluster], threshold)]

    def _clusters_above(self) -> int:
        threshold = self.threshold()
        return sum(1 for sim in self._cluster_sims().values() if review.similar_enough(sim, threshold))

    @Slot(float)
    def _on_threshold(self, value: float) -> None:
        self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(round(value * 100))
        self.threshold_slider.blockSignals(False)
        self._after_refresh()

    def _after_refresh(self) -> None:
        plan = self._plan() or {}
        n = self._clusters_above()
        approve = sum(1 for s in plan.values() if s == "approved")
        reject = len(plan) - approve
        if not self._cluster_sims():
            text = "No clusters to accept."
        elif not n:
            text = f"No cluster is that similar (the most similar: {max(self._cluster_sims().values()):.2f})."
        elif not plan:
            text = f"{plural(n, 'cluster')}: nothing left to change (already decided)."
        else:
            text = f"{plural(n, 'cluster')}: approve {approve:,}, reject {plural(reject, 'record')}."
        self.plan_label.setText(text)
        self.accept_button.setEnabled(bool(plan))

    def accept_suggestions(self) -> None:
        """Keep each suggested keeper of the clusters above the threshold and reject the other
        copies (asks first when interactive): one store call, one undo step."""
        project = self._project()
        plan = self._plan(fresh=True)
        if project is None or not plan:
            return
        approve = sum(1 for s in plan.values() if s == "approved")
        threshold = self.threshold()
        if not self._confirm("Accept the suggestions?",
                             f"For the {plural(self._clusters_above(), 'cluster')} with similarity "
                             f"≥ {threshold:.2f}: "
                             f"approve {plural(approve, 'suggested keeper')} and reject "
                             f"{plural(len(plan) - approve, 'copy', 'copies')}?\n\n"
                             "Records already decided are left alone. This is one step: Ctrl+Z undoes it."):
            return
        if self._store_call("Could not accept the suggestions", "The suggestions were not saved",
                            lambda: review.accept_suggestions(project, self._pairs_above(), threshold)):
            self._decided(sorted(plan))
