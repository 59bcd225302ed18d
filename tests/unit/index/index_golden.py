"""The worked examples of schema/index.md: how they are made.

Run ``python tests/unit/index/index_golden.py`` to rewrite ``schema/examples/index/``;
the tests check that the files on disk equal what this module makes and
what the code does with them.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, RAW, cid_for
from ipfsbin.index import IndexEntry, ProllyTree, index_key, parse_index_key
from ipfsbin.index._node import DEFAULT_PARAMS, NODE_TYPE, boundary_zeros, key_rank
from ipfsbin.store.memory import MemoryBlockStore

EXAMPLES = Path(__file__).resolve().parents[3] / "schema" / "examples" / "index"

PLATFORM = dagcbor.encode_block({"type": "example platform"})[0]
DESCRIPTOR_A = dagcbor.encode_block({"type": "example descriptor", "n": 1})[0]
DESCRIPTOR_B = dagcbor.encode_block({"type": "example descriptor", "n": 2})[0]
MANIFEST_A = dagcbor.encode_block({"type": "example manifest", "n": 1})[0]
MANIFEST_B = dagcbor.encode_block({"type": "example manifest", "n": 2})[0]
ATTESTATIONS = sorted(
    dagcbor.encode_block({"type": "example attestation", "n": n})[0] for n in range(3)
)


def to_dag_json(value: Any) -> Any:
    """DAG-JSON form of a data-model value (for people reading the examples)."""
    if isinstance(value, CID):
        return {"/": str(value)}
    if isinstance(value, bytes):
        return {"/": {"bytes": base64.b64encode(value).decode().rstrip("=")}}
    if isinstance(value, dict):
        return {k: to_dag_json(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [to_dag_json(v) for v in value]
    return value


def block_example(description: str, value: Any) -> dict[str, Any]:
    cid, data = dagcbor.encode_block(value)
    return {
        "description": description,
        "value": to_dag_json(value),
        "cid": str(cid),
        "block": data.hex(),
    }


def node(level: int, entries: list[Any]) -> dict[str, Any]:
    return {"type": NODE_TYPE, "level": level, "entries": entries}


def invalid_example(
    description: str, blocks: list[bytes], error: str, message: str, root: int = 0
) -> dict[str, Any]:
    cids = [cid_for(0x71, b) for b in blocks]
    return {
        "description": description,
        "root": str(cids[root]),
        "blocks": {str(c): b.hex() for c, b in zip(cids, blocks, strict=True)},
        "error": error,
        "message": message,
    }


# (entries, digits of the key's number): 500 make two levels, 20000 three, so
# the second exercises the branch threshold as well as the leaf one.
TREES = ((500, 4), (20000, 5))


def tree_example(count: int, width: int) -> dict[str, Any]:
    tree = ProllyTree(MemoryBlockStore())
    root = tree.build(tree_entries(count, width))
    stats = tree.stats(root)
    last = f"{count - 1:0{width}d}"
    return {
        "description": (
            f"entries key-{0:0{width}d}..key-{last} mapping to 0..{count - 1}, default parameters"
        ),
        "entries": {"first": 0, "last": count - 1, "key": f"key-%0{width}d", "value": "the number"},
        "root": str(root),
        "depth": stats.depth,
        "blocks": stats.blocks,
        "count": stats.count,
    }


def tree_entries(count: int, width: int) -> list[tuple[str, int]]:
    return [(f"key-{i:0{width}d}", i) for i in range(count)]


def hello_keys() -> tuple[str, str]:
    return (
        index_key(PLATFORM, "app-misc/hello-1", DESCRIPTOR_A),
        index_key(PLATFORM, "app-misc/hello-2", DESCRIPTOR_B),
    )


def generate() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    out["empty.json"] = block_example("the empty tree: a leaf without entries", node(0, []))

    key_a, key_b = hello_keys()
    ok = IndexEntry.new(MANIFEST_A, ATTESTATIONS[:2])
    yanked = IndexEntry.new(MANIFEST_B, [], state="yanked", reason="miscompiled with -O3")
    out["leaf-hello.json"] = block_example(
        "a one-leaf index with an ok and a yanked entry",
        node(0, [[key_a, ok.to_dag()], [key_b, yanked.to_dag()]]),
    )
    parts = parse_index_key(key_a)
    out["key-hello.json"] = {
        "description": "index_key(platform CID, CPV, descriptor CID) and its parts",
        "platform_cid": str(PLATFORM),
        "cpv": "app-misc/hello-1",
        "descriptor_cid": str(DESCRIPTOR_A),
        "key": key_a,
        "parts": {
            "platform_id": parts.platform_id,
            "category": parts.category,
            "package": parts.package,
            "version": parts.version,
            "descriptor_digest": parts.descriptor_digest,
        },
    }

    for count, width in TREES:
        out[f"tree-{count}.json"] = tree_example(count, width)

    # Keys on both sides of each threshold: zeros 3 | 4 close no node | a leaf,
    # zeros 11 | 12 close a leaf | also a level-1 node.
    ranks: dict[str, dict[str, int]] = {}
    wanted = {0: 1, 3: 1, 4: 1, 5: 1, 11: 1, 12: 1, 13: 1}
    number = 0
    while any(wanted.values()):
        key = f"k{number}"
        zeros = boundary_zeros(key.encode())
        if wanted.get(zeros, 0):
            wanted[zeros] -= 1
            ranks[key] = {"zeros": zeros, "rank": key_rank(key.encode())}
        number += 1
    out["ranks.json"] = {
        "description": (
            "boundary hash leading zero bits and ranks: a key closes a node at level L "
            "when zeros >= leaf_bits + branch_bits * L, i.e. when rank > L"
        ),
        "leaf_bits": DEFAULT_PARAMS.leaf_bits,
        "branch_bits": DEFAULT_PARAMS.branch_bits,
        "ranks": dict(sorted(ranks.items(), key=lambda item: item[1]["zeros"])),
    }

    out["entry-ok.json"] = {**block_example("an ok entry", ok.to_dag()), "error": None}
    out["entry-yanked.json"] = {**block_example("a yanked entry", yanked.to_dag()), "error": None}
    bad_entries = {
        "entry-invalid-unknown-field.json": (
            "an entry with a field version 1 does not have",
            {**ok.to_dag(), "signature": b"\x00"},
            "unknown fields",
        ),
        "entry-invalid-unsorted.json": (
            "attestations out of CID order",
            {**ok.to_dag(), "attestations": list(reversed(ATTESTATIONS))},
            "sorted by CID bytes",
        ),
        "entry-invalid-yanked-no-reason.json": (
            "a yanked entry without a reason",
            {**ok.to_dag(), "state": "yanked"},
            "needs a reason",
        ),
        "entry-invalid-state.json": (
            "a state other than ok or yanked",
            {**ok.to_dag(), "state": "broken"},
            "expected one of",
        ),
    }
    for name, (description, value, message) in bad_entries.items():
        out[name] = {
            **block_example(description, value),
            "error": "SchemaError",
            "message": message,
        }

    leaf = dagcbor.encode(node(0, [["a", 1], ["b", 2]]))
    leaf_cid = cid_for(0x71, leaf)
    raw_child = cid_for(RAW, b"not a node")
    out["invalid-node-type.json"] = invalid_example(
        "a node of another type version",
        [dagcbor.encode({"type": "ipfsbin/index-node/2", "level": 0, "entries": []})],
        "SchemaError",
        "expected 'ipfsbin/index-node/1'",
    )
    out["invalid-node-field.json"] = invalid_example(
        "a node with an unknown field",
        [dagcbor.encode({**node(0, []), "prefix": ""})],
        "SchemaError",
        "expected fields",
    )
    out["invalid-node-unsorted.json"] = invalid_example(
        "leaf keys out of order",
        [dagcbor.encode(node(0, [["b", 1], ["a", 2]]))],
        "SchemaError",
        "not strictly increasing",
    )
    out["invalid-node-repeated-key.json"] = invalid_example(
        "a key twice in one leaf",
        [dagcbor.encode(node(0, [["a", 1], ["a", 2]]))],
        "SchemaError",
        "not strictly increasing",
    )
    out["invalid-node-raw-child.json"] = invalid_example(
        "an internal node linking a raw block as its child",
        [dagcbor.encode(node(1, [["a", raw_child, 1]]))],
        "SchemaError",
        "must link a dag-cbor child",
    )
    out["invalid-node-count.json"] = invalid_example(
        "a parent recording a wrong entry count for its child",
        [dagcbor.encode(node(1, [["b", leaf_cid, 3]])), leaf],
        "SchemaError",
        "holds 2 entries, the parent says 3",
    )
    out["invalid-node-last-key.json"] = invalid_example(
        "a parent recording a wrong last key for its child",
        [dagcbor.encode(node(1, [["c", leaf_cid, 2]])), leaf],
        "SchemaError",
        "the parent says 'c'",
    )
    out["invalid-node-level.json"] = invalid_example(
        "a child that is not one level below its parent",
        [dagcbor.encode(node(2, [["b", leaf_cid, 2]])), leaf],
        "SchemaError",
        "expected 1",
    )
    out["invalid-node-empty-child.json"] = invalid_example(
        "an empty leaf below a parent (only a root may be empty)",
        [
            dagcbor.encode(node(1, [["a", cid_for(0x71, dagcbor.encode(node(0, []))), 1]])),
            dagcbor.encode(node(0, [])),
        ],
        "SchemaError",
        "only a root may be empty",
    )
    return out


def main() -> None:
    EXAMPLES.mkdir(parents=True, exist_ok=True)
    for name, content in generate().items():
        (EXAMPLES / name).write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
    print(f"wrote {EXAMPLES}", file=sys.stderr)


if __name__ == "__main__":
    main()
