"""The training data of a run is recorded in its run_config.json (evaluation's few-shot pool)."""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from ftcurate.core.project.records import Message, Record  # noqa: E402
from ftcurate.train import TrainConfig, create_demo_model, load_data, train  # noqa: E402
from ftcurate.train.runfiles import load_run_config, run_training_data  # noqa: E402


def _chat(i: int) -> Record:
    return Record([Message("user", f"What is {i} plus {i}?"), Message("assistant", f"It is {2 * i}.")])


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> str:
    return create_demo_model(str(tmp_path_factory.mktemp("demo") / "model"), hidden_size=32, num_layers=1)


def test_run_config_names_the_training_data_relative_to_the_run(demo, tmp_path):
    src = tmp_path / "data" / "train.jsonl"
    src.parent.mkdir()
    src.write_text("".join(json.dumps(_chat(i).content_dict()) + "\n" for i in range(6)), encoding="utf-8")
    out = tmp_path / "runs" / "a"
    train(TrainConfig(model_dir=demo, output_dir=str(out), max_steps=1, max_seq_len=48, eval_steps=0),
          load_data(str(src), val_fraction=0))
    saved = json.loads((out / "run_config.json").read_text())
    assert saved["data"] == os.path.join("..", "..", "data", "train.jsonl") and saved["uncurated"] is False
    assert run_training_data(str(out)) == (str(src), False)
    assert load_run_config(str(out / "run_config.json")).data == str(src)
    os.unlink(src)  # moved away: no longer found
    assert run_training_data(str(out)) is None


def _raw_project(tmp_path):
    """Train records 0-5 (0, 1 approved, 1 edited; 2 rejected; 3, 4 unreviewed; 5 leaks test 0),
    record 6 moved to the validation split, test records; a stored scan where train record 5
    leaks test record 0."""
    from ftcurate.core.io.ingest import import_dataset
    from ftcurate.core.project.store import Project

    train_file, test_file = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train_file.write_text("".join(json.dumps(_chat(i).content_dict()) + "\n" for i in range(7)))
    test_file.write_text("".join(json.dumps(_chat(i).content_dict()) + "\n" for i in (100, 101)))
    path = str(tmp_path / "p.ftcurate")
    with Project.open(path, create=True) as p:
        import_dataset(p, str(train_file))
        import_dataset(p, str(test_file), role="test")
        ids, test_ids = p.ids(split="train"), p.ids(split="test")
        p.set_split(ids[6], "validation")
        p.approve(ids[:2])
        p.edit(ids[1], _chat(77))
        p.reject(ids[2])
        p.save_scan("quality", {}, {"index": "record_id", "validation_leakage": [],
                                    "leakage": [{"index": ids[5], "test_index": test_ids[0], "method": "exact",
                                                 "score": 1.0, "field": "prompt"}]})
    return path, ids


def test_uncurated_data_is_every_imported_record_as_imported_less_the_leaks(tmp_path):
    path, ids = _raw_project(tmp_path)
    curated = load_data(path, val_fraction=0)
    assert [r.messages[0].content for r in curated.train] == ["What is 0 plus 0?", "What is 77 plus 77?"]
    assert not curated.uncurated and not curated.eval  # the validation record is not approved
    raw = load_data(path, val_fraction=0, uncurated=True)
    assert raw.uncurated and raw.train_ids == ids[:5]  # every state; the leaking record 5 left out
    assert [r.messages[0].content for r in raw.train][1] == "What is 1 plus 1?"  # as imported, not edited
    assert len(raw.eval) == 1 and raw.eval_source == "the project's validation split"
    assert any("leak held-out records" in w for w in raw.warnings) and raw.leakage == []
