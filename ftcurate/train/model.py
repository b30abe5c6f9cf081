"""Model folders: checks before loading, a tiny demo model, the device, and a memory estimate.

Models are local folders in the Hugging Face layout; nothing is downloaded. Only
``*.safetensors`` weights are accepted: pickled ``.bin`` weights can run arbitrary code when
they are loaded.

``check_model_folder`` and ``estimate_memory`` read small JSON files only (no torch import),
so the app can call them while the user fills in the training form.
"""

from __future__ import annotations

import glob
import json
import os
import random
from dataclasses import dataclass, field
from typing import Iterable, Optional

from ..core.io.fileio import write_text_atomic

#: File written into every demo model folder (its presence marks the folder as a demo).
DEMO_MARKER = "FTCURATE_DEMO_MODEL.txt"

#: Any one of these makes a usable tokenizer (fast tokenizer, SentencePiece, or BPE files).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model", "tokenizer.tiktoken")

#: ChatML, the chat format of the demo model (and of Qwen and many others).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] %}{{ message['content'] }}{% endif %}"
    "{% if message.get('tool_calls') %}{{ message['tool_calls'] | tojson }}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE_DATA = os.path.join(_ROOT, "resources", "sample", "chat_train.jsonl")
#: The second sample (a help-desk router with JSON answers) that the demo model learns visibly.
HELPDESK_DATA = os.path.join(_ROOT, "resources", "sample", "helpdesk", "helpdesk_train.jsonl")
#: Settings under which the demo model learns the help-desk sample in a short CPU run (the
#: app's "Create a demo model" fills them in; docs/training.md gives the measured numbers).
DEMO_TRAIN_SETTINGS = {"learning_rate": 1e-2, "epochs": 8.0, "batch_size": 8, "max_seq_len": 256}


# -- folder check -------------------------------------------------------------------------


@dataclass
class ModelFolderCheck:
    ok: bool
    missing: list[str] = field(default_factory=list)
    message: str = ""


def check_model_folder(path: str) -> ModelFolderCheck:
    """Is ``path`` a base model we can load? Needs config.json, tokenizer files and
    safetensors weights. ``missing`` names what is absent; ``message`` is one sentence."""
    path = os.fspath(path or "")
    if not path:
        return ModelFolderCheck(False, ["folder"], "No model folder chosen.")
    if not os.path.isdir(path):
        return ModelFolderCheck(False, ["folder"], f"{path} is not a folder.")
    have = set(os.listdir(path))
    if "adapter_config.json" in have and "config.json" not in have:
        return ModelFolderCheck(False, ["config.json"],
                                f"{path} holds a LoRA adapter, not a base model: choose the base model folder "
                                "(the adapter is given separately).")
    missing = []
    if "config.json" not in have:
        missing.append("config.json")
    if not have.intersection(TOKENIZER_FILES):
        missing.append("tokenizer (tokenizer.json or tokenizer.model)")
    safetensors = [f for f in have if f.endswith(".safetensors")]
    pickled = [f for f in have if f.endswith((".bin", ".pt", ".pth", ".ckpt")) and not f.startswith("training_args")]
    if not safetensors:
        if pickled:
            return ModelFolderCheck(
                False, missing + ["*.safetensors"],
                f"{path} has only pickled weights ({', '.join(sorted(pickled)[:3])}); ftcurate loads safetensors "
                "only, because pickled files can run code when loaded. Convert them to safetensors first "
                "(e.g. model.save_pretrained(folder, safe_serialization=True) on a machine you trust).")
        missing.append("*.safetensors")
    if "model.safetensors.index.json" in have:
        try:
            with open(os.path.join(path, "model.safetensors.index.json"), encoding="utf-8") as f:
                shards = set(json.load(f).get("weight_map", {}).values())
            absent = sorted(s for s in shards if s not in have)
            if absent:
                missing.append(f"weight shards ({', '.join(absent[:3])})")
        except (OSError, ValueError):
            missing.append("readable model.safetensors.index.json")
    if missing:
        return ModelFolderCheck(False, missing, f"{path} is not a complete model folder: missing "
                                + ", ".join(missing) + ".")
    return ModelFolderCheck(True, [], f"{path}: model folder looks complete.")


def adapter_folder_problem(path: str) -> str:
    """Why ``path`` is not an adapter folder ftcurate loads ("" when it is one): it needs
    ``adapter_config.json`` and ``adapter_model.safetensors``; pickled weights
    (``adapter_model.bin``...) are refused, because unpickling can run code."""
    path = os.fspath(path or "")
    if not os.path.isfile(os.path.join(path, "adapter_config.json")):
        return f"{path} is not an adapter folder (no adapter_config.json)"
    if not os.path.isfile(os.path.join(path, "adapter_model.safetensors")):
        pickled = [f for f in sorted(os.listdir(path)) if f.startswith("adapter_model")
                   and f.endswith((".bin", ".pt", ".pth", ".ckpt", ".pkl"))]
        if pickled:
            return (f"{os.path.join(path, pickled[0])} is a pickle file; ftcurate refuses to load pickles (they can "
                    "run code when loaded). Convert the adapter to safetensors on a machine you trust "
                    "(peft: model.save_pretrained(folder, safe_serialization=True)).")
        return f"{path} has no adapter weights (adapter_model.safetensors)"
    return ""


def is_demo_model(path: str) -> bool:
    return os.path.isfile(os.path.join(path, DEMO_MARKER))


def read_model_config(model_dir: str) -> dict:
    """config.json as a dict; for multimodal models the text part's settings are merged in."""
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    text = cfg.get("text_config") or cfg.get("llm_config")
    if isinstance(text, dict) and "hidden_size" not in cfg:
        cfg = {**cfg, **text}
    return cfg


# -- demo model -----------------------------------------------------------------------------


def _sample_texts(path: str) -> list[str]:
    """Message contents of a JSONL chat file (broken lines skipped)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            msgs = obj.get("messages") if isinstance(obj, dict) else None
            for m in msgs if isinstance(msgs, list) else []:
                if isinstance(m, dict) and isinstance(m.get("content"), str):
                    out.append(m["content"])
    return out


def create_demo_model(folder: str, vocab_size: int = 1024, seed: int = 0, texts: Optional[Iterable[str]] = None,
                      hidden_size: int = 64, num_layers: int = 2) -> str:
    """Write a tiny, randomly initialised Llama model with its own small tokenizer into
    ``folder`` and return the folder. It knows nothing: it exists so that the training
    flow can be tried (and tested) in seconds on a CPU without downloading a model.

    The tokenizer is a byte-level BPE trained locally with ``tokenizers`` on ``texts``
    (default: the bundled samples ``resources/sample/chat_train.jsonl`` and
    ``resources/sample/helpdesk/helpdesk_train.jsonl``), with ChatML special tokens and chat
    template, pad token ``<|endoftext|>``. The weights are random (:func:`_demo_init`), drawn
    at scales under which LoRA learns fast on so small a model: with
    :data:`DEMO_TRAIN_SETTINGS` it learns the help-desk sample's JSON answers in minutes."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    os.makedirs(folder, exist_ok=True)
    corpus = list(texts) if texts is not None else _sample_texts(SAMPLE_DATA) + (
        _sample_texts(HELPDESK_DATA) if os.path.isfile(HELPDESK_DATA) else [])
    if not corpus:
        raise ValueError("no texts to train the demo tokenizer on")

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                     model_max_length=2048)
    hf_tok.chat_template = CHATML_TEMPLATE
    hf_tok.save_pretrained(folder)

    random.seed(seed)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=2048, tie_word_embeddings=True, rms_norm_eps=1e-5,
        pad_token_id=hf_tok.pad_token_id, eos_token_id=hf_tok.eos_token_id, bos_token_id=None,
    )
    model = LlamaForCausalLM(config)
    _demo_init(model, hidden_size, seed)
    model.generation_config.pad_token_id = hf_tok.pad_token_id
    model.generation_config.eos_token_id = hf_tok.eos_token_id
    model.save_pretrained(folder)  # safetensors
    note = ("DEMO MODEL - for trying the ftcurate training flow only.\n\n"
            f"A randomly initialised {num_layers}-layer Llama (hidden size {hidden_size}, "
            f"{sum(p.numel() for p in model.parameters()):,} parameters) with a {tok.get_vocab_size()}-token "
            "BPE tokenizer trained on the ftcurate sample data. It has learned nothing: its answers are noise.\n"
            "Fine-tuned on the help-desk sample (resources/sample/helpdesk) it learns that task's JSON answers\n"
            "in a few minutes on a CPU, which shows the evaluation telling a tuned model from its base; it knows\n"
            "nothing else. Use a real base model for real work.\n")
    write_text_atomic(os.path.join(folder, DEMO_MARKER), note)
    write_text_atomic(os.path.join(folder, "README.md"), "# ftcurate demo model\n\n" + note)
    return folder


def _demo_init(model, hidden_size: int, seed: int) -> None:
    """Random weights for a model this small: linear layers N(0, 1/hidden_size) (transformers'
    default of std 0.02 suits hidden sizes near 1,000 and leaves a 64-wide model's logits too
    flat to ever be confident), token embeddings twice that (the tied output layer can then
    tell tokens apart), and query/key projections near zero, so that attention starts out even
    over the conversation instead of fixed on random tokens. Norms stay 1."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    std = hidden_size ** -0.5
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name:
                continue
            scale = 2 * std if "embed_tokens" in name else 0.01 if name.endswith(("q_proj.weight",
                                                                                   "k_proj.weight")) else std
            param.copy_(torch.randn(param.shape, generator=gen) * scale)


# -- device and memory ------------------------------------------------------------------------


def detect_device() -> str:
    """"cuda" when an NVIDIA (or ROCm) GPU is usable, "mps" on Apple silicon, else "cpu"."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def device_memory_bytes(device: Optional[str] = None) -> Optional[int]:
    """Total memory of the training device (GPU 0), or None when unknown (CPU, MPS)."""
    import torch

    device = device or detect_device()
    if device == "cuda":
        return int(torch.cuda.get_device_properties(0).total_memory)
    return None


@dataclass
class MemoryEstimate:
    total_bytes: int
    parts: dict  # name -> bytes
    fits: Optional[bool]  # None when the device memory is unknown
    advice: str

    def to_dict(self) -> dict:
        return {"total_bytes": self.total_bytes, "parts": dict(self.parts), "fits": self.fits, "advice": self.advice}


#: Bytes of saved activations per token, per hidden unit, per layer (bf16, no gradient
#: checkpointing): attention inputs/outputs, norms and the gated MLP. A rough, slightly
#: generous figure (Korthikanti et al. give ~34 for GPT blocks; gated MLPs add more).
ACTIVATION_FACTOR = 40
#: With gradient checkpointing only each layer's input is kept (plus one layer recomputed).
CHECKPOINTED_FACTOR = 2
CUDA_OVERHEAD = 1 << 30  # CUDA context, cuBLAS workspaces, allocator slack


def _param_counts(cfg: dict) -> tuple[int, int, list[tuple[int, int]], int, int]:
    """(all parameters, linear-layer parameters, per-layer linear shapes (in, out), hidden,
    layers) of a decoder-only transformer described by a config.json."""
    h = int(cfg.get("hidden_size") or cfg.get("n_embd") or cfg.get("d_model") or 0)
    n_layers = int(cfg.get("num_hidden_layers") or cfg.get("n_layer") or cfg.get("num_layers") or 0)
    vocab = int(cfg.get("vocab_size") or 32000)
    if not h or not n_layers:
        raise ValueError("config.json has no hidden_size / num_hidden_layers")
    inter = int(cfg.get("intermediate_size") or cfg.get("n_inner") or 4 * h)
    heads = int(cfg.get("num_attention_heads") or cfg.get("n_head") or max(1, h // 64))
    kv_heads = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or h // heads)
    q_dim, kv_dim = heads * head_dim, kv_heads * head_dim
    n_experts = int(cfg.get("num_local_experts") or cfg.get("num_experts") or 1)
    moe_inter = int(cfg.get("moe_intermediate_size") or inter)
    shapes = [(h, q_dim), (h, kv_dim), (h, kv_dim), (q_dim, h)]  # q, k, v, o
    if n_experts > 1:
        shapes += [(h, moe_inter), (h, moe_inter), (moe_inter, h)] * n_experts
    else:
        shapes += [(h, inter), (h, inter), (inter, h)]  # gate, up, down (gated MLP)
    linear = sum(i * o for i, o in shapes) * n_layers
    embed = vocab * h * (1 if cfg.get("tie_word_embeddings", False) else 2)
    norms = (2 * n_layers + 1) * h
    return linear + embed + norms, linear, shapes, h, n_layers


def _count(n: float) -> str:
    """A parameter count the way model cards write it: 494M, 1.5B."""
    if n >= 1e9:
        return f"{n / 1e9:.1f}B"
    if n >= 1e6:
        return f"{n / 1e6:.0f}M"
    return f"{n / 1e3:.0f}K"


def _gib(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def estimate_memory(config, model_dir: Optional[str] = None, device_total_bytes: Optional[int] = None,
                    device: Optional[str] = None) -> MemoryEstimate:
    """Rough peak memory of a training run with ``config`` (a TrainConfig) on the model in
    ``model_dir`` (default: ``config.model_dir``), from its config.json alone.

    Parts: frozen weights (bf16, or 4-bit for qlora; float32 on CPU and MPS), adapter
    weights + gradients + AdamW states (float32), activations (batch x seq x hidden x
    layers x factor, much less with gradient checkpointing), logits (batch x seq x vocab:
    large for big vocabularies) and, on CUDA, the runtime overhead. It is an upper bound
    for packed batches (they hold fewer tokens than batch x max_seq_len). ``fits`` compares
    the total with 90% of ``device_total_bytes`` (the GPU's memory when not given)."""
    model_dir = model_dir or config.model_dir
    device = device or detect_device()
    cfg = read_model_config(model_dir)
    total_params, linear, shapes, h, n_layers = _param_counts(cfg)
    vocab = int(cfg.get("vocab_size") or 32000)
    half = device == "cuda"
    wbytes = 2 if half else 4
    parts: dict[str, int] = {}
    if config.method == "qlora":
        # NF4 weights (0.5 byte) + double-quantised constants; embeddings and head stay bf16.
        parts["weights"] = int(linear * 0.5 * 1.07 + (total_params - linear) * 2)
    else:
        parts["weights"] = int(total_params * wbytes)
    r = int(config.lora_r)
    if config.target_modules.strip() == "all-linear":
        lora = sum(r * (i + o) for i, o in shapes) * n_layers
    else:
        names = set(config.target_module_list())
        order = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        picked = [s for n, s in zip(order, shapes) if n in names] or shapes[:4]
        lora = sum(r * (i + o) for i, o in picked) * n_layers
    if config.method == "dora":
        lora += sum(o for _, o in shapes) * n_layers  # magnitude vectors
    parts["adapter_and_optimizer"] = int(lora * 16)  # fp32 weight + grad + 2 Adam moments
    tokens = int(config.batch_size) * int(config.max_seq_len)
    factor = CHECKPOINTED_FACTOR if getattr(config, "gradient_checkpointing", False) else ACTIVATION_FACTOR
    act_scale = 2 if half or config.method == "qlora" else 4  # factor is for 2-byte activations
    act = tokens * h * n_layers * factor * act_scale // 2
    if config.method == "dora":
        act = int(act * 1.3)  # DoRA keeps extra copies for the weight norm
    parts["activations"] = int(act)
    parts["logits"] = int(tokens * vocab * 10)  # model-dtype logits + float32 copy + softmax grad
    if device == "cuda":
        parts["cuda_overhead"] = CUDA_OVERHEAD
    total = sum(parts.values())
    if device_total_bytes is None and device == "cuda":
        try:
            device_total_bytes = device_memory_bytes("cuda")
        except Exception:  # noqa: BLE001 - the estimate is still useful without it
            device_total_bytes = None
    fits = None if not device_total_bytes else total <= 0.9 * device_total_bytes
    biggest = max(parts, key=parts.get)
    advice = f"about {_gib(total)} needed ({_count(total_params)} parameters, {config.method})"
    if device_total_bytes:
        advice += f" of {_gib(device_total_bytes)} on the device"
    if fits is False:
        tips = []
        if biggest in ("activations", "logits"):
            tips.append("lower batch_size (raise grad_accum to keep the effective batch) or max_seq_len")
            if not getattr(config, "gradient_checkpointing", False):
                tips.append("turn on gradient_checkpointing")
        if config.method != "qlora" and device == "cuda":
            tips.append("use qlora (4-bit base model)")
        tips.append("or pick a smaller model")
        advice += ": likely too much; " + ", ".join(tips) + "."
    elif fits:
        advice += ": should fit."
    else:
        advice += "."
        if device == "cpu":
            advice = advice[:-1] + " (CPU: system memory; training will be slow)."
    return MemoryEstimate(int(total), parts, fits, advice)


def parameter_count(model_dir: str) -> int:
    """Approximate parameter count of a model folder, from config.json."""
    return _param_counts(read_model_config(model_dir))[0]


def safetensors_files(model_dir: str) -> list[str]:
    return sorted(glob.glob(os.path.join(model_dir, "*.safetensors")))
