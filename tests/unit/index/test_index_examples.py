"""The worked examples of schema/index.md, checked against the code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from index_golden import EXAMPLES, TREES, generate, to_dag_json, tree_entries

import ipfsbin.errors
from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.index import IndexEntry, ProllyTree, index_key, parse_index_key
from ipfsbin.index._node import DEFAULT_PARAMS, boundary_zeros, decode_node, key_rank
from ipfsbin.store.memory import MemoryBlockStore

FILES = sorted(EXAMPLES.glob("*.json"))


def load(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())


def test_the_files_are_what_the_generator_makes() -> None:
    made = generate()
    assert sorted(p.name for p in FILES) == sorted(made)
    for name, content in made.items():
        assert load(name) == json.loads(json.dumps(content)), name


@pytest.mark.parametrize(
    "path", [p for p in FILES if "block" in load(p.name)], ids=lambda p: p.name
)
def test_blocks_match_their_cid_and_value(path: Path) -> None:
    example = load(path.name)
    data = bytes.fromhex(example["block"])
    cid = CID.from_text(example["cid"])
    assert to_dag_json(dagcbor.decode_block(cid, data)) == example["value"]


def test_empty_and_leaf_examples_decode_as_nodes() -> None:
    for name, count in (("empty.json", 0), ("leaf-hello.json", 2)):
        example = load(name)
        node = decode_node(CID.from_text(example["cid"]), bytes.fromhex(example["block"]))
        assert node.count == count
    store = MemoryBlockStore()
    assert str(ProllyTree(store).empty()) == load("empty.json")["cid"]


def test_leaf_hello_is_the_tree_of_its_entries() -> None:
    example = load("leaf-hello.json")
    cid = CID.from_text(example["cid"])
    value = dagcbor.decode(bytes.fromhex(example["block"]))
    entries = [(k, IndexEntry.from_dag(v).to_dag()) for k, v in value["entries"]]
    assert ProllyTree(MemoryBlockStore()).build(entries) == cid


@pytest.mark.parametrize(("count", "width"), TREES, ids=[f"tree-{n}" for n, _ in TREES])
def test_tree_roots(count: int, width: int) -> None:
    example = load(f"tree-{count}.json")
    assert example["entries"]["key"] == f"key-%0{width}d"
    tree = ProllyTree(MemoryBlockStore())
    root = tree.build(tree_entries(count, width))
    assert str(root) == example["root"]
    stats = tree.stats(root)
    assert (stats.depth, stats.blocks, stats.count) == (
        example["depth"],
        example["blocks"],
        example["count"],
    )


def test_ranks() -> None:
    example = load("ranks.json")
    leaf_bits, branch_bits = example["leaf_bits"], example["branch_bits"]
    assert (leaf_bits, branch_bits) == (DEFAULT_PARAMS.leaf_bits, DEFAULT_PARAMS.branch_bits)
    assert {r["zeros"] for r in example["ranks"].values()} >= {3, 4, 11, 12}
    for key, expected in example["ranks"].items():
        zeros = boundary_zeros(key.encode())
        assert zeros == expected["zeros"]
        rank = key_rank(key.encode())
        assert rank == expected["rank"]
        for level in range(4):
            # The rule as index.md states it, and its nesting across levels.
            closes = zeros >= leaf_bits + branch_bits * level
            assert closes == (rank > level) == (zeros >= DEFAULT_PARAMS.threshold(level))


def test_key_example() -> None:
    example = load("key-hello.json")
    key = index_key(
        CID.from_text(example["platform_cid"]),
        example["cpv"],
        CID.from_text(example["descriptor_cid"]),
    )
    assert key == example["key"]
    parts = parse_index_key(key)
    assert {name: getattr(parts, name) for name in example["parts"]} == example["parts"]
    assert parts.cpv == example["cpv"]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("entry-*.json")), ids=lambda p: p.name)
def test_entry_examples(path: Path) -> None:
    example = load(path.name)
    value = dagcbor.decode(bytes.fromhex(example["block"]))
    if example["error"] is None:
        assert dagcbor.encode(IndexEntry.from_dag(value).to_dag()) == bytes.fromhex(
            example["block"]
        )
        return
    with pytest.raises(getattr(ipfsbin.errors, example["error"]), match=example["message"]):
        IndexEntry.from_dag(value)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("invalid-*.json")), ids=lambda p: p.name)
def test_invalid_nodes_are_refused(path: Path) -> None:
    example = load(path.name)
    store = MemoryBlockStore()
    for cid_text, hex_data in example["blocks"].items():
        cid = store.put(bytes.fromhex(hex_data))
        assert str(cid) == cid_text
    tree = ProllyTree(store)
    error = getattr(ipfsbin.errors, example["error"])
    with pytest.raises(error, match=example["message"]):
        list(tree.items(CID.from_text(example["root"])))
    with pytest.raises(error, match=example["message"]):
        tree.get(CID.from_text(example["root"]), "a")
