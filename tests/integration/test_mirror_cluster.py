"""``ipfsbin mirror`` on a real three-peer IPFS Cluster on loopback, each peer with its own Kubo.

One story, in file order: a maintainer publishes an index of packages; the
mirror pins the index and the packages with replication factor 2; a yank
removes the package's pins; then the publisher, one cluster peer and its
Kubo stop, and a new client still resolves the name (the mirror re-puts the
record) and fetches every package left in the index.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from ipfsbin.cluster.peer import ClusterPeer, new_cluster_secret
from ipfsbin.cluster.rest import ClusterClient
from ipfsbin.codec.cid import CID, RAW, cid_for
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.mirror import ClusterEngine, Mirror, MirrorPolicy
from ipfsbin.mirror.plan import index_pin_prefix
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.subscribe.follower import FollowConfig, Follower
from ipfsbin.trust.keys import KeyStore
from tests.integration.cli_host import Cli, cli_host
from tests.unit.maintainer.maintainer_helpers import BUILDER_X, publish

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PACKAGES = {f"app-misc/tool{i}-1.0": f"binpkg {i}\n".encode() * 50 for i in range(3)}
PACKAGES["dev-libs/lib0-2.0"] = b"a library\n" * 80


@dataclass
class Setup:
    publisher: ManagedNode
    kubos: list[ManagedNode]
    peers: list[ClusterPeer]
    maintainer: Cli
    mirror: Mirror
    cluster: ClusterClient
    name: str
    keys: dict[str, str]  # CPV → index key
    manifests: dict[str, CID]


def _wait(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def setup(kubo_nodes: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    publisher, *kubos = kubo_nodes(4)
    secret = new_cluster_secret()
    base = tmp_path_factory.mktemp("cluster")
    peers = [
        ClusterPeer(base / f"peer{i}", kubo_api=node.api_multiaddr, secret=secret)
        for i, node in enumerate(kubos)
    ]
    started: list[ClusterPeer] = []
    try:
        for peer in peers:
            peer.start(bootstrap=[p.multiaddr for p in started])
            started.append(peer)
        cluster = peers[0].client()
        _wait(lambda: len(cluster.peers()) == 3, "three cluster peers")

        home = tmp_path_factory.mktemp("maintainer")
        maintainer = cli_host(home, publisher)
        KeyStore(home / "keys").generate("m")
        init = maintainer("index", "init", "--key", "m", "--builder", BUILDER_X.key_id)
        keys, manifests = {}, {}
        with publisher.client() as kubo:
            for cpv, data in PACKAGES.items():
                assert kubo.add(data, chunker="size-1048576").cid == cid_for(RAW, data)
                published = publish(KuboBlockStore(kubo), cpv, data, BUILDER_X)
                added = maintainer("index", "add", str(published.attestation.cid))
                keys[cpv] = added[0]["key"]
                manifests[cpv] = published.manifest_cid
        maintainer("index", "commit", "-m", "four packages", "--key", "m")
        name = maintainer("index", "publish", "--key", "m", "--allow-offline")["name"]

        mirror_kubo = kubos[0]
        follower = Follower(
            FollowConfig(state_path=base / "mirror.sqlite", timeout=timedelta(seconds=20)),
            connect=mirror_kubo.client,
        )
        follower.subscribe(name, root=CID.from_text(init["root"]))
        with mirror_kubo.client() as kubo:
            mirror = Mirror(
                follower,
                ClusterEngine(cluster),
                kubo,
                replication=2,
                policy=MirrorPolicy(),
                timeout=timedelta(seconds=20),
            )
            yield Setup(publisher, kubos, peers, maintainer, mirror, cluster, name, keys, manifests)
        follower.close()
        cluster.close()
    finally:
        for peer in reversed(started):
            peer.stop()


def _pinned_everywhere(cluster: ClusterClient, prefix: str, copies: int) -> bool:
    ours = {str(p.cid) for p in cluster.pinset() if p.name.startswith(prefix)}
    statuses = [s for s in cluster.status() if str(s.cid) in ours]
    return bool(statuses) and all(s.pinned_on >= copies for s in statuses)


def test_the_mirror_pins_the_index_and_packages_twice(setup: Setup) -> None:
    (first,) = setup.mirror.round()
    assert first.outcome == "accepted" and first.errors == ()
    assert first.pinned == first.wanted and first.republished == 2
    prefix = index_pin_prefix(setup.name)
    pinset = [p for p in setup.cluster.pinset() if p.name.startswith(prefix)]
    assert len(pinset) == first.wanted
    assert all(p.replication_min == p.replication_max == 2 for p in pinset)
    manifests = {p.cid: p for p in pinset if ":package:" in p.name}
    assert set(setup.manifests.values()) <= set(manifests)
    index_pins = [p.cid for p in pinset if p.name.endswith(":index")]
    assert index_pins and {c.codec for c in index_pins} == {RAW}
    _wait(lambda: _pinned_everywhere(setup.cluster, prefix, 2), "every pin on two peers")

    (again,) = setup.mirror.round()
    assert again.outcome == "current" and again.pinned == again.unpinned == 0


def test_a_yank_removes_the_package_pins(setup: Setup) -> None:
    yanked = "app-misc/tool0-1.0"
    setup.maintainer("index", "yank", setup.keys[yanked], "--reason", "broken")
    setup.maintainer("index", "commit", "-m", "yank tool0", "--key", "m")
    setup.maintainer("index", "publish", "--key", "m", "--allow-offline")
    (round_,) = setup.mirror.round()
    assert round_.outcome == "accepted" and round_.height == 3 and round_.errors == ()
    assert round_.unpinned >= 1
    names = {p.cid: p.name for p in setup.cluster.pinset()}
    assert setup.manifests[yanked] not in names
    assert all(setup.manifests[cpv] in names for cpv in PACKAGES if cpv != yanked)


def test_packages_and_the_name_survive_a_peer_and_the_publisher(
    setup: Setup, kubo_nodes: Any
) -> None:
    prefix = index_pin_prefix(setup.name)
    _wait(lambda: _pinned_everywhere(setup.cluster, prefix, 2), "every pin on two peers")
    setup.publisher.stop()
    setup.peers[2].stop()
    setup.kubos[2].stop()

    # The record's holders are gone with the publisher: the mirror re-puts it.
    (round_,) = setup.mirror.round()
    assert round_.republished == 3 and round_.errors == ()

    (client,) = kubo_nodes(1)  # connects to the running Kubos only: two mirror peers
    resolved = client.run("name", "resolve", "--nocache", f"/ipns/{setup.name}", timeout=60)
    assert resolved.stdout.decode().strip().startswith("/ipfs/")
    with client.client() as kubo:
        for cpv, data in PACKAGES.items():
            if cpv == "app-misc/tool0-1.0":
                continue
            assert kubo.cat_bytes(cid_for(RAW, data)) == data, cpv
