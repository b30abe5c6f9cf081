"""The built-in fast model (WordLlama static token embeddings) without PyTorch.

A static model's sentence vector is the mean of its tokens' vectors (what sentence-transformers'
``StaticEmbedding`` computes with an ``EmbeddingBag``). :class:`StaticEncoder` computes the same
vectors with numpy and scipy, and loads in a fraction of a second: the safetensors weights are
read as a numpy array and the tokenizer from its JSON file, with no sentence-transformers, torch
or transformers import (those take 10-15 s on two CPU cores).

Tokens are counted per *segment* and each distinct segment is tokenized once. WordLlama's
tokenizer (Llama-2's SentencePiece BPE as a ``tokenizers`` JSON) has no pre-tokenizer: it turns
spaces into "▁", prepends one, and runs BPE over the whole text. No token of its vocabulary holds
a "▁" right after another character (checked when the model loads), so no merge ever crosses the
start of a run of "▁": BPE over the whole text equals BPE over each piece ``▁+[^▁]*`` on its own,
and the token ids are those of the pieces, concatenated. Repeated words (most of a corpus) then
cost a dict look-up instead of a BPE run: several times faster than ``encode_batch`` on one
core. A text that holds one of the tokenizer's special tokens literally (``<s>``) is tokenized
whole, as the tokenizer would. Token counts become a sparse (texts x vocabulary) matrix and one
sparse-dense product gives the sums.

The vectors equal sentence-transformers' to float32 rounding (summation order), so cached
vectors stay valid.
"""

from __future__ import annotations

import re
import threading
from typing import Iterable, Optional, Sequence

import numpy as np

_SEGMENT = re.compile("\u2581+[^\u2581]*")
_MEMO_MAX = 100_000  # distinct segments kept between calls (then the memo starts afresh): common words
# repeat, rare ones (numbers, names) would keep growing it: 2M allowed held 430 MB after embedding 1M
# one-line questions (each with its own number)


class StaticEncoder:
    """Mean-of-token-vectors sentence encoder over a ``tokenizers`` tokenizer and a weight
    matrix (vocabulary x dim). ``encode`` mirrors ``SentenceTransformer.encode`` for the
    arguments ftcurate passes."""

    def __init__(self, weights: np.ndarray, tokenizer_path: str) -> None:
        from tokenizers import Tokenizer

        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        self._path = tokenizer_path
        self.tokenizer = Tokenizer.from_file(tokenizer_path)
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.dim = int(self.weights.shape[1])
        self.vocab = int(self.weights.shape[0])
        self._memo: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()
        self._special = [t.content for t in self._added_tokens()]
        self._segmentable = self._check_segmentable()

    def _added_tokens(self):
        try:
            return list(self.tokenizer.get_added_tokens_decoder().values())
        except AttributeError:  # pragma: no cover - old tokenizers
            return []

    def _check_segmentable(self) -> bool:
        """Pieces are independent when the normaliser is Prepend("▁") + Replace(" ", "▁"), there
        is no pre-tokenizer, the model is BPE and no token has "▁" after another character."""
        import json

        try:
            with open(self._path, encoding="utf-8") as f:
                spec = json.load(f)
        except (OSError, ValueError):  # pragma: no cover - Tokenizer.from_file read it
            return False
        norm = spec.get("normalizer") or {}
        steps = norm.get("normalizers") if norm.get("type") == "Sequence" else [norm]
        want = [{"type": "Prepend", "prepend": "\u2581"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]
        if steps != want or spec.get("pre_tokenizer") is not None:
            return False
        model = spec.get("model") or {}
        vocab = model.get("vocab")
        if model.get("type") != "BPE" or model.get("dropout") or not isinstance(vocab, dict):
            return False
        inner = re.compile("[^\u2581]\u2581")
        return not any(inner.search(tok) for tok in vocab)

    # -- tokens ----------------------------------------------------------------------------------
    def _ids_whole(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def token_ids(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, lengths)``: the token ids of all texts concatenated (int32) and the number of
        tokens of each text, as ``tokenizer.encode_batch(texts, add_special_tokens=False)``."""
        if not self._segmentable:
            per = self._ids_whole(texts)
            lens = np.fromiter((len(x) for x in per), dtype=np.int64, count=len(per))
            flat = np.fromiter((i for x in per for i in x), dtype=np.int32, count=int(lens.sum()))
            return flat, lens
        with self._lock:
            memo = self._memo
            if len(memo) > _MEMO_MAX:
                memo.clear()
            tokenize = self.tokenizer.model.tokenize
            special = self._special
            ids: list[int] = []
            lens = np.zeros(len(texts), dtype=np.int64)
            whole: list[int] = []
            for k, text in enumerate(texts):
                if not text:
                    continue
                if special and "<" in text and any(s in text for s in special):
                    whole.append(k)
                    continue
                n0 = len(ids)
                for seg in _SEGMENT.findall("\u2581" + text.replace(" ", "\u2581")):
                    got = memo.get(seg)
                    if got is None:
                        got = memo[seg] = tuple(t.id for t in tokenize(seg))
                    ids += got
                lens[k] = len(ids) - n0
        flat = np.asarray(ids, dtype=np.int32)
        if whole:  # texts with a literal special token: tokenized whole, spliced in
            extra = dict(zip(whole, self._ids_whole([texts[k] for k in whole])))
            parts, pos = [], 0
            starts = np.zeros(len(texts) + 1, dtype=np.int64)
            np.cumsum(lens, out=starts[1:])
            for k in whole:
                parts.append(flat[pos:starts[k]])
                parts.append(np.asarray(extra[k], dtype=np.int32))
                pos = starts[k]
                lens[k] = len(extra[k])
            parts.append(flat[pos:])
            flat = np.concatenate(parts) if parts else flat
        return flat, lens

    # -- vectors ---------------------------------------------------------------------------------
    def mean_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32: the mean token vector of each text (zeros: no tokens)."""
        from scipy import sparse

        flat, lens = self.token_ids(texts)
        n = len(texts)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        counts = sparse.csr_matrix((np.ones(len(flat), dtype=np.float32), flat.astype(np.int64), indptr),
                                   shape=(n, self.vocab))
        sums = np.asarray(counts @ self.weights, dtype=np.float32)
        sums /= np.maximum(lens, 1).astype(np.float32)[:, None]
        return sums

    def encode(self, sentences: Iterable[str] | str, batch_size: int = 4096, convert_to_numpy: bool = True,
               show_progress_bar: bool = False, normalize_embeddings: bool = False, **_kwargs) -> np.ndarray:
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        step = max(1, int(batch_size)) * 4
        for start in range(0, len(texts), step):
            out[start:start + step] = self.mean_vectors(texts[start:start + step])
        if normalize_embeddings:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            np.divide(out, norms, out=out, where=norms > 0)
        return out[0] if single else out

    # sentence-transformers look-alikes used by embeddings.py
    def get_sentence_embedding_dimension(self) -> int:
        return self.dim

    get_embedding_dimension = get_sentence_embedding_dimension
    max_seq_length: Optional[int] = None

    def eval(self) -> "StaticEncoder":
        return self

    def to_sentence_transformer(self, device: str = "cpu"):
        """The same model as a sentence-transformers ``SentenceTransformer`` (imports torch)."""
        from sentence_transformers import SentenceTransformer
        from tokenizers import Tokenizer

        try:
            from sentence_transformers.sentence_transformer.modules import StaticEmbedding
        except ImportError:  # sentence-transformers < 5.2
            from sentence_transformers.models import StaticEmbedding
        module = StaticEmbedding(Tokenizer.from_file(self._path), embedding_weights=self.weights.copy())
        return SentenceTransformer(modules=[module], device=device)

    def save(self, path: str) -> None:
        """Write the model as a sentence-transformers folder (loadable as a local model)."""
        self.to_sentence_transformer().save(path)


def load_static(weights_path: str, tokenizer_path: str, tensor: str = "embedding.weight") -> StaticEncoder:
    """A :class:`StaticEncoder` from a safetensors file (read with numpy) and a tokenizer JSON."""
    from safetensors import safe_open

    with safe_open(weights_path, framework="np") as f:
        weights = f.get_tensor(tensor)
    return StaticEncoder(weights, tokenizer_path)
