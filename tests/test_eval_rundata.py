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
