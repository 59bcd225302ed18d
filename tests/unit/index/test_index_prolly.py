"""The prolly tree against a dict: same set, same root; reads and writes stay local."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ipfsbin.index as index_api
from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR, cid_for
from ipfsbin.errors import BlockNotFoundError, IndexOperationError
from ipfsbin.index import ChunkParams, ProllyTree, build, diff, empty_root
from ipfsbin.index._node import Node, boundary_zeros, decode_node, encode_node
from ipfsbin.store.memory import MemoryBlockStore

# Small nodes so that a few dozen keys already make several levels and the
# size rule fires; the default parameters are exercised with bigger trees.
# Leaves and internal nodes get different thresholds, either way round, so a
# mix-up of the two shows.
SMALL = ChunkParams(leaf_bits=1, branch_bits=2, min_entries=2, max_node_bytes=160)
WIDE_LEAVES = ChunkParams(leaf_bits=2, branch_bits=1, min_entries=2, max_node_bytes=160)

keys = st.text(alphabet="abcdefgh/", min_size=0, max_size=6)
values = st.one_of(st.integers(-5, 5), st.text(max_size=40), st.none(), st.booleans())
ops = st.lists(
    st.tuples(st.dictionaries(keys, values, max_size=25), st.lists(keys, max_size=10)),
    min_size=1,
    max_size=6,
)


def check_shape(tree: ProllyTree, root: CID) -> None:
    """The tree's node ends follow the boundary rule of index.md, level by level."""
    params = tree.params
    level_nodes = [tree.load(root)]
    while True:
        level = level_nodes[0].level
        threshold = params.threshold(level)
        for position, node in enumerate(level_nodes):
            sizes = [len(dagcbor.encode(e)) for e in entries_of(node)]
            for index, key in enumerate(node.keys):
                held = index + 1
                boundary = held >= params.min_entries and (
                    boundary_zeros(key.encode()) >= threshold
                )
                full = sum(sizes[:held]) >= params.max_node_bytes
                if index < len(node.keys) - 1:
                    assert not boundary and not full, (level, key)
                elif position < len(level_nodes) - 1:
                    assert boundary or full, (level, key)
        if level == 0:
            return
        level_nodes = [tree.child(n, i) for n in level_nodes for i in range(len(n.keys))]


def entries_of(node: Node) -> list[list[Any]]:
    if node.level == 0:
        return [[k, v] for k, v in zip(node.keys, node.values, strict=True)]
    return [list(e) for e in zip(node.keys, node.children, node.counts, strict=True)]


def model_diff(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if key not in old or key not in new or dagcbor.encode(a) != dagcbor.encode(b):
            out.append((key, a, b))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=ops,
    cache=st.sampled_from([0, 3, 256]),
    params=st.sampled_from([SMALL, WIDE_LEAVES]),
)
def test_mutations_match_a_dict_and_a_fresh_build(
    ops: list[tuple[dict[str, Any], list[str]]], cache: int, params: ChunkParams
) -> None:
    store = MemoryBlockStore()
    tree = ProllyTree(store, params=params, cache_size=cache)
    model: dict[str, Any] = {}
    root = tree.empty()
    for upserts, deletes in ops:
        deletes = [k for k in deletes if k not in upserts]
        before, old_root = dict(model), root
        root = tree.mutate(root, upserts, deletes)
        for key in deletes:
            model.pop(key, None)
        model.update(upserts)
        assert root == tree.build(sorted(model.items()))
        check_shape(tree, root)
        assert list(tree.items(root)) == sorted(model.items())
        assert tree.count(root) == len(model)
        for key in list(upserts)[:5] + deletes[:5]:
            assert tree.get(root, key, "absent") == model.get(key, "absent")
        for prefix in ("", "a", "b/", "ab"):
            expected = sorted((k, v) for k, v in model.items() if k.startswith(prefix))
            assert list(tree.scan(root, prefix)) == expected
        changes = [tuple(c) for c in diff(tree, old_root, root)]
        assert changes == model_diff(before, model)
        assert [tuple(c) for c in diff(tree, root, old_root)] == model_diff(model, before)


@settings(max_examples=60, deadline=None)
@given(
    entries=st.dictionaries(keys, st.integers(0, 9), max_size=60),
    seed=st.integers(0, 999),
    params=st.sampled_from([SMALL, WIDE_LEAVES]),
)
def test_same_set_same_root_whatever_the_history(
    entries: dict[str, int], seed: int, params: ChunkParams
) -> None:
    store = MemoryBlockStore()
    tree = ProllyTree(store, params=params)
    fresh = tree.build(sorted(entries.items()))
    rng = random.Random(seed)
    order = list(entries.items())
    rng.shuffle(order)
    root = tree.empty()
    # One at a time in random order, with detours through extra keys.
    for key, value in order:
        root = tree.mutate(root, {key: value, key + "~extra": 1})
        root = tree.mutate(root, {}, [key + "~extra"])
    assert root == fresh
    batched = tree.mutate(tree.empty(), dict(order))
    assert batched == fresh


def entry_value(number: int) -> dict[str, Any]:
    manifest = cid_for(DAG_CBOR, number.to_bytes(4, "big"))
    return {"manifest": manifest, "attestations": [], "state": "ok"}


@pytest.fixture(scope="module")
def big() -> tuple[MemoryBlockStore, Any, dict[str, Any]]:
    store = MemoryBlockStore()
    model = {
        f"plat{n % 3}/cat-{n % 17}/pkg{n}/1.{n % 5}/d{n:06d}": entry_value(n) for n in range(30000)
    }
    root = build(store, sorted(model.items()))
    return store, root, model


def test_default_parameters_give_narrow_leaves_and_wide_branches(big: Any) -> None:
    store, root, model = big
    tree = ProllyTree(store)
    stats = tree.stats(root)
    assert stats.count == len(model)
    assert stats.bytes == store.total_bytes()
    # ~19 entries a leaf (16 on average between boundaries, plus the 4-entry
    # floor), ~260 leaves a level-1 node: 30000 entries fit in 3 levels.
    assert stats.depth == 3
    assert 30000 / 25 < stats.blocks < 30000 / 14
    top = tree.load(root)
    level_one = [tree.child(top, i) for i in range(len(top.keys))]
    assert 2 <= len(level_one) <= 30000 / 19 / 64
    check_shape(tree, root)


def test_cold_lookup_reads_one_block_per_level(big: Any) -> None:
    store, root, model = big
    key = sorted(model)[12345]
    tree = ProllyTree(store)
    before = store.gets
    assert tree.get(root, key) == model[key]
    assert store.gets - before == 3
    assert tree.get(root, key + "x") is None
    assert store.gets - before == 3  # the path is cached


def test_scan_reads_only_the_nodes_holding_the_prefix(big: Any) -> None:
    store, root, model = big
    tree = ProllyTree(store)
    prefix = "plat1/cat-4/"
    before = store.gets
    found = list(tree.scan(root, prefix))
    assert found == sorted((k, v) for k, v in model.items() if k.startswith(prefix))
    # ~590 entries of 30000 sit in ~31 leaves; a scan reads those, their
    # parents (1 or 2 level-1 nodes, the root) and the leaf after them.
    assert store.gets - before <= 4 + len(found) // 15


def test_batch_update_writes_only_the_changed_paths(big: Any) -> None:
    store, root, model = big
    tree = ProllyTree(store)
    rng = random.Random(7)
    changed = rng.sample(sorted(model), 10)
    upserts = {key: entry_value(99) for key in changed}
    upserts["plat1/zzz/new/1/d"] = entry_value(5)
    before = store.puts
    new_root = tree.mutate(root, upserts, [sorted(model)[100]])
    written = store.puts - before
    assert written <= 12 * 3
    fresh_model = dict(model)
    fresh_model.update(upserts)
    del fresh_model[sorted(model)[100]]
    assert new_root == build(MemoryBlockStore(), sorted(fresh_model.items()))

    cold = ProllyTree(store)
    before_reads = store.gets
    changes = list(diff(cold, root, new_root))
    assert [c.key for c in changes] == sorted(set(upserts) | {sorted(model)[100]})
    # Each change is on one path of 3 nodes in each tree; shared subtrees are skipped.
    assert store.gets - before_reads <= 2 * 3 * len(changes)


def test_diff_of_one_change_reads_one_path_per_tree(big: Any) -> None:
    store, root, model = big
    key = sorted(model)[20000]
    tree = ProllyTree(store)
    new_root = tree.mutate(root, {key: 1})
    cold = ProllyTree(store)
    before = store.gets
    assert list(diff(cold, root, new_root)) == [(key, model[key], 1)]
    assert store.gets - before == 6
    before = store.gets
    assert list(diff(cold, root, root)) == []
    assert store.gets == before


def test_node_encoding_is_the_codec_encoding() -> None:
    entries = [["a", {"x": [1, 2]}], ["b", None]] + [[f"k{i:03d}", i] for i in range(300)]
    data = encode_node(0, [dagcbor.encode(e) for e in entries])
    assert data == dagcbor.encode({"type": "ipfsbin/index-node/1", "level": 0, "entries": entries})
    node = decode_node(cid_for(DAG_CBOR, data), data)
    assert node.keys[:2] == ["a", "b"] and node.count == 302


def test_the_size_rule_keeps_nodes_under_the_budget() -> None:
    # Keys that are never boundaries at level 0 under min_entries=10**6 would
    # make one node; the size rule cuts it.
    params = ChunkParams(min_entries=10**6, max_node_bytes=4096)
    store = MemoryBlockStore()
    tree = ProllyTree(store, params=params)
    root = tree.build((f"k{i:05d}", "v" * 100) for i in range(2000))
    stats = tree.stats(root)
    assert stats.count == 2000
    for cid in store:
        assert len(store.get(cid)) < 2 * 4096 + 64
    assert stats.blocks > 2000 * 100 / 4096


def test_an_entry_larger_than_a_node_is_refused() -> None:
    tree = ProllyTree(MemoryBlockStore(), params=ChunkParams(max_node_bytes=1024))
    with pytest.raises(IndexOperationError, match="at most 1024 fit in a node"):
        tree.build([("a", "x" * 2000)])
    with pytest.raises(IndexOperationError, match="longer than the 4096 allowed"):
        tree.build([("a" * 5000, 1)])


def test_bad_input_is_refused() -> None:
    store = MemoryBlockStore()
    tree = ProllyTree(store)
    with pytest.raises(ValueError, match="sorted by key without repeats"):
        tree.build([("b", 1), ("a", 2)])
    with pytest.raises(ValueError, match="sorted by key without repeats"):
        tree.build([("a", 1), ("a", 2)])
    with pytest.raises(TypeError, match="keys are strings"):
        tree.mutate(tree.empty(), {b"a": 1})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="both upserted and deleted"):
        tree.mutate(tree.empty(), {"a": 1}, ["a"])
    with pytest.raises(BlockNotFoundError):
        tree.get(cid_for(DAG_CBOR, b"\xa0"), "a")


def test_chunk_params_are_checked() -> None:
    with pytest.raises(ValueError, match="leaf_bits must be within 1..16, got 0"):
        ChunkParams(leaf_bits=0)
    with pytest.raises(ValueError, match="branch_bits must be within 1..16, got 17"):
        ChunkParams(branch_bits=17)
    with pytest.raises(ValueError, match="min_entries must be at least 1"):
        ChunkParams(min_entries=0)
    params = ChunkParams()
    assert [params.threshold(level) for level in range(4)] == [4, 12, 20, 28]


def test_the_empty_tree() -> None:
    store = MemoryBlockStore()
    tree = ProllyTree(store)
    root = empty_root(store)
    assert tree.build([]) == root
    assert list(tree.items(root)) == []
    assert tree.get(root, "a") is None
    assert tree.stats(root).count == 0 and tree.stats(root).depth == 1
    full = tree.mutate(root, {f"k{i}": i for i in range(500)})
    assert tree.mutate(full, {}, [f"k{i}" for i in range(500)]) == root
    assert tree.mutate(root, {}, ["absent"]) == root


def test_public_names() -> None:
    assert set(index_api.__all__) == {
        "DEFAULT_PARAMS",
        "NODE_TYPE",
        "Change",
        "ChunkParams",
        "IndexEntry",
        "IndexKey",
        "ProllyTree",
        "TreeStats",
        "build",
        "descriptor_digest",
        "diff",
        "empty_root",
        "index_key",
        "package_prefix",
        "parse_index_key",
        "platform_id",
        "platform_prefix",
        "short_id",
    }
