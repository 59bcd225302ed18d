"""The network stack: Kubo's RPC client, the managed daemon, and the Kubo installer."""

from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.install import KUBO_VERSION, ensure_kubo, find_kubo
from ipfsbin.kubo.node import (
    ManagedNode,
    NodeStatus,
    connect,
    resolve_api,
    start_user_node,
    stop_user_node,
    user_node_status,
)

__all__ = [
    "KUBO_VERSION",
    "KuboClient",
    "ManagedNode",
    "NodeStatus",
    "connect",
    "ensure_kubo",
    "find_kubo",
    "resolve_api",
    "start_user_node",
    "stop_user_node",
    "user_node_status",
]
