"""Subscription state in SQLite: atomic, compare-and-set head moves, errors beside the head."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from subscribe_helpers import MAINTAINER, PUBLISHER, STRANGER, T0

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR, cid_for
from ipfsbin.errors import BlockMismatchError, SubscriptionError
from ipfsbin.store.gateway import GatewayBlockStore
from ipfsbin.store.sqlite import SqliteBlockStore
from ipfsbin.subscribe import AcceptedHead, SubscriptionStore
from ipfsbin.subscribe.sources import GatewayRecordSource
from ipfsbin.trust.state import RootPin


def cid(n: int) -> CID:
    return cid_for(DAG_CBOR, dagcbor.encode({"n": n}))


def head(n: int, height: int) -> AcceptedHead:
    return AcceptedHead(
        head=cid(n),
        head_envelope=cid(n + 1000),
        height=height,
        index_root=cid(n + 2000),
        sequence=height,
        roots=(cid(0),),
        head_expires=T0 + 7 * 86400,
        root_expires=T0 + 365 * 86400,
    )


@pytest.fixture
def state(tmp_path: Path) -> SubscriptionStore:
    store = SubscriptionStore(tmp_path / "s.sqlite")
    store.add(PUBLISHER.key_id, RootPin(cid=cid(0)), cid(0), now=1.0)
    return store


def test_add_is_idempotent_but_refuses_another_root(state: SubscriptionStore) -> None:
    again = state.add("/ipns/" + PUBLISHER.key_id, RootPin(cid=cid(0)), cid(0), now=2.0)
    assert again.created_at == 1.0
    with pytest.raises(SubscriptionError, match="already subscribed"):
        state.add(PUBLISHER.key_id, RootPin(key_id=MAINTAINER.key_id), cid(0), now=3.0)


def test_unknown_name_is_an_error_with_a_hint(state: SubscriptionStore) -> None:
    with pytest.raises(SubscriptionError, match="not subscribed to") as info:
        state.get(STRANGER.key_id)
    assert info.value.hint is not None and "ipfsbin subscribe" in info.value.hint


def test_head_moves_only_from_the_expected_head(state: SubscriptionStore) -> None:
    state.record_accepted(PUBLISHER.key_id, head(1, 1), expect_head=None, now=5.0)
    with pytest.raises(SubscriptionError, match="moved to"):
        state.record_accepted(PUBLISHER.key_id, head(2, 2), expect_head=None, now=6.0)
    sub = state.get(PUBLISHER.key_id)
    assert (sub.head, sub.height, sub.accepted_at) == (cid(1), 1, 5.0)


def test_failure_keeps_the_head_and_success_clears_the_error(state: SubscriptionStore) -> None:
    state.record_accepted(PUBLISHER.key_id, head(1, 1), expect_head=None, now=5.0)
    state.record_failure(PUBLISHER.key_id, "ThresholdError: signed by 0 of 1", now=7.0)
    sub = state.get(PUBLISHER.key_id)
    assert (sub.head, sub.height, sub.error, sub.error_at) == (
        cid(1),
        1,
        "ThresholdError: signed by 0 of 1",
        7.0,
    )
    state.record_accepted(PUBLISHER.key_id, head(2, 2), expect_head=cid(1), now=8.0)
    assert state.get(PUBLISHER.key_id).error is None


def test_state_survives_reopening(tmp_path: Path, state: SubscriptionStore) -> None:
    state.record_accepted(PUBLISHER.key_id, head(1, 1), expect_head=None, now=5.0)
    state.close()
    again = SubscriptionStore(tmp_path / "s.sqlite")
    assert again.get(PUBLISHER.key_id).head == cid(1)
    assert [s.name for s in again.all()] == [PUBLISHER.key_id]
    again.remove(PUBLISHER.key_id)
    assert again.all() == []


def test_sqlite_block_store_verifies_blocks(tmp_path: Path) -> None:
    blocks = SqliteBlockStore(tmp_path / "b.sqlite")
    data = dagcbor.encode({"x": 1})
    stored = blocks.put(data)
    assert blocks.get(stored) == data and blocks.has(stored) and len(blocks) == 1
    with pytest.raises(BlockMismatchError):
        blocks.put_many([(cid(5), data)])
    blocks.delete([stored])
    assert not blocks.has(stored)


def test_gateway_block_that_does_not_hash_to_its_cid_is_refused(tmp_path: Path) -> None:
    def lying_gateway(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"not the block")

    http = httpx.Client(transport=httpx.MockTransport(lying_gateway))
    store = GatewayBlockStore(http, "http://gw.invalid", SqliteBlockStore(tmp_path / "b.sqlite"))
    with pytest.raises(BlockMismatchError, match="do not hash to it"):
        store.get(cid(1))


def test_gateway_error_answer_is_a_subscription_error() -> None:
    def missing(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept"] == "application/vnd.ipfs.ipns-record"
        return httpx.Response(404, text="no record")

    http = httpx.Client(transport=httpx.MockTransport(missing))
    source = GatewayRecordSource(http, "http://gw.invalid/")
    with pytest.raises(SubscriptionError, match="gateway answered 404"):
        source.fetch_record(PUBLISHER.key_id)


def test_public_names() -> None:
    import ipfsbin.ipns.publish
    import ipfsbin.subscribe

    assert sorted(ipfsbin.subscribe.__all__) == [
        "AcceptedHead", "BlockFileKeeper", "FollowConfig", "Follower", "GatewayKeeper",
        "GatewayRecordSource", "Keeper", "KuboKeeper", "KuboRecordSource", "PIN_NAME",
        "REPLICA_POLICIES", "RecordSource", "ReplicaPolicy", "Subscription",
        "SubscriptionStore", "SyncOutcome", "SyncResult",
        "Unsubscribed", "default_state_path", "describe_error", "follow_forever",
        "require_subscriptions", "sync_all", "sync_subscription", "unsubscribe",
    ]  # fmt: skip
    assert sorted(ipfsbin.ipns.publish.__all__) == [
        "PublishedRecord", "announce_roots", "announcing_keys", "current_record",
        "publish_head", "republish",
    ]  # fmt: skip


def test_a_killed_gateway_sync_resumes_from_the_spool_without_fetching_again(
    tmp_path: Path,
) -> None:
    from ipfsbin.subscribe.keepers import GatewayKeeper

    blocks = {c: d for c, d in (dagcbor.encode_block({"n": n}) for n in range(20))}
    asked: list[str] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(200, content=blocks[CID.from_text(request.url.path.split("/")[-1])])

    http = httpx.Client(transport=httpx.MockTransport(gateway))
    local = SqliteBlockStore(tmp_path / "blocks.sqlite")
    spool_path = tmp_path / "blocks.sqlite.fetched"
    cids = list(blocks)
    first = GatewayBlockStore(http, "http://gw.invalid", local, spool=SqliteBlockStore(spool_path))
    for c in cids[:12]:
        first.get(c)
    assert first.spool is not None
    first.spool.close()  # killed before keeping: nothing in the block file
    assert len(local) == 0

    spool = SqliteBlockStore(spool_path)
    again = GatewayBlockStore(http, "http://gw.invalid", local, spool=spool)
    assert [again.get(c) for c in cids] == [blocks[c] for c in cids]
    assert len(asked) == len(cids)  # the twelve verified before the kill came from the spool
    GatewayKeeper(again).keep(cids, label="test")
    assert len(local) == len(cids) and len(spool) == 0
