#!/usr/bin/env python3
"""Benchmark: ``publish_binpkgs`` against a raw Kubo ``add`` of binpkgs of the same size.

Binpkgs: a real one built by ``emerge --buildpkg`` in the test playground
(dev-libs/libfoo-1, about 10 KB), and copies of it whose image carries an
extra file of random bytes (so zstd cannot shrink it), rewritten with a
valid GPKG Manifest, of about 10 MB and 200 MB. For each size and trial two
distinct files are made, one published and one added raw, so neither run
finds the other's blocks already stored. Both go to the same Kubo daemon
with the same options (CIDv1, raw leaves, size-1048576, pinned).

The publish time covers everything ``publish_binpkgs`` (what ``ipfsbin
publish`` calls) does: the cheap metadata read and sharing policy, the add
of the file overlapped with its sha256/md5/sha1 and with Portage's Manifest
check and the ELF scan, normalizing the descriptor, storing and pinning the
platform, descriptor, manifest and attestation.

Usage: ``.venv/bin/python scripts/bench/publish.py [--trials N] [--sizes 10K,10M,200M]
``
Writes ``bench-results/publish.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ipfsbin.builder.publish import (  # noqa: E402
    detect_host_facts,
    publish_binpkgs,
)
from ipfsbin.kubo.install import ensure_kubo  # noqa: E402
from ipfsbin.kubo.node import ManagedNode  # noqa: E402
from ipfsbin.manifest import UNIXFS_CHUNKER  # noqa: E402
from ipfsbin.trust.keys import SigningKey  # noqa: E402
from tests.playground.builder import BuilderPlayground  # noqa: E402
from tests.playground.craft import rewrite_gpkg  # noqa: E402

TEMPLATE = "dev-libs/libfoo-1"
UNITS = {"K": 1000, "M": 1000**2, "G": 1000**3}


def parse_size(text: str) -> int:
    text = text.strip().upper()
    if text[-1] in UNITS:
        return int(float(text[:-1]) * UNITS[text[-1]])
    return int(text)


def make_binpkg(template: Path, target_size: int, dst: Path, seed: int) -> Path:
    """A valid gpkg of about ``target_size`` bytes: ``template`` plus random image bytes."""
    padding = target_size - template.stat().st_size - 4096
    if padding <= 0:
        # Still a distinct file: a tiny extra member with the seed.
        return rewrite_gpkg(template, dst, extra_image=[(f"image/seed-{seed}", b"x")])
    payload = os.urandom(padding)
    return rewrite_gpkg(template, dst, extra_image=[(f"image/usr/share/payload-{seed}", payload)])


def machine_info(node: ManagedNode) -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with node.client() as client:
        kubo = client.version().version
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_bytes": mem,
        "kubo": kubo,
        "chunker": UNIXFS_CHUNKER,
    }


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def run(sizes: list[int], trials: int, out: Path) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="ipfsbin-bench-publish-"))
    builder = BuilderPlayground.create()
    try:
        builder.emerge("--oneshot", "--buildpkg", "--quiet-build=y", "dev-libs/libfoo")
        template = builder.refresh()[TEMPLATE]
        host = detect_host_facts(config_root=builder.eprefix)
        key = SigningKey.generate()
        node = ManagedNode(work / "repo", binary=ensure_kubo(), profile="test", routing="dht")
        with node:
            info = machine_info(node)
            rows = []
            with node.client(timeout=3600.0) as client:
                for size in sizes:
                    for trial in range(trials):
                        kinds = ["raw", "publish"]
                        files = {
                            what: make_binpkg(
                                template,
                                size,
                                work / f"{what}-{size}-{trial}.gpkg.tar",
                                len(kinds) * trial + i,
                            )
                            for i, what in enumerate(kinds)
                        }
                        # Rotate which goes first so page-cache and repo effects even out.
                        shift = trial % len(kinds)
                        times: dict[str, float] = {}
                        for what in kinds[shift:] + kinds[:shift]:
                            path = files[what]
                            start = time.perf_counter()
                            if what == "raw":
                                client.add(path, chunker=UNIXFS_CHUNKER, pin=True)
                            else:
                                publish_binpkgs([path], client=client, key=key, host=host)
                            times[what] = time.perf_counter() - start
                        nbytes = files["publish"].stat().st_size
                        row: dict[str, Any] = {
                            "size_bytes": nbytes,
                            "trial": trial,
                            "raw_add_s": round(times["raw"], 4),
                            "publish_s": round(times["publish"], 4),
                            "raw_add_MBps": round(nbytes / times["raw"] / 1e6, 1),
                            "publish_MBps": round(nbytes / times["publish"] / 1e6, 1),
                            "ratio": round(times["raw"] / times["publish"], 3),
                        }
                        rows.append(row)
                        print(json.dumps(row), file=sys.stderr)
                        for path in files.values():
                            path.unlink()
        summary = []
        for size in sizes:
            mine = [r for r in rows if abs(r["size_bytes"] - size) <= max(size // 10, 20_000)]
            if not mine:
                continue
            raw_s = median([r["raw_add_s"] for r in mine])
            pub_s = median([r["publish_s"] for r in mine])
            nbytes = mine[0]["size_bytes"]
            entry: dict[str, Any] = {
                "size_bytes": nbytes,
                "median_raw_add_s": raw_s,
                "median_publish_s": pub_s,
                "raw_add_MBps": round(nbytes / raw_s / 1e6, 1),
                "publish_MBps": round(nbytes / pub_s / 1e6, 1),
                "ratio": round(raw_s / pub_s, 3),
                # The median of the per-trial ratios: each pairs runs made moments apart.
                "median_trial_ratio": median([r["ratio"] for r in mine]),
                "target_ratio": 0.8,
            }
            summary.append(entry)
        result = {
            "benchmark": "publish",
            "machine": info,
            "trials": trials,
            "summary": summary,
            "runs": rows,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        return result
    finally:
        builder.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--sizes", default="10K,10M,200M")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "publish.json")
    args = parser.parse_args()
    if shutil.which("zstd") is None:
        print("needs zstd on PATH", file=sys.stderr)
        return 2
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    result = run(sizes, args.trials, args.out)
    for row in result["summary"]:
        print(
            f"{row['size_bytes']:>11} B  raw add {row['raw_add_MBps']:>7} MB/s  "
            f"publish {row['publish_MBps']:>7} MB/s  ratio {row['ratio']} "
            f"(median of trials {row['median_trial_ratio']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
