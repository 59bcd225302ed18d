"""Benchmark the DAG-CBOR codec on a realistic index node.

The node is what the index's prolly tree stores: 64 entries, each a key
string, a link and a small map, about 7 KiB encoded. Reports median and p90
per operation, next to the plain-cbor2 and hashlib baselines it is built on,
and writes everything, with machine facts, to a JSON file.

    python scripts/bench/codec.py [--runs 3000] [--out bench-results/codec.json]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
from multiformats import CID as MultiformatsCID

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR, cid_for


def index_node(entries: int = 64) -> dict[str, Any]:
    """An index node shaped like the prolly tree's leaves."""
    out = []
    for i in range(entries):
        digest = hashlib.sha256(str(i).encode()).digest()
        out.append(
            {
                "key": f"amd64-{digest[:3].hex()}/dev-libs/foo{i:02d}/1.{i}.0/{digest[3:7].hex()}",
                "link": cid_for(DAG_CBOR, digest),
                "meta": {"size": 100_000 + 37 * i, "state": "ok"},
            }
        )
    return {"entries": out, "level": 0, "type": "ipfsbin/index-node/1"}


def _as_cbor2_tags(value: Any) -> Any:
    """The same value with links as cbor2 tags, for the plain-cbor2 baseline."""
    if type(value) is CID:
        return cbor2.CBORTag(42, b"\x00" + value.bytes)
    if type(value) is dict:
        return {k: _as_cbor2_tags(v) for k, v in value.items()}
    if type(value) is list:
        return [_as_cbor2_tags(v) for v in value]
    return value


def measure(
    cases: dict[str, Callable[[], object]], runs: int, warmup: int, rounds: int = 30
) -> dict[str, dict[str, float]]:
    """Time every case ``runs`` times, interleaved in rounds so that load from
    other processes spreads over all cases instead of spoiling one."""
    for func in cases.values():
        for _ in range(warmup):
            func()
    samples: dict[str, list[int]] = {name: [] for name in cases}
    clock = time.perf_counter_ns
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for name, func in cases.items():
            out = samples[name]
            for _ in range(per_round):
                start = clock()
                func()
                out.append(clock() - start)
    results = {}
    for name, times in samples.items():
        times.sort()
        results[name] = {
            "median_us": statistics.median(times) / 1000,
            "p90_us": times[int(len(times) * 0.9)] / 1000,
            "min_us": times[0] / 1000,
            "runs": len(times),
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results/codec.json"))
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--entries", type=int, default=64)
    parser.add_argument(
        "--no-gc", action="store_true", help="switch the garbage collector off while timing"
    )
    args = parser.parse_args(argv)

    value = index_node(args.entries)
    cid, data = dagcbor.encode_block(value)
    tagged = _as_cbor2_tags(dagcbor.decode(data))  # in canonical key order
    link = value["entries"][0]["link"]
    link_text, link_raw = str(link), link.bytes
    assert cbor2.dumps(tagged) == data, "baseline value must encode to the same bytes"

    cases: dict[str, Callable[[], object]] = {
        "encode": lambda: dagcbor.encode(value),
        "encode_block": lambda: dagcbor.encode_block(value),
        "decode": lambda: dagcbor.decode(data),
        "decode_block": lambda: dagcbor.decode_block(cid, data),
        "cid_for": lambda: cid_for(DAG_CBOR, data),
        "baseline_cbor2_dumps": lambda: cbor2.dumps(tagged),
        "baseline_cbor2_loads": lambda: cbor2.loads(data),
        "baseline_sha256": lambda: hashlib.sha256(data).digest(),
        "cid_from_bytes": lambda: CID(link_raw),
        "cid_from_text": lambda: CID.from_text(link_text),
        "multiformats_cid_decode_bytes": lambda: MultiformatsCID.decode(link_raw),
        "multiformats_cid_decode_text": lambda: MultiformatsCID.decode(link_text),
    }
    if args.no_gc:
        gc.disable()
    results = measure(cases, args.runs, args.warmup)
    gc.enable()

    base = results["baseline_cbor2_loads"]["median_us"] + results["baseline_sha256"]["median_us"]
    report = {
        "node": {
            "entries": args.entries,
            "links": args.entries,
            "bytes": len(data),
            "cid": str(cid),
        },
        "gc": not args.no_gc,
        "results": results,
        "ratios": {
            "decode_block_vs_cbor2_loads_plus_sha256": results["decode_block"]["median_us"] / base,
            "encode_vs_cbor2_dumps": results["encode"]["median_us"]
            / results["baseline_cbor2_dumps"]["median_us"],
            "multiformats_decode_vs_cid_from_bytes": results["multiformats_cid_decode_bytes"][
                "median_us"
            ]
            / results["cid_from_bytes"]["median_us"],
        },
        "machine": {
            "uname": platform.uname()._asdict(),
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
            "python": sys.version,
            "cbor2": importlib.metadata.version("cbor2"),
            "multiformats": importlib.metadata.version("multiformats"),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    print(
        f"index node: {args.entries} entries, {len(data)} bytes; gc {'off' if args.no_gc else 'on'}"
    )
    for name, row in results.items():
        print(f"  {name:32s} median {row['median_us']:8.2f} µs   p90 {row['p90_us']:8.2f} µs")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
