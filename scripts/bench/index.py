#!/usr/bin/env python3
"""Benchmark: the prolly-tree index against Portage's own ``Packages`` file, same entries.

For each size n, synthetic builds with realistic key shapes
(``platform-id/category/package/version/descriptor-digest``; 20 platforms,
~150 categories) and index entries (a manifest link and 1-3 attestation
links) go into a prolly tree on an in-memory block store. Measured:

- build time, blocks, bytes, depth;
- cold lookups: a fresh tree object (empty cache) per lookup of a random
  existing key, averaged over ``--lookups`` keys: blocks and bytes read;
- batch updates of 1, 100 and 1000 entries (half changed, half new builds on
  the same platforms, all at random places: the *uniform* case, the
  headline): time and new blocks written, also as a fraction of the index's
  blocks;
- a *clustered* update: 1000 new builds for one platform, as a builder's
  batch brings them (new versions of packages that platform already has,
  spread over its categories and packages): the same figures;
- diff of each 1000-entry update with a cold cache: blocks and bytes read.

Side by side, Portage's way for the same builds: a ``Packages`` file with one
entry per build (CPV, SLOT, USE, BUILD_ID, BUILD_TIME, SIZE, MD5, SHA1, PATH,
...) written by ``portage.getbinpkg.PackageIndex.write`` and read back by
``PackageIndex.read``; its bytes (plain and gzip, as emerge fetches
``Packages.gz``) are what a client downloads to learn of any change.

Usage: ``.venv/bin/python scripts/bench/index.py [--sizes 10000 100000 1000000]
[--out bench-results/index.json]``
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import platform
import random
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ipfsbin.codec.cid import CID, DAG_CBOR, cid_for  # noqa: E402
from ipfsbin.index import IndexEntry, ProllyTree, diff  # noqa: E402
from ipfsbin.index.keys import short_id  # noqa: E402
from ipfsbin.store.memory import MemoryBlockStore  # noqa: E402

PLATFORMS = 20

WORDS = (
    "libs lang util misc apps python perl text sys net media x11 gnome kde dev www "
    "crypt video sound games office science mail print fonts firmware boot db doc"
).split()


class CountingStore:
    """A block store wrapper that counts blocks and bytes read and written."""

    def __init__(self, inner: MemoryBlockStore) -> None:
        self.inner = inner
        self.gets = 0
        self.get_bytes = 0
        self.puts = 0
        self.put_bytes = 0

    def get(self, cid: CID) -> bytes:
        data = self.inner.get(cid)
        self.gets += 1
        self.get_bytes += len(data)
        return data

    def put(self, data: bytes, codec: int = DAG_CBOR) -> CID:
        self.puts += 1
        self.put_bytes += len(data)
        return self.inner.put(data, codec)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        blocks = list(blocks)
        self.puts += len(blocks)
        self.put_bytes += sum(len(b) for _, b in blocks)
        self.inner.put_many(blocks)

    def has(self, cid: CID) -> bool:
        return self.inner.has(cid)


def fake_cid(rng: random.Random) -> CID:
    return cid_for(DAG_CBOR, rng.randbytes(16))


class Builds:
    """Synthetic builds: index keys, index entries and Packages entries from one seed."""

    def __init__(self, seed: int, platforms: list[str] | None = None) -> None:
        self.rng = random.Random(seed)
        self.platforms = platforms or [short_id(fake_cid(self.rng)) for _ in range(PLATFORMS)]
        self.categories = sorted(
            {f"{a}-{b}" for a in WORDS[:15] for b in WORDS[15:]}
            | {f"{a}-{b}" for a in WORDS[15:] for b in WORDS[:3]}
        )
        self.serial = 0

    def one(
        self, platform_id: str | None = None, category_package: tuple[str, str] | None = None
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        """A new build; on ``platform_id`` and of ``category_package`` when given."""
        rng = self.rng
        self.serial += 1
        if platform_id is None:
            platform_id = rng.choice(self.platforms)
        if category_package is None:
            category_package = (
                rng.choice(self.categories),
                f"{rng.choice(WORDS)}{rng.randrange(2000)}",
            )
        category, package = category_package
        version = f"{rng.randrange(1, 30)}.{rng.randrange(20)}.{rng.randrange(10)}"
        if rng.random() < 0.3:
            version += f"-r{rng.randrange(1, 5)}"
        descriptor = fake_cid(rng)
        key = f"{platform_id}/{category}/{package}/{version}/{short_id(descriptor)}"
        entry = IndexEntry.new(
            fake_cid(rng), [fake_cid(rng) for _ in range(rng.randrange(1, 4))]
        ).to_dag()
        cpv = f"{category}/{package}-{version}"
        size = rng.randrange(10_000, 50_000_000)
        digest = hashlib.sha256(key.encode()).hexdigest()
        packages_entry = {
            "CPV": cpv,
            "BUILD_ID": str(self.serial),
            "BUILD_TIME": str(1_700_000_000 + self.serial),
            "DEFINED_PHASES": "compile configure install prepare",
            "EAPI": "8",
            "KEYWORDS": "amd64 ~arm64",
            "LICENSE": "GPL-2+",
            "MD5": digest[:32],
            "PATH": f"{cpv}-{self.serial}.gpkg.tar",
            "RDEPEND": f">=sys-libs/glibc-2.38 dev-libs/{rng.choice(WORDS)}:0/{rng.randrange(9)}=",
            "REPO": "gentoo",
            "SHA1": digest[:40],
            "SIZE": str(size),
            "SLOT": "0",
            "USE": " ".join(sorted(rng.sample(WORDS, 6))) + " abi_x86_64 amd64 elibc_glibc",
        }
        return key, entry, packages_entry


def machine() -> dict[str, Any]:
    uname = platform.uname()
    return {
        "system": uname.system,
        "release": uname.release,
        "machine": uname.machine,
        "processor": uname.processor,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
    }


def timed(function: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def bench_packages(entries: list[dict[str, str]], changed: int) -> dict[str, Any]:
    from portage.getbinpkg import PackageIndex

    index = PackageIndex(default_header_data={"VERSION": "0", "ARCH": "amd64"})
    index.packages = [dict(e) for e in entries]
    buffer = io.StringIO()
    _, write_seconds = timed(index.write, buffer)
    text = buffer.getvalue()
    reader = PackageIndex()
    _, read_seconds = timed(reader.read, io.StringIO(text))
    assert len(reader.packages) == len(entries)
    raw = text.encode()
    compressed = gzip.compress(raw, compresslevel=6)
    per_entry = len(raw) / max(1, len(entries))
    return {
        "write_seconds": round(write_seconds, 3),
        "read_seconds": round(read_seconds, 3),
        "bytes": len(raw),
        "gzip_bytes": len(compressed),
        "bytes_per_entry": round(per_entry, 1),
        # Any change means fetching the whole file again (Packages.gz first).
        f"fetch_bytes_to_learn_{changed}_changes": len(compressed),
    }


def measure_update(
    store: CountingStore, root: CID, changed: dict[str, Any], index_blocks: int
) -> tuple[dict[str, Any], CID]:
    """Apply ``changed`` to ``root`` with a cold cache: time, blocks and bytes written."""
    writer = ProllyTree(store)
    before_puts, before_bytes = store.puts, store.put_bytes
    new_root, seconds = timed(writer.mutate, root, changed)
    written = store.puts - before_puts
    figures = {
        "changes": len(changed),
        "seconds": round(seconds, 3),
        "new_blocks": written,
        "new_bytes": store.put_bytes - before_bytes,
        "fraction_of_index_blocks": round(written / index_blocks, 5),
    }
    return figures, new_root


def measure_diff(
    store: CountingStore, old_root: CID, new_root: CID, update: dict[str, Any]
) -> dict[str, Any]:
    """Diff ``old_root`` against ``new_root`` with a cold cache: blocks and bytes read."""
    cold = ProllyTree(store)
    before, before_bytes = store.gets, store.get_bytes
    changes, seconds = timed(lambda t, a, b: list(diff(t, a, b)), cold, old_root, new_root)
    if len(changes) != update["changes"]:
        raise SystemExit(f"diff found {len(changes)} changes, expected {update['changes']}")
    return {
        "changes": len(changes),
        "blocks_read": store.gets - before,
        "bytes_read": store.get_bytes - before_bytes,
        "seconds": round(seconds, 3),
        # What a client that has the old tree fetches to learn the change:
        # the new tree's nodes it lacks (the blocks the update wrote).
        "fetch_bytes_to_learn_changes": update["new_bytes"],
    }


def bench_size(n: int, lookups: int, seed: int, skip_portage: bool) -> dict[str, Any]:
    builds = Builds(seed + n)
    made = [builds.one() for _ in range(n)]
    made.sort(key=lambda item: item[0])
    keys = [key for key, _, _ in made]
    if len(set(keys)) != len(keys):
        raise SystemExit("synthetic keys collided; change the seed")
    result: dict[str, Any] = {"entries": n}

    memory = MemoryBlockStore()
    store = CountingStore(memory)
    tree = ProllyTree(store)
    root, seconds = timed(tree.build, ((k, v) for k, v, _ in made))
    stats = ProllyTree(memory).stats(root)
    result["build"] = {
        "seconds": round(seconds, 3),
        "entries_per_second": round(n / seconds),
        "blocks": stats.blocks,
        "bytes": stats.bytes,
        "bytes_per_entry": round(stats.bytes / n, 1),
        "depth": stats.depth,
    }

    rng = random.Random(seed)
    gets, read_bytes = 0, 0
    start = time.perf_counter()
    for key in rng.sample(keys, min(lookups, n)):
        before, before_bytes = store.gets, store.get_bytes
        cold = ProllyTree(store)
        if cold.get(root, key) is None:
            raise SystemExit(f"lookup of {key} failed")
        gets += store.gets - before
        read_bytes += store.get_bytes - before_bytes
    count = min(lookups, n)
    result["cold_lookup"] = {
        "lookups": count,
        "blocks_per_lookup": round(gets / count, 3),
        "bytes_per_lookup": round(read_bytes / count),
        "milliseconds_per_lookup": round((time.perf_counter() - start) / count * 1000, 3),
    }

    updates: dict[str, Any] = {}
    for batch in (1, 100, 1000):
        # New builds land on the same platforms as the existing ones.
        fresh = Builds(seed * 7 + batch, builds.platforms)
        changed = {key: fresh.one()[1] for key in rng.sample(keys, max(1, batch // 2))}
        while len(changed) < batch:
            key, value, _ = fresh.one()
            changed[key] = value
        updates[str(batch)], new_root = measure_update(store, root, changed, stats.blocks)
        if batch == 1000:
            result["diff_1000"] = measure_diff(store, root, new_root, updates["1000"])
    result["update"] = updates

    # A builder's batch: 1000 new builds for one platform, new versions of the
    # packages it already has, spread over its categories and packages.
    platform_id = builds.platforms[0]
    mine = [key for key in keys if key.startswith(platform_id + "/")]
    platform_packages = sorted({tuple(key.split("/")[1:3]) for key in mine})
    fresh = Builds(seed * 11, builds.platforms)
    batch_keys: dict[str, Any] = {}
    while len(batch_keys) < 1000:
        category, package = rng.choice(platform_packages)
        key, value, _ = fresh.one(platform_id, (category, package))
        batch_keys[key] = value
    clustered, new_root = measure_update(store, root, batch_keys, stats.blocks)
    clustered["platforms"] = len(builds.platforms)
    clustered["platform_entries"] = len(mine)
    clustered["platform_packages"] = len(platform_packages)
    result["update_clustered_1000"] = clustered
    result["diff_clustered_1000"] = measure_diff(store, root, new_root, clustered)

    if not skip_portage:
        packages = bench_packages([p for _, _, p in made], 1000)
        result["portage_packages"] = packages
        ours = result["diff_1000"]["fetch_bytes_to_learn_changes"]
        result["ratios"] = {
            "index_bytes_over_packages_bytes": round(stats.bytes / packages["bytes"], 3),
            "build_seconds_over_packages_write_seconds": round(
                result["build"]["seconds"] / max(packages["write_seconds"], 1e-9), 3
            ),
            "learn_1000_changes_bytes_over_packages_gz": round(
                ours / packages["fetch_bytes_to_learn_1000_changes"], 4
            ),
            # The client also fetches the manifests of the changed builds; a
            # manifest carries about what a Packages entry does.
            "learn_1000_changes_with_manifests_over_packages_gz": round(
                (ours + 1000 * packages["bytes_per_entry"])
                / packages["fetch_bytes_to_learn_1000_changes"],
                4,
            ),
            "learn_clustered_1000_changes_bytes_over_packages_gz": round(
                clustered["new_bytes"] / packages["fetch_bytes_to_learn_1000_changes"], 4
            ),
        }
    result["targets"] = {
        "cold_lookup_blocks_at_most_4": result["cold_lookup"]["blocks_per_lookup"] <= 4,
        "update_1000_writes_at_most_3_percent": (
            updates["1000"]["fraction_of_index_blocks"] <= 0.03
        ),
        "clustered_update_1000_writes_at_most_3_percent": (
            clustered["fraction_of_index_blocks"] <= 0.03
        ),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "index.json")
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-portage", action="store_true", help="leave out the baseline")
    args = parser.parse_args()
    results = []
    for n in args.sizes:
        print(f"index benchmark: {n} entries", file=sys.stderr, flush=True)
        results.append(bench_size(n, args.lookups, args.seed, args.skip_portage))
        print(json.dumps(results[-1], indent=2), file=sys.stderr, flush=True)
    report = {
        "benchmark": "index",
        "machine": machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
