"""Pulling builder feeds into an index over a memory store: each policy decides as configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from maintainer_helpers import BUILDER_X, BUILDER_Y, STRANGER, T0, MemoryIndex, descriptor, publish

from ipfsbin.builder.feed import Feed
from ipfsbin.errors import ConfigError
from ipfsbin.kubo.pins import NoPins
from ipfsbin.maintainer.pull import PullPolicy, PullResult, pull
from ipfsbin.trust.feed import FeedUpdate, verify_feed
from ipfsbin.trust.keys import SigningKey

CPV = "app-misc/hello-1"


class Builders(MemoryIndex):
    """An index with builders X and Y in its root; every builder has a feed in the same store."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(BUILDER_X)
        self.tmp_path = tmp_path
        self.desc = descriptor(CPV)

    def build(self, builder: SigningKey, data: bytes, cpv: str = CPV) -> None:
        """``builder`` builds ``cpv`` (the shared descriptor for CPV) and appends to its feed."""
        self.files.add(data)
        desc = self.desc if cpv == CPV else descriptor(cpv)
        published = publish(self.store, cpv, data, builder, desc=desc)
        assert published.attestation is not None
        path = self.tmp_path / f"{builder.key_id}.sqlite"
        with Feed(builder, self.store, NoPins(), path) as feed:
            feed.append([published.attestation.cid], now=T0)

    def update(self, builder: SigningKey) -> FeedUpdate:
        with Feed(builder, self.store, NoPins(), self.tmp_path / f"{builder.key_id}.sqlite") as f:
            head = f.head()
        assert head is not None
        return verify_feed(self.store, builder.key_id, head.envelope, since=None, now=T0)

    def pull(self, *builders: SigningKey, **policy: object) -> PullResult:
        updates = [self.update(b) for b in builders]
        return pull(self.ws, self.store, self.files.read, updates, PullPolicy(**policy))  # type: ignore[arg-type]


def _verdicts(result: PullResult) -> list[str]:
    return [item.verdict for item in result.challenge.items]


def test_agreeing_builders_are_merged_and_identical(tmp_path: Path) -> None:
    s = Builders(tmp_path)
    s.build(BUILDER_X, b"the same bytes")
    s.build(BUILDER_Y, b"the same bytes")
    result = s.pull(BUILDER_X, BUILDER_Y, min_builders=2)
    (decision,) = result.decisions
    assert decision.action == "merged"
    assert _verdicts(result) == ["identical"]
    assert result.exit_code == 0
    (staged,) = s.ws.staged()
    assert len(staged.entry.attestations) == 2


def test_too_few_builders_stay_pending(tmp_path: Path) -> None:
    s = Builders(tmp_path)
    s.build(BUILDER_X, b"the same bytes")
    result = s.pull(BUILDER_X, min_builders=2)
    assert [d.action for d in result.decisions] == ["pending"]
    assert "1 of 2" in result.decisions[0].reason
    assert _verdicts(result) == ["inconclusive"]
    assert s.ws.staged() == []


def _disagree(tmp_path: Path) -> Builders:
    s = Builders(tmp_path)
    s.build(BUILDER_X, b"build of x")
    s.build(BUILDER_Y, b"build of y, different")
    return s


def test_keep_both_merges_every_attestation_and_reports_the_difference(tmp_path: Path) -> None:
    s = _disagree(tmp_path)
    result = s.pull(BUILDER_X, BUILDER_Y, on_disagreement="keep-both")
    (decision,) = result.decisions
    assert decision.action == "merged"
    assert "builders disagree" in decision.reason
    assert _verdicts(result) == ["differing"]
    assert result.exit_code == 2
    (staged,) = s.ws.staged()
    assert staged.entry.state == "ok"
    assert len(staged.entry.attestations) == 2


def test_majority_keeps_the_larger_group_only(tmp_path: Path) -> None:
    s = _disagree(tmp_path)
    s.build(STRANGER, b"build of x")
    allowed = (BUILDER_X.key_id, BUILDER_Y.key_id, STRANGER.key_id)
    result = s.pull(BUILDER_X, BUILDER_Y, STRANGER, builders=allowed, on_disagreement="majority")
    (decision,) = result.decisions
    assert decision.action == "merged"
    (staged,) = s.ws.staged()
    x_and_stranger = {s.update(BUILDER_X).added[0].attestation.cid}
    x_and_stranger.add(s.update(STRANGER).added[0].attestation.cid)
    assert set(staged.entry.attestations) == x_and_stranger
    assert result.exit_code == 2


def test_majority_without_a_majority_stays_pending(tmp_path: Path) -> None:
    s = _disagree(tmp_path)
    result = s.pull(BUILDER_X, BUILDER_Y, on_disagreement="majority")
    assert [d.action for d in result.decisions] == ["pending"]
    assert "no majority" in result.decisions[0].reason
    assert s.ws.staged() == []


def test_yank_and_flag_stages_a_yanked_entry_naming_the_builders(tmp_path: Path) -> None:
    s = _disagree(tmp_path)
    result = s.pull(BUILDER_X, BUILDER_Y, on_disagreement="yank-and-flag")
    assert [d.action for d in result.decisions] == ["yanked"]
    (staged,) = s.ws.staged()
    assert staged.entry.state == "yanked"
    assert staged.entry.reason is not None
    assert BUILDER_X.key_id in staged.entry.reason and BUILDER_Y.key_id in staged.entry.reason


def test_builders_the_policy_does_not_allow_do_not_count(tmp_path: Path) -> None:
    s = _disagree(tmp_path)
    result = s.pull(BUILDER_X, BUILDER_Y, builders=(BUILDER_X.key_id,))
    assert _verdicts(result) == ["inconclusive"]
    assert BUILDER_Y.key_id in result.challenge.items[0].note
    assert [d.action for d in result.decisions] == ["merged"]


def test_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "pull.toml"
    path.write_text(
        f'builders = ["{BUILDER_X.key_id}"]\nmin_builders = 2\non_disagreement = "majority"\n'
    )
    policy = PullPolicy.from_file(path)
    assert policy == PullPolicy(
        builders=(BUILDER_X.key_id,), min_builders=2, on_disagreement="majority"
    )
    path.write_text('on_disagreement = "coin-toss"\n')
    with pytest.raises(ConfigError, match="coin-toss"):
        PullPolicy.from_file(path)
    path.write_text("min_builder = 2\n")
    with pytest.raises(ConfigError, match="unknown keys min_builder"):
        PullPolicy.from_file(path)
    path.write_text("min_builders = 0\n")
    with pytest.raises(ConfigError, match="min_builders"):
        PullPolicy.from_file(path)


def test_the_policy_example_of_the_spec(tmp_path: Path) -> None:
    spec = (Path(__file__).resolve().parents[3] / "schema" / "maintainer.md").read_text()
    example = spec.split("### The policy file", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "pull.toml"
    path.write_text(example)
    policy = PullPolicy.from_file(path)
    assert policy.min_builders == 2 and policy.on_disagreement == "majority"
    assert policy.builders is not None and len(policy.builders) == 1
