"""Held-out test records are not waiting for review (issue 12): the overview counts them
apart from the review status."""

from __future__ import annotations

from ftcurate.core.project.overview import overview
from test_overview import build_project


def test_held_out_records_are_not_counted_as_unreviewed(tmp_path):
    p = build_project(tmp_path, n_train=20, n_test=6, n_validation=4)
    try:
        train = p.ids(split="train")
        p.approve(train[:5])
        p.reject(train[5:7])
        ov = overview(p)
        assert ov.held_out == 6
        assert ov.review_status == {"unreviewed": 13 + 4, "approved": 5, "rejected": 2, "edited": 0}
        assert ov.unreviewed == 17  # train and validation records still to decide, no test record
        assert ov.status["unreviewed"] == 23  # every split, as stored
        assert sum(ov.review_status.values()) + ov.held_out == ov.records
        assert not any("unreviewed" in text and "23" in text for _level, text in ov.banners)
    finally:
        p.close()
