"""What a mirror wants pinned for one index head, and what it changes."""

from __future__ import annotations

from ipfsbin.codec.cid import CID, DAG_CBOR, RAW, cid_for
from ipfsbin.index import ProllyTree
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.keys import index_key
from ipfsbin.mirror.plan import (
    MirrorPolicy,
    WantedPin,
    changes,
    index_pin_prefix,
    kept_entries,
    raw_alias,
    wanted_pins,
)
from ipfsbin.store.memory import MemoryBlockStore
from tests.unit.maintainer.maintainer_helpers import BUILDER_X, PLATFORM, publish

NAME = "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8"


def _index() -> tuple[MemoryBlockStore, CID, dict[str, IndexEntry]]:
    store = MemoryBlockStore()
    entries: dict[str, IndexEntry] = {}
    for cpv in ("app-misc/a-1", "app-misc/b-1", "dev-libs/c-1"):
        published = publish(store, cpv, cpv.encode() * 10, BUILDER_X)
        assert published.attestation is not None
        key = index_key(PLATFORM.cid, cpv, published.descriptor.cid)
        entries[key] = IndexEntry.new(published.manifest_cid, [published.attestation.cid])
    b_key = next(k for k in entries if "/b/" in k)
    entries[b_key] = entries[b_key].yanked("broken")
    root = ProllyTree(store).build((k, e.to_dag()) for k, e in sorted(entries.items()))
    return store, root, entries


def test_the_index_blocks_as_raw_leaves_and_each_kept_package() -> None:
    store, root, entries = _index()
    held = [root, cid_for(DAG_CBOR, b"\xa0")]
    kept = kept_entries(root, store, MirrorPolicy())
    wanted = wanted_pins(NAME, held=held, entries=kept)
    index_pins = {c for c, p in wanted.items() if p.name == f"ipfsbin:mirror:{NAME}:index"}
    assert index_pins == {raw_alias(c) for c in held}
    assert {(c.codec, c.multihash) for c in index_pins} == {(RAW, h.multihash) for h in held}
    assert kept == sorted((k, e) for k, e in entries.items() if e.state == "ok")
    for key, entry in kept:
        for cid in (entry.manifest, *entry.attestations):
            assert wanted[cid] == WantedPin(cid, f"ipfsbin:mirror:{NAME}:package:{key}")
    yanked = next(e for e in entries.values() if e.state == "yanked")
    assert yanked.manifest not in wanted
    assert len(wanted) == len(held) + 2 * len(kept)


def test_a_category_filter_keeps_only_its_packages() -> None:
    store, root, entries = _index()
    policy = MirrorPolicy(categories=frozenset({"dev-libs"}))
    wanted = wanted_pins(NAME, held=[], entries=kept_entries(root, store, policy))
    assert {p.name.rsplit(":", 1)[1].split("/")[1] for p in wanted.values()} == {"dev-libs"}


def test_changes_pin_the_missing_and_unpin_only_our_leftovers() -> None:
    prefix = index_pin_prefix(NAME)
    a, b, c, other = (str(cid_for(RAW, bytes([i]))) for i in range(4))
    wanted = {a: WantedPin(CID.from_text(a), prefix + "index"), b: WantedPin(CID.from_text(b), "x")}
    pinned = {b: prefix + "index", c: prefix + "package:k", other: "someone else's"}
    to_pin, to_unpin = changes(wanted, pinned, prefix)
    assert to_pin == [wanted[a]] and to_unpin == [c]
