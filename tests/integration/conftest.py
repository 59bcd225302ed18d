"""Real Kubo daemons for integration tests, on loopback, one set per test module.

Fixtures:

- ``kubo_binary`` (session): the Kubo binary (built once, then cached).
- ``kubo_nodes`` (module): a factory; ``kubo_nodes(2)`` starts two fresh nodes
  side by side (profile ``test``, ``Routing.Type=dht``, ``Ipns.MaxCacheTTL=1s``), connects
  each new node to every node this module started before, and returns them.
  All are stopped when the module ends. Keyword arguments go to
  :class:`~ipfsbin.kubo.node.ManagedNode` (e.g. ``extra_config=``).
- ``kubo_node`` (module): one node from that factory; ``kubo_client`` its client.
- ``ipfs_cli`` (session): ``ipfs_cli(node, "dag", "get", str(cid))`` runs the real
  ``ipfs`` command line against a node's repo and returns its stdout (bytes);
  a non-zero exit fails with the command's stderr.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.install import ensure_kubo
from ipfsbin.kubo.node import ManagedNode

NodeFactory = Callable[..., list[ManagedNode]]
IpfsCli = Callable[..., bytes]

TEST_NODE_CONFIG: dict[str, Any] = {"Ipns.MaxCacheTTL": "1s"}


@pytest.fixture(scope="session")
def kubo_binary() -> Path:
    return ensure_kubo()


@pytest.fixture(scope="module")
def kubo_nodes(
    kubo_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeFactory]:
    started: list[ManagedNode] = []
    # The stack stops every node (newest first) even if stopping one fails.
    with ExitStack() as stack:

        def start(count: int = 1, *, connect: bool = True, **kwargs: Any) -> list[ManagedNode]:
            config = {**TEST_NODE_CONFIG, **kwargs.pop("extra_config", {})}
            profile = kwargs.pop("profile", "test")
            routing = kwargs.pop("routing", "dht")
            fresh = [
                ManagedNode(
                    tmp_path_factory.mktemp("kubo-repo"),
                    binary=kubo_binary,
                    profile=profile,
                    routing=routing,
                    extra_config=config,
                    **kwargs,
                )
                for _ in range(count)
            ]
            for node in fresh:
                # registered first: a start cut short (Ctrl-C, a timeout) still stops its daemon
                stack.callback(node.stop)
            # side by side: most of a start is waiting for the daemon to answer
            with ThreadPoolExecutor(max(1, count)) as pool:
                list(pool.map(lambda node: node.start(timeout=60), fresh))
            started.extend(fresh)
            if connect:
                _connect_all(fresh, [n for n in started if n.running])
            return fresh

        yield start


def _connect_all(fresh: list[ManagedNode], everyone: list[ManagedNode]) -> None:
    for node in fresh:
        others = [o for o in everyone if o is not node]
        if not others:
            continue
        addrs = [a for o in others for a in o.swarm_addrs()[:1]]
        with node.client() as client:
            client.swarm_connect(addrs)


@pytest.fixture(scope="module")
def kubo_node(kubo_nodes: NodeFactory) -> ManagedNode:
    return kubo_nodes(1)[0]


@pytest.fixture(scope="module")
def kubo_client(kubo_node: ManagedNode) -> Iterator[KuboClient]:
    with kubo_node.client() as client:
        yield client


@pytest.fixture(scope="session")
def ipfs_cli() -> IpfsCli:
    def run(node: ManagedNode, *args: str, input: bytes | None = None) -> bytes:
        done = node.run(*args, input=input, check=False)
        if done.returncode != 0:
            pytest.fail(
                f"ipfs {' '.join(args)} exited {done.returncode}: "
                f"{done.stderr.decode(errors='replace')}"
            )
        return done.stdout

    return run
