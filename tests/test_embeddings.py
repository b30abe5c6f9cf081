"""Embeddings: both built-in models load offline, local folders, caching."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest

from ftcurate.core.quality import embeddings as E
from ftcurate.core.progress import Cancelled

TEXTS = ["How many apples are left?", "Write a sonnet about the sea.", "", "   ",
         "How many apples remain?"]


class _NoNetwork:
    """Any attempt to open a network connection fails while this is active."""

    def __enter__(self):
        self._orig = socket.socket.connect

        def refuse(*_a, **_k):
            raise AssertionError("tried to reach the network")

        socket.socket.connect = refuse
        return self

    def __exit__(self, *exc):
        socket.socket.connect = self._orig


@pytest.fixture(scope="module")
def models():
    """Both built-in models, loaded (once) with the network cut off."""
    with _NoNetwork():
        return {name: E.load_model(name) for name in E.BUILTIN}


def test_builtin_models_load_offline(models):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    for name in E.BUILTIN:
        info = E.model_info(name)
        assert os.path.exists(info["source"])
        assert models[name] is E.load_model(name)  # cached per (name, device)
        with _NoNetwork():
            v = E.embed(TEXTS, name)
        assert v.shape == (len(TEXTS), info["dim"]) and v.dtype == np.float32
        norms = np.linalg.norm(v, axis=1)
        assert np.allclose(norms[[0, 1, 4]], 1.0, atol=1e-4)
        assert np.all(v[2] == 0) and np.all(v[3] == 0)  # empty texts: zero vectors
        assert v[0] @ v[4] > v[0] @ v[1]  # paraphrase closer than another topic
    assert E.model_info(E.FAST)["kind"] == "static"
    assert E.model_info(E.ACCURATE)["kind"] == "transformer"
    assert E.default_device("static") == "cpu"


def test_bad_folder_gives_clear_error(tmp_path):
    with pytest.raises(ValueError, match="neither a built-in model"):
        E.load_model(str(tmp_path / "nope"))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError) as err:
        E.load_model(str(tmp_path))
    msg = str(err.value)
    assert "missing" in msg and "model.safetensors" in msg and "tokenizer.json" in msg
    st = tmp_path / "st"
    st.mkdir()
    (st / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    with pytest.raises(ValueError, match="0_Transformer"):
        E.model_info(str(st))


def test_local_folder_model(tmp_path, models):
    folder = tmp_path / "static-copy"
    models[E.FAST].save(str(folder))
    info = E.model_info(str(folder))
    assert info["kind"] == "static" and info["source"] == str(folder)
    a = E.embed(TEXTS, str(folder))
    b = E.embed(TEXTS, E.FAST)
    assert np.allclose(a, b, atol=1e-5)
    assert E.model_key(str(folder)) != E.model_key(E.FAST)


def test_embed_cache_second_call_computes_nothing(models, monkeypatch):
    cache = E.DictCache()
    texts = TEXTS + ["How many apples are left?"]  # a repeated text is embedded once
    first = E.embed(texts, E.ACCURATE, cache=cache)
    assert cache.puts == 3  # three distinct non-empty texts

    def boom(*_a, **_k):
        raise AssertionError("computed although cached")

    monkeypatch.setattr(E, "load_model", boom)
    second = E.embed(texts, E.ACCURATE, cache=cache)
    assert cache.puts == 3
    assert np.allclose(first, second, atol=2e-3)  # stored as float16
    # Another model is another namespace: nothing shared.
    assert cache.get_many(E.model_key(E.FAST), [E.text_hash(TEXTS[0])]) == {}


def test_project_cache_adapter(tmp_path, models):
    from ftcurate.core.project.store import Project

    project = Project.create(tmp_path / "p.ftcurate")
    try:
        cache = E.ProjectCache(project)
        hashes = ["h1", "h2", "h3", "h4", "h5"]
        a = E.embed(TEXTS, E.FAST, cache=cache, hashes=hashes)
        stored = project.cache_get_many("embedding", E.model_key(E.FAST), hashes)
        assert set(stored) == {"h1", "h2", "h5"}
        b = E.embed(TEXTS, E.FAST, cache=cache, hashes=hashes)
        assert np.allclose(a, b, atol=2e-3)
    finally:
        project.close()


def test_vector_codec_roundtrip():
    v = np.random.default_rng(0).normal(size=384).astype(np.float32)
    v /= np.linalg.norm(v)
    back = E.decode_vector(E.encode_vector(v), 384)
    assert back is not None and np.allclose(back, v, atol=1e-3)
    assert E.decode_vector(E.encode_vector(v), 256) is None
    assert E.decode_vector("not base64!!") is None


def test_embed_progress_and_cancel(models):
    seen = []
    E.embed(["a b c", "d e f"], E.FAST, progress=lambda d, t, m: seen.append((d, t)))
    assert seen and seen[-1] == (2, 2)
    with pytest.raises(Cancelled):
        E.embed(["a b c"], E.FAST, cancel=lambda: True)


def test_embed_without_copies_gives_the_same_rows():
    """All texts distinct: the computed matrix is returned as it is; with copies and empty texts
    the rows are gathered in blocks. Both give the same normalised rows."""
    from ftcurate.core.quality import embeddings as E

    texts = ["how many apples are left", "the train leaves at noon", "share the cookies equally"]
    plain = E.embed(texts)
    mixed = E.embed(["", texts[1], texts[0], texts[1], "   ", texts[2]])
    np.testing.assert_allclose(mixed[[2, 1, 5]], plain, atol=1e-6)
    np.testing.assert_array_equal(mixed[1], mixed[3])
    assert not mixed[0].any() and not mixed[4].any()
    np.testing.assert_allclose(np.linalg.norm(plain, axis=1), 1.0, atol=1e-6)
    x = np.random.default_rng(0).normal(size=(70_000, 8)).astype(np.float32)
    x[5] = 0.0
    y = E.normalize_rows(x.copy())
    np.testing.assert_allclose(y[6:], x[6:] / np.linalg.norm(x[6:], axis=1, keepdims=True), rtol=1e-5)
    assert not y[5].any()


def test_distinct_texts_without_digests_match_the_digest_path():
    """embed() without a cache groups equal texts by an in-memory hash (no SHA-256 strings):
    the same first-of-group rows as the digest dictionary, also when hashes collide."""
    from ftcurate.core.quality import embeddings as em

    texts = ["a", "", "b", "a", "  ", "c", "b", "\n", "c", "d"]
    first, row = em._distinct(texts)
    assert first.tolist() == [0, 2, 5, 9]
    assert row.tolist() == [0, -1, 1, 0, -1, 2, 1, -1, 2, 3]

    class Same(str):  # every text hashes alike: the equality check catches it
        def __hash__(self):
            return 7

    first, row = em._distinct([Same(t) for t in texts])
    assert first.tolist() == [0, 2, 5, 9]
    assert row.tolist() == [0, -1, 1, 0, -1, 2, 1, -1, 2, 3]


def test_static_model_on_worker_processes_gives_the_same_vectors(monkeypatch):
    """Large sets embed with the static model on worker processes (issue 14: both cores): the
    same vectors as in this process, copies and empty texts included, cache filled alike, and
    a cancel ends the workers."""
    texts = [f"how many apples are left over after {i} days {'and cookies ' * (i % 5)}" for i in range(900)]
    texts[10] = texts[3]
    texts[20] = ""
    here = E.embed(texts, E.FAST)
    from ftcurate.core.quality import recordpass

    monkeypatch.setattr(E, "STATIC_MIN_PARALLEL", 100)
    monkeypatch.setattr(recordpass, "MIN_PARALLEL", 100)
    monkeypatch.setattr(E, "STATIC_PARALLEL_CHUNK", 128)
    monkeypatch.setenv("FTCURATE_WORKERS", "2")
    assert E._static_workers(E.load_model(E.FAST), 900) == 2
    assert E._static_workers(E.load_model(E.FAST), 99) == 1
    seen = []
    cache = E.DictCache()
    there = E.embed(texts, E.FAST, cache=cache, progress=lambda d, t, m: seen.append(d))
    np.testing.assert_array_equal(there, here)
    assert seen[-1] == 900 and len(seen) > 5
    puts = cache.puts
    # all from the cache (stored as float16)
    np.testing.assert_allclose(E.embed(texts, E.FAST, cache=cache), here, atol=1e-3)
    assert puts == 898 and cache.puts == puts  # one copy, one empty text
    ticks = []
    with pytest.raises(Cancelled):
        E.embed(texts[::-1], E.FAST, progress=lambda d, t, m: ticks.append(d), cancel=lambda: len(ticks) >= 3)
    assert ticks[-1] < 900
