"""Evaluation generation: batched (left padding) against one prompt at a time.

Answers the bundled golden set (``resources/sample/heldout_test.jsonl``, 60 prompts, or
``--golden``) with :func:`ftcurate.train.generate.generate_texts` at several batch sizes, greedy,
``--max-new-tokens`` each, and reports answers/s, generated tokens/s and the ratio to batch
size 1 measured in the same run (the variants alternate, ``--repeats`` rounds, best round
kept). It also checks that the batched answers equal the one-at-a-time answers.

    python benchmarks/bench_generate.py                 # a random 11M-parameter Llama (hidden 384, 6 layers)
    python benchmarks/bench_generate.py --size demo     # the 140K-parameter demo model
    python benchmarks/bench_generate.py --model /path/to/model --batch-sizes 1,8,32
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
GOLDEN = os.path.join(ROOT, "resources", "sample", "heldout_test.jsonl")


def build_model(size: str, folder: str) -> str:
    from ftcurate.train import create_demo_model

    create_demo_model(folder)
    if size == "demo":
        return folder
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        import json

        vocab = json.load(f)["vocab_size"]
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=384, intermediate_size=1024,
                                         num_hidden_layers=6, num_attention_heads=6, num_key_value_heads=2,
                                         max_position_embeddings=2048, tie_word_embeddings=True))
    for name in os.listdir(folder):
        if name.endswith(".safetensors") or name == "config.json":
            os.unlink(os.path.join(folder, name))
    model.save_pretrained(folder)
    return folder


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=("demo", "11m"), default="11m")
    p.add_argument("--model", help="a model folder (instead of a random one)")
    p.add_argument("--golden", default=GOLDEN)
    p.add_argument("--batch-sizes", default="1,8,16")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)

    import torch

    from ftcurate.train.compare import _load
    from ftcurate.train.data import format_chat, prompt_and_reference
    from ftcurate.train.evaluate import load_eval_records
    from ftcurate.train.generate import Decoding, generate_texts

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or build_model(args.size, os.path.join(tmp, "model"))
        tokenizer, model, device = _load(model_dir, {}, False, [])
        records = load_eval_records(args.golden)
        prompts = [format_chat(tokenizer, prompt_and_reference(r)[0], r.tools, add_generation_prompt=True)
                   for r in records]
        params = sum(p.numel() for p in model.parameters())
        sizes = [int(s) for s in args.batch_sizes.split(",")]
        decoding = Decoding(max_new_tokens=args.max_new_tokens)
        best: dict[int, tuple[float, int]] = {}
        answers: dict[int, list] = {}
        for _ in range(args.repeats):
            for bs in sizes:
                t0 = time.perf_counter()
                out = generate_texts(model, tokenizer, prompts, decoding, device, batch_size=bs)
                dt = time.perf_counter() - t0
                if bs not in best or dt < best[bs][0]:
                    best[bs] = (dt, out.new_tokens)
                answers[bs] = out.outputs
        print(f"model: {params / 1e6:.2f}M parameters on {device} ({torch.get_num_threads()} threads); "
              f"{len(prompts)} prompts, {args.max_new_tokens} new tokens at most, greedy")
        print("| batch size | seconds | answers/s | tokens/s | vs batch size 1 | same answers as batch size 1 |")
        print("|---|---|---|---|---|---|")
        base = best[sizes[0]][0]
        for bs in sizes:
            dt, toks = best[bs]
            same = sum(a == b for a, b in zip(answers[bs], answers[sizes[0]]))
            print(f"| {bs} | {dt:.2f} | {len(prompts) / dt:.1f} | {toks / dt:,.0f} | ×{base / dt:.2f} | "
                  f"{same}/{len(prompts)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
