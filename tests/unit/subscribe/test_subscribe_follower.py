"""The Follower: configured once, it touches the network only when a sync needs it.

Syncs through real Kubo and a gateway are in tests/integration/test_follow.py
(through ``ipfsbin sync``, which is a Follower); here the parts that need no
network: configuration, subscriptions, and when a connection is (not) made.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from subscribe_helpers import MAINTAINER, PUBLISHER

from ipfsbin.codec import dagcbor
from ipfsbin.errors import KuboUnavailableError, SubscriptionError
from ipfsbin.kubo.client import KuboClient
from ipfsbin.store.sqlite import SqliteBlockStore
from ipfsbin.subscribe import FollowConfig, Follower
from ipfsbin.trust.state import RootPin

ROOT = dagcbor.encode_block({"root": 1})[0]
NEXT_ROOT = dagcbor.encode_block({"root": 2})[0]


def never() -> KuboClient:
    raise AssertionError("the follower connected to Kubo although it had no reason to")


def unavailable() -> KuboClient:
    raise KuboUnavailableError("no Kubo daemon", hint="start it")


@pytest.fixture
def config(tmp_path: Path) -> FollowConfig:
    return FollowConfig(
        state_path=tmp_path / "subscriptions.sqlite", block_path=tmp_path / "blocks.sqlite"
    )


def test_config_refuses_what_cannot_work() -> None:
    with pytest.raises(ValueError, match="timeout must be positive"):
        FollowConfig(timeout=timedelta(0))
    with pytest.raises(ValueError, match="gateway URL is empty"):
        FollowConfig(gateway=" ")
    assert FollowConfig().gateway is None and not FollowConfig().allow_stale


def test_subscribing_needs_no_network(config: FollowConfig) -> None:
    with Follower(config, connect=never) as follower:
        sub = follower.subscribe(PUBLISHER.key_id, root=ROOT)
        assert sub.pin == RootPin(cid=ROOT) and sub.roots == (ROOT,)
        by_key = follower.subscribe(MAINTAINER.key_id, root_key=MAINTAINER.key_id)
        assert by_key.pin == RootPin(key_id=MAINTAINER.key_id) and by_key.roots == ()
        assert follower.add_root(PUBLISHER.key_id, NEXT_ROOT).roots == (ROOT, NEXT_ROOT)
        assert {s.name for s in follower.subscriptions()} == {PUBLISHER.key_id, MAINTAINER.key_id}
    assert config.state_path is not None and config.state_path.is_file()


def test_a_subscription_needs_a_root_or_a_key(config: FollowConfig) -> None:
    with Follower(config, connect=never) as follower:
        with pytest.raises(SubscriptionError, match="needs a trust root") as error:
            follower.subscribe(PUBLISHER.key_id)
        assert error.value.hint is not None and "--root-key" in error.value.hint


def test_syncing_nothing_fails_before_connecting(config: FollowConfig) -> None:
    with Follower(config, connect=never) as follower:
        with pytest.raises(SubscriptionError, match="no subscriptions"):
            follower.sync_all()


def test_unsubscribe_keeping_pins_needs_no_network(config: FollowConfig) -> None:
    with Follower(config, connect=never) as follower:
        follower.subscribe(PUBLISHER.key_id, root=ROOT)
        done = follower.unsubscribe(PUBLISHER.key_id, keep_pins=True)
        assert done.to_json() == {
            "name": PUBLISHER.key_id,
            "removed": True,
            "released": 0,
            "kept_pins": True,
            "kubo_skipped": False,
        }
        assert follower.subscriptions() == []


def test_unsubscribe_without_kubo_or_block_file_says_how_to_go_on(config: FollowConfig) -> None:
    with Follower(config, connect=unavailable) as follower:
        follower.subscribe(PUBLISHER.key_id, root=ROOT)
        with pytest.raises(KuboUnavailableError, match="cannot unpin the blocks") as error:
            follower.unsubscribe(PUBLISHER.key_id)
        assert error.value.hint is not None and "--keep-pins" in error.value.hint
        assert [s.name for s in follower.subscriptions()] == [PUBLISHER.key_id]


def test_unsubscribe_of_a_daemonless_follower_cleans_the_block_file(config: FollowConfig) -> None:
    assert config.block_path is not None
    SqliteBlockStore(config.block_path).close()
    with Follower(config, connect=unavailable) as follower:
        follower.subscribe(PUBLISHER.key_id, root=ROOT)
        done = follower.unsubscribe(PUBLISHER.key_id)
    assert done.kubo_skipped and not done.kept_pins and done.released == ()
