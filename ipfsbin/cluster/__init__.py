"""IPFS Cluster: its build, managed peers, and clients of its REST and Pinning Service APIs."""

from ipfsbin.cluster.install import CLUSTER_VERSION, ClusterBinaries, ensure_cluster, find_cluster

__all__ = ["CLUSTER_VERSION", "ClusterBinaries", "ensure_cluster", "find_cluster"]
