#!/usr/bin/env python3
"""Benchmark: a follower's first fetch of a big index, by mechanism, against Kubo's own.

A publisher node on loopback holds an index of ``--entries`` synthetic
builds over ``--platforms`` platforms. Its entries link manifests by
identity-hash CIDs (the manifest bytes inline in the CID), so Kubo's own
recursive ``pin add`` of the index root fetches exactly the index nodes: the
baseline, measured in the same run from the same peer. Each mechanism runs
on a fresh client node connected only to the publisher:

- ``kubo_pin_add``: ``pin add -r`` of the index root (no checks of ours);
- ``walk``: the follower's level walk (:func:`ipfsbin.subscribe._delta.tree_delta`),
  ``--workers`` ``block/get`` calls at a time, every node checked against its parent;
- ``walk_refs``: the same walk with :class:`~ipfsbin.subscribe._bulk.RefsPrefetch`
  moving whole subtrees with Kubo's ``refs -r --max-depth``;
- ``partial``: the walk keeping ``--kept`` platforms only.

Reported per mechanism: seconds, index nodes held, bytes received over
bitswap (Kubo's ``bitswap stat``), and the ratio to the baseline's time.

Usage: ``.venv/bin/python scripts/bench/first_sync.py [--entries 100000]
[--platforms 10] [--kept 2] [--out bench-results/first_sync.json]``
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ipfsbin.codec import dagcbor  # noqa: E402
from ipfsbin.codec.cid import CID, DAG_CBOR, IDENTITY  # noqa: E402
from ipfsbin.index import IndexEntry, ProllyTree  # noqa: E402
from ipfsbin.index.scope import KeyScope  # noqa: E402
from ipfsbin.kubo.client import KuboClient  # noqa: E402
from ipfsbin.kubo.install import ensure_kubo  # noqa: E402
from ipfsbin.kubo.node import ManagedNode  # noqa: E402
from ipfsbin.store.kubo import KuboBlockStore  # noqa: E402
from ipfsbin.store.memory import MemoryBlockStore  # noqa: E402
from ipfsbin.subscribe._bulk import RefsPrefetch  # noqa: E402
from ipfsbin.subscribe._delta import tree_delta  # noqa: E402


def inline_cid(value: dagcbor.Value) -> CID:
    """A dag-cbor CID whose identity multihash carries the block itself (nothing to fetch)."""
    data = dagcbor.encode(value)
    return CID.v1(DAG_CBOR, bytes([IDENTITY, len(data)]) + data)


def build(
    entries: int, platforms: int, seed: int
) -> tuple[MemoryBlockStore, CID, list[str], ProllyTree]:
    rng = random.Random(seed)
    ids = sorted(f"p{rng.randbytes(8).hex()}" for _ in range(platforms))
    items = []
    for i in range(entries):
        key = f"{rng.choice(ids)}/cat-{rng.randrange(100)}/pkg{rng.randrange(3000)}/1.{i}/d{i:x}"
        items.append((key, IndexEntry.new(inline_cid({"m": rng.randbytes(8)})).to_dag()))
    memory = MemoryBlockStore()
    tree = ProllyTree(memory)
    return memory, tree.build(sorted(items)), ids, tree


def received(node: ManagedNode) -> int:
    stat = json.loads(node.run("bitswap", "stat", "--enc=json").stdout)
    return int(stat["DataReceived"])


def run(options: argparse.Namespace) -> dict[str, Any]:
    memory, index, ids, tree = build(options.entries, options.platforms, 7)
    stats = tree.stats(index)
    kept = KeyScope.of_platforms(ids[: options.kept])
    binary = ensure_kubo()
    mechanisms: dict[str, Callable[[KuboClient], int]] = {
        "kubo_pin_add": lambda c: pin_all(c, index, stats.blocks),
        "walk": lambda c: len(
            tree_delta(KuboBlockStore(c, offline=False), index, workers=options.workers).added
        ),
        "walk_refs": lambda c: walk_refs(c, index, options.workers),
        "partial": lambda c: len(
            tree_delta(
                KuboBlockStore(c, offline=False), index, workers=options.workers, scope=kept
            ).added
        ),
    }
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ipfsbin-bench-first-") as tmp:
        publisher = ManagedNode(Path(tmp) / "publisher", binary=binary)
        publisher.start(timeout=60)
        try:
            with publisher.client(timeout=300) as pub:
                KuboBlockStore(pub).put_many((c, memory.get(c)) for c in memory)
                version = pub.version().version
            for name, fetch in mechanisms.items():
                node = ManagedNode(Path(tmp) / name, binary=binary)
                node.start(timeout=60)
                try:
                    with node.client(timeout=300) as client:
                        client.swarm_connect(publisher.swarm_addrs()[:1])
                        started = time.perf_counter()
                        held = fetch(client)
                        seconds = time.perf_counter() - started
                    out[name] = {
                        "seconds": round(seconds, 2),
                        "index_nodes": held,
                        "bytes_received": received(node),
                    }
                finally:
                    node.stop()
                print(name, out[name], file=sys.stderr, flush=True)
        finally:
            publisher.stop()
    base = out["kubo_pin_add"]["seconds"]
    for row in out.values():
        row["ratio_to_kubo"] = round(row["seconds"] / base, 2)
    usable = sum(1 for k, _ in tree.items(index) if kept.holds(k))
    return {
        "benchmark": "first_sync",
        "machine": {"system": platform.system(), "python": platform.python_version()},
        "kubo": version,
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "entries": options.entries,
        "platforms": options.platforms,
        "kept_platforms": options.kept,
        "kept_entries": usable,
        "index": {"blocks": stats.blocks, "bytes": stats.bytes, "depth": stats.depth},
        "mechanisms": out,
    }


def pin_all(client: KuboClient, index: CID, blocks: int) -> int:
    client.pin_add([index], recursive=True, timeout=900.0)
    return blocks  # Kubo walked the whole tree to pin it


def walk_refs(client: KuboClient, index: CID, workers: int) -> int:
    with RefsPrefetch(client) as prefetch:
        store = KuboBlockStore(client, offline=False)
        return len(tree_delta(store, index, workers=workers, prefetch=prefetch).added)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--platforms", type=int, default=10)
    parser.add_argument("--kept", type=int, default=2)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "first_sync.json")
    options = parser.parse_args()
    result = run(options)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
