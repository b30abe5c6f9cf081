"""MinHash LSH in a real Redis server (issue 12 item 8): only plain bytes are stored, nothing read
back is ever unpickled (a planted pickle is never loaded), results equal the in-memory index, and
a server that is down or refuses the password gives a clear error."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import pytest

from ftcurate.cli import main
from ftcurate.core.quality import dedup
from ftcurate.core.quality.dedup import StorageError, minhash_signatures, near_duplicate_clusters
from ftcurate.core.quality.scan import ScanSettings, scan_files
from ftcurate.core.quality.textleak import minhash_leaks

pytest_plugins = ["redis_fixture"]

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "chat_train.jsonl"
HELDOUT = REPO / "resources" / "sample" / "heldout_test.jsonl"


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    monkeypatch.setenv("FTCURATE_NUMBA", "0")


class Bomb:
    """Unpickling this creates ``path`` (what a planted payload could do, harmlessly)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def sample_texts() -> tuple[list[str], list[str]]:
    from ftcurate.core.io.formats import DatasetReader

    train = [p.record.text if p.record is not None else "" for p in DatasetReader(str(SAMPLE))]
    test = [p.record.prompt_text for p in DatasetReader(str(HELDOUT)) if p.record is not None]
    return train, test


def plant(client, basename: bytes, band_keys: list[list[bytes]], payload: bytes) -> int:
    """Put ``payload`` into every bucket of ``band_keys`` (datasketch's
    Redis layout: a hash ``<basename>_bucket_<band>`` of bucket key -> set name)."""
    n = 0
    for band, keys in enumerate(band_keys):
        name = basename + b"_bucket_" + struct.pack(">H", band)
        for bk in keys:
            client.hset(name, bk, name + bk)
            client.sadd(name + bk, payload)
            n += 1
    client.hset(basename + b"_keys", pickle.dumps("x"), basename + b"_keys" + pickle.dumps("x"))
    return n


def test_planted_pickle_is_never_loaded(redis_server, tmp_path):
    texts, _ = sample_texts()
    sig = minhash_signatures(texts)
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(Bomb(str(marker)))
    cfg = redis_server.storage_config(basename="shared")
    lsh = dedup.make_lsh(0.8, 128, cfg)
    client = redis_server.client()
    assert plant(client, b"shared", dedup.lsh_band_keys(lsh, sig), payload) > 1000
    client.sadd(b"shared_bucket_\x00\x00" + b"unrelated", payload)

    # control: the plant is live, datasketch's default for Redis (prepickle) would run it
    from datasketch import LeanMinHash, MinHashLSH

    control_marker = tmp_path / "control"
    control = MinHashLSH(threshold=0.8, num_perm=128, storage_config=dict(cfg, basename=b"ctl"))
    assert control.prepickle
    plant(client, b"ctl", dedup.lsh_band_keys(control, sig[:1]), pickle.dumps(Bomb(str(control_marker))))
    control.query(LeanMinHash(seed=1, hashvalues=sig[0], scheme="affine32"))
    assert control_marker.exists()

    got = near_duplicate_clusters(texts, signatures=sig, storage_config=cfg)
    assert not marker.exists()
    assert got == near_duplicate_clusters(texts, signatures=sig)
    assert len(got) >= 5

    # leakage: the test rows are indexed, the training rows query it
    train, test = sample_texts()
    tsig = minhash_signatures(test)
    trsig = minhash_signatures(train)
    cfg2 = redis_server.storage_config(basename="shared2")
    plant(client, b"shared2", dedup.lsh_band_keys(dedup.make_lsh(0.6, 128, cfg2), trsig), payload)
    hits = minhash_leaks(train, test, storage_config=cfg2, train_signatures=trsig, test_signatures=tsig)
    assert not marker.exists()
    assert hits == minhash_leaks(train, test, train_signatures=trsig, test_signatures=tsig)


def test_only_plain_digits_are_stored(redis_server):
    texts, _ = sample_texts()
    sig = minhash_signatures(texts)
    cfg = redis_server.storage_config(basename="kept")  # a named index is left in place
    near_duplicate_clusters(texts, signatures=sig, storage_config=cfg)
    client = redis_server.client()
    members = 0
    for key in client.scan_iter(match=b"kept_bucket_*"):
        if client.type(key) == b"set":
            for m in client.smembers(key):
                assert m.isdigit() and dedup.lsh_key_value(m) is not None, m
                members += 1
    assert members > len(texts)
    for field in client.hkeys(b"kept_keys"):
        assert field.isdigit()
    assert dedup.lsh_key_value(pickle.dumps(3)) is None and dedup.lsh_key_value(b"12") == 12
    assert dedup.lsh_key(7) == b"7"


def test_scan_with_redis_storage(redis_server, tmp_path):
    """A scan with lsh_storage set (as JSON gives it: no basename, text values) finds the same
    near-duplicates as in memory and leaves nothing behind in the server."""
    base = dict(outliers=False, semantic_duplicates=False, semantic_leakage=False, length_outliers=False)
    mem = scan_files(str(SAMPLE), str(HELDOUT), settings=ScanSettings(**base))
    cfg = json.loads(json.dumps(redis_server.storage_config()))
    red = scan_files(str(SAMPLE), str(HELDOUT), settings=ScanSettings(lsh_storage=cfg, **base))
    assert red["near_duplicate_clusters"] == mem["near_duplicate_clusters"]
    assert red["near_duplicates"]
    assert redis_server.client().dbsize() == 0  # the scan's own index was deleted
    # a basename given as text is used as is
    near_duplicate_clusters(["a b c d e f", "a b c d e f g"], threshold=0.5,
                            storage_config=redis_server.storage_config(basename="named"))
    assert any(k.startswith(b"named_") for k in redis_server.client().keys())


def test_server_down_is_a_clear_error(tmp_path, capsys):
    from redis_fixture import free_port

    cfg = {"type": "redis", "redis": {"host": "127.0.0.1", "port": free_port()}}
    with pytest.raises(StorageError, match="cannot connect to the Redis server at 127.0.0.1"):
        near_duplicate_clusters(["a b c d e f", "a b c d e f g"], storage_config=cfg)
    with pytest.raises(StorageError, match="Is it running"):
        minhash_leaks(["a b c d e f"], ["a b c d e f"], storage_config=cfg)
    out = tmp_path / "r.json"
    rc = main(["scan", str(SAMPLE), "--set", "lsh_storage=" + json.dumps(cfg), "--set", "outliers=false",
               "--set", "semantic_duplicates=false", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot connect to the Redis server" in err and "Traceback" not in err
    assert not out.exists()


def test_wrong_password_is_a_clear_error(redis_server, capsys):
    cfg = redis_server.storage_config()
    for conn in (dict(cfg["redis"], password="wrong"), {k: v for k, v in cfg["redis"].items() if k != "password"}):
        bad = dict(cfg, redis=conn)
        with pytest.raises(StorageError, match="wrong or missing password"):
            near_duplicate_clusters(["a b c d e f", "a b c d e f g"], storage_config=bad)
    rc = main(["scan", str(SAMPLE), "--json", "--set", "lsh_storage=" + json.dumps(bad),
               "--set", "outliers=false", "--set", "semantic_duplicates=false"])
    cap = capsys.readouterr()
    assert rc == 2 and "Traceback" not in cap.err
    assert json.loads(cap.out) == {"error": "lsh_storage", "message": json.loads(cap.out)["message"]}
    assert "password" in json.loads(cap.out)["message"]


def test_bad_storage_configs():
    with pytest.raises(StorageError, match="type"):
        near_duplicate_clusters(["a b"], storage_config={"redis": {}})
    with pytest.raises(StorageError, match="'dict', 'redis' or 'cassandra'"):
        near_duplicate_clusters(["a b"], storage_config={"type": "mongo"})
    with pytest.raises(ValueError, match="never pickles"):
        dedup.make_lsh(0.8, 128, None, prepickle=True)
    from datasketch import MinHashLSH

    pickling = MinHashLSH(threshold=0.8, num_perm=128, prepickle=True)
    with pytest.raises(ValueError, match="never loads"):
        dedup.lsh_self_pairs(pickling, {0})
