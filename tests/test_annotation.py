"""Label sets, guidelines and saved views of a project (issue 11 capabilities), in core."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ftcurate.core.project.annotation import (LABEL_KEYS, AnnotationError, LabelDef, define_labels, delete_view,
                                              guidelines, label_set, parse_label_def, save_view, saved_views,
                                              set_guidelines, set_label_set)
from ftcurate.core.project.store import Project


@pytest.fixture
def project(tmp_path):
    with Project.open(str(tmp_path / "p.ftcurate"), create=True) as p:
        yield p


def test_label_set_round_trip_and_checks(project):
    defs = set_label_set(project, [LabelDef("math", "#1C7ED6", "1"), LabelDef("needs check", "#e8590c", "c")])
    assert [d.key for d in defs] == ["1", "C"] and defs[0].color == "#1c7ed6"
    assert label_set(project) == defs
    with pytest.raises(AnnotationError, match="taken by the review keys"):
        set_label_set(project, [LabelDef("x", "#000000", "A")])
    with pytest.raises(AnnotationError, match="given to both"):
        set_label_set(project, [LabelDef("x", "#000000", "1"), LabelDef("y", "#000000", "1")])
    with pytest.raises(AnnotationError, match="twice"):
        set_label_set(project, [LabelDef("x"), LabelDef("X")])
    with pytest.raises(AnnotationError, match="RRGGBB"):
        set_label_set(project, [LabelDef("x", "red")])
    with pytest.raises(AnnotationError, match="commas"):
        parse_label_def("a,b")
    assert label_set(project) == defs  # a refused set changes nothing


def test_define_and_undefine_from_the_command_line_form(project):
    define_labels(project, [parse_label_def("math:#1c7ed6:1"), parse_label_def("style", 1)])
    assert [(d.name, d.key) for d in label_set(project)] == [("math", "1"), ("style", "")]
    define_labels(project, [parse_label_def("math:#2f9e44:2")], remove=["style"])
    assert label_set(project) == [LabelDef("math", "#2f9e44", "2")]
    with pytest.raises(AnnotationError, match="no label"):
        define_labels(project, [], remove=["nope"])


def test_damaged_label_set_entries_are_left_out(project):
    project.meta_set("label_set", [{"name": "ok", "color": "#000000", "key": "1"}, "junk", {"name": ""}])
    assert [d.name for d in label_set(project)] == ["ok"]


def test_guidelines_and_saved_views(project):
    assert guidelines(project) == ""
    set_guidelines(project, "# Rules\r\n\n- answers end with `#### N`\n")
    assert guidelines(project).startswith("# Rules\n")
    set_guidelines(project, "  ")
    assert guidelines(project) == ""
    save_view(project, "  to check ", {"filter": {"status": "unreviewed"}, "sort": ["tokens", True]})
    assert saved_views(project) == {"to check": {"filter": {"status": "unreviewed"}, "sort": ["tokens", True]}}
    assert delete_view(project, "to check") and saved_views(project) == {}
    assert not delete_view(project, "to check")


@given(st.sampled_from(LABEL_KEYS), st.text(min_size=1, max_size=30).filter(lambda s: s.strip() and "," not in s
                                                                           and ":" not in s))
def test_any_free_key_and_plain_name_parses(key, name):
    d = parse_label_def(f"{name}:#123456:{key.lower()}")
    assert d.key == key and d.name == " ".join(name.split())


def test_cli_labels_and_guidelines(tmp_path, capsys):
    import json

    from ftcurate.cli import main
    from ftcurate.core.io.ingest import import_dataset
    from test_numbering import alpaca_with_dropped_rows

    proj = str(tmp_path / "w.ftcurate")
    with Project.open(proj, create=True) as p:
        import_dataset(p, str(alpaca_with_dropped_rows(tmp_path / "a.json")))
    assert main(["labels", proj, "--define", "math:#1c7ed6:1", "--define", "style::t"]) == 0
    assert main(["labels", proj, "--add", "math", "--records", "7", "8"]) == 0
    assert main(["labels", proj, "--remove", "math", "--records", "8"]) == 0
    capsys.readouterr()
    assert main(["labels", proj, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["label_set"][1] == {"name": "style", "color": "#2f9e44", "key": "T"}
    assert out["labels"] == [{"name": "math", "records": 1, "in_set": True}]
    with Project.open(proj, readonly=True) as p:
        assert [sr.index for sr in p.iter_records() if "math" in sr.labels] == [7]
    assert main(["labels", proj, "--define", "x::A"]) == 2  # a review key: refused, clearly
    assert "taken by the review keys" in capsys.readouterr().err
    assert main(["labels", proj, "--add", "math", "--records", "2"]) == 2  # row 2 was dropped at import
    guide = tmp_path / "g.md"
    guide.write_text("# How we label\n\n- `math`: arithmetic\n", encoding="utf-8")
    assert main(["guidelines", proj, "--set", str(guide)]) == 0
    capsys.readouterr()
    assert main(["guidelines", proj, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["guidelines"].startswith("# How we label")
