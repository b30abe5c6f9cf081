"""A real local Ray cluster for tests (never a mock): a head node and one worker node, each its
own set of processes on this machine with one CPU, everything on 127.0.0.1.

Use in a test module (tests/ is on ``sys.path`` when pytest runs)::

    pytest_plugins = ["ray_fixture"]

    def test_x(ray_cluster):
        settings = ScanSettings(engine="ray", ray_address=ray_cluster)

``ray_cluster`` is the cluster's address, one cluster per test module; the scan connects to it
and disconnects when done. Skipped when Ray is not installed.
"""

from __future__ import annotations

import os

import pytest

__all__ = ["ray_cluster", "start_cluster"]

NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": 256 * 1024 * 1024}


def start_cluster(workers: int = 1):
    """A ray.cluster_utils.Cluster with a head and ``workers`` worker nodes (1 CPU each)."""
    # one machine: Ray's own processes and the drivers talk over 127.0.0.1 only
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray = pytest.importorskip("ray")
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    ray_constants.ENABLE_RAY_CLUSTER = False
    cluster = Cluster(initialize_head=True, head_node_args=dict(NODE, include_dashboard=False))
    for _ in range(workers):
        cluster.add_node(**NODE)
    cluster.wait_for_nodes()
    return cluster


@pytest.fixture(scope="module")
def ray_cluster():
    cluster = start_cluster()
    try:
        yield cluster.address
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
