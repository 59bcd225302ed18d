"""Freeze attacks: an IPNS record kept pointing at the accepted head after it expired."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from subscribe_helpers import DAY, T0, MemoryFollower, Publisher

from ipfsbin.trust.state import RootPin

WEEK = 7 * DAY


@pytest.fixture
def world(tmp_path: Path) -> Iterator[MemoryFollower]:
    pub = Publisher(50)
    w = MemoryFollower(tmp_path / "subs.sqlite", pub, RootPin(cid=pub.root.root_id), pub.root.cid)
    assert w.sync(at=T0 + 60).outcome == "accepted"
    yield w
    w.state.close()


def test_an_unchanged_head_is_checked_for_expiry_on_every_sync(world: MemoryFollower) -> None:
    assert world.sync(at=T0 + DAY).outcome == "current"
    # the commit lived 7 days; the record still points at it, freshly signed
    result = world.sync(at=T0 + WEEK + 1)
    assert result.outcome == "refused", result
    assert result.error is not None and result.error.startswith("ExpiredError:")
    assert "head commit expired at 2026-01-08T00:00:00Z" in result.error
    assert result.hint is not None and "freeze attack" in result.hint
    sub = world.state.get(world.pub.name)
    assert sub.error == result.error and sub.height == 1  # reported, head kept as it was
    assert not sub.freshness(now=T0 + WEEK + 1).usable
    assert sub.freshness(now=T0 + WEEK + 1, allow_stale=True).state == "stale-allowed"


def test_allow_stale_keeps_an_expired_head_in_use_and_says_so(world: MemoryFollower) -> None:
    result = world.sync(at=T0 + WEEK + 1, allow_stale=True)
    assert result.outcome == "current"
    assert any("head commit expired" in w for w in result.warnings)


def test_a_head_about_to_expire_is_warned_about(world: MemoryFollower) -> None:
    result = world.sync(at=T0 + WEEK - DAY)
    assert result.outcome == "current"
    assert result.warnings == ("head commit expires at 2026-01-08T00:00:00Z (in 1 day)",)


def test_the_state_keeps_the_expiry_of_head_and_root(world: MemoryFollower) -> None:
    sub = world.state.get(world.pub.name)
    assert sub.head_expires == world.pub.head.commit.expires == T0 + WEEK
    assert sub.root_expires == world.pub.root.root.expires
    fresh = sub.freshness(now=T0 + DAY)
    assert fresh.state == "fresh" and fresh.seconds_left == 6 * DAY
    assert sub.to_json()["head_expires"] == T0 + WEEK
