"""Find similar records and search by meaning (issue 11 capability), in core."""

from __future__ import annotations

import json

import pytest

from ftcurate.core.io.ingest import import_dataset
from ftcurate.core.project.store import Project
from ftcurate.core.quality.similar import search_by_meaning, similar_to_record


@pytest.fixture
def project(tmp_path):
    topics = ["How do I bake sourdough bread at home?", "What temperature should I bake bread at?",
              "Tips for kneading bread dough by hand", "How do I change a flat bicycle tyre?",
              "My bike chain keeps slipping, what do I do?", "Which tyre pressure is right for a road bike?",
              "Explain photosynthesis in plants", "What do plant leaves need sunlight for?"]
    lines = [json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "An answer."}]})
             for q in topics]
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with Project.open(str(tmp_path / "p.ftcurate"), create=True) as p:
        import_dataset(p, str(tmp_path / "d.jsonl"))
        yield p


def test_similar_records_share_the_topic(project):
    ids = project.ids()
    found = similar_to_record(project, ids[3], k=2)  # the flat tyre
    assert ids[3] not in found.ids.tolist() and len(found.ids) == 2
    assert set(found.ids.tolist()) <= {ids[4], ids[5]}
    assert found.scores[0] >= found.scores[1] and found.query == "record 3"


def test_search_by_meaning_finds_the_topic(project):
    ids = project.ids()
    found = search_by_meaning(project, "baking a loaf", k=3)
    assert set(found.ids.tolist()) == {ids[0], ids[1], ids[2]}
    assert len(search_by_meaning(project, "   ", k=3).ids) == 0
