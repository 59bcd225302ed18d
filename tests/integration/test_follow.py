"""Publish an index head over IPNS and follow it, on three real Kubo nodes on loopback.

publisher: holds the index and publishes; mirror: follows and republishes;
client: follows. The tests run in file order and share one story: a first
head, an update (counting the blocks that move), bad updates that are refused
while the good head is kept, a daemon-less follower on a gateway, and the
mirror keeping the name alive after the publisher is gone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ipfsbin.cli.follow import status, sync
from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.errors import IpnsError
from ipfsbin.index import ProllyTree
from ipfsbin.index.changeset import put_changeset, split_changes
from ipfsbin.ipns import create_record, ipns_path
from ipfsbin.ipns.publish import publish_head, republish
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.kubo.pins import PinLedger
from ipfsbin.store.gateway import GatewayBlockStore, gateway_client
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.store.sqlite import SqliteBlockStore
from ipfsbin.subscribe import (
    KuboKeeper,
    KuboRecordSource,
    SubscriptionStore,
    SyncResult,
    sync_subscription,
)
from ipfsbin.subscribe.keepers import GatewayKeeper
from ipfsbin.subscribe.sources import GatewayRecordSource
from ipfsbin.trust.commit import SignedCommit, make_commit, put_commit, sign_commit
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.root import SignedRoot, make_root, put_root, sign_root
from ipfsbin.trust.state import RootPin
from tests.integration.pin_helpers import follower_kept
from tests.unit.subscribe.subscribe_helpers import all_nodes, entry

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WAIT = timedelta(seconds=20)
SIZE = 600


def key_of(i: int) -> str:
    return f"amd64-k8/dev-libs/pkg{i:05d}/1.0/d{i:08x}"


@dataclass
class Follower:
    """A follower through its own Kubo node, with its own state file."""

    node: ManagedNode
    client: KuboClient
    state: SubscriptionStore

    @property
    def ledger_path(self) -> Path:
        return self.state.path.with_name("pins.sqlite")

    def sync(self, name: str) -> SyncResult:
        return sync_subscription(
            self.state,
            name,
            records=KuboRecordSource(self.client, timeout=WAIT),
            store=KuboBlockStore(self.client, offline=False, fetch_timeout=WAIT),
            keeper=KuboKeeper(
                self.client, PinLedger(self.client, self.state.path.with_name("pins.sqlite"))
            ),
            local_store=KuboBlockStore(self.client, offline=True),
        )


@dataclass
class Story:
    publisher: ManagedNode
    pub: KuboClient
    mirror: Follower
    client: Follower
    start_nodes: Callable[..., list[ManagedNode]]
    home: Path
    maintainer: SigningKey = field(default_factory=SigningKey.generate)
    publisher_key: SigningKey = field(default_factory=SigningKey.generate)
    stranger: SigningKey = field(default_factory=SigningKey.generate)
    memory: MemoryBlockStore = field(default_factory=MemoryBlockStore)
    heads: list[SignedCommit] = field(default_factory=list)
    indexes: list[CID] = field(default_factory=list)
    root: SignedRoot | None = None

    @property
    def name(self) -> str:
        return self.publisher_key.key_id

    @property
    def tree(self) -> ProllyTree:
        return ProllyTree(self.memory)

    def signed_root(self) -> SignedRoot:
        assert self.root is not None
        return self.root

    def upload(self) -> None:
        """Copy every block made so far into the publisher's node."""
        KuboBlockStore(self.pub).put_many((c, self.memory.get(c)) for c in list(self.memory))

    def commit(
        self,
        index: CID,
        *,
        signers: Sequence[SigningKey] | None = None,
        when: int | None = None,
        expires: int | None = None,
        keep: bool = True,
        upserts: Mapping[str, dagcbor.Value] | None = None,
    ) -> SignedCommit:
        """A commit of ``index`` on the last head; linking ``upserts`` as its changeset if given."""
        now = int(time.time()) if when is None else when
        changes: tuple[CID, ...] = ()
        if upserts is not None:
            base = self.heads[-1].commit.index
            changes = put_changeset(self.memory, split_changes(base, upserts))
        commit = make_commit(
            index=index,
            root=self.signed_root(),
            time=now,
            parents=self.heads[-1:],
            expires=expires,
            changes=changes,
        )
        signed = sign_commit(commit, *(signers or [self.maintainer]))
        put_commit(self.memory, signed)
        self.upload()
        if keep:
            self.heads.append(signed)
            self.indexes.append(index)
        return signed

    def publish(self, head: SignedCommit) -> None:
        result = publish_head(
            self.pub, self.publisher_key, head=head, root=self.signed_root(), timeout=WAIT
        )
        assert (result.sequence, result.value) == (head.height, f"/ipfs/{head.cid}")


@pytest.fixture(scope="module")
def story(
    kubo_nodes: Callable[..., list[ManagedNode]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Story]:
    publisher, mirror, client = kubo_nodes(3)
    home = tmp_path_factory.mktemp("ipfsbin-home")
    with (
        publisher.client() as pub,
        mirror.client() as mirror_client,
        client.client() as client_client,
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("IPFSBIN_HOME", str(home))
        env.setenv("IPFSBIN_API", client.api_multiaddr)
        mirror_state = SubscriptionStore(tmp_path_factory.mktemp("mirror") / "subs.sqlite")
        client_state = SubscriptionStore()  # the default path, which `ipfsbin status` reads
        story = Story(
            publisher=publisher,
            pub=pub,
            mirror=Follower(mirror, mirror_client, mirror_state),
            client=Follower(client, client_client, client_state),
            start_nodes=kubo_nodes,
            home=home,
        )
        root = make_root(
            expires=int(time.time()) + 30 * 86400,
            maintainers=[story.maintainer.public_key],
            publishers=[story.publisher_key.public_key],
        )
        story.root = sign_root(root, story.maintainer)
        put_root(story.memory, story.root)
        for follower in (story.mirror, story.client):
            follower.state.add(story.name, RootPin(cid=story.root.root_id), story.root.cid, now=0)
        yield story
        mirror_state.close()
        client_state.close()


def status_json() -> list[dict[str, Any]]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status(as_json=True)  # what `ipfsbin status --json` runs
    result: list[dict[str, Any]] = json.loads(out.getvalue())
    return result


def test_client_follows_the_first_head(story: Story) -> None:
    index = story.tree.build((key_of(i), entry(i)) for i in range(SIZE))
    head = story.commit(index)
    story.publish(head)

    result = story.client.sync(story.name)

    assert result.outcome == "accepted", result.error
    assert result.height == 1 and result.head == head.commit_id
    assert result.index_blocks == len(all_nodes(story.tree, index))
    pinned = follower_kept(story.client.client)
    held = all_nodes(story.tree, index) | {head.cid, head.commit_id}
    assert {c.multihash for c in held} <= pinned
    assert story.mirror.sync(story.name).outcome == "accepted"


def blocks_received(client: KuboClient) -> int:
    """Blocks this node received over bitswap so far (Kubo's own counter)."""
    answer = client.http.post("/api/v0/bitswap/stat")
    answer.raise_for_status()
    received: int = answer.json()["BlocksReceived"]
    return received


def test_update_moves_only_the_commit_and_its_changeset(story: Story) -> None:
    old_index = story.indexes[-1]
    upserts = {key_of(i): entry(i, 1) for i in (3, 250, 590)}
    new_index = story.tree.mutate(old_index, upserts)
    head = story.commit(new_index, upserts=upserts)
    story.publish(head)
    objects_before = story.client.client.repo_stat().num_objects
    received_before = blocks_received(story.client.client)

    result = story.client.sync(story.name)

    assert result.outcome == "accepted", result.error
    assert (result.previous_height, result.height) == (1, 2)
    assert (result.via, result.fallback) == ("changeset", None)
    moved = len(head.commit.changes) + 2  # the changeset, the commit's envelope and payload
    assert result.blocks_fetched == result.changeset_blocks + 2 == moved
    assert blocks_received(story.client.client) - received_before == moved
    added = all_nodes(story.tree, new_index) - all_nodes(story.tree, old_index)
    assert result.index_blocks == result.blocks_written == len(added)
    # the rebuilt nodes are the maintainer's, byte for byte, and nothing else was stored
    local = KuboBlockStore(story.client.client, offline=True)
    assert all(local.get(c) == story.memory.get(c) for c in added)
    grown = story.client.client.repo_stat().num_objects - objects_before
    # and the follower's holder DAGs (a root and one node of links), one after the new
    # blocks are kept and one after the old are let go: the repo's GC drops the first
    assert grown == moved + len(added) + 4
    pinned = follower_kept(story.client.client)
    removed = all_nodes(story.tree, old_index) - all_nodes(story.tree, new_index)
    assert {c.multihash for c in added} <= pinned
    assert not {c.multihash for c in removed} & pinned
    assert story.mirror.sync(story.name).via == "changeset"


def test_update_without_changeset_fetches_the_changed_nodes(story: Story) -> None:
    old_index = story.indexes[-1]
    new_index = story.tree.mutate(old_index, {key_of(i): entry(i, 2) for i in (4, 400)})
    head = story.commit(new_index)
    story.publish(head)
    received_before = blocks_received(story.client.client)

    result = story.client.sync(story.name)

    assert result.outcome == "accepted" and result.via == "nodes", result.error
    assert result.fallback == f"commit {head.commit_id} lists no changes"
    added = all_nodes(story.tree, new_index) - all_nodes(story.tree, old_index)
    assert result.index_blocks == len(added) and result.blocks_written == 0
    assert result.blocks_fetched == len(added) + 2  # plus the commit's envelope and payload
    assert blocks_received(story.client.client) - received_before == result.blocks_fetched
    assert story.mirror.sync(story.name).outcome == "accepted"


def assert_refused_in_status(story: Story, result: SyncResult, kind: str, fragment: str) -> None:
    assert result.outcome == "refused", result
    assert result.error is not None and result.error.startswith(kind), result.error
    assert fragment in result.error
    good = story.heads[-1]
    (row,) = [s for s in status_json() if s["name"] == story.name]
    assert (row["head"], row["height"]) == (str(good.commit_id), good.height)
    assert row["error"] == result.error


def test_commit_signed_by_an_unknown_key_is_refused(story: Story) -> None:
    bad = story.commit(story.indexes[-1], signers=[story.stranger], keep=False)
    story.publish(bad)

    result = story.client.sync(story.name)

    assert_refused_in_status(story, result, "ThresholdError", "signed by 0 of 1 required")


def test_expired_commit_is_refused(story: Story) -> None:
    long_ago = int(time.time()) - 10 * 86400
    bad = story.commit(story.indexes[-1], when=long_ago, expires=long_ago + 86400, keep=False)
    story.publish(bad)

    result = story.client.sync(story.name)

    assert_refused_in_status(story, result, "ExpiredError", "expired at")


def test_forged_record_by_a_non_publisher_is_refused(story: Story) -> None:
    head = story.heads[-1]
    with pytest.raises(IpnsError, match="not in the publishers role"):
        publish_head(story.pub, story.stranger, head=head, root=story.signed_root())
    # the stranger puts a record anyway, and a client is talked into following that name
    forged = create_record(story.stranger, head.cid, head.height)
    story.pub.routing_put(ipns_path(story.stranger.key_id), forged, timeout=WAIT)
    state = story.client.state
    state.add(
        story.stranger.key_id,
        RootPin(cid=story.signed_root().root_id),
        story.signed_root().cid,
        now=0,
    )

    result = story.client.sync(story.stranger.key_id)

    assert result.outcome == "refused" and result.height is None
    assert result.error is not None and "not in the publishers role" in result.error
    state.remove(story.stranger.key_id)


def test_replayed_older_record_is_refused(story: Story) -> None:
    """A stale gateway (a node that only ever saw the first record) serves it again."""
    (stale,) = story.start_nodes(1, connect=False)
    first = create_record(story.publisher_key, story.heads[0].cid, 1)
    with stale.client() as stale_client:
        stale_client.routing_put(ipns_path(story.name), first, allow_offline=True, timeout=WAIT)
    with gateway_client() as http:
        local = SqliteBlockStore(story.home / "stale-blocks.sqlite")
        fetching = GatewayBlockStore(http, stale.gateway_url, local)
        result = sync_subscription(
            story.client.state,
            story.name,
            records=GatewayRecordSource(http, stale.gateway_url),
            store=fetching,
            keeper=GatewayKeeper(fetching),
            local_store=local,
        )
    stale.stop()
    assert_refused_in_status(story, result, "RollbackError", "an old record is being replayed")


def test_a_good_update_after_refusals_is_accepted(story: Story) -> None:
    upserts = {key_of(7): entry(7, 2)}
    new_index = story.tree.mutate(story.indexes[-1], upserts)
    head = story.commit(new_index, upserts=upserts)
    story.publish(head)

    result = story.client.sync(story.name)

    assert result.outcome == "accepted" and result.height == 4, result.error
    assert result.via == "changeset", result.fallback
    (row,) = status_json()
    assert row["error"] is None and row["height"] == 4
    assert story.mirror.sync(story.name).outcome == "accepted"


def test_sync_command_through_the_local_node(story: Story) -> None:
    app = typer.Typer()
    app.command("sync")(sync)
    app.command("status")(status)

    done = CliRunner().invoke(app, ["sync", "--json"])

    assert done.exit_code == 0, done.output
    (row,) = json.loads(done.output)
    assert (row["outcome"], row["height"]) == ("current", 4)


def test_daemonless_follower_through_a_gateway(story: Story) -> None:
    state = SubscriptionStore(story.home / "gateway-subs.sqlite")
    state.add(story.name, RootPin(cid=story.signed_root().root_id), story.signed_root().cid, now=0)
    local = SqliteBlockStore(story.home / "gateway-blocks.sqlite")
    url = story.mirror.node.gateway_url
    with gateway_client() as http:
        fetching = GatewayBlockStore(http, url, local)
        result = sync_subscription(
            state,
            story.name,
            records=GatewayRecordSource(http, url),
            store=fetching,
            keeper=GatewayKeeper(fetching),
            local_store=local,
        )
    assert result.outcome == "accepted" and result.height == 4, result.error
    head = story.heads[-1]
    index = all_nodes(story.tree, story.indexes[-1])
    assert all(local.has(c) for c in index | {head.cid, head.commit_id})
    assert fetching.fetched == len(index) + 4  # index, commit envelope + payload, root's two
    assert len(local) == len(index) + 4
    state.close()
    local.close()


def test_mirror_keeps_the_name_alive_without_the_publisher(story: Story) -> None:
    story.publisher.stop()
    record = republish(story.mirror.client, story.name, timeout=WAIT)
    assert record.sequence == 4 and record.cid == story.heads[-1].cid
    # a newcomer that never saw the publisher resolves the name and fetches the index
    (newcomer,) = story.start_nodes(1)
    with newcomer.client() as client:
        follower = Follower(newcomer, client, SubscriptionStore(story.home / "new.sqlite"))
        root = story.signed_root()
        follower.state.add(story.name, RootPin(cid=root.root_id), root.cid, now=0)
        result = follower.sync(story.name)
        follower.state.close()
    assert result.outcome == "accepted" and result.height == 4, result.error
    assert datetime.now(UTC) < record.validity
