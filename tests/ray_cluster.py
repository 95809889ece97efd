"""A real Ray cluster on loopback for the cluster tests: a head (no CPUs: it only coordinates) and two
worker nodes, one of them with a fake ``GPU`` resource. One per pytest run; start-up retried once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

NODE_CPUS = 12
"""Logical CPUs per worker node (placement only: 20 cameras at 0.5 each fit on one node)."""


@dataclass
class LocalCluster:
    cluster: Any
    cpu_node: Any
    gpu_node: Any

    def node_of(self, node_id: str) -> Any:
        for node in self.cluster.list_all_nodes():
            if node.node_id == node_id:
                return node
        raise KeyError(node_id)

    def replace(self, node: Any) -> Any:
        """Remove ``node`` (its processes are killed) and add a like one, so later tests keep two nodes."""
        gpu = node is self.gpu_node
        self.cluster.remove_node(node, allow_graceful=False)
        new = self.cluster.add_node(num_cpus=NODE_CPUS, num_gpus=1 if gpu else 0)
        if gpu:
            self.gpu_node = new
        else:
            self.cpu_node = new
        return new


def start_cluster() -> Iterator[LocalCluster]:
    import ray
    from ray.cluster_utils import Cluster

    from dfstream.stream.cluster import NAMESPACE

    last: Exception | None = None
    for _ in range(2):  # Ray's start-up can time out on a busy machine
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        try:
            cpu = cluster.add_node(num_cpus=NODE_CPUS)
            gpu = cluster.add_node(num_cpus=NODE_CPUS, num_gpus=1)
            cluster.wait_for_nodes(timeout=120)
            ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False)
            break
        except Exception as exc:
            last = exc
            cluster.shutdown()
            time.sleep(2)
    else:
        raise RuntimeError(f"local Ray cluster did not start twice: {last}")
    try:
        yield LocalCluster(cluster, cpu, gpu)
    finally:
        ray.shutdown()
        cluster.shutdown()
