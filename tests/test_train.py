"""Training and evaluation engine (ftcurate.train) and the `train` / `evaluate` commands.

Everything runs on the CPU with the tiny demo model (2 layers, hidden size 64): each run
is a few dozen steps on short sequences, so the whole file takes well under two minutes.
"""

from __future__ import annotations

import json
import os
import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from ftcurate.cli import main  # noqa: E402
from ftcurate.core.progress import Cancelled  # noqa: E402
from ftcurate.core.project.records import Message, Record  # noqa: E402
from ftcurate.core.project.store import Project  # noqa: E402
from ftcurate.train import (FallbackTemplateWarning, LeakageError, TrainConfig, TrainData, TrainError,  # noqa: E402
                            check_leakage, check_model_folder, create_demo_model, estimate_memory, evaluate,
                            help_text, load_data, merge_adapter, read_metrics, render, save_report, train)
from ftcurate.train.data import IGNORE, segments  # noqa: E402
from ftcurate.train.runner import PackedCollator, PaddedCollator  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "resources", "sample", "chat_train.jsonl")
HELDOUT = os.path.join(ROOT, "resources", "sample", "heldout_test.jsonl")

# Settings that make the tiny model learn visibly in a few dozen steps.
FAST = dict(learning_rate=1e-2, max_seq_len=128, batch_size=4, lora_r=16, eval_steps=10, save_steps=5,
            warmup_ratio=0.0)


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> str:
    return create_demo_model(str(tmp_path_factory.mktemp("demo") / "model"))


@pytest.fixture(scope="session")
def tokenizer(demo):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo)


@pytest.fixture(scope="session")
def data() -> TrainData:
    return load_data(SAMPLE, val_fraction=0.1, seed=1)


@pytest.fixture(scope="session")
def trained(demo, data, tmp_path_factory):
    """One 40-step run shared by the tests that only read its results."""
    out = str(tmp_path_factory.mktemp("runs") / "main")
    events, progress = [], []
    config = TrainConfig(model_dir=demo, output_dir=out, max_steps=40, **FAST)
    result = train(config, data, on_event=events.append, progress=lambda d, t, m: progress.append((d, t, m)))
    return config, result, events, progress


def test_throughput_counts_tokens_when_trained_on(demo, tmp_path):
    """The loader makes batches ahead of the step that trains on them; an epoch's last step
    must still be credited with its tokens (it used to log 0 tokens/s)."""
    data = TrainData(train=[chat(i) for i in range(12)], eval=[chat(50)])
    config = TrainConfig(model_dir=demo, output_dir=str(tmp_path / "run"), epochs=2, **{**FAST, "eval_steps": 0})
    result = train(config, data)
    with open(result.metrics_path, encoding="utf-8") as f:
        steps = [json.loads(line) for line in f]
    steps = [e for e in steps if e["type"] == "train"]
    assert len(steps) == result.global_step >= 4
    assert all(e["tokens_per_second"] > 0 for e in steps), [e["tokens_per_second"] for e in steps]
    assert result.tokens <= result.batch_tokens


def chat(i: int, answer: str = "") -> Record:
    return Record([Message("system", "You are terse."), Message("user", f"What is {i} plus {i}?"),
                   Message("assistant", answer or f"It is {2 * i}.")])


# -- settings ------------------------------------------------------------------------------------


def test_config_round_trip_help_and_problems(tmp_path):
    config = TrainConfig(model_dir="/m", output_dir="/o", lora_r=8, method="dora", epochs=2.0)
    path = str(tmp_path / "c.json")
    config.to_json(path)
    assert TrainConfig.from_json(path) == config
    assert TrainConfig.from_dict({**config.to_dict(), "epochs": 2}) == config
    with pytest.raises(ValueError, match="unknown setting 'from_the_future'"):
        TrainConfig.from_dict({**config.to_dict(), "from_the_future": 1})
    from dataclasses import fields

    for f in fields(TrainConfig):
        assert help_text(f.name) and TrainConfig.help_text(f.name) == help_text(f.name)
    assert config.problems() == []
    bad = TrainConfig(model_dir="", method="full", output_dir="")
    assert len(bad.problems()) == 3
    assert TrainConfig(model_dir="m").target_module_list() == "all-linear"
    assert TrainConfig(model_dir="m", target_modules="q_proj, v_proj").target_module_list() == ["q_proj", "v_proj"]


# -- model folders and memory ------------------------------------------------------------------------


def test_check_model_folder(demo, tmp_path):
    assert check_model_folder(demo).ok
    assert not check_model_folder(str(tmp_path / "missing")).ok
    empty = tmp_path / "empty"
    empty.mkdir()
    res = check_model_folder(str(empty))
    assert not res.ok and "config.json" in res.missing and "*.safetensors" in res.missing
    assert any("tokenizer" in m for m in res.missing)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for name in ("config.json", "tokenizer.json", "pytorch_model.bin"):
        (pickled / name).write_text("{}")
    res = check_model_folder(str(pickled))
    assert not res.ok and "safetensors only" in res.message
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    assert "adapter" in check_model_folder(str(adapter)).message


def _write_config(folder, **cfg) -> str:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f)
    return str(folder)


QWEN_05B = dict(hidden_size=896, num_hidden_layers=24, intermediate_size=4864, vocab_size=151936,
                num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True)
LLAMA_7B = dict(hidden_size=4096, num_hidden_layers=32, intermediate_size=11008, vocab_size=32000,
                num_attention_heads=32, num_key_value_heads=32)


def test_estimate_memory_is_sane(tmp_path):
    gib = 1 << 30
    small = _write_config(tmp_path / "q05", **QWEN_05B)
    config = TrainConfig(model_dir=small, output_dir="o")
    est = estimate_memory(config, device="cuda", device_total_bytes=80 * gib)
    assert 0.9 * gib < est.parts["weights"] < 1.1 * gib  # ~494M parameters in bf16
    assert 2 * gib < est.total_bytes < 16 * gib and est.fits is True
    assert est.parts["adapter_and_optimizer"] < 0.3 * gib
    short = estimate_memory(TrainConfig(model_dir=small, output_dir="o", batch_size=1, max_seq_len=512),
                            device="cuda", device_total_bytes=8 * gib)
    assert short.total_bytes < 4 * gib and short.fits
    big = _write_config(tmp_path / "l7", **LLAMA_7B)
    lora = estimate_memory(TrainConfig(model_dir=big, output_dir="o"), device="cuda", device_total_bytes=16 * gib)
    assert 12 * gib < lora.parts["weights"] < 14 * gib
    assert lora.fits is False and "qlora" in lora.advice and "batch_size" in lora.advice
    qlora = estimate_memory(TrainConfig(model_dir=big, output_dir="o", method="qlora"), device="cuda")
    assert qlora.parts["weights"] < lora.parts["weights"] / 3
    ckpt = estimate_memory(TrainConfig(model_dir=big, output_dir="o", gradient_checkpointing=True), device="cuda")
    assert ckpt.parts["activations"] < lora.parts["activations"] / 5
    assert estimate_memory(config, device="cpu").fits is None


# -- rendering ------------------------------------------------------------------------------------------


def _learned_text(tokenizer, ids, labels) -> str:
    return tokenizer.decode([t for t, lab in zip(ids, labels) if lab != IGNORE])


def test_render_masks_everything_but_assistant_replies(tokenizer):
    rec = Record([Message("system", "Be kind."), Message("user", "Hello there?"), Message("assistant", "Hi! 42."),
                  Message("user", "And then?"), Message("assistant", "Then 43.")])
    ids, labels = render(tokenizer, rec, max_len=512)
    assert len(ids) == len(labels) and labels[0] == IGNORE
    learned = _learned_text(tokenizer, ids, labels)
    assert "Hi! 42." in learned and "Then 43." in learned and "<|im_end|>" in learned
    assert "Hello" not in learned and "Be kind" not in learned and "And then" not in learned
    assert "assistant" not in learned  # the turn header is context, not a target
    # Learned positions carry the token itself; the rest -100.
    assert all(lab in (IGNORE, t) for t, lab in zip(ids, labels))
    # Everything learned with assistant_only=False (but the first token).
    _, all_labels = render(tokenizer, rec, max_len=512, assistant_only=False)
    assert all_labels[1:] == ids[1:]
    # OpenAI weight 0: that reply is context only.
    rec.messages[2].weight = 0
    ids, labels = render(tokenizer, rec, max_len=512)
    learned = _learned_text(tokenizer, ids, labels)
    assert "42" not in learned and "Then 43." in learned
    # Cut at max_len.
    short = render(tokenizer, rec, max_len=10)
    assert len(short.input_ids) == len(short.labels) == 10


def test_fallback_template_when_tokenizer_has_none(demo):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(demo)
    tok.chat_template = None
    rec = chat(3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text, spans = segments(tok, rec)
        ids, labels = render(tok, rec, max_len=256)
    assert any(issubclass(w.category, FallbackTemplateWarning) for w in caught)
    assert text.startswith("<|system|>\nYou are terse.\n<|user|>\nWhat is 3 plus 3?\n<|assistant|>\n")
    assert [text[s:e] for s, e in spans] == ["It is 6." + tok.eos_token + "\n"]
    learned = _learned_text(tok, ids, labels)
    assert "It is 6." in learned and "plus" not in learned


def test_packed_batch_equals_separate_examples(demo, tokenizer, data):
    """Packing must not let examples attend to each other: same logits as one by one."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(demo)
    model.eval()
    # Every token learned (a cut example may have no reply left); four different lengths.
    rows = [render(tokenizer, r, n, assistant_only=False)._asdict()
            for r, n in zip(data.train[:4], (96, 70, 40, 25))]
    assert [len(r["input_ids"]) for r in rows] == [96, 70, 40, 25]
    with torch.no_grad():
        packed = model(**PackedCollator()(rows))
        padded = model(**PaddedCollator(tokenizer.pad_token_id)(rows))
        offset = 0
        for row in rows:
            n = len(row["input_ids"])
            alone = model(input_ids=torch.tensor([row["input_ids"]])).logits[0]
            assert torch.allclose(alone, packed.logits[0, offset:offset + n], atol=1e-4)
            offset += n
    assert abs(float(packed.loss) - float(padded.loss)) < 1e-4
    # Rows capped at a length (mask-based attention): several rows, padded at their ends.
    collate = PackedCollator(row_tokens=100)
    batch = collate(rows)
    assert batch["input_ids"].shape[0] > 1
    assert collate.tokens == sum(len(r["input_ids"]) for r in rows) < collate.batch_tokens
    with torch.no_grad():
        assert abs(float(model(**batch).loss) - float(padded.loss)) < 1e-4
    # Rows as long as the batch's longest example (the default with sdpa/eager attention):
    # 96 alone, 70 + 25, 40 -> three rows of width 96, never wider than a padded batch.
    collate = PackedCollator(row_tokens=PackedCollator.LONGEST)
    batch = collate(rows)
    assert tuple(batch["input_ids"].shape) == (3, 96)
    assert sorted((batch["position_ids"] == 0).sum(dim=1).tolist()) == [1, 1, 2]
    with torch.no_grad():
        assert abs(float(model(**batch).loss) - float(padded.loss)) < 1e-4


# -- data -----------------------------------------------------------------------------------------------------


def test_load_data_from_file_splits_deterministically(data):
    assert len(data.train) + len(data.eval) == 316  # 322 lines, 6 unreadable
    assert len(data.eval) == round(316 * 0.1)
    assert any("could not be read" in w for w in data.warnings)
    again = load_data(SAMPLE, val_fraction=0.1, seed=1)
    assert [r.content_hash for r in again.eval] == [r.content_hash for r in data.eval]
    with_file = load_data(SAMPLE, eval_source=HELDOUT)
    assert len(with_file.eval) == 60 and len(with_file.train) == 316


def _project(tmp_path, n_train=12, leak=True):
    """A project with approved training records, a test set, and a stored scan in which
    training record 0 leaks test record 0."""
    from ftcurate.core.io.ingest import import_dataset

    train_file, test_file = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train_file.write_text("".join(json.dumps(chat(i).content_dict()) + "\n" for i in range(n_train)))
    test_file.write_text("".join(json.dumps(chat(i).content_dict()) + "\n" for i in (0, 100, 101)))
    path = str(tmp_path / "p.ftcurate")
    with Project.open(path, create=True) as p:
        import_dataset(p, str(train_file))
        import_dataset(p, str(test_file), role="test")
        train_ids, test_ids = p.ids(split="train"), p.ids(split="test")
        p.approve(train_ids)
        hits = [{"index": train_ids[0], "test_index": test_ids[0], "method": "exact", "score": 1.0,
                 "field": "prompt"}] if leak else []
        p.save_scan("quality", {}, {"index": "record_id", "leakage": hits, "validation_leakage": []})
    return path, train_ids, test_ids


def test_project_leakage_refused_then_overridden_then_resolved(demo, tmp_path):
    path, train_ids, _ = _project(tmp_path)
    split = load_data(path, val_fraction=0.25)
    assert len(split.train) == 9 and len(split.eval) == 3 and len(split.train_ids) == 9
    # Leakage counts only when the leaking record is trained on (not in the validation part).
    assert bool(split.leakage) == (train_ids[0] in split.train_ids)
    data = load_data(path, eval_source=HELDOUT)
    assert data.train_ids == train_ids and len(data.eval) == 60
    assert [h["index"] for h in data.leakage] == [train_ids[0]] and data.leakage[0]["kind"] == "test"
    config = TrainConfig(model_dir=demo, output_dir=str(tmp_path / "run"), max_steps=2, **FAST)
    with pytest.raises(LeakageError) as err:
        train(config, data)
    assert "leak" in str(err.value) and err.value.leaks
    assert not os.path.exists(config.output_dir)  # refused before anything was written
    config.allow_leakage = True
    events = []
    result = train(config, data, on_event=events.append)
    assert result.global_step == 2
    assert any(e["type"] == "warning" and "despite leakage" in e["message"] for e in events)
    assert any("Only" in w for w in result.warnings)  # small-set warning
    # Rejecting the leaking record resolves it.
    with Project.open(path) as p:
        p.reject([train_ids[0]])
        assert check_leakage(p) == []


def test_project_without_approved_records_is_clear(tmp_path):
    from ftcurate.core.io.ingest import import_dataset
    from ftcurate.train import DataError

    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps(chat(1).content_dict()) + "\n")
    path = str(tmp_path / "p.ftcurate")
    with Project.open(path, create=True) as p:
        import_dataset(p, str(f))
    with pytest.raises(DataError, match="no approved training records"):
        load_data(path)


# -- training ----------------------------------------------------------------------------------------------------


def test_training_lowers_loss_and_writes_outputs(trained):
    config, result, events, progress = trained
    out = result.output_dir
    for name in ("adapter_model.safetensors", "adapter_config.json", "run_config.json", "metrics.jsonl",
                 "tokenizer_config.json"):
        assert os.path.isfile(os.path.join(out, name)), name
    assert [n for n in os.listdir(out) if n.startswith("checkpoint-")]
    from ftcurate.train import load_run_config

    from dataclasses import replace

    # run_config.json also names the training data (evaluation's few-shot examples come from it): by
    # its name only (like the model) when the sample lies outside the run's folder tree, relative to
    # the run (read back in full) when both share a folder, e.g. a checkout under /tmp
    from ftcurate.train.runfiles import _same_tree

    sample = os.path.abspath(SAMPLE)
    data = sample if _same_tree(sample, os.path.abspath(out)) else os.path.basename(SAMPLE)
    assert load_run_config(os.path.join(out, "run_config.json")) == replace(config, data=data)
    assert result.global_step == 40 and not result.stopped and result.tokens > 0
    # metrics.jsonl: one JSON object a line, each with a step and a loss or an eval loss.
    with open(result.metrics_path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    # each train / eval line has a step and a loss or an eval loss; the last line ends the run
    logged = [e for e in lines if e["type"] in ("train", "eval")]
    assert logged and all("step" in e and ("loss" in e or "eval_loss" in e) for e in logged)
    assert lines[-1]["type"] == "end" and lines[-1]["global_step"] == 40 and "final_loss" in lines[-1]
    train_lines = [e for e in lines if e["type"] == "train"]
    assert [e["step"] for e in train_lines] == list(range(1, 41))
    for key in ("learning_rate", "grad_norm", "epoch", "tokens_per_second", "samples_per_second",
                "gpu_memory_bytes", "elapsed"):
        assert key in train_lines[0], key
    assert train_lines[0]["gpu_memory_bytes"] == 0
    assert all(e["tokens_per_second"] > 0 for e in train_lines)
    # The loss goes down.
    losses = [e["loss"] for e in train_lines]
    assert sum(losses[-8:]) / 8 < sum(losses[:8]) / 8 - 0.05
    evals = [e["eval_loss"] for e in lines if e["type"] == "eval"]
    assert len(evals) == 4 and min(evals[1:]) < evals[0]
    # Events: the same lines, plus start, warnings and end.
    kinds = [e["type"] for e in events]
    assert kinds.index("start") < kinds.index("train") and kinds[-1] == "end"
    assert [e for e in events if e["type"] in ("train", "eval")] == logged
    assert "warning" in kinds and any("CPU" in w for w in result.warnings)
    assert progress[-1][0] == 40 and progress[-1][1] == 40


def test_output_folder_of_another_run_is_refused(trained, demo, data):
    config, result, _, _ = trained
    with pytest.raises(TrainError, match="already holds a training run"):
        train(TrainConfig(model_dir=demo, output_dir=result.output_dir, max_steps=2, **FAST), data)


def test_graceful_stop_then_resume(demo, data, tmp_path):
    out = str(tmp_path / "run")
    config = TrainConfig(model_dir=demo, output_dir=out, max_steps=12, **FAST)
    steps = []
    result = train(config, data, stop=lambda: len(steps) >= 5, progress=lambda d, t, m: steps.append(d) if t else None)
    assert result.stopped and result.global_step == 5
    assert os.path.isfile(os.path.join(out, "adapter_model.safetensors"))
    assert os.path.isfile(os.path.join(out, "checkpoint-5", "adapter_model.safetensors"))
    with pytest.raises(TrainError, match="Nothing to resume"):
        train(TrainConfig(model_dir=demo, output_dir=str(tmp_path / "empty"), max_steps=2), data, resume=True)
    events = []
    resumed = train(config, data, resume=True, on_event=events.append)
    assert resumed.resumed_from.endswith("checkpoint-5") and resumed.global_step == 12
    first_train = next(e for e in events if e["type"] == "train")
    assert first_train["step"] == 6  # continues after the checkpoint
    steps_logged = [e["step"] for e in read_metrics(out) if e["type"] == "train"]
    assert steps_logged == list(range(1, 13))  # one line per step across both sessions


def test_cancel_raises_quickly(demo, data, tmp_path):
    out = str(tmp_path / "run")
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 12

    with pytest.raises(Cancelled):  # within a few steps of the cancel (counted below), not 500
        train(TrainConfig(model_dir=demo, output_dir=out, max_steps=500, **FAST), data, cancel=cancel)
    assert not os.path.exists(os.path.join(out, "adapter_model.safetensors"))
    assert len([e for e in read_metrics(out) if e["type"] == "train"]) < 20


def test_qlora_needs_a_gpu(demo, data, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(TrainError, match="QLoRA needs"):
        train(TrainConfig(model_dir=demo, output_dir=str(tmp_path / "q"), method="qlora", max_steps=2), data)


def test_tokenizer_without_pad_or_template_is_fixed_with_warnings(demo, data, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    from ftcurate.train import FALLBACK_CHAT_TEMPLATE

    model = str(tmp_path / "bare")
    shutil.copytree(demo, model)
    tok = AutoTokenizer.from_pretrained(model)
    tok.pad_token = None
    tok.chat_template = None
    for name in ("tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
        if os.path.exists(os.path.join(model, name)):
            os.unlink(os.path.join(model, name))
    tok.save_pretrained(model)
    check = AutoTokenizer.from_pretrained(model)
    assert check.pad_token is None and not check.chat_template
    result = train(TrainConfig(model_dir=model, output_dir=str(tmp_path / "run"), max_steps=2, **FAST), data)
    assert any("no pad token" in w for w in result.warnings)
    assert any("no chat template" in w for w in result.warnings)
    saved = AutoTokenizer.from_pretrained(result.output_dir)
    assert saved.chat_template == FALLBACK_CHAT_TEMPLATE and saved.pad_token == saved.eos_token


@pytest.mark.parametrize("failure, key", [("oom", "out_of_memory"), ("disk", "disk_full")])
def test_out_of_memory_and_disk_full_become_train_errors(demo, data, tmp_path, monkeypatch, failure, key):
    import errno

    from ftcurate.train import runner

    def boom(self, state):
        if failure == "oom":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runner._Run, "on_train_begin", boom)
    with pytest.raises(TrainError) as err:
        train(TrainConfig(model_dir=demo, output_dir=str(tmp_path / "run"), max_steps=2, **FAST), data)
    assert err.value.key == key and err.value.advice
    assert err.value.__context__ is None and err.value.__traceback__ is not None


def test_bad_model_folder_is_a_train_error(data, tmp_path):
    with pytest.raises(TrainError) as err:
        train(TrainConfig(model_dir=str(tmp_path), output_dir=str(tmp_path / "o"), max_steps=2), data)
    assert err.value.key == "bad_model" and err.value.advice


# -- evaluation ------------------------------------------------------------------------------------------------


def test_evaluate_base_vs_tuned_report_and_merge(trained, demo, data, tmp_path):
    _, result, _, _ = trained
    records = data.train[:24]
    report = evaluate(demo, records, adapter_dir=result.adapter_dir, max_new_tokens=8, num_generations=2)
    assert set(report["base"]) == {"loss", "perplexity"} and set(report["tuned"]) == {"loss", "perplexity"}
    assert report["tuned"]["loss"] < report["base"]["loss"]
    assert report["base"]["perplexity"] > report["tuned"]["perplexity"] > 1
    assert len(report["generations"]) == 2
    assert set(report["generations"][0]) == {"prompt", "reference", "base", "tuned"}
    path = save_report(report, str(tmp_path / "rep"))
    assert json.load(open(path))["tuned"] == report["tuned"]
    assert "| tuned |" in open(os.path.join(tmp_path, "rep", "eval_report.md")).read()
    # The merged model scores what base + adapter scored.
    merged = merge_adapter(demo, result.adapter_dir, str(tmp_path / "merged"))
    assert check_model_folder(merged).ok
    alone = evaluate(merged, records, num_generations=0, max_len=report["max_len"])
    assert "tuned" not in alone
    assert abs(alone["base"]["loss"] - report["tuned"]["loss"]) < 1e-3


# -- command line --------------------------------------------------------------------------------------------------


def test_cli_train_and_evaluate_json(demo, tmp_path, capsys):
    out = str(tmp_path / "run")
    code = main(["train", "--model", demo, "--data", SAMPLE, "--output", out, "--max-steps", "6", "--lr", "1e-2",
                 "--max-seq-len", "96", "--eval-steps", "3", "--lora-r", "8", "--json"])
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[-1]["type"] == "end" and events[-1]["global_step"] == 6
    assert [e["step"] for e in events if e["type"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert TrainConfig.from_json(os.path.join(out, "run_config.json")).lora_r == 8

    code = main(["evaluate", "--model", demo, "--adapter", out, "--data", HELDOUT, "--max-new-tokens", "4",
                 "--limit", "3", "--baselines", "base,tuned", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    for name in ("base", "tuned"):
        assert {"loss", "perplexity", "final_answer"} <= set(report["systems"][name]["metrics"])
    assert report["n_golden"] == 3 and len(report["examples"]) == 3 and report["verdict"]
    assert os.path.isfile(os.path.join(out, "eval_report.html"))  # beside the run

    # A second run into the same folder: a clear one-line error, exit 2.
    assert main(["train", "--model", demo, "--data", SAMPLE, "--output", out, "--max-steps", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds a training run" in err and "Traceback" not in err


def test_cli_errors_and_leakage_exit_codes(demo, tmp_path, capsys):
    assert main(["train", "--model", str(tmp_path / "nope"), "--data", SAMPLE, "--output", str(tmp_path / "o"),
                 "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"] == "bad_model"
    assert main(["evaluate", "--model", str(tmp_path), "--data", HELDOUT]) == 2
    assert "not a complete model folder" in capsys.readouterr().err
    path, train_ids, _ = _project(tmp_path)
    assert main(["train", "--model", demo, "--data", path, "--output", str(tmp_path / "r"), "--max-steps", "2",
                 "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    # Records are named by their 0-based index in the source file, not by store id.
    assert out["error"] == "leakage" and out["leaks"][0]["record"] == 0 and "index" not in out["leaks"][0]
    assert out["leaks"][0]["source"] == "train.jsonl"
    assert main(["train", "--model", demo, "--data", path, "--output", str(tmp_path / "r"), "--max-steps", "2",
                 "--max-seq-len", "64", "--allow-leakage"]) == 0
    assert "finished at step 2/2" in capsys.readouterr().out


def test_cli_demo_model(tmp_path, capsys):
    folder = str(tmp_path / "demo")
    assert main(["demo-model", folder, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["demo"] is True
    assert check_model_folder(folder).ok
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("keep me")
    assert main(["demo-model", str(tmp_path / "other")]) == 2
