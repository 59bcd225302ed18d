"""The most-requested policy: ranking, ties, failed searches (schema/mirror.md's examples)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ipfsbin.cluster.pinsvc import ServicePin
from ipfsbin.mirror.engine import delegate_peers
from ipfsbin.mirror.service import MirrorRound
from ipfsbin.mirror.vote import Vote, most_requested, rank

DOC = (Path(__file__).parents[3] / "schema/mirror.md").read_text()


def _examples() -> list[Any]:
    return [json.loads(block.split("```", 1)[0]) for block in DOC.split("```json\n")[1:]]


def _votes(data: list[dict[str, Any]]) -> list[Vote]:
    return [Vote(v["key"], v["providers"]) for v in data]


def test_the_worked_example_ranks_and_keeps_as_the_schema_says() -> None:
    given, answer, with_failure, _ = _examples()
    votes = _votes(given["votes"])
    top, kept = most_requested(votes, given["n"], given["pinned"])
    assert [v.to_json() for v in top] == answer["top"]
    assert sorted(kept) == answer["kept"]

    failed = [Vote(v.key, None) if "/d/" in v.key else v for v in votes]
    top, kept = most_requested(failed, given["n"], given["pinned"])
    assert [v.to_json() for v in top] == with_failure["top"]
    assert sorted(kept) == with_failure["kept"]


def test_the_round_example_has_the_round_fields() -> None:
    *_, report = _examples()
    fields = MirrorRound(name="k", outcome="accepted", height=1, most_requested=()).to_json()
    assert set(report) == set(fields)
    assert MirrorRound(name="k", outcome="current", height=1).to_json()["most_requested"] is None


def test_ties_break_by_key_whatever_the_order_votes_arrive_in() -> None:
    votes = [Vote(f"p/app-misc/x{i}/1/d", 2) for i in (3, 1, 2)] + [Vote("p/a/b/1/d", 5)]
    expected = ["p/a/b/1/d", "p/app-misc/x1/1/d", "p/app-misc/x2/1/d", "p/app-misc/x3/1/d"]
    assert [v.key for v in rank(votes)] == expected
    assert [v.key for v in rank(list(reversed(votes)))] == expected


def test_a_failed_search_ranks_as_no_providers_and_never_unpins() -> None:
    votes = [Vote("k/a/a/1/d", None), Vote("k/a/b/1/d", 0), Vote("k/a/c/1/d", 1)]
    assert [v.key for v in rank(votes)] == ["k/a/c/1/d", "k/a/a/1/d", "k/a/b/1/d"]
    top, kept = most_requested(votes, 1, pinned=["k/a/b/1/d", "k/a/gone/1/d"])
    assert [v.key for v in top] == ["k/a/c/1/d"]
    # b keeps its pin while a search failed; a key no longer in the index is not revived
    assert kept == {"k/a/c/1/d", "k/a/b/1/d"}
    top, kept = most_requested([v for v in votes if v.providers is not None], 1, ["k/a/b/1/d"])
    assert kept == {"k/a/c/1/d"}


def test_more_wanted_than_exist_keeps_them_all_and_n_must_be_positive() -> None:
    votes = [Vote("k/a/a/1/d", 0)]
    assert most_requested(votes, 5, [])[1] == {"k/a/a/1/d"}
    with pytest.raises(ValueError, match="at least 1"):
        most_requested(votes, 0, [])


def test_a_pinning_services_delegates_name_its_nodes() -> None:
    peer = "12D3KooWGzBpM8Hx5Bb9fPZCkEmAcNQYKcnbnTDMjdpZwLHHRsfj"
    pin = ServicePin.from_json(
        {
            "requestid": "r1",
            "status": "pinned",
            "created": "2026-12-02T18:00:00Z",
            "pin": {"cid": "bafkqaaa", "name": "ipfsbin:mirror:k:index"},
            "delegates": [f"/ip4/10.0.0.1/tcp/4001/p2p/{peer}", "/dns4/pins.example/tcp/4001"],
        }
    )
    assert delegate_peers(pin.delegates) == {peer}
    assert ServicePin.from_json({**_NO_DELEGATES}).delegates == ()


_NO_DELEGATES = {"requestid": "r", "status": "queued", "pin": {"cid": "bafkqaaa"}}
