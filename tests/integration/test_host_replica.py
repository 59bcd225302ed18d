"""Host-scoped replicas on real Kubo: the platforms this host could use, through Kubo or a gateway.

The publisher's index links real manifests, descriptors and platforms over
ten platforms, two of which fit the test's host (the other eight are refused
on CHOST, CPU features, compiler family or C library). The follower learns
which from the index itself (``ipfsbin.subscribe.survey``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from ipfsbin.errors import HostError
from ipfsbin.index import IndexEntry, ProllyTree
from ipfsbin.ipns.publish import publish_head
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.subscribe import FollowConfig, Follower
from ipfsbin.subscribe.replica import NotHeld, lookup
from ipfsbin.subscribe.survey import PlatformFit
from ipfsbin.trust.commit import SignedCommit, make_commit, put_commit, sign_commit
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.root import SignedRoot, make_root, put_root, sign_root
from tests.integration.conftest import NodeFactory
from tests.integration.pin_helpers import follower_kept
from tests.unit.subscribe.subscribe_helpers import all_nodes
from tests.unit.subscribe.survey_helpers import (
    FITTING,
    MORE_REFUSED,
    REFUSED,
    PlatformIndex,
    fits,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WAIT = timedelta(seconds=30)
ENTRIES = 8_000


@dataclass
class Published:
    node: ManagedNode
    client: KuboClient
    index: PlatformIndex
    name: str
    root: SignedRoot
    head: SignedCommit
    signer: SigningKey
    maintainer: SigningKey


@pytest.fixture(scope="module")
def published(kubo_nodes: NodeFactory) -> Iterator[Published]:
    (node,) = kubo_nodes(1)
    index = PlatformIndex([*FITTING, *REFUSED.values(), *MORE_REFUSED], ENTRIES, shared=True)
    maintainer, signer = SigningKey.generate(), SigningKey.generate()
    root = sign_root(
        make_root(
            expires=int(time.time()) + 86400,
            maintainers=[maintainer.public_key],
            publishers=[signer.public_key],
        ),
        maintainer,
    )
    put_root(index.store, root)
    head = sign_commit(make_commit(index=index.root, root=root, time=int(time.time())), maintainer)
    put_commit(index.store, head)
    with node.client(timeout=120) as client:
        KuboBlockStore(client).put_many((c, index.store.get(c)) for c in index.store)
        publish_head(client, signer, head=head, root=root, timeout=WAIT)
        yield Published(node, client, index, signer.key_id, root, head, signer, maintainer)


def _update_elsewhere(published: Published) -> SignedCommit:
    """A commit adding builds on a refused platform only, uploaded and published."""
    index = published.index
    before = set(index.store)
    keys = [index.add(REFUSED["chost"], f"app-misc/new{i}-1.0") for i in range(100)]
    new_root = index.tree.mutate(index.root, {k: index.items[k] for k in keys})
    head = sign_commit(
        make_commit(
            index=new_root, root=published.root, time=int(time.time()), parents=[published.head]
        ),
        published.maintainer,
    )
    put_commit(index.store, head)
    fresh = [c for c in index.store if c not in before]
    KuboBlockStore(published.client).put_many((c, index.store.get(c)) for c in fresh)
    publish_head(published.client, published.signer, head=head, root=published.root, timeout=WAIT)
    index.root, published.head = new_root, head
    return head


def _check_lookups(follower: Follower, published: Published) -> None:
    sub = follower.state.get(published.name)
    local = follower.held_blocks()
    scope = follower.state.scope(published.name)
    assert scope.prefixes is not None and len(scope.prefixes) == len(FITTING)
    items = sorted(published.index.items.items())
    inside = [k for k, _ in items if scope.holds(k)]
    assert inside and len(inside) < len(items) / 3
    held = ProllyTree(local)
    assert sub.index_root is not None
    for prefix in scope.prefixes:  # every entry in the kept ranges, as the publisher has it
        assert list(held.scan(sub.index_root, prefix)) == [
            (k, v) for k, v in items if k.startswith(prefix)
        ]
    for key in inside[::10]:
        assert lookup(follower.state, sub, local, key) == published.index.items[key]
    for key in [k for k in published.index.items if not scope.holds(k)][::50]:
        with pytest.raises(NotHeld, match="outside the platforms"):
            lookup(follower.state, sub, local, key)


@pytest.mark.parametrize("mode", ["kubo", "gateway"])
def test_host_replica_keeps_what_the_host_could_use(
    published: Published, kubo_nodes: NodeFactory, tmp_path: Path, mode: str
) -> None:
    (node,) = kubo_nodes(1)
    config = FollowConfig(
        gateway=published.node.gateway_url if mode == "gateway" else None,
        state_path=tmp_path / "state.sqlite",
        block_path=tmp_path / "blocks.sqlite",
        timeout=WAIT,
        default_replica="host",
        host=lambda: fits,
    )
    full_nodes = all_nodes(ProllyTree(published.index.store), published.index.root)
    with Follower(config, connect=lambda: node.client(timeout=120)) as follower:
        follower.subscribe(published.name, root=published.root.cid)
        first = follower.sync(published.name)
        assert first.outcome == "accepted", first.error
        assert not any("cannot be read" in w for w in first.warnings)
        assert first.index_blocks < len(full_nodes) * 0.35
        _check_lookups(follower, published)
        (held,) = follower.holdings()
        assert held.policy == "host"
        assert "2 of 10 platforms this host could use" in held.describe()
        assert held.survey is not None and held.survey["refused"] == {
            "chost": 3,
            "compiler": 1,
            "isa": 2,
            "libc": 2,
        }

        head = _update_elsewhere(published)
        second = follower.sync(published.name)
        assert second.outcome == "accepted" and second.height == head.height, second.error
        # commit envelope and payload, the new root, the new nodes on the platform
        # boundaries the change moved: a handful, never the changed leaves
        assert second.blocks_fetched <= 8, second
        _check_lookups(follower, published)

        if mode == "kubo":
            with node.client() as client:  # the survey read manifests; none is kept
                manifests = {
                    IndexEntry.from_dag(v).manifest for v in published.index.items.values()
                }
                assert not {c.multihash for c in manifests} & follower_kept(client)


def test_full_policy_and_an_unreadable_host_keep_everything(
    published: Published, kubo_nodes: NodeFactory, tmp_path: Path
) -> None:
    (node,) = kubo_nodes(1)

    def unreadable() -> PlatformFit:
        raise HostError("Portage's configuration sets no CHOST")

    config = FollowConfig(
        state_path=tmp_path / "state.sqlite",
        timeout=WAIT,
        default_replica="host",
        host=unreadable,
    )
    with Follower(config, connect=lambda: node.client(timeout=120)) as follower:
        follower.subscribe(published.name, root=published.root.cid, replica="full")
        result = follower.sync(published.name)
        assert result.outcome == "accepted", result.error
        assert not any("cannot be read" in w for w in result.warnings)
        assert follower.state.scope(published.name).everything
        follower.state.set_replica_policy(published.name, None)  # back to the default: host
        assert follower.replica_policy(published.name) == "host"
        _update_elsewhere(published)
        result = follower.sync(published.name)
        assert result.outcome == "accepted", result.error
        assert follower.state.scope(published.name).everything
        assert "this host cannot be read (Portage's" in result.warnings[0]
