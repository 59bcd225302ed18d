#!/usr/bin/env python3
"""Benchmark: the cost of one pin request to IPFS Cluster's REST API, one at a time or 16 at once.

A real one-peer cluster over a real Kubo on loopback, with the blocks
already in Kubo, so each request measures Cluster's own work (allocation,
the CRDT commit, the Kubo pin). It runs twice: with the CRDT batching
``ClusterPeer`` configures (``CRDT_BATCHING``) and without it (the default
of ``ipfs-cluster-service init``). Per run: ``--pins`` requests one at a
time (the baseline), then as many others with 16 in flight (what
``ipfsbin mirror`` does); milliseconds per pin for each.

Usage: ``.venv/bin/python scripts/bench/cluster_pin_rate.py [--pins 200]
[--out bench-results/cluster-pin-rate.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ipfsbin.cluster.peer import CRDT_BATCHING, ClusterPeer, new_cluster_secret  # noqa: E402
from ipfsbin.cluster.rest import ClusterClient  # noqa: E402
from ipfsbin.codec.cid import RAW, cid_for  # noqa: E402
from ipfsbin.kubo.install import ensure_kubo  # noqa: E402
from ipfsbin.kubo.node import ManagedNode  # noqa: E402
from ipfsbin.store.kubo import KuboBlockStore  # noqa: E402

NO_BATCHING = {"max_batch_size": 0, "max_batch_age": "0s"}


def ms_per_pin(cluster: ClusterClient, cids: list[str], workers: int) -> float:
    start = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda cid: cluster.pin(cid, name="bench", replication=1), cids))
    return round(1000 * (time.monotonic() - start) / len(cids), 1)


def run(pins: int, batching: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ipfsbin-bench-pinrate-") as tmp:
        node = ManagedNode(Path(tmp) / "kubo", binary=ensure_kubo())
        node.start(timeout=60)
        peer = ClusterPeer(
            Path(tmp) / "peer",
            kubo_api=node.api_multiaddr,
            secret=new_cluster_secret(),
            batching=batching,
        )
        try:
            peer.start(bootstrap=[])
            blocks = [
                (cid_for(RAW, f"block {i}".encode()), f"block {i}".encode())
                for i in range(2 * pins)
            ]
            with node.client() as kubo:
                KuboBlockStore(kubo).put_many(blocks)
            cids = [str(cid) for cid, _ in blocks]
            with ClusterClient(peer.rest_url, timeout=600) as cluster:
                return {
                    "batching": batching,
                    "one_at_a_time_ms": ms_per_pin(cluster, cids[:pins], 1),
                    "sixteen_at_once_ms": ms_per_pin(cluster, cids[pins:], 16),
                }
        finally:
            peer.stop()
            node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pins", type=int, default=200)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench-results" / "cluster-pin-rate.json"
    )
    options = parser.parse_args()
    result = {
        "benchmark": "cluster-pin-rate",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "note": "one run on a 2-core machine shared with parallel work: wall times are pessimistic",
        "pins": options.pins,
        "runs": [run(options.pins, dict(CRDT_BATCHING)), run(options.pins, NO_BATCHING)],
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
