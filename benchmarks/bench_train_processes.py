"""Training on one process against several processes at the same global batch
(``ftcurate train`` against ``ftcurate train --devices N``, DDP).

Both variants train the same model on the same data (the bundled sample, cycled) for the
same number of optimiser steps at the same global batch: one process with batch B, N
processes with batch B/N each. Each run is the real command line in its own process (the
multi-process one through torchrun, as the app starts it); the variants alternate over
``--repeats`` rounds in the same run, and the ratio is taken from the medians. Reported:
training tokens per second (real tokens over all ranks, from the start of the first step to
the end, as the run's own result says), the wall time of the whole command (start-up
included: N processes each import torch and transformers), and the final loss of each (they
train on the same batches, so it should agree).

    python benchmarks/bench_train_processes.py                       # CPU: 1 vs 2 processes, gloo
    python benchmarks/bench_train_processes.py --size small --steps 20
    python benchmarks/bench_train_processes.py --processes 4 --batch-size 16   # CUDA: 1 vs 4 GPUs, NCCL

On a CPU each process gets ``--threads-per-process`` threads (default 1), so N processes use
N cores where one process uses one - as N GPUs are N times one GPU. That measures how well
the work splits (the gradient all-reduce over gloo, the start-up of N processes), not a
reason to train on CPUs. The speed-up that matters needs GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SAMPLE = os.path.join(ROOT, "resources", "sample", "chat_train.jsonl")


def build_model(size: str, folder: str) -> str:
    from ftcurate.train import create_demo_model

    create_demo_model(folder)
    if size == "demo":
        return folder
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        vocab = json.load(f)["vocab_size"]
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=384, intermediate_size=1024,
                                         num_hidden_layers=6, num_attention_heads=6, num_key_value_heads=2,
                                         tie_word_embeddings=True))
    for name in os.listdir(folder):  # replace the demo weights, keep its tokenizer
        if name.endswith(".safetensors") or name == "config.json":
            os.unlink(os.path.join(folder, name))
    model.save_pretrained(folder)
    return folder


def run(model_dir: str, data: str, out: str, processes: int, args) -> dict:
    from ftcurate.train import TrainConfig

    config_file = out + ".json"
    TrainConfig(model_dir=model_dir, output_dir=out, max_steps=args.steps, batch_size=args.batch_size // processes,
                max_seq_len=args.max_seq_len, lora_r=16, eval_steps=0, early_stopping_patience=0,
                save_steps=10 ** 6, lora_dropout=0.0, learning_rate=1e-3, world_size=processes).to_json(config_file)
    cmd = [sys.executable, "-m", "ftcurate.cli", "train", "--json", "--config", config_file, "--data", data,
           "--val-fraction", "0"]
    t0 = time.perf_counter()
    # Each process gets the same threads (--threads-per-process): N processes use N times the cores of one,
    # as N GPUs are N times one GPU. (An unset OMP_NUM_THREADS lets torch spread each process over every core.)
    threads = args.threads_per_process
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": str(threads)})
    wall = time.perf_counter() - t0
    end = None
    for line in proc.stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("type") == "end":
            end = event
    if proc.returncode != 0 or end is None:
        raise SystemExit(f"{processes} process(es) failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return {"processes": processes, "wall": wall, "elapsed": end["elapsed"], "tokens": end["tokens"],
            "tok_s": end["tokens"] / max(end["elapsed"], 1e-9), "final_loss": end["final_loss"],
            "world_size": end.get("world_size")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=("demo", "small"), default="demo",
                    help="demo: the 140K-parameter demo model; small: a random 11M-parameter Llama")
    ap.add_argument("--model", help="use this model folder instead of building one")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=8, help="global batch (each of N processes takes 1/N)")
    ap.add_argument("--max-seq-len", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads-per-process", type=int, default=1,
                    help="CPU threads of each process (default 1: N processes use N cores, one process one)")
    args = ap.parse_args()
    if args.batch_size % args.processes:
        raise SystemExit("--batch-size must be a multiple of --processes")
    from ftcurate.train import detect_device

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or build_model(args.size, os.path.join(tmp, "model"))
        data = os.path.join(tmp, "data.jsonl")
        with open(SAMPLE, encoding="utf-8") as f:
            lines = [ln for ln in f if ln.strip()]
        # more than the steps need: no short last batch (accelerate fills a short batch of one process with
        # examples from the start of the epoch, so that step would differ from one process)
        need = (args.steps + 4) * args.batch_size
        with open(data, "w", encoding="utf-8") as f:
            f.writelines((lines * (1 + need // len(lines)))[:need])
        print(f"device {detect_device()}, model {args.model or args.size}, {args.steps} steps, global batch "
              f"{args.batch_size}, {os.cpu_count()} cores, {args.threads_per_process} thread(s) per process, load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        results: dict = {1: [], args.processes: []}
        for r in range(args.repeats):
            order = (1, args.processes) if r % 2 == 0 else (args.processes, 1)
            for n in order:
                res = run(model_dir, data, os.path.join(tmp, f"run-{n}-{r}"), n, args)
                results[n].append(res)
                print(f"  round {r + 1}: {n} process(es): {res['tok_s']:,.0f} tok/s, training {res['elapsed']:.1f} s, "
                      f"command {res['wall']:.1f} s, final loss {res['final_loss']:.4f}", flush=True)
    med = {n: {k: statistics.median(x[k] for x in rs) for k in ("tok_s", "elapsed", "wall")}
           for n, rs in results.items()}
    one, many = med[1], med[args.processes]
    losses = {n: rs[-1]["final_loss"] for n, rs in results.items()}
    print()
    print("| processes | tokens/s (training) | training time | whole command | final loss |")
    print("|---|---|---|---|---|")
    for n in (1, args.processes):
        print(f"| {n} | {med[n]['tok_s']:,.0f} | {med[n]['elapsed']:.1f} s | {med[n]['wall']:.1f} s | "
              f"{losses[n]:.4f} |")
    print(f"\n{args.processes} processes / 1 process: tokens/s x{many['tok_s'] / one['tok_s']:.2f}, whole command "
          f"x{many['wall'] / one['wall']:.2f}; final loss difference {abs(losses[1] - losses[args.processes]):.2e}; "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
