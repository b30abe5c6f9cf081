"""Systems side by side (base, few-shot, tuned, raw) on a small planted task, end to end.

The task: every team's flag is blue. The curated training data says so; the raw data also
holds two contradicting copies of each record that say "red" (unreviewed), so a model trained
on the raw data answers red. A tiny demo model (1 layer, hidden size 32) learns either in a
few dozen steps on the CPU.
"""

from __future__ import annotations

import json
import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from ftcurate.cli import main  # noqa: E402
from ftcurate.core.project.records import Message, Record  # noqa: E402
from ftcurate.core.project.store import Project  # noqa: E402
from ftcurate.train import TrainConfig, create_demo_model, load_data, train  # noqa: E402
from ftcurate.train.compare import CompareSettings, EvalInputError, EvalStopped, compare  # noqa: E402
from ftcurate.train.generate import Decoding  # noqa: E402
from ftcurate.train.report import REPORT_HTML, REPORT_JSON, REPORT_MD, save_report  # noqa: E402

SYSTEM = "Answer with one word."
TEAMS = ["otters", "hawks", "lions", "bears", "wolves", "foxes", "eagles", "sharks", "tigers", "owls", "crows",
         "moles", "bees", "crabs", "seals", "yaks"]
GOLDEN = ["pumas", "geese", "ravens", "bison", "newts", "lynx", "orcas", "hares"]


def flag(team: str, colour: str) -> Record:
    return Record([Message("system", SYSTEM), Message("user", f"What colour is the flag of the {team}?"),
                   Message("assistant", colour)])


def _write(path, records) -> None:
    path.write_text("".join(json.dumps(r.content_dict()) + "\n" for r in records), encoding="utf-8")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A project (16 curated + 32 contradicting raw records, 8 golden), a tiny model, and the
    curated and raw adapters (same settings)."""
    from ftcurate.core.io.ingest import import_dataset

    root = tmp_path_factory.mktemp("cmp")
    train_file, test_file = root / "train.jsonl", root / "golden.jsonl"
    good = [flag(t, "blue") for t in TEAMS]
    bad = [flag(t, "red") for t in TEAMS for _ in range(2)]
    _write(train_file, good + bad)
    _write(test_file, [flag(t, "blue") for t in GOLDEN])
    project = str(root / "flags.ftcurate")
    with Project.open(project, create=True) as p:
        import_dataset(p, str(train_file))
        import_dataset(p, str(test_file), role="test")
        ids, test_ids = p.ids(split="train"), p.ids(split="test")
        p.approve(ids[:16])
        # the last scan: unreviewed raw record 47 copies golden item 0 (it is left out of the raw data)
        p.save_scan("quality", {}, {"index": "record_id", "validation_leakage": [],
                                    "leakage": [{"index": ids[47], "test_index": test_ids[0], "method": "exact",
                                                 "score": 1.0, "field": "prompt"}]})
    texts = [m.content for r in good + bad for m in r.messages] + [f"flag of the {t}" for t in GOLDEN]
    model = create_demo_model(str(root / "model"), vocab_size=300, hidden_size=32, num_layers=1, texts=texts)
    settings = dict(learning_rate=3e-2, max_seq_len=64, batch_size=8, lora_r=8, eval_steps=0, save_steps=1000,
                    warmup_ratio=0.0, max_steps=40, early_stopping_patience=0)
    runs = {}
    for name, uncurated in (("curated", False), ("raw", True)):
        out = str(root / "runs" / name)
        train(TrainConfig(model_dir=model, output_dir=out, **settings),
              load_data(project, val_fraction=0, uncurated=uncurated))
        runs[name] = out
    return {"root": root, "project": project, "model": model, "golden_file": str(test_file), **runs}


def _settings(**kw) -> CompareSettings:
    from ftcurate.train.fewshot import FewShotSettings

    base = dict(decoding=Decoding(max_new_tokens=4), n_boot=300, fewshot=FewShotSettings(k=3, method="random"))
    base.update(kw)
    return CompareSettings(**base)


def test_curated_beats_raw_and_tuned_beats_fewshot(setup, tmp_path):
    report = compare(setup["model"], setup["project"], adapters=[setup["curated"]], raw_adapter=setup["raw"],
                     settings=_settings(metrics=["exact", "contains", "loss"],
                                        cache_path=str(tmp_path / "cache.jsonl")))
    systems = report["systems"]
    assert list(systems) == ["base", "fewshot", "tuned", "raw"]
    assert all(s["n"] == 8 for s in systems.values())
    exact = {name: s["metrics"]["exact"]["mean"] for name, s in systems.items()}
    assert exact["tuned"] == 1.0 and exact["raw"] <= 0.25 and exact["base"] == 0.0 and exact["fewshot"] <= 0.25
    assert systems["tuned"]["metrics"]["loss"]["mean"] < systems["base"]["metrics"]["loss"]["mean"]
    # The few-shot examples come from the adapter's own training data (the approved records).
    assert report["fewshot"]["source"] == os.path.abspath(setup["project"]) and report["fewshot"]["pool"] == 16
    assert all(ex["shots"] == 3 for ex in report["examples"])
    # Leakage: golden item 0 is leaked, so every number is also given for the 7 clean items.
    assert report["leaked"] == [0] and report["examples"][0]["leaked"]
    assert report["clean_only"]["tuned"]["n"] == 7
    verdict = " ".join(report["verdict"])
    assert "The tuned model beats 3-shot prompting by +" in verdict
    assert "Curated beats raw by +" in verdict and "the curation paid off" in verdict
    assert "1 of 8 golden items are leaked" in verdict and "the 7 clean items" in verdict
    # Records are named by their index in the golden file, with their answers and scores.
    ex = report["examples"][3]
    assert ex["index"] == 3 and ex["source"] == "golden.jsonl" and ex["reference"] == "blue"
    assert ex["outputs"]["tuned"] == "blue" and ex["scores"]["tuned"]["exact"] == 1.0
    # A second run answers from the cache.
    again = compare(setup["model"], setup["project"], adapters=[setup["curated"]], raw_adapter=setup["raw"],
                    settings=_settings(metrics=["exact", "contains", "loss"],
                                       cache_path=str(tmp_path / "cache.jsonl")))
    assert all(s["from_cache"] == 8 for s in again["systems"].values())
    assert again["verdict"] == report["verdict"]
    # The reports, escaped and whole.
    save_report(report, str(tmp_path / "rep"))
    for name in (REPORT_JSON, REPORT_MD, REPORT_HTML):
        assert (tmp_path / "rep" / name).is_file()
    html = (tmp_path / "rep" / REPORT_HTML).read_text()
    assert "<svg" in html and "Curated beats raw" in html and "<script" not in html


def test_batched_answers_equal_one_at_a_time(setup):
    one = compare(setup["model"], setup["golden_file"], adapters=[setup["curated"]],
                  settings=_settings(baselines=["base", "tuned"], metrics=["exact"], batch_size=1))
    many = compare(setup["model"], setup["golden_file"], adapters=[setup["curated"]],
                   settings=_settings(baselines=["base", "tuned"], metrics=["exact"], batch_size=8))
    for name in ("base", "tuned"):
        assert [e["outputs"][name] for e in one["examples"]] == [e["outputs"][name] for e in many["examples"]]
    # A held-out *file* the project holds as its test data gets the project's leak check.
    assert one["leaked"] == [0] and one["clean_only"] is not None


def test_cancel_keeps_the_answers_so_far(setup):
    seen = []

    def cancel():
        return len(seen) > 0  # after the first partial report

    with pytest.raises(EvalStopped) as err:
        compare(setup["model"], setup["golden_file"], adapters=[setup["curated"]],
                settings=_settings(baselines=["base", "tuned"], metrics=["exact"]),
                on_partial=seen.append, cancel=cancel)
    report = err.value.report
    assert report["status"] == "cancelled" and report["verdict"][0].startswith("Cancelled")
    assert report["systems"]["tuned"]["n"] == 0 and all(e["outputs"]["tuned"] is None for e in report["examples"])


def test_out_of_memory_lowers_the_batch_then_stops_with_the_answers_so_far(setup, monkeypatch):
    from ftcurate.train import generate
    from ftcurate.train.compare import EvalOutOfMemory

    real = generate._run_batch
    calls = []

    def tight(model, tokenizer, texts, *a, **kw):
        calls.append(len(texts))
        if len(texts) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, tokenizer, texts, *a, **kw)

    monkeypatch.setattr(generate, "_run_batch", tight)
    report = compare(setup["model"], setup["golden_file"], adapters=[setup["curated"]],
                     settings=_settings(baselines=["tuned"], metrics=["exact"], batch_size=8))
    assert calls[:3] == [8, 4, 2] and report["systems"]["tuned"]["n"] == 8
    assert any("batch size lowered to 2" in w for w in report["warnings"])

    def broke_after_two(model, tokenizer, texts, *a, **kw):
        calls.append(len(texts))
        if len(calls) > 2:
            raise RuntimeError("CUDA out of memory.")
        return real(model, tokenizer, texts, *a, **kw)

    calls.clear()
    monkeypatch.setattr(generate, "_run_batch", broke_after_two)
    with pytest.raises(EvalOutOfMemory) as err:
        compare(setup["model"], setup["golden_file"], adapters=[setup["curated"]],
                settings=_settings(baselines=["tuned"], metrics=["exact"], batch_size=2))
    report = err.value.report
    assert report["status"] == "out_of_memory" and "one answer at a time" in str(err.value)
    assert sum(e["outputs"]["tuned"] is not None for e in report["examples"]) == 4  # two batches of two kept


def test_no_references_no_chat_template_and_bad_input(setup, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    _write(prompts, [Record([Message("user", f"What colour is the flag of the {t}?")]) for t in GOLDEN[:3]])
    # A tokenizer without a chat template: the fallback format, said plainly.
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in os.listdir(setup["model"]):
        src = os.path.join(setup["model"], name)
        if name == "tokenizer_config.json":
            cfg = json.load(open(src))
            cfg.pop("chat_template", None)
            (bare / name).write_text(json.dumps(cfg))
        elif os.path.isfile(src):
            (bare / name).write_bytes(open(src, "rb").read())
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    report = compare(str(bare), str(prompts), settings=_settings(baselines=["base"]))
    assert report["has_references"] is False and report["metrics"] == ["refusal", "loss", "perplexity"]
    assert "no reference answers" in " ".join(report["verdict"])
    assert any("no chat template" in w for w in report["warnings"])
    assert report["systems"]["base"]["metrics"]["loss"]["mean"] is None
    with pytest.raises(EvalInputError, match="needs an adapter"):
        compare(setup["model"], str(prompts), settings=_settings(baselines=["tuned"]))
    with pytest.raises(EvalInputError, match="JSON schema"):
        from ftcurate.train.metrics import MetricOptions

        compare(setup["model"], str(prompts), settings=_settings(metrics=["json_schema"],
                                                                 metric_options=MetricOptions(json_schema="{x")))
    with pytest.raises(EvalInputError, match="no such file"):
        compare(setup["model"], str(tmp_path / "missing.jsonl"))


def test_cli_contract(setup, tmp_path, capsys):
    code = main(["evaluate", "--model", setup["model"], "--adapter", setup["curated"], "--raw-adapter", setup["raw"],
                 "--data", setup["project"], "--baselines", "base,fewshot,tuned,raw", "--metrics", "exact,loss",
                 "--fewshot-k", "2", "--fewshot-select", "random", "--max-new-tokens", "4",
                 "--report", str(tmp_path / "rep"), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    payload = json.loads(out)
    assert set(payload) >= {"systems", "clean_only", "examples", "verdict"}
    for name in ("base", "fewshot", "tuned", "raw"):
        s = payload["systems"][name]
        assert isinstance(s["n"], int)
        assert set(s["metrics"]) == {"exact", "loss"}
        assert isinstance(s["metrics"]["exact"]["mean"], float) and len(s["metrics"]["exact"]["ci95"]) == 2
    assert set(payload["clean_only"]) == {"base", "fewshot", "tuned", "raw"}
    ex = payload["examples"][0]
    assert isinstance(ex["index"], int) and isinstance(ex["reference"], str)
    assert set(ex["outputs"]) == set(ex["scores"]) == {"base", "fewshot", "tuned", "raw"}
    assert all(isinstance(v, str) for v in payload["verdict"]) and payload["verdict"]
    assert (tmp_path / "rep" / "eval_report.html").is_file()
    # Unusable input: exit 2 with one clear line.
    for args, needle in ((["--metrics", "exact,bleu"], "unknown metric"),
                         (["--baselines", "base,oracle"], "unknown system"),
                         (["--baselines", "raw"], "--raw-adapter"),
                         (["--json-schema", str(tmp_path / "nope.json")], "nope.json")):
        code = main(["evaluate", "--model", setup["model"], "--data", setup["golden_file"], *args])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and "Traceback" not in err, (args, err)


def test_cli_train_uncurated_records_it(setup, tmp_path, capsys):
    out = str(tmp_path / "raw")
    code = main(["train", "--model", setup["model"], "--data", setup["project"], "--uncurated", "--output", out,
                 "--max-steps", "1", "--max-seq-len", "64", "--eval-steps", "0", "--val-fraction", "0"])
    assert code == 0, capsys.readouterr().err
    saved = json.load(open(os.path.join(out, "run_config.json")))
    assert saved["uncurated"] is True and saved["data"].endswith("flags.ftcurate")


def test_general_set_gets_the_generation_metrics_before_and_after(setup, tmp_path):
    general = tmp_path / "general.jsonl"
    reply = "Hello, {}! It is good to hear from you again; how are you doing today, my friend?"
    _write(general, [Record([Message("user", f"Say hello to {n}."), Message("assistant", reply.format(n))])
                     for n in ("Ana", "Bo", "Cy")])
    report = compare(setup["model"], setup["golden_file"], adapters=[setup["curated"]],
                     settings=_settings(baselines=["base", "tuned"], metrics=["exact"], general_path=str(general)))
    g = report["general"]
    assert g["n"] == 3 and set(g["systems"]) == {"base", "tuned"}
    assert {"chrf", "rouge_l", "loss"} <= set(g["systems"]["tuned"]["metrics"])
    assert all(set(ex["outputs"]) == {"base", "tuned"} for ex in g["examples"])
    assert any(c["metric"] == "chrf" and c["a"] == "tuned" and c["b"] == "base" for c in g["comparisons"])
    assert any("general set" in v for v in report["verdict"])


def test_pilot_curve_on_nested_samples(setup, tmp_path):
    from ftcurate.train.pilot import nested_order, pilot, pilot_sizes, read_pilot

    assert pilot_sizes(300) == [100, 250, 300] and pilot_sizes(80) == [80] and pilot_sizes(10, [4, 8]) == [4, 8, 10]
    order = nested_order(10, seed=3)
    assert sorted(order) == list(range(10)) and order == nested_order(10, seed=3)
    data = load_data(setup["project"], val_fraction=0)
    config = TrainConfig(model_dir=setup["model"], output_dir=str(tmp_path / "unused"), learning_rate=3e-2,
                         max_seq_len=64, batch_size=8, lora_r=8, eval_steps=0, save_steps=1000, warmup_ratio=0.0,
                         max_steps=40, early_stopping_patience=0)
    seen = []
    out = str(tmp_path / "pilot")
    result = pilot(config, data, setup["golden_file"], out, metric="exact", sizes=[4, 8],
                   settings=_settings(), on_point=seen.append)
    assert [p["n"] for p in result["points"]] == [0, 4, 8, 16] and result["status"] == "complete"
    assert len(seen) == 3 and result["points"][-1]["mean"] == 1.0 and result["points"][0]["mean"] == 0.0
    assert all(len(p["ci95"]) == 2 for p in result["points"])
    assert result["verdict"]
    saved = read_pilot(out)
    assert saved["points"] == result["points"]
    assert "<svg" in open(os.path.join(out, "pilot.html")).read()
    for n in (4, 8, 16):
        assert os.path.isfile(os.path.join(out, f"n-{n}", "adapter_model.safetensors"))
