"""The two record panes of the Duplicates and Leakage tabs, and the HTML they show.

:func:`diff_html` renders two records side by side with the words that differ highlighted
(deleted words red on the left, inserted words green on the right, from
:func:`ftcurate.core.project.review.word_diff`); :func:`evidence_html` renders a leak's two
records with the evidence of the leak - the shared n-gram or the matched words
(:func:`ftcurate.core.project.review.evidence_spans`) - highlighted in both. Each record's
header names it by its index in its file and lists what the last scan found about it.
:class:`RecordPane` shows one side: read-only, Tab leaves it (it never keeps Tab for its
links), Enter or its link opens the record in the Records tab.
"""

from __future__ import annotations

import html
import os
from typing import Iterable, Optional, Sequence

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtWidgets import QFrame, QTextBrowser, QWidget

from ..core.project import review
from ..core.project.records import Message
from ..core.project.store import StoredRecord
from .models import STATUS_COLORS, STATUS_LABELS
from .widgets import ROLE_STYLES, ROLE_STYLES_DARK

MUTED = "#6b7280"
FOUND = "#e8590c"  # the "Found by the scan" heading, as in the Records tab
# (deleted, inserted) word backgrounds: light theme, dark theme
_DIFF_COLORS = {False: ("#ffc9c9", "#b2f2bb"), True: ("#7a2525", "#22603a")}
# background of a leak's evidence (the shared n-gram or words): light theme, dark theme
_EVIDENCE_COLORS = {False: "#ffe066", True: "#6b5a00"}
#: The message roles a leak of each field is about (the rest of the record is shown plain).
FIELD_ROLES = {"prompt": ("system", "user"), "answer": ("assistant",)}

Findings = Sequence[tuple[str, str]]  # (kind, detail) pairs of one record


def is_dark() -> bool:
    from .theme import is_dark as dark

    return dark()


def muted() -> str:
    """The theme's colour for secondary text (readable on its backgrounds)."""
    from . import theme

    colors = getattr(theme, "colors", None)
    if colors is not None:
        return colors().muted
    return "#adb5bd" if is_dark() else MUTED


def _esc(text: Optional[str]) -> str:
    return html.escape(text or "", quote=True)


def message_text(m: Message) -> str:
    """What a message says, tool calls included (``→ name(arguments)``), for comparing."""
    text = m.content or ""
    for name, args, _id in m.calls():
        text += ("\n" if text else "") + f"→ {name}({args if isinstance(args, str) else args!r})"
    return text


def _marked(text: str, color: str) -> str:
    """``text`` on a coloured background, but not the whitespace at its end."""
    body = text.rstrip()
    if not body:
        return _esc(text)
    return f'<span style="background-color:{color}">{_esc(body)}</span>{_esc(text[len(body):])}'


def _spans_marked(text: str, spans: Iterable[tuple[int, int]], color: str) -> str:
    """``text`` with the character ``spans`` on a coloured background."""
    out, at = [], 0
    for start, end in spans:
        out.append(_esc(text[at:start]))
        out.append(f'<span style="background-color:{color}">{_esc(text[start:end])}</span>')
        at = end
    out.append(_esc(text[at:]))
    return "".join(out)


def findings_html(findings: Findings) -> str:
    """The "Found by the scan" lines of a record header (nothing when there are none)."""
    if not findings:
        return ""
    return (f'<br><span style="color:{FOUND}; font-weight:600">Found by the scan:</span>'
            + "".join(f'<br>&nbsp;&nbsp;&#9888; <b>{_esc(kind)}</b>'
                      + (f' <span style="color:{muted()}">— {_esc(detail)}</span>' if detail else "")
                      for kind, detail in findings))


def _header_html(sr: StoredRecord, title: str, note: str, text_color: str, findings: Findings = ()) -> str:
    color = STATUS_COLORS.get(sr.status, MUTED)
    gray = muted()
    where = os.path.basename(sr.record.source.file) or "?"
    if sr.line is not None:
        where += f", line {sr.line}"
    return (
        '<table width="100%" cellspacing="0" cellpadding="0"><tr><td>'
        f'<span style="font-size:large; font-weight:600; color:{text_color}">{_esc(title)} {sr.index}</span>'
        f'&nbsp;&nbsp;<span style="color:{color}; font-weight:600">&#9679; '
        f'{_esc(STATUS_LABELS.get(sr.status, sr.status))}</span>'
        f'&nbsp;&nbsp;<span style="color:{gray}">split: {_esc(sr.split)}</span>'
        f"{note}</td></tr><tr><td>"
        f'<span style="color:{gray}">{_esc(where)} &middot; {len(sr.record.messages)} messages &middot; </span>'
        f'<a href="record:{sr.id}">open in Records</a>'
        f"{findings_html(findings)}"
        "</td></tr></table><br>"
    )


def _box(role: str, body: str, styles: dict) -> str:
    label_color, bg, border = styles.get(role, styles["system"])
    return (f'<table width="100%" cellspacing="0" cellpadding="8" bgcolor="{bg}" '
            f'style="border:1px solid {border}; margin-bottom:8px"><tr><td>'
            f'<div style="color:{label_color}; font-weight:700">{_esc(role.capitalize())}</div>'
            f'<div style="white-space:pre-wrap">{body}</div></td></tr></table>')


def _theme() -> tuple[bool, dict, str, str]:
    """(dark, role styles, text colour, "(empty)" HTML) for the current theme."""
    dark = is_dark()
    return (dark, ROLE_STYLES_DARK if dark else ROLE_STYLES, "#e9ecef" if dark else "#1b1f24",
            f'<span style="color:{muted()}"><i>(empty)</i></span>')


def diff_html(left: StoredRecord, right: StoredRecord, left_title: str, right_title: str,
              left_note: str = "", right_note: str = "", left_findings: Findings = (),
              right_findings: Findings = ()) -> tuple[str, str, bool]:
    """HTML for two records side by side: ``(left html, right html, differ)``.

    Messages are compared in order (first with first...); inside each pair of messages the
    words only the left one has get a red background on the left, those only the right
    one has a green background on the right (:func:`ftcurate.core.project.review.word_diff`). A
    message one side lacks is marked whole. ``differ`` is False when every message reads
    the same. ``*_note``: extra HTML after the status line (e.g. the suggested keeper);
    ``*_findings``: what the last scan found about each record, (kind, detail) pairs."""
    dark, styles, text_color, empty = _theme()
    deleted, inserted = _DIFF_COLORS[dark]
    lparts = [f'<html><body style="color:{text_color}">',
              _header_html(left, left_title, left_note, text_color, left_findings)]
    rparts = [f'<html><body style="color:{text_color}">',
              _header_html(right, right_title, right_note, text_color, right_findings)]
    lmsgs, rmsgs = left.record.messages, right.record.messages
    differ = len(lmsgs) != len(rmsgs)
    for i in range(max(len(lmsgs), len(rmsgs))):
        lm = lmsgs[i] if i < len(lmsgs) else None
        rm = rmsgs[i] if i < len(rmsgs) else None
        if lm is not None and rm is not None:
            lbody, rbody = [], []
            for op, a, b in review.word_diff(message_text(lm), message_text(rm)):
                if op == "equal":
                    lbody.append(_esc(a))
                    rbody.append(_esc(b))
                else:
                    differ = True
                    lbody.append(_marked(a, deleted))
                    rbody.append(_marked(b, inserted))
            differ = differ or lm.role != rm.role
            lparts.append(_box(lm.role, "".join(lbody) or empty, styles))
            rparts.append(_box(rm.role, "".join(rbody) or empty, styles))
        elif lm is not None:
            lparts.append(_box(lm.role, _marked(message_text(lm), deleted) or empty, styles))
        elif rm is not None:
            rparts.append(_box(rm.role, _marked(message_text(rm), inserted) or empty, styles))
    lparts.append("</body></html>")
    rparts.append("</body></html>")
    return "".join(lparts), "".join(rparts), differ


def evidence_html(sr: StoredRecord, title: str, evidence: review.LeakEvidence, field: str,
                  findings: Findings = ()) -> tuple[str, int]:
    """HTML for one record of a leak with the ``evidence`` highlighted in the messages the
    leak's ``field`` covers (:data:`FIELD_ROLES`; every message for another field), and how
    many places were highlighted."""
    dark, styles, text_color, empty = _theme()
    color = _EVIDENCE_COLORS[dark]
    roles = FIELD_ROLES.get(field)
    parts = [f'<html><body style="color:{text_color}">', _header_html(sr, title, "", text_color, findings)]
    found = 0
    for m in sr.record.messages:
        text = message_text(m)
        spans = review.evidence_spans(text, evidence) if roles is None or m.role in roles else []
        found += len(spans)
        parts.append(_box(m.role, _spans_marked(text, spans, color) if text else empty, styles))
    parts.append("</body></html>")
    return "".join(parts), found


class RecordPane(QTextBrowser):
    """One side of a pair: read-only; Tab moves on to the next widget (the links are for
    the mouse); Enter, or a click on a ``record:<id>`` link, asks to open the record."""

    record_requested = Signal(int)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setTabChangesFocus(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.document().setDocumentMargin(10)
        self.anchorClicked.connect(self._on_anchor)
        self.record_id: Optional[int] = None

    def show_html(self, text: str, record_id: Optional[int]) -> None:
        keep = self.verticalScrollBar().value() if record_id is not None and record_id == self.record_id else 0
        self.record_id = record_id
        self.setHtml(text)
        self.verticalScrollBar().setValue(keep)

    def show_placeholder(self, text: str) -> None:
        self.show_html(f'<p style="color:{muted()}; margin-top:24px" align="center">{_esc(text)}</p>', None)

    def keyPressEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt's name
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.record_id is not None:
            self.record_requested.emit(self.record_id)
            event.accept()
            return
        super().keyPressEvent(event)

    @Slot(QUrl)
    def _on_anchor(self, url: QUrl) -> None:
        if url.scheme() == "record":
            try:
                self.record_requested.emit(int(url.path()))
            except ValueError:
                pass

