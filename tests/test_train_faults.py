"""Training faults of issue 12 (items 6, 14, 16) and issue 11 item 3, on the tiny demo model.

* 6: a checkpoint torn while saving is skipped: the run resumes from the newest complete one
  (and says which); a run that left no complete checkpoint starts again, never leaving the
  user to delete folders by hand.
* 14: pickled adapters and checkpoint state files that a safe load refuses end in a clear
  "... is a pickle file; ftcurate refuses to load pickles" naming the file, not a traceback.
* 16: run_config.json, adapter_config.json and the adapter README name the base model
  relative to the run folder (or by its name), the full path only with --full-paths, and
  evaluation and merging still find the model.
* 11.3: the leakage gate counts only the records that would be trained on, and names them
  by their 0-based index in the source file.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from ftcurate.cli import main  # noqa: E402
from ftcurate.core.project.records import Message, Record  # noqa: E402
from ftcurate.core.project.store import Project  # noqa: E402
from ftcurate.train import (EvalError, LeakageError, TrainConfig, TrainData, TrainError, check_leakage,  # noqa: E402
                            create_demo_model, evaluate, last_checkpoint, load_data, merge_adapter, read_metrics,
                            train)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELDOUT = os.path.join(ROOT, "resources", "sample", "heldout_test.jsonl")
FAST = dict(learning_rate=1e-2, max_seq_len=64, batch_size=4, lora_r=4, eval_steps=0, warmup_ratio=0.0,
            early_stopping_patience=0)


def chat(i: int) -> Record:
    return Record([Message("user", f"What is {i} plus {i}?"), Message("assistant", f"It is {2 * i}.")])


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> str:
    return create_demo_model(str(tmp_path_factory.mktemp("models") / "demo"), vocab_size=512)


@pytest.fixture(scope="module")
def data() -> TrainData:
    return TrainData(train=[chat(i) for i in range(16)], eval=[chat(100), chat(101)])


@pytest.fixture(scope="module")
def stopped_run(demo, data, tmp_path_factory) -> str:
    """A run of 8 steps stopped gracefully at step 4: checkpoint-4 and an adapter."""
    out = str(tmp_path_factory.mktemp("runs") / "stopped")
    steps = []
    result = train(TrainConfig(model_dir=demo, output_dir=out, max_steps=8, save_steps=4, **FAST), data,
                   stop=lambda: len(steps) >= 4, progress=lambda d, t, m: steps.append(d) if t else None)
    assert result.stopped and result.global_step == 4
    return out


def copy_run(run: str, tmp_path, name: str = "run") -> str:
    dest = str(tmp_path / name)
    shutil.copytree(run, dest)
    return dest


def tear(checkpoint: str) -> None:
    """What a kill while saving leaves: the folder with only the first files peft writes."""
    os.makedirs(checkpoint)
    with open(os.path.join(checkpoint, "README.md"), "w") as f:
        f.write("---\nlibrary_name: peft\n---\n")


# -- issue 12 item 6: torn checkpoints ---------------------------------------------------------------------


def test_resume_falls_back_to_the_newest_complete_checkpoint(stopped_run, tmp_path, capsys):
    run = copy_run(stopped_run, tmp_path)
    tear(os.path.join(run, "checkpoint-6"))
    assert last_checkpoint(run).endswith("checkpoint-4")
    # The command line, with the run's own settings file (paths in it are relative to the run).
    code = main(["train", "--config", os.path.join(run, "run_config.json"), "--data", _jsonl(tmp_path),
                 "--val-fraction", "0", "--resume"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "Resuming from checkpoint-4, the newest complete checkpoint: checkpoint-6 is incomplete" in out.out
    assert "resuming " in out.out and "checkpoint-4" in out.out and "finished at step 8/8" in out.out
    assert not os.path.exists(os.path.join(run, "checkpoint-6"))  # removed, nothing to delete by hand
    assert [e["step"] for e in read_metrics(run) if e["type"] == "train"] == list(range(1, 9))


def _jsonl(tmp_path) -> str:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(chat(i).content_dict()) + "\n" for i in range(16)))
    return str(path)


@pytest.mark.parametrize("resume", [True, False])
def test_a_run_killed_in_its_first_save_starts_again(demo, data, tmp_path, resume):
    out = tmp_path / "run"
    out.mkdir()
    TrainConfig(model_dir=demo, output_dir=str(out)).to_json(str(out / "run_config.json"))
    (out / "metrics.jsonl").write_text(json.dumps({"type": "train", "step": 1, "loss": 9.0}) + "\n")
    tear(str(out / "checkpoint-4"))
    events = []
    result = train(TrainConfig(model_dir=demo, output_dir=str(out), max_steps=3, save_steps=10, **FAST), data,
                   on_event=events.append, resume=resume)
    assert result.global_step == 3 and result.resumed_from is None
    warnings = [e["message"] for e in events if e["type"] == "warning"]
    assert any("left no complete checkpoint" in w and "starts again from the beginning" in w for w in warnings)
    assert not (out / "checkpoint-4").exists()
    assert [e["loss"] != 9.0 for e in read_metrics(str(out)) if e["type"] == "train"] == [True] * 3


def test_a_new_run_is_still_refused_where_a_run_can_be_resumed(stopped_run, demo, data):
    with pytest.raises(TrainError) as err:
        train(TrainConfig(model_dir=demo, output_dir=stopped_run, max_steps=2, **FAST), data)
    assert err.value.key == "output_exists" and "resume that run (it continues from checkpoint-4)" in str(err.value)


# -- issue 12 item 14: pickles -------------------------------------------------------------------------------


def test_a_checkpoint_pickle_that_a_safe_load_refuses_is_named(stopped_run, demo, data, tmp_path, capsys):
    run = copy_run(stopped_run, tmp_path)
    bad = os.path.join(run, "checkpoint-4", "rng_state.pth")
    torch.save({"python": datetime.datetime(2024, 1, 1)}, bad)  # not plain tensors: weights_only refuses it
    with pytest.raises(TrainError) as err:
        train(TrainConfig(model_dir=demo, output_dir=run, max_steps=8, save_steps=4, **FAST), data, resume=True)
    assert err.value.key == "pickle_refused"
    assert f"{bad} is a pickle file; ftcurate refuses to load pickles" in str(err.value)
    code = main(["train", "--model", demo, "--data", _jsonl(tmp_path), "--output", run, "--resume",
                 "--max-steps", "8"])
    stderr = capsys.readouterr().err
    assert code == 2 and "is a pickle file; ftcurate refuses to load pickles" in stderr
    assert "Traceback" not in stderr and stderr.count("\n") == 1


def test_a_pickled_adapter_is_refused_for_evaluation_and_merge(stopped_run, demo, tmp_path, capsys):
    from safetensors.torch import load_file

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    shutil.copy(os.path.join(stopped_run, "adapter_config.json"), adapter)
    weights = load_file(os.path.join(stopped_run, "adapter_model.safetensors"))
    torch.save({**weights, "saved": datetime.datetime(2024, 1, 1)}, str(adapter / "adapter_model.bin"))
    message = f"{adapter / 'adapter_model.bin'} is a pickle file; ftcurate refuses to load pickles"
    with pytest.raises(EvalError, match="refuses to load pickles") as err:
        evaluate(demo, [chat(1)], adapter_dir=str(adapter), num_generations=0)
    assert message in str(err.value)
    with pytest.raises(EvalError, match="refuses to load pickles"):
        merge_adapter(demo, str(adapter), str(tmp_path / "merged"))
    assert not (tmp_path / "merged").exists()
    assert main(["evaluate", "--model", demo, "--adapter", str(adapter), "--data", HELDOUT]) == 2
    stderr = capsys.readouterr().err
    assert message in stderr and "Traceback" not in stderr


# -- issue 12 item 16: paths in run files ------------------------------------------------------------------


def _text_files(folder: str):
    for base, _dirs, names in os.walk(folder):
        for name in names:
            path = os.path.join(base, name)
            try:
                with open(path, encoding="utf-8") as f:
                    yield path, f.read()
            except (UnicodeDecodeError, OSError):
                continue


def test_run_files_hold_no_absolute_paths_and_evaluation_still_finds_the_model(stopped_run, demo, tmp_path,
                                                                               capsys):
    from ftcurate.train import load_run_config, run_model_dir

    run = stopped_run
    with open(os.path.join(run, "run_config.json")) as f:
        saved = json.load(f)
    rel = os.path.relpath(demo, run)
    assert saved["model_dir"] == rel and not os.path.isabs(saved["model_dir"]) and saved["output_dir"] == "."
    for folder in (run, os.path.join(run, "checkpoint-4")):
        with open(os.path.join(folder, "adapter_config.json")) as f:
            assert json.load(f)["base_model_name_or_path"] == rel
        with open(os.path.join(folder, "README.md")) as f:
            assert f"base_model: {rel}" in f.read()
    assert not os.path.exists(os.path.join(run, "checkpoint-4", "training_args.bin"))  # held the full path
    tmp_root = os.path.dirname(os.path.dirname(demo))  # what the run and the model share
    leaked = [p for p, text in _text_files(run) if tmp_root in text or demo in text]
    assert leaked == []
    # ... and the base model is found again from the run folder, by evaluate and for --config.
    assert run_model_dir(run) == demo
    assert load_run_config(os.path.join(run, "run_config.json")).model_dir == demo
    heldout = _jsonl(tmp_path)
    assert main(["evaluate", "--adapter", run, "--data", heldout, "--max-new-tokens", "2", "--no-report",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["systems"]["tuned"]["metrics"]["loss"]["mean"] > 0 and report["model_dir"] == demo
    merged = merge_adapter(run_model_dir(run), run, str(tmp_path / "merged"))
    assert os.path.isfile(os.path.join(merged, "model.safetensors"))
    # A moved run whose model cannot be found asks for --model, in one line.
    moved = copy_run(run, tmp_path / "elsewhere" / "deeper", "moved")
    assert run_model_dir(moved) is None
    assert main(["evaluate", "--adapter", moved, "--data", HELDOUT]) == 2
    assert "pass --model" in capsys.readouterr().err


def test_full_paths_only_when_asked(demo, data, tmp_path):
    out = str(tmp_path / "full")
    train(TrainConfig(model_dir=demo, output_dir=out, max_steps=1, save_steps=10, **FAST), data, full_paths=True)
    with open(os.path.join(out, "run_config.json")) as f:
        saved = json.load(f)
    assert saved["model_dir"] == demo and saved["output_dir"] == out
    with open(os.path.join(out, "adapter_config.json")) as f:
        assert json.load(f)["base_model_name_or_path"] == demo


def test_portable_paths_and_redaction(monkeypatch):
    from ftcurate.train.runfiles import portable_path, redact

    monkeypatch.setenv("HOME", "/home/ana")
    run = "/home/ana/work/proj/runs/proj/20240101-100000"
    assert portable_path("/home/ana/work/proj/models/m", run) == "../../../models/m"
    assert portable_path("/home/ana/models/qwen", run) == "qwen"  # only the home folder in common
    assert portable_path("/srv/models/qwen", run) == "qwen"
    assert portable_path("/srv/models/qwen", run, full=True) == "/srv/models/qwen"
    assert redact("https://ana:s3cret@example.com/m") == "https://ana:***@example.com/m"


def test_use_settings_of_another_run_leaves_remote_code_off(stopped_run, demo, tmp_path):
    from ftcurate.train import load_run_settings

    run = copy_run(stopped_run, tmp_path)
    path = os.path.join(run, "run_config.json")
    with open(path) as f:
        saved = json.load(f)
    with open(path, "w") as f:
        json.dump({**saved, "trust_remote_code": True, "allow_leakage": True}, f)
    loaded = load_run_settings(run)
    assert loaded.remote_code is True and loaded.config.trust_remote_code is False
    assert any("left off" in n for n in loaded.notes)
    assert loaded.config.model_dir == demo and loaded.config.output_dir == "" and not loaded.config.allow_leakage
    with open(path, "w") as f:
        json.dump({**saved, "model_dir": "gone-model", "trust_remote_code": "false"}, f)
    loaded = load_run_settings(run, current_model_dir="/chosen/now")
    assert loaded.remote_code is False and loaded.config.model_dir == "/chosen/now"


# -- issue 11 item 3: the leakage gate counts what is trained on --------------------------------------------


def _leaky_project(tmp_path, leak_status: dict) -> tuple[str, dict]:
    """Test file imported first (so store ids differ from record indices); 12 training
    records, all approved but those in ``leak_status`` (index -> status); the stored scan
    says each of those leaks test record 0."""
    from ftcurate.core.io.ingest import import_dataset

    test_file, train_file = tmp_path / "test.jsonl", tmp_path / "train.jsonl"
    test_file.write_text("".join(json.dumps(chat(i).content_dict()) + "\n" for i in (3, 100, 101)))
    train_file.write_text("".join(json.dumps(chat(i).content_dict()) + "\n" for i in range(12)))
    path = str(tmp_path / "p.ftcurate")
    with Project.open(path, create=True) as p:
        import_dataset(p, str(test_file), role="test")
        import_dataset(p, str(train_file))
        source = [s for s in p.sources() if s["role"] == "train"][0]["id"]
        ids = {i: p.id_for_index(source, i) for i in range(12)}
        p.approve([ids[i] for i in range(12) if i not in leak_status])
        for i, status in leak_status.items():
            if status == "rejected":
                p.reject([ids[i]])
        test_id = p.ids(split="test")[0]
        hits = [{"index": ids[i], "test_index": test_id, "method": "exact", "score": 1.0, "field": "prompt"}
                for i in leak_status]
        p.save_scan("quality", {}, {"index": "record_id", "leakage": hits, "validation_leakage": []})
    return path, ids


def test_leaks_of_records_not_trained_on_do_not_refuse_training(demo, tmp_path):
    path, _ = _leaky_project(tmp_path, {3: "unreviewed", 7: "unreviewed", 9: "rejected"})
    with Project.open(path, readonly=True) as p:
        assert check_leakage(p) == []
    data = load_data(path, val_fraction=0)
    assert data.leakage == [] and len(data.train) == 9
    result = train(TrainConfig(model_dir=demo, output_dir=str(tmp_path / "run"), max_steps=1, **FAST), data)
    assert result.global_step == 1


def test_a_leak_in_the_approved_records_refuses_naming_its_source_index(demo, tmp_path, capsys):
    path, ids = _leaky_project(tmp_path, {3: "approved", 7: "unreviewed"})
    assert ids[3] != 3  # the store id is not the number a user sees
    with Project.open(path) as p:
        p.approve([ids[3]])
    data = load_data(path, val_fraction=0)
    with pytest.raises(LeakageError) as err:
        train(TrainConfig(model_dir=demo, output_dir=str(tmp_path / "run"), max_steps=1, **FAST), data)
    assert "1 training record(s) leak test records" in str(err.value)
    assert "record 3 of train.jsonl" in str(err.value) and str(ids[3]) not in str(err.value).split("(")[1]
    assert main(["train", "--model", demo, "--data", path, "--output", str(tmp_path / "r"), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert [(h["record"], h["source"], h["test_record"], h["test_source"]) for h in out["leaks"]] == \
        [(3, "train.jsonl", 0, "test.jsonl")]
    assert all("index" not in h and "test_index" not in h for h in out["leaks"])


def test_a_pickled_embedding_model_is_refused_by_the_scan(tmp_path, capsys):
    """A local embedding model folder whose pickled weights a safe load refuses: the scan
    says which file, in one line (it used to end in torch's UnpicklingError traceback)."""
    pytest.importorskip("sentence_transformers")
    from transformers import BertConfig, BertModel

    folder = tmp_path / "emb"
    config = BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32)
    config.save_pretrained(str(folder))
    torch.save({**BertModel(config).state_dict(), "saved": datetime.datetime(2024, 1, 1)},
               str(folder / "pytorch_model.bin"))
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghij"]) + "\n")
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(chat(i).content_dict()) + "\n" for i in range(3)))
    code = main(["scan", str(data), "--set", f"embedding_model={folder}", "--set", f"outlier_model={folder}"])
    stderr = capsys.readouterr().err
    assert code == 2 and "Traceback" not in stderr
    assert f"{folder / 'pytorch_model.bin'} is a pickle file; ftcurate refuses to load pickles" in stderr
