"""The survey of an index's platforms: the scope of a host-scoped replica."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ipfsbin.codec.cid import CID
from ipfsbin.errors import SchemaError
from ipfsbin.index import IndexEntry, ProllyTree
from ipfsbin.index.keys import index_key, platform_id
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.subscribe.state import SubscriptionStore
from ipfsbin.subscribe.survey import survey_scope
from tests.unit.maintainer.maintainer_helpers import PLATFORM, descriptor, make_manifest
from tests.unit.subscribe.survey_helpers import FITTING, REFUSED, PlatformIndex, fits

NAME = "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8"


class Counting:
    """The index's store, counting reads."""

    def __init__(self, store: MemoryBlockStore) -> None:
        self.store = store
        self.read: list[CID] = []

    def get(self, cid: CID) -> bytes:
        self.read.append(cid)
        return self.store.get(cid)

    def put(self, data: bytes, codec: int = 0x71) -> CID:
        return self.store.put(data, codec)

    def put_many(self, blocks: object) -> None:
        raise AssertionError("the survey writes nothing")

    def has(self, cid: CID) -> bool:
        return self.store.has(cid)


@pytest.fixture
def state(tmp_path: Path) -> SubscriptionStore:
    return SubscriptionStore(tmp_path / "state.sqlite")


def test_survey_keeps_the_fitting_platforms_and_opens_only_their_boundaries(
    state: SubscriptionStore,
) -> None:
    index = PlatformIndex([*FITTING, *REFUSED.values()], 8_000)
    counting = Counting(index.store)
    survey = survey_scope(state, NAME, counting, index.root, fits)
    assert survey.scope.prefixes == tuple(sorted(f"{platform_id(p.cid)}/" for p in FITTING))
    assert (survey.platforms, survey.kept) == (6, 2)
    assert survey.refused == {"chost": 1, "isa": 1, "compiler": 1, "libc": 1}
    assert survey.resolved == 6  # entry -> manifest -> descriptor -> platform, once each
    nodes = ProllyTree(index.store).stats(index.root).blocks
    # about two nodes per platform boundary plus the root, not the index
    assert survey.opened <= 2 * survey.platforms + 1 < nodes / 20
    assert len(counting.read) == survey.opened + 3 * survey.resolved

    # the next sync of the same index opens the root only: everything else was surveyed
    again = Counting(index.store)
    assert survey_scope(state, NAME, again, index.root, fits).scope == survey.scope
    assert again.read == [index.root]
    summary = state.survey(NAME)
    assert summary is not None and summary["kept"] == 2 and summary["resolved"] == 0


def test_update_elsewhere_opens_little_and_a_new_platform_is_read_once(
    state: SubscriptionStore,
) -> None:
    index = PlatformIndex([*FITTING, *REFUSED.values()], 8_000)
    survey_scope(state, NAME, index.store, index.root, fits)
    changed = {index.add(REFUSED["chost"], f"app-misc/new{i}-1.0"): None for i in range(50)}
    root = index.tree.mutate(index.root, {k: index.items[k] for k in changed})
    counting = Counting(index.store)
    survey = survey_scope(state, NAME, counting, root, fits)
    assert survey.resolved == 0 and survey.kept == 2
    assert len(counting.read) <= 4  # the root and the new nodes on platform boundaries

    newcomer = dataclasses.replace(PLATFORM, profile="default/linux/amd64/23.0/desktop")
    index.store.put(newcomer.block[1])
    key = index.add(newcomer, "app-misc/fresh-1.0")
    root = index.tree.mutate(root, {key: index.items[key]})
    survey = survey_scope(state, NAME, index.store, root, fits)
    assert survey.resolved == 1 and survey.kept == 3
    assert survey.scope.holds(key)


def test_an_entry_linking_another_platform_is_refused(state: SubscriptionStore) -> None:
    index = PlatformIndex(FITTING, 100)
    other = REFUSED["chost"]
    index.store.put(other.block[1])
    desc = dataclasses.replace(descriptor("dev-libs/liar-1.0"), platform=other.cid)
    index.store.put(desc.block[1])
    manifest = index.store.put(make_manifest(desc, b"x").to_block()[1])
    # filed under the fitting platform's id while its descriptor names another platform
    key = index_key(PLATFORM.cid, "dev-libs/liar-1.0", desc.cid)
    root = ProllyTree(index.store).build([(key, IndexEntry.new(manifest).to_dag())])
    with pytest.raises(SchemaError, match="links the platform"):
        survey_scope(state, NAME, index.store, root, fits)
