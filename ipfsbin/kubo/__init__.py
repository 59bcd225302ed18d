"""The network stack: Kubo's RPC client, managed daemons, the daemon to talk to, the installer."""

from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.daemon import (
    NodeStatus,
    connect,
    resolve_api,
    start_user_node,
    stop_user_node,
    user_node_status,
)
from ipfsbin.kubo.install import KUBO_VERSION, ensure_kubo, find_kubo
from ipfsbin.kubo.node import ManagedNode

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
