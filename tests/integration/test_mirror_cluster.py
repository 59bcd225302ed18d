"""``ipfsbin mirror`` on a real three-peer IPFS Cluster on loopback, each peer with its own Kubo.

One story, in file order: a maintainer publishes an index of packages (made-up
bytes, and the test repository's real binpkgs); the mirror pins the index
and the packages with replication factor 2; a yank removes the package's
pins; then the publisher, one cluster peer and its Kubo stop, and a new
client still resolves the name (the mirror re-puts the record), fetches
every package left in the index and installs every real one with the real
``emerge --getbinpkgonly`` through ``ipfsbin serve``; and a client with no
Kubo at all installs through the mirror's gateway (trustless responses
only) with ``sync --gateway`` and ``serve --gateway``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ipfsbin.cluster.peer import ClusterPeer
from ipfsbin.cluster.rest import ClusterClient
from ipfsbin.codec.cid import CID, RAW, cid_for
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.manifest import Manifest
from ipfsbin.mirror.plan import index_pin_prefix
from tests.integration.cli_host import Cli, cli_host
from tests.integration.cluster_helpers import (
    PublishedIndex,
    publish_index,
    running_cluster,
    wait_for,
)
from tests.integration.serve_helpers import ClientHost
from tests.playground.builder import BuilderPlayground

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PACKAGES = {f"app-misc/tool{i}-1.0": f"binpkg {i}\n".encode() * 50 for i in range(3)}
PACKAGES["dev-libs/lib0-2.0"] = b"a library\n" * 80
# real binpkgs of the test repository; usetest's USE=foo pulls in hello
REAL = ("app-misc/usetest-1", "app-misc/hello-1", "dev-libs/libfoo-1", "app-misc/usesfoo-1")
# the mirror's Kubos answer their gateway as a mirror operator sets it up (schema/binhost.md)
MIRROR_GATEWAY = {"Gateway.DeserializedResponses": False}
YANKED = "app-misc/tool0-1.0"  # the yank test's


@dataclass
class Setup:
    publisher: ManagedNode
    kubos: list[ManagedNode]
    peers: list[ClusterPeer]
    mirror: Cli  # `ipfsbin mirror NAME --cluster URL ARGS` on the mirror's host
    host: Cli  # any command on the mirror's host
    cluster: ClusterClient
    index: PublishedIndex


@pytest.fixture(scope="module")
def setup(
    kubo_nodes: Any, tmp_path_factory: pytest.TempPathFactory, builder_playground: BuilderPlayground
) -> Iterator[Setup]:
    publisher, *kubos = kubo_nodes(4, extra_config=MIRROR_GATEWAY)
    real = [builder_playground.binpkgs[cpv] for cpv in REAL]
    with running_cluster(kubos, tmp_path_factory.mktemp("cluster")) as (peers, cluster):
        home = tmp_path_factory.mktemp("maintainer")
        index = publish_index(publisher, home, PACKAGES, real)
        name = index.name
        host = cli_host(tmp_path_factory.mktemp("mirror"), kubos[0])
        host("subscribe", name, "--root", index.root)

        def mirror(*args: str, ok: bool = True) -> Any:
            return host("mirror", name, "--cluster", peers[0].rest_url, *args, ok=ok)

        yield Setup(publisher, kubos, peers, mirror, host, cluster, index)


def _pinned_everywhere(cluster: ClusterClient, prefix: str, copies: int) -> bool:
    ours = {str(p.cid) for p in cluster.pinset() if p.name.startswith(prefix)}
    statuses = [s for s in cluster.status() if str(s.cid) in ours]
    return bool(statuses) and all(s.pinned_on >= copies for s in statuses)


def test_the_mirror_pins_the_index_and_packages_twice(setup: Setup) -> None:
    (first,) = setup.mirror("--replication", "2")
    assert first["outcome"] == "accepted" and first["errors"] == []
    assert first["pinned"] == first["wanted"] and first["republished_sequence"] == 2
    prefix = index_pin_prefix(setup.index.name)
    pinset = [p for p in setup.cluster.pinset() if p.name.startswith(prefix)]
    assert len(pinset) == first["wanted"]
    assert all(p.replication_min == p.replication_max == 2 for p in pinset)
    manifests = {p.cid: p for p in pinset if ":package:" in p.name}
    assert set(setup.index.manifests.values()) <= set(manifests)
    index_pins = [p.cid for p in pinset if p.name.endswith(":index")]
    assert index_pins and {c.codec for c in index_pins} == {RAW}
    wait_for(lambda: _pinned_everywhere(setup.cluster, prefix, 2), "every pin on two peers")

    (again,) = setup.mirror()
    assert again["outcome"] == "current" and again["pinned"] == again["unpinned"] == 0

    status = setup.mirror("--status")[setup.index.name]
    assert len(status) == first["wanted"]
    for pin in status:
        assert pin["replication"] == 2 and len(pin["allocations"]) == 2
        assert sorted(pin["status"].values()).count("pinned") >= 2


def test_a_yank_removes_the_package_pins(setup: Setup) -> None:
    yanked = YANKED
    setup.index.maintainer("index", "yank", setup.index.keys[yanked], "--reason", "broken")
    setup.index.maintainer("index", "commit", "-m", "yank tool0", "--key", "m")
    setup.index.maintainer("index", "publish", "--key", "m", "--allow-offline")
    (round_,) = setup.mirror()
    assert round_["outcome"] == "accepted" and round_["height"] == 3 and round_["errors"] == []
    assert round_["unpinned"] >= 1
    names = {p.cid: p.name for p in setup.cluster.pinset()}
    assert setup.index.manifests[yanked] not in names
    assert all(setup.index.manifests[cpv] in names for cpv in PACKAGES if cpv != yanked)


def _package_keys(setup: Setup) -> set[str]:
    """Index keys of the packages the cluster holds pins of for the mirrored index."""
    prefix = index_pin_prefix(setup.index.name) + "package:"
    return {p.name[len(prefix) :] for p in setup.cluster.pinset() if p.name.startswith(prefix)}


def _vote_for(node: ManagedNode, *cids: CID) -> None:
    """``node`` installed these builds: it keeps and provides them."""
    for cid in cids:
        node.run("pin", "add", str(cid), timeout=120)
        node.run("routing", "provide", str(cid), timeout=120)


def test_most_requested_keeps_the_top_builds_by_providers(setup: Setup, kubo_nodes: Any) -> None:
    with setup.kubos[0].client() as kubo:
        binpkgs = {
            cpv: Manifest.from_block(m, kubo.block_get(m)).binpkg
            for cpv, m in setup.index.manifests.items()
            if cpv != YANKED
        }
    key = setup.index.keys
    for cid in binpkgs.values():  # the publisher provides every build: one vote each
        setup.publisher.run("routing", "provide", str(cid), timeout=120)
    # a cluster peer's copy is the mirror's own, not a vote
    _vote_for(setup.kubos[1], binpkgs["app-misc/tool1-1.0"])
    voters = kubo_nodes(2)
    try:
        _vote_for(voters[0], binpkgs["app-misc/tool2-1.0"], binpkgs["dev-libs/lib0-2.0"])
        _vote_for(voters[1], binpkgs["app-misc/tool2-1.0"])
        ones = sorted(
            (key[c], c) for c in binpkgs if c not in ("app-misc/tool2-1.0", "dev-libs/lib0-2.0")
        )
        (first,) = setup.mirror("--most-requested", "3", "--provider-timeout", "5")
        assert first["errors"] == [], first
        assert first["most_requested"] == [
            {"key": key["app-misc/tool2-1.0"], "providers": 3},
            {"key": key["dev-libs/lib0-2.0"], "providers": 2},
            {"key": ones[0][0], "providers": 1},  # ties at 1 break by index key
        ]
        assert _package_keys(setup) == {v["key"] for v in first["most_requested"]}
        assert first["unpinned"] >= 2 * (len(binpkgs) - 3)

        # two more hosts install the next in key order: it rises, the third falls out
        risen = ones[1][1]
        _vote_for(voters[0], binpkgs[risen])
        _vote_for(voters[1], binpkgs[risen])
        (second,) = setup.mirror("--most-requested", "3", "--provider-timeout", "5")
        top = sorted([key["app-misc/tool2-1.0"], key[risen]])
        assert second["most_requested"] == [
            {"key": top[0], "providers": 3},
            {"key": top[1], "providers": 3},
            {"key": key["dev-libs/lib0-2.0"], "providers": 2},
        ]
        assert second["errors"] == [] and second["unpinned"] >= 2
        assert ones[0][0] not in _package_keys(setup)
        assert _package_keys(setup) == {*top, key["dev-libs/lib0-2.0"]}

        (libs,) = setup.mirror(
            "--category", "dev-libs", "--most-requested", "1", "--provider-timeout", "5"
        )
        assert libs["most_requested"] == [{"key": key["dev-libs/lib0-2.0"], "providers": 2}]
        assert _package_keys(setup) == {key["dev-libs/lib0-2.0"]}
        index_pins = [p for p in setup.cluster.pinset() if p.name.endswith(":index")]
        assert len(index_pins) > 0  # the index is pinned whatever the policy
    finally:
        for voter in voters:  # later tests fetch from the mirror, not from these hosts
            voter.stop()

    (every,) = setup.mirror()
    assert every["most_requested"] is None and every["errors"] == []
    assert _package_keys(setup) == {key[c] for c in binpkgs}


def test_packages_and_the_name_survive_a_peer_and_the_publisher(
    setup: Setup, kubo_nodes: Any
) -> None:
    prefix = index_pin_prefix(setup.index.name)
    wait_for(lambda: _pinned_everywhere(setup.cluster, prefix, 2), "every pin on two peers")
    setup.publisher.stop()
    setup.peers[2].stop()
    setup.kubos[2].stop()

    # The record's holders are gone with the publisher: the mirror re-puts it.
    (round_,) = setup.mirror()
    assert round_["republished_sequence"] == 3 and round_["errors"] == []

    (client,) = kubo_nodes(1)  # connects to the running Kubos only: two mirror peers
    resolved = client.run("name", "resolve", "--nocache", f"/ipns/{setup.index.name}", timeout=60)
    assert resolved.stdout.decode().strip().startswith("/ipfs/")
    with client.client() as kubo:
        for cpv, data in PACKAGES.items():
            if cpv == YANKED:
                continue
            assert kubo.cat_bytes(cid_for(RAW, data)) == data, cpv


def _installs_every_real_package(client: ClientHost, name: str, *serve_args: str) -> None:
    """``emerge --getbinpkgonly`` of every real package through ``ipfsbin serve SERVE_ARGS``."""
    with client.serving(*serve_args) as served:
        assert set(REAL) - {"app-misc/usesfoo-1"} <= served.listed(name)
        client.emerge("--getbinpkgonly", "--oneshot", "app-misc/usetest", "dev-libs/libfoo")
        # usesfoo's := dependency is met now that libfoo:0/1 is installed
        served.wait_listed(name, "app-misc/usesfoo-1")
        client.emerge("--getbinpkgonly", "--oneshot", "app-misc/usesfoo")
        downloads = served.status()["downloads"]
        assert downloads["failed"] == 0, json.dumps(downloads["failures"])
    assert set(REAL) <= client.installed()


def test_every_package_installs_through_the_shim_with_a_peer_down(
    setup: Setup, kubo_nodes: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert not setup.kubos[2].running and not setup.publisher.running
    (node,) = kubo_nodes(1)  # connects to the two running mirror Kubos
    playground = BuilderPlayground.create()
    try:
        client = ClientHost(tmp_path_factory.mktemp("client"), playground, node.api_multiaddr)
        client.configure()
        client.run("subscribe", setup.index.name, "--root", setup.index.root)
        (synced,) = json.loads(client.run("sync", "--json").stdout)
        assert synced["outcome"] == "accepted" and synced["height"] == 3, synced
        _installs_every_real_package(client, setup.index.name)
    finally:
        playground.cleanup()


def test_a_client_without_kubo_installs_from_the_mirrors_gateway(
    setup: Setup, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = setup.kubos[0].gateway_url
    usetest = setup.index.manifests["app-misc/usetest-1"]
    assert httpx.get(f"{url}/ipfs/{usetest}", timeout=30).status_code == 406  # trustless only
    playground = BuilderPlayground.create()
    try:
        client = ClientHost(tmp_path_factory.mktemp("daemonless"), playground)  # no Kubo
        client.configure()
        client.run("subscribe", setup.index.name, "--root", setup.index.root)
        (synced,) = json.loads(client.run("sync", "--gateway", url, "--json").stdout)
        assert synced["outcome"] == "accepted" and synced["height"] == 3, synced
        _installs_every_real_package(client, setup.index.name, "--gateway", url)
    finally:
        playground.cleanup()


def test_bad_mirror_command_lines_say_what_to_do(setup: Setup) -> None:
    error = setup.host("mirror", setup.index.name, ok=False)
    assert "no pinning engine given" in error and "--cluster URL" in error
    unknown = "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8"
    error = setup.host("mirror", unknown, "--cluster", setup.peers[0].rest_url, ok=False)
    assert "not subscribed" in error and "ipfsbin subscribe" in error
    error = setup.host("mirror", setup.index.name, "--cluster", "http://127.0.0.1:9", ok=False)
    assert "did not answer" in error and "ipfs-cluster-service" in error
