"""Training throughput: ftcurate's runner (padding-free packing) against a plain
transformers + peft baseline (Trainer with a padding collator, random order) on the same
model, data, tokens and settings. Also runs ftcurate with packing off (padded batches
grouped by length) to show what the switch does.

Each variant runs in its own process, so peak memory is measured separately: GPU peak
allocated memory on CUDA, peak RSS of the process on CPU. Throughput counts real (not
padding) tokens per second of training.

    python benchmarks/bench_train.py                     # CPU: the demo model, quick
    python benchmarks/bench_train.py --size 0.5b         # CUDA: random-init Qwen2-0.5B-shaped model
    python benchmarks/bench_train.py --size 0.5b --method qlora   # CUDA: the same in 4 bits
    python benchmarks/bench_train.py --model /path/to/model --steps 50 --batch-size 8
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SAMPLE = os.path.join(ROOT, "resources", "sample", "chat_train.jsonl")
VARIANTS = ("baseline", "ftcurate", "ftcurate-nopack")

#: Qwen2.5-0.5B's shape (random weights; the tokenizer is the demo one, whose ids fit).
QWEN_05B = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                tie_word_embeddings=True)


def build_model(size: str, folder: str) -> str:
    from ftcurate.train import create_demo_model

    create_demo_model(folder)
    if size == "demo":
        return folder
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(**QWEN_05B)).to(torch.bfloat16)
    for name in os.listdir(folder):  # replace the demo weights, keep its tokenizer
        if name.endswith(".safetensors") or name == "config.json":
            os.unlink(os.path.join(folder, name))
    model.save_pretrained(folder)
    return folder


def _records(n: int):
    from ftcurate.train import load_data

    data = load_data(SAMPLE, val_fraction=0)
    return (data.train * (1 + n // max(1, len(data.train))))[:n]


def _peak_memory(device: str) -> int:
    import torch

    if device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024))


def run_ftcurate(model_dir: str, args, packing: bool) -> dict:
    from ftcurate.train import TrainConfig, TrainData, detect_device, train

    records = _records(args.steps * args.batch_size)
    out = tempfile.mkdtemp(prefix="ftcurate-bench-")
    config = TrainConfig(model_dir=model_dir, output_dir=out, max_steps=args.steps, batch_size=args.batch_size,
                         max_seq_len=args.max_seq_len, learning_rate=2e-4, packing=packing, save_steps=10 ** 6,
                         eval_steps=0, early_stopping_patience=0, logging_steps=1, method=args.method)
    events = []
    result = train(config, TrainData(train=records), on_event=events.append)
    steps = [e for e in events if e["type"] == "train"]
    seconds = steps[-1]["elapsed"]
    return {"tokens": result.tokens, "seconds": seconds, "tokens_per_second": result.tokens / seconds,
            "final_loss": result.final_loss, "peak_memory_bytes": _peak_memory(detect_device()),
            "padded_tokens": result.batch_tokens}


def run_baseline(model_dir: str, args) -> dict:
    """What a straightforward script does: Trainer + peft, padding to the longest in each batch."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    from ftcurate.train import detect_device, render
    from ftcurate.train.runner import Examples, PaddedCollator, _dtype_kwarg, _training_arguments
    from ftcurate.train.config import TrainConfig

    device = detect_device()
    tok = AutoTokenizer.from_pretrained(model_dir)
    rows = [render(tok, r, args.max_seq_len)._asdict() for r in _records(args.steps * args.batch_size)]
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float32
    load_kw = {_dtype_kwarg(): dtype}
    if args.method == "qlora":  # the usual QLoRA recipe: nf4, double quantisation
        from transformers import BitsAndBytesConfig

        load_kw["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        load_kw["device_map"] = {"": 0}
    model = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True, **load_kw)
    model.config.use_cache = False
    if args.method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    counts = {"real": 0, "padded": 0}
    pad = PaddedCollator(tok.pad_token_id, multiple_of=1)

    def collate(features):
        batch = pad(features)
        counts["real"] += int(batch["attention_mask"].sum())
        counts["padded"] += int(batch["input_ids"].numel())
        return batch

    times = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, a, state, control, **kw):
            times["start"] = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            times["end"] = time.perf_counter()

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                times["loss"] = logs["loss"]

    # The same TrainingArguments as ftcurate (minus packing), so only batching differs.
    cfg = TrainConfig(model_dir=model_dir, output_dir=tempfile.mkdtemp(prefix="baseline-bench-"),
                      max_steps=args.steps, batch_size=args.batch_size, max_seq_len=args.max_seq_len,
                      save_steps=10 ** 6, eval_steps=0)
    targs = _training_arguments(cfg, cfg.output_dir, device, False, bf16, False, group_by_length=False)
    assert isinstance(targs, TrainingArguments)
    trainer = Trainer(model=model, args=targs, data_collator=collate, train_dataset=Examples(rows), callbacks=[Clock()])
    trainer.train()
    seconds = times["end"] - times["start"]
    return {"tokens": counts["real"], "seconds": seconds, "tokens_per_second": counts["real"] / seconds,
            "final_loss": times.get("loss"), "peak_memory_bytes": _peak_memory(device),
            "padded_tokens": counts["padded"]}


def child(args) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    if args.variant == "baseline":
        out = run_baseline(args.model, args)
    else:
        out = run_ftcurate(args.model, args, packing=args.variant == "ftcurate")
    print("RESULT " + json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=("demo", "0.5b"), help="model to build (default: 0.5b on CUDA, demo on CPU)")
    ap.add_argument("--model", help="use this model folder instead of building one")
    ap.add_argument("--steps", type=int, default=None, help="optimiser steps per variant (default 30 GPU, 15 CPU)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-seq-len", type=int, default=1024)
    ap.add_argument("--method", choices=("lora", "qlora"), default="lora",
                    help="qlora: the model in 4 bits (bitsandbytes; CUDA only)")
    ap.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # internal: one variant, this process
    args = ap.parse_args()
    if args.variant:
        child(args)
        return
    from ftcurate.train import detect_device

    device = detect_device()
    if args.method == "qlora" and device != "cuda":
        sys.exit("--method qlora needs an NVIDIA GPU (bitsandbytes 4-bit)")
    size = args.size or ("0.5b" if device == "cuda" else "demo")
    steps = args.steps or (30 if device == "cuda" else 15)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or build_model(size, os.path.join(tmp, "model"))
        print(f"device {device}, model {args.model or size}, {args.method}, {steps} steps, batch {args.batch_size}, "
              f"max_seq_len {args.max_seq_len}")
        from ftcurate.train import TrainConfig, estimate_memory

        estimate = estimate_memory(TrainConfig(model_dir=model_dir, batch_size=args.batch_size,
                                               max_seq_len=args.max_seq_len, method=args.method), device=device)
        print(f"  memory estimate (ftcurate.train.estimate_memory): {estimate.total_bytes / 2**20:,.0f} MiB")
        results = {}
        for variant in VARIANTS:
            cmd = [sys.executable, os.path.abspath(__file__), "--variant", variant, "--model", model_dir,
                   "--steps", str(steps), "--batch-size", str(args.batch_size), "--max-seq-len", str(args.max_seq_len),
                   "--method", args.method]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not line:
                print(f"{variant} failed:\n{proc.stderr[-2000:]}")
                continue
            results[variant] = r = json.loads(line[-1][7:])
            waste = 1 - r["tokens"] / r["padded_tokens"] if r["padded_tokens"] else 0
            print(f"  {variant:16s} {r['tokens_per_second']:10,.0f} tok/s  {r['seconds']:6.1f} s  "
                  f"peak {r['peak_memory_bytes'] / 2**20:8,.0f} MiB  padding {waste:5.1%}  "
                  f"final loss {r['final_loss'] or float('nan'):.3f}")
    base = results.get("baseline")
    if base:
        for variant in VARIANTS[1:]:
            if variant in results:
                r = results[variant]
                print(f"{variant} / baseline: throughput x{r['tokens_per_second'] / base['tokens_per_second']:.2f}, "
                      f"peak memory x{r['peak_memory_bytes'] / base['peak_memory_bytes']:.2f}")


if __name__ == "__main__":
    main()
