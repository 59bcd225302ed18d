"""A real IPFS Cluster on loopback for the mirror tests: one peer per given Kubo node."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ipfsbin.cluster.peer import ClusterPeer, new_cluster_secret
from ipfsbin.cluster.rest import ClusterClient
from ipfsbin.codec.cid import CID, RAW, cid_for
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.trust.keys import KeyStore
from tests.integration.cli_host import Cli, cli_host
from tests.unit.maintainer.maintainer_helpers import BUILDER_X, publish


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.5)


@contextmanager
def running_cluster(
    kubos: list[ManagedNode], base: Path, *, copies: int = -1
) -> Iterator[tuple[list[ClusterPeer], ClusterClient]]:
    """Peers joined into one cluster (default replication ``copies``), and a REST client
    of the first; stopped on exit."""
    secret = new_cluster_secret()
    peers = [
        ClusterPeer(base / f"peer{i}", kubo_api=n.api_multiaddr, secret=secret, replication=copies)
        for i, n in enumerate(kubos)
    ]
    started: list[ClusterPeer] = []
    try:
        for peer in peers:
            peer.start(bootstrap=[p.multiaddr for p in started])
            started.append(peer)
        with peers[0].client() as cluster:
            # the allocator chooses among peers whose metrics arrived
            wait_for(lambda: len(cluster.metrics()) == len(peers), "every peer's metrics")
            yield peers, cluster
    finally:
        for peer in reversed(started):
            peer.stop()


@dataclass
class PublishedIndex:
    """An index a maintainer published from the command line, with its packages."""

    maintainer: Cli
    name: str
    root: str
    keys: dict[str, str]  # CPV → index key
    manifests: dict[str, CID]


def publish_index(
    publisher: ManagedNode,
    home: Path,
    packages: dict[str, bytes],
    binpkgs: Sequence[Path] = (),
    *,
    profile: str = "default/linux/amd64/23.0",
) -> PublishedIndex:
    """``index init``, every package published and added, one commit, ``index publish``.

    ``packages`` are made-up bytes attested by a test builder; ``binpkgs``
    are real binpkgs published with ``ipfsbin publish`` (``--allow-restricted``:
    the test repository's hello is RESTRICT=bindist) by a second builder.
    """
    maintainer = cli_host(home, publisher)
    KeyStore(home / "keys").generate("m")
    KeyStore(home / "keys").generate("b")
    init = maintainer("index", "init", "--key", "m", "--builder", BUILDER_X.key_id,
                      "--builder", "b")  # fmt: skip
    keys, manifests = {}, {}
    if binpkgs:
        published = maintainer("publish", "--key", "b", "--profile", profile,
                               "--allow-restricted", *map(str, binpkgs))  # fmt: skip
        for item in published:
            added = maintainer("index", "add", item["attestation"])[0]
            keys[item["cpv"]] = added["key"]
            manifests[item["cpv"]] = CID.from_text(item["manifest"])
    with publisher.client() as kubo:
        for cpv, data in packages.items():
            assert kubo.add(data, chunker="size-1048576").cid == cid_for(RAW, data)
            published = publish(KuboBlockStore(kubo), cpv, data, BUILDER_X)
            assert published.attestation is not None
            keys[cpv] = maintainer("index", "add", str(published.attestation.cid))[0]["key"]
            manifests[cpv] = published.manifest_cid
    maintainer("index", "commit", "-m", "packages", "--key", "m")
    name = maintainer("index", "publish", "--key", "m", "--allow-offline")["name"]
    return PublishedIndex(maintainer, name, init["root"], keys, manifests)
