#!/usr/bin/env python3
"""Benchmark: what keeping every node of a big index costs Kubo, pin by pin or through one holder.

A follower keeps each index node with a direct pin (a recursive pin on the
index would pull every manifest and binpkg its leaves link). Kubo v0.39
writes each direct pin with several synced LevelDB writes (``pin add``
flushes the pinner once per path, ``go-ds-leveldb`` opens its datastore with
``syncWrites``), so the cost grows with the number of nodes whatever the
batching. Measured here on one Kubo node already holding the index
(``first_sync.py``'s fixture, cached), no network:

- ``direct``: every node pinned directly, 200 CIDs per ``pin/add``, named
  ``ipfsbin:follow`` (what the follower does), then all unpinned again;
- ``holder``: a local-only *holder* DAG — dag-pb nodes of up to 4,096 links
  each, every link a **raw** CID carrying an index node's multihash, under
  one dag-pb root — stored with ``block/put`` and pinned with one recursive
  ``pin add``. Kubo's blockstore is keyed by multihash, so a raw link reaches
  the stored dag-cbor block, and a raw block has no links: the walk (and
  GC's, which compares multihashes, ``gc/gc.go``) stops at the index nodes
  and never reaches the manifests;
- ``holder_update``: the holder of an index with 1% of its nodes replaced
  (new blocks), pinned with ``pin update`` (Kubo walks only the difference)
  — what an incremental sync would cost through a holder;
- ``direct_update``: the same change as direct pins: the new nodes pinned,
  the old ones unpinned.

Afterwards ``repo gc`` runs, and the script checks that every index node is
still there and that a block the index links to (a manifest) is gone.

Usage: ``.venv/bin/python scripts/bench/pin_holder.py [--entries 100000]
[--direct N] [--out bench-results/pin_holder.json]`` (``--direct``: pin only
the first N nodes directly, the cost being per pin).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

import bench_report  # noqa: E402
from first_sync import cached_build  # noqa: E402

from ipfsbin.codec.cid import CID, DAG_CBOR, RAW  # noqa: E402
from ipfsbin.index import ProllyTree  # noqa: E402
from ipfsbin.kubo.client import KuboClient  # noqa: E402
from ipfsbin.kubo.holder import FANOUT, put_holder  # noqa: E402
from ipfsbin.kubo.install import ensure_kubo  # noqa: E402
from ipfsbin.kubo.node import ManagedNode  # noqa: E402
from ipfsbin.store.kubo import KuboBlockStore  # noqa: E402
from tests.unit.subscribe.subscribe_helpers import all_nodes  # noqa: E402

BATCH = 200
NAME = "ipfsbin:follow"


def _timed(what: str, out: dict[str, Any], fn: Any) -> Any:
    begun = time.perf_counter()
    value = fn()
    out[what] = round(time.perf_counter() - begun, 2)
    print(what, out[what], file=sys.stderr, flush=True)
    return value


def _direct(client: KuboClient, cids: Sequence[CID]) -> None:
    for i in range(0, len(cids), BATCH):
        client.pin_add(cids[i : i + BATCH], recursive=False, name=NAME, timeout=600)


def _undirect(client: KuboClient, cids: Sequence[CID]) -> None:
    for i in range(0, len(cids), BATCH):
        client.pin_rm(cids[i : i + BATCH], recursive=False)


def run(entries: int, direct: int | None = None) -> dict[str, Any]:
    index = cached_build(entries, 7)
    nodes = sorted(all_nodes(ProllyTree(index.memory), index.root))
    held = set(nodes)
    manifests = [c for c in index.memory if c.codec == DAG_CBOR and c not in held]
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ipfsbin-bench-pinholder-") as tmp:
        node = ManagedNode(Path(tmp) / "node", binary=ensure_kubo())
        node.start(timeout=60)
        try:
            with node.client(timeout=900) as client:
                KuboBlockStore(client).put_many((c, index.memory.get(c)) for c in index.memory)
                sample = nodes[:direct] if direct is not None else nodes
                _timed("direct_pin_seconds", out, lambda: _direct(client, sample))
                _timed("direct_unpin_seconds", out, lambda: _undirect(client, sample))
                out["direct_pinned_nodes"] = len(sample)
                root = _timed("holder_put_seconds", out, lambda: put_holder(client, nodes))
                _timed(
                    "holder_pin_seconds",
                    out,
                    lambda: client.pin_add([root], recursive=True, name=NAME, timeout=900),
                )
                # 1% of the nodes replaced by new blocks: an incremental update's worth
                changed = max(1, len(nodes) // 100)
                datas = [f"new node {i} {time.time()}".encode() * 40 for i in range(changed)]
                fresh = client.block_put_many(datas, codec=RAW)
                updated = [*fresh, *nodes[changed:]]
                new_root = put_holder(client, updated)
                _timed(
                    "holder_update_seconds",
                    out,
                    lambda: client.pin_update(root, new_root, unpin=True),
                )
                _timed("direct_update_pin_seconds", out, lambda: _direct(client, fresh))
                _timed("direct_update_unpin_seconds", out, lambda: _undirect(client, fresh))
                client.repo_gc(timeout=900)
                local = client.refs_local()
                kept = sum(c.multihash in local for c in updated)
                out["after_gc"] = {
                    "held_nodes_kept": kept,
                    "held_nodes": len(updated),
                    "replaced_nodes_removed": sum(
                        c.multihash not in local for c in nodes[:changed]
                    ),
                    "manifests_removed": sum(c.multihash not in local for c in manifests),
                    "manifests": len(manifests),
                }
                version = client.version().version
        finally:
            node.stop()
    return {
        "benchmark": "pin_holder",
        "machine": bench_report.machine("one run, load average at the end beside it"),
        "load_average": os.getloadavg(),
        "kubo": version,
        "entries": entries,
        "index_nodes": len(nodes),
        "holder_fanout": FANOUT,
        "updated_nodes": changed,
        "seconds": out,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument(
        "--direct", type=int, help="pin only this many nodes directly (the cost is per pin)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "pin_holder.json")
    options = parser.parse_args()
    bench_report.write_results(options.out, run(options.entries, options.direct))


if __name__ == "__main__":
    main()
