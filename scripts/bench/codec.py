"""Benchmark the DAG-CBOR codec on ~7 KiB index nodes with 64 links.

Three shapes, each about 7-8 KiB with 64 links: ``internal`` (an internal
node of the index's prolly tree: last key, child link and count per child),
``leaf`` (a leaf: key and entry map with a manifest and an attestation link)
and ``map_heavy`` (a pessimistic shape with two maps per link; the codec's
per-map checks dominate it). Reports median and p90 per operation, next to
the plain-cbor2 and hashlib baselines it is built on, and writes everything,
with machine facts, to a JSON file.

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


def _key(i: int, digest: bytes) -> str:
    return f"{digest[:13].hex()}/dev-libs/foo{i:02d}/1.{i}.0/{digest[13:26].hex()}"


def internal_node(links: int = 64) -> dict[str, Any]:
    """An internal index node: ``[last key, child link, count]`` per child."""
    out = []
    for i in range(links):
        digest = hashlib.sha256(str(i).encode()).digest()
        out.append([_key(i, digest), cid_for(DAG_CBOR, digest), 250 + i])
    return {"entries": out, "level": 1, "type": "ipfsbin/index-node/1"}


def leaf_node(links: int = 64) -> dict[str, Any]:
    """A leaf: ``[key, entry]`` with a manifest link and one attestation link each."""
    out = []
    for i in range(links // 2):
        digest = hashlib.sha256(str(i).encode()).digest()
        entry = {
            "attestations": [cid_for(DAG_CBOR, digest + b"a")],
            "manifest": cid_for(DAG_CBOR, digest),
            "state": "ok",
        }
        out.append([_key(i, digest), entry])
    return {"entries": out, "level": 0, "type": "ipfsbin/index-node/1"}


def map_heavy_node(links: int = 64) -> dict[str, Any]:
    """A pessimistic shape: one map per link and a nested map in each (129 maps)."""
    out = []
    for i in range(links):
        digest = hashlib.sha256(str(i).encode()).digest()
        out.append(
            {
                "key": f"amd64-{digest[:3].hex()}/dev-libs/foo{i:02d}/1.{i}.0/{digest[3:7].hex()}",
                "link": cid_for(DAG_CBOR, digest),
                "meta": {"size": 100_000 + 37 * i, "state": "ok"},
            }
        )
    return {"entries": out, "level": 0, "type": "ipfsbin/index-node/1"}


SHAPES: dict[str, Callable[[int], dict[str, Any]]] = {
    "internal": internal_node,
    "leaf": leaf_node,
    "map_heavy": map_heavy_node,
}


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


def bench_shape(value: dict[str, Any], runs: int, warmup: int) -> dict[str, Any]:
    cid, data = dagcbor.encode_block(value)
    tagged = _as_cbor2_tags(dagcbor.decode(data))  # in canonical key order
    assert cbor2.dumps(tagged) == data, "baseline value must encode to the same bytes"
    link = cid_for(DAG_CBOR, data)
    link_text, link_raw = str(link), link.bytes
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
    results = measure(cases, runs, warmup)
    base = results["baseline_cbor2_loads"]["median_us"] + results["baseline_sha256"]["median_us"]
    return {
        "node": {"links": _count_links(value), "bytes": len(data), "cid": str(cid)},
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
    }


def _count_links(value: Any) -> int:
    if type(value) is CID:
        return 1
    if type(value) is dict:
        return sum(_count_links(v) for v in value.values())
    if type(value) is list:
        return sum(_count_links(v) for v in value)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results/codec.json"))
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--links", type=int, default=64)
    parser.add_argument(
        "--no-gc", action="store_true", help="switch the garbage collector off while timing"
    )
    args = parser.parse_args(argv)

    shapes: dict[str, Any] = {}
    if args.no_gc:
        gc.disable()
    for shape, make in SHAPES.items():
        shapes[shape] = bench_shape(make(args.links), args.runs, args.warmup)
    gc.enable()
    report = {
        "links": args.links,
        "gc": not args.no_gc,
        "shapes": shapes,
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

    for shape, found in shapes.items():
        node = found["node"]
        print(f"{shape}: {node['links']} links, {node['bytes']} bytes")
        for name, row in found["results"].items():
            print(f"  {name:32s} median {row['median_us']:8.2f} µs   p90 {row['p90_us']:8.2f} µs")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
