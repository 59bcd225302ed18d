"""The freshness of an accepted head: the freeze-attack check a reader makes without network."""

from __future__ import annotations

import pytest

from ipfsbin.errors import ExpiredError
from ipfsbin.trust.freshness import (
    COMMIT_WARNING,
    ROOT_WARNING,
    check_freshness,
    describe_span,
)

NOW = 1767225600  # 2026-01-01T00:00:00Z
DAY = 86400


def test_fresh_head() -> None:
    fresh = check_freshness(head_expires=NOW + 7 * DAY, root_expires=NOW + 365 * DAY, now=NOW)
    assert fresh.state == "fresh" and fresh.usable and fresh.warning() is None
    assert fresh.expires == NOW + 7 * DAY and fresh.seconds_left == 7 * DAY
    fresh.verify("head of k51…")


def test_a_commit_about_to_expire_warns_well_before() -> None:
    soon = check_freshness(head_expires=NOW + COMMIT_WARNING, root_expires=NOW + 365 * DAY, now=NOW)
    assert soon.state == "expiring" and soon.usable
    assert soon.warning() == "head commit expires at 2026-01-03T00:00:00Z (in 2 days)"


def test_a_root_about_to_expire_warns_a_month_before() -> None:
    soon = check_freshness(head_expires=NOW + 7 * DAY, root_expires=NOW + ROOT_WARNING, now=NOW)
    assert soon.state == "expiring"
    assert soon.warning() == "trust root expires at 2026-01-31T00:00:00Z (in 30 days)"


def test_an_expired_head_is_refused() -> None:
    stale = check_freshness(head_expires=NOW - 3600 - 60, root_expires=NOW + 365 * DAY, now=NOW)
    assert stale.state == "expired" and not stale.usable
    with pytest.raises(ExpiredError) as caught:
        stale.verify("head of k51…")
    assert caught.value.message == (
        "head of k51…: head commit expired at 2025-12-31T22:59:00Z (1 hour 1 minute ago); "
        "now is 2026-01-01T00:00:00Z"
    )
    assert caught.value.hint is not None and "freeze attack" in caught.value.hint


def test_an_expired_root_expires_the_head_too() -> None:
    stale = check_freshness(head_expires=NOW + DAY, root_expires=NOW, now=NOW)
    assert stale.state == "expired" and stale.expires == NOW
    assert "trust root expired at 2026-01-01T00:00:00Z" in (stale.warning() or "")


def test_allow_stale_is_said_out_loud() -> None:
    stale = check_freshness(
        head_expires=NOW - DAY, root_expires=NOW + DAY, now=NOW, allow_stale=True
    )
    assert stale.state == "stale-allowed" and stale.usable
    stale.verify("head")
    assert (stale.warning() or "").endswith("(allow_stale is on: still used)")
    assert stale.to_json()["state"] == "stale-allowed"


def test_times_are_integers() -> None:
    with pytest.raises(TypeError, match="head_expires must be an int"):
        check_freshness(head_expires=1.5, root_expires=1, now=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (59, "59 seconds"),
        (61, "1 minute 1 second"),
        (3600, "1 hour"),
        (3 * DAY + 4 * 3600 + 5, "3 days 4 hours"),
        (DAY + 59, "1 day"),
    ],
)
def test_describe_span(seconds: int, text: str) -> None:
    assert describe_span(seconds) == text
