"""``ipfsbin mirror`` through the Pinning Service API: IPFS Cluster's, directly and through
Kubo's ``pin remote`` client, on a real three-peer cluster (replication 2 by its config).

In file order: the mirror pins through the API; then, through Kubo's client
to the same service, a yank removes the package's pins and nothing else
changes; both report the service's status.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ipfsbin.cluster.peer import ClusterPeer
from ipfsbin.cluster.pinsvc import cluster_token
from ipfsbin.cluster.rest import ClusterClient
from ipfsbin.codec.cid import CID
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.mirror.plan import index_pin_prefix
from tests.integration.cli_host import Cli, cli_host
from tests.integration.cluster_helpers import (
    PublishedIndex,
    publish_index,
    running_cluster,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PACKAGES = {f"app-misc/svc{i}-1.0": f"service binpkg {i}\n".encode() * 40 for i in range(2)}
SERVICE = "cluster"


@dataclass
class Setup:
    kubos: list[ManagedNode]
    peers: list[ClusterPeer]
    host: Cli
    cluster: ClusterClient
    index: PublishedIndex


@pytest.fixture(scope="module")
def setup(
    kubo_nodes: Any, tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: Any
) -> Iterator[Setup]:
    publisher, *kubos = kubo_nodes(4)
    base = tmp_path_factory.mktemp("cluster")
    with running_cluster(kubos, base, copies=2) as (peers, cluster):
        token = cluster_token(peers[0].pinsvc_url, *peers[0].pinsvc_credentials)
        monkeypatch_module.setenv("IPFSBIN_PINNING_TOKEN", token)
        with kubos[0].client() as kubo:
            kubo.pin_remote_service_add(SERVICE, peers[0].pinsvc_url, token)

        index = publish_index(publisher, tmp_path_factory.mktemp("maintainer"), PACKAGES)
        name = index.name
        host = cli_host(tmp_path_factory.mktemp("mirror"), kubos[0])
        host("subscribe", name, "--root", index.root)
        yield Setup(kubos, peers, host, cluster, index)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _ours(setup: Setup) -> dict[CID, Any]:
    prefix = index_pin_prefix(setup.index.name)
    return {p.cid: p for p in setup.cluster.pinset() if p.name.startswith(prefix)}


def test_the_mirror_pins_through_the_pinning_service_api(setup: Setup) -> None:
    url = setup.peers[0].pinsvc_url
    (first,) = setup.host("mirror", setup.index.name, "--pinning-service", url)
    assert first["outcome"] == "accepted" and first["errors"] == []
    assert first["pinned"] == first["wanted"] > len(PACKAGES)
    ours = _ours(setup)
    assert len(ours) == first["wanted"] and set(setup.index.manifests.values()) <= set(ours)
    assert all(len(p.allocations) == 2 for p in ours.values())

    def all_pinned() -> bool:
        status = setup.host("mirror", setup.index.name, "--pinning-service", url, "--status")
        pins = status[setup.index.name]
        return len(pins) == first["wanted"] and all(
            p["status"] == {"service": "pinned"} for p in pins
        )

    wait_for(all_pinned, "the service to report every pin pinned")


def test_kubos_pin_remote_client_sees_the_same_pins_and_unpins_a_yank(setup: Setup) -> None:
    (current,) = setup.host("mirror", setup.index.name, "--kubo-remote", SERVICE)
    assert current["outcome"] == "current" and current["pinned"] == current["unpinned"] == 0

    yanked = "app-misc/svc0-1.0"
    setup.index.maintainer("index", "yank", setup.index.keys[yanked], "--reason", "broken")
    setup.index.maintainer("index", "commit", "-m", "yank svc0", "--key", "m")
    setup.index.maintainer("index", "publish", "--key", "m", "--allow-offline")
    (after,) = setup.host("mirror", setup.index.name, "--kubo-remote", SERVICE)
    assert after["outcome"] == "accepted" and after["errors"] == []
    assert after["unpinned"] >= 1
    ours = _ours(setup)
    assert setup.index.manifests[yanked] not in ours
    assert setup.index.manifests["app-misc/svc1-1.0"] in ours

    status = setup.host("mirror", setup.index.name, "--kubo-remote", SERVICE, "--status")[
        setup.index.name
    ]
    assert {str(setup.index.manifests[yanked])} & {p["cid"] for p in status} == set()
    assert all(p["replication"] is None for p in status)


def test_without_a_token_the_pinning_service_is_not_asked(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IPFSBIN_PINNING_TOKEN")
    url = setup.peers[0].pinsvc_url
    error = setup.host("mirror", setup.index.name, "--pinning-service", url, ok=False)
    assert "no access token" in error and "IPFSBIN_PINNING_TOKEN" in error
    monkeypatch.setenv("IPFSBIN_PINNING_TOKEN", "not-a-token")
    error = setup.host("mirror", setup.index.name, "--pinning-service", url, ok=False)
    assert "HTTP 401" in error and "check the access token" in error
