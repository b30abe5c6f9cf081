"""The quality scan on a Ray cluster (``ScanSettings.engine = "ray"``, ``ftcurate scan --engine ray``).

The records are cut into shards that live in Ray's object store: the shards of a folder are
read by Ray tasks, one per file, with ftcurate's own format readers (so validation, rejected
records and record numbers are those of a local scan); a single file or a project's records are
read here and put into the store in pieces. Then, stage by stage (the stages and progress
messages of the local scan):

* heuristics, token lengths, MinHash signatures: one task per shard (map);
* exact duplicates, conflicting answers, identical signatures: the map tasks hash their rows
  into partitions, one reduce task per partition groups them (a distributed group-by);
* near duplicates: LSH band keys as a second map, grouped by (band, key) in reduce tasks;
  candidate pairs are verified (exact Jaccard of the shingle sets) in batch tasks that get the
  texts of their pairs from the shards; clusters are the connected components (union-find)
  of the verified pairs, with the local scan's keeper choice;
* embeddings: actors that each hold the model, one per GPU when the cluster has GPUs (else one
  per CPU); nearest neighbours: every shard's rows against every shard (exact search), the
  partial lists merged per shard; outlier scores in the merge tasks, the cut-off over all of
  them; semantic duplicates from the same blocks;
* leakage: the test set is broadcast to every shard (:mod:`ftcurate.core.engines.ray_leak`);
  semantic leakage embeds the training prompts on the cluster and compares them here;
* the corpus index (``against_index``): one lookup task per shard.

Tasks are retried when a worker dies (``max_retries``) and the embedding actors restarted; a
stage that still fails stops the scan with :class:`RayEngineError` and no report. An address
that does not answer fails in seconds.
"""

from __future__ import annotations

import os
import socket
from typing import Optional, Sequence

import numpy as np

from ..progress import CancelCheck, Cancelled, ProgressCallback

RETRIES = 3
SHARD_MIN, SHARD_MAX = 1000, 50_000
VERIFY_BATCH = 200_000
CONNECT_TIMEOUT = 5.0
SHARD_ENV = "FTCURATE_RAY_SHARD_SIZE"


class RayEngineError(ValueError):
    """The Ray scan cannot run or did not finish (no report is produced)."""

    key = "ray"


# -- connecting -----------------------------------------------------------------------------------

def _ray():
    try:
        import ray
    except ImportError:
        raise RayEngineError("the Ray engine needs Ray: pip install 'ftcurate[ray]' (or pip install ray)") from None
    return ray


def _host_port(address: str) -> tuple[str, int]:
    rest = address.split("://", 1)[1] if "://" in address else address
    host, _, port = rest.rpartition(":")
    try:
        return host.strip("[]") or "127.0.0.1", int(port)
    except ValueError:
        raise RayEngineError(f"bad Ray address {address!r}: expected HOST:PORT, ray://HOST:PORT or auto") from None


def check_address(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise :class:`RayEngineError` within ``timeout`` seconds when nothing answers at ``address``."""
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise RayEngineError(f"no Ray cluster answers at {address} ({exc}); start one with `ray start --head` "
                             "or check the address (ray_address setting, --address)") from None


def connect(address: str = "") -> bool:
    """Connect this process to Ray; True when it did (and should disconnect afterwards)."""
    ray = _ray()
    if ray.is_initialized():
        return False
    kwargs = dict(log_to_driver=False, configure_logging=False, include_dashboard=False)
    address = (address or "").strip()
    try:
        if not address:
            ray.init(_node_ip_address="127.0.0.1", **kwargs)
        elif address == "auto":
            ray.init(address="auto", **kwargs)
        else:
            check_address(address)
            if address.startswith("ray://"):
                kwargs.pop("include_dashboard")
            ray.init(address=address, **kwargs)
    except RayEngineError:
        raise
    except (ConnectionError, RuntimeError, TimeoutError, ValueError) as exc:
        where = address or "this machine"
        raise RayEngineError(f"cannot connect to the Ray cluster at {where}: {exc}") from None
    return True


def cluster_info() -> dict:
    ray = _ray()
    res = ray.cluster_resources()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return {"nodes": len(nodes), "cpus": int(res.get("CPU", 0)), "gpus": int(res.get("GPU", 0))}


# -- waiting ----------------------------------------------------------------------------------------

def _get(refs, cancel: Optional[CancelCheck], what: str):
    """``ray.get`` that checks ``cancel`` while it waits and turns failures into plain errors."""
    ray = _ray()
    single = not isinstance(refs, list)
    todo = [refs] if single else list(refs)
    pending = list(todo)
    try:
        while pending:
            if cancel is not None and cancel():
                for r in pending:
                    ray.cancel(r, force=True)
                raise Cancelled("cancelled")
            _ready, pending = ray.wait(pending, num_returns=len(pending), timeout=0.25)
        out = ray.get(todo)
    except ray.exceptions.RayTaskError as exc:
        from ..io.formats import DatasetError

        cause = exc.cause if getattr(exc, "cause", None) is not None else None
        if isinstance(cause, (ValueError, OSError, Cancelled, DatasetError)):
            raise cause from None  # e.g. a shard that cannot be read: its own message
        raise RayEngineError(f"{what} failed on the cluster: {exc}") from None
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayActorError, ray.exceptions.ObjectLostError,
            ray.exceptions.NodeDiedError) as exc:
        raise RayEngineError(f"{what}: a Ray worker died and the task failed after {RETRIES} retries "
                             f"({type(exc).__name__}); the scan stopped and no report was written") from None
    return out[0] if single else out


# -- shards -------------------------------------------------------------------------------------------

def _shard_size(n: int, cpus: int) -> int:
    """Records per shard: two shards per CPU of the cluster, 1,000 to 50,000 records each
    (``$FTCURATE_RAY_SHARD_SIZE`` sets it)."""
    forced = os.environ.get(SHARD_ENV, "").strip()
    if forced.isdigit() and int(forced) > 0:
        return int(forced)
    return int(min(SHARD_MAX, max(SHARD_MIN, -(-n // max(1, 2 * cpus)))))


def _put_items(items: Sequence[tuple[int, object]], size: int) -> list[tuple[object, int, int]]:
    """(shard ref, offset, rows) for records already in memory (report numbers as keys)."""
    ray = _ray()
    out = []
    for s0 in range(0, len(items), size):
        part = items[s0:s0 + size]
        shard = {"keys": np.array([k for k, _ in part], dtype=np.int64), "records": [r for _, r in part]}
        out.append((ray.put(shard), 0, len(part)))
    return out


def _read_folder(paths: list[str], fmt: str, mapping: Optional[dict], cancel) -> tuple[list, list, int, set]:
    """Read every shard file in a task of its own; offsets follow from the files' record counts."""
    ray = _ray()
    from .local import read_shard

    @ray.remote(num_returns=2, max_retries=RETRIES)
    def read(path):
        items, rejected, count, form = read_shard(path, fmt, mapping, 0)
        shard = {"keys": np.array([k for k, _ in items], dtype=np.int64), "records": [r for _, r in items]}
        return shard, {"rows": len(items), "rejected": rejected, "count": count, "format": form}

    pairs = [read.remote(p) for p in paths]
    metas = _get([m for _, m in pairs], cancel, "reading the shards")
    shards, listing, first, formats, rejected = [], [], 0, set(), 0
    for path, (ref, _), meta in zip(paths, pairs, metas):
        shards.append((ref, first, meta["rows"]))
        listing.append({"file": os.path.basename(path), "first": first, "records": meta["count"]})
        first += meta["count"]
        rejected += meta["rejected"]
        formats.add(meta["format"])
    return shards, listing, rejected, formats


# -- entry points --------------------------------------------------------------------------------------

def scan_files(train_path: str, test_path: Optional[str] = None, fmt: str = "auto", mapping: Optional[dict] = None,
               settings=None, progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None,
               on_result=None) -> dict:
    """:func:`ftcurate.core.quality.scan.scan_files` on Ray (a file or a folder of shards)."""
    from ..quality.scan import ScanSettings
    from .local import read_shard, shard_files

    s = settings or ScanSettings()
    paths = shard_files(train_path) if os.path.isdir(train_path) else None
    test, test_rejected, test_count = [], 0, 0
    if test_path:
        test, test_rejected, test_count, _ = read_shard(test_path, split="test")
    own = connect(s.ray_address)
    try:
        info = cluster_info()
        if paths is not None:
            if progress is not None:
                progress(0, 0, f"reading {len(paths):,} shards on the cluster")
            shards, listing, rejected, formats = _read_folder(paths, fmt, mapping, cancel)
            extra = {"shards": listing, "format": formats.pop() if len(formats) == 1 else "mixed"}
            records = sum(x["records"] for x in listing)
        else:
            items, rejected, records, form = read_shard(train_path, fmt, mapping, 0)
            shards = _put_items(items, _shard_size(len(items), info["cpus"]))
            extra = {"format": form}
        report = _scan(shards, test, (), s, info, progress, cancel, on_result)
    finally:
        if own:
            _ray().shutdown()
    scanned = sum(n for _, _, n in shards)
    report.update({"index": "file", "train_file": train_path, "records": records, "scanned": scanned,
                   "rejected": rejected, **extra})
    if test_path:
        report.update({"test_file": test_path, "test_records": test_count, "test_rejected": test_rejected})
    return report


def scan_records(train, test=(), validation=(), settings=None, progress: Optional[ProgressCallback] = None,
                 cancel: Optional[CancelCheck] = None, on_result=None) -> dict:
    """:func:`ftcurate.core.quality.scan.scan_records` on Ray (records in memory, e.g. a project's)."""
    from ..quality.scan import ScanSettings

    s = settings or ScanSettings()
    own = connect(s.ray_address)
    try:
        info = cluster_info()
        shards = _put_items(list(train), _shard_size(len(train), info["cpus"]))
        return _scan(shards, list(test), list(validation), s, info, progress, cancel, on_result)
    finally:
        if own:
            _ray().shutdown()


def _scan(shards, test, validation, s, info: dict, progress, cancel, on_result) -> dict:
    from .ray_stages import RayScan

    return RayScan(shards, test, validation, s, info, progress, cancel, on_result).run()
