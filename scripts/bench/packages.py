#!/usr/bin/env python3
"""Benchmark: building and serving ``ipfsbin serve``'s Packages file for many compatible entries.

An in-memory followed index of ``--entries`` builds (default 10^5) that all
fit a synthetic host; the production code builds the catalog
(:func:`~ipfsbin.catalog.build_catalog`) and renders the files
(:func:`~ipfsbin.serve.publisher.render_files`: stanzas, TIMESTAMP book,
Packages.gz) as ``serve``'s publisher does, timed:

- ``first``: a cold cache (every manifest and descriptor loaded);
- ``head_moved``: the index gained one entry (what a ``sync`` brings);
- ``host_changed``: this host's installed packages changed (after an emerge);

then the app serves the result and curl fetches ``Packages`` and
``Packages.gz`` ten times each (median). Baseline in the same run: Portage's
own ``PackageIndex.write`` of the same stanzas (what Portage does for a
PKGDIR's Packages file).

The entries carry no builder attestations (``min_builders = 0``): checking
10^5 signatures costs the first build only, a rebuild reuses the verdicts.
Results go to ``bench-results/packages.json``.

Usage: ``.venv/bin/python scripts/bench/packages.py [--entries 100000]``
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_report  # noqa: E402
from fetch import StaticPublisher  # noqa: E402

from ipfsbin.catalog import BuildCache, build_catalog  # noqa: E402
from ipfsbin.config import ClientPolicy  # noqa: E402
from ipfsbin.descriptor.model import Descriptor  # noqa: E402
from ipfsbin.index.entry import IndexEntry  # noqa: E402
from ipfsbin.index.keys import index_key  # noqa: E402
from ipfsbin.serve.packages import TimestampBook, package_stanza  # noqa: E402
from ipfsbin.serve.publisher import render_files  # noqa: E402
from tests.unit.catalog.catalog_helpers import NOW, Index, host_info  # noqa: E402
from tests.unit.maintainer.maintainer_helpers import PLATFORM, make_manifest  # noqa: E402


def make_index(count: int) -> Index:
    """``count`` builds of distinct CPVs on one platform, each with USE=ssl."""
    index = Index()
    index.store.put_many([PLATFORM.block])
    for i in range(count):
        add(index, f"cat-{i % 50}/pkg{i:06d}-1")
    return index


def add(index: Index, cpv: str) -> None:
    desc = Descriptor(
        platform=PLATFORM.cid, cpv=cpv, slot="0", subslot="0", repository="gentoo", eapi="8",
        use=("ssl",), iuse=("ssl",), deps=(), requires=(),
    )  # fmt: skip
    manifest = make_manifest(desc, cpv.encode())
    manifest_cid, block = manifest.to_block()
    index.store.put_many([desc.block, (manifest_cid, block)])
    index.entries[index_key(PLATFORM.cid, cpv, desc.cid)] = IndexEntry.new(manifest_cid)


def _serve(files: dict[str, Any]) -> tuple[Any, int]:
    import uvicorn

    from ipfsbin.serve.app import Downloads, create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    app = create_app(StaticPublisher(files), None, Downloads())  # type: ignore[arg-type]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, port


def _curl_ms(url: str) -> float:
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download}", url],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    if int(out[1]) == 0:
        raise RuntimeError(f"{url} answered nothing")
    return float(out[0]) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results/packages.json")
    args = parser.parse_args()
    started = time.perf_counter()
    index = make_index(args.entries)
    setup = time.perf_counter() - started
    print(f"index of {args.entries} entries made in {setup:.1f} s", flush=True)
    policy = ClientPolicy(min_builders=0)
    cache = BuildCache(index.store)
    book = TimestampBook(Path(tempfile.mkdtemp(prefix="ipfsbin-bench-packages-")) / "t.json")
    name = "k51test"
    timings: dict[str, dict[str, float]] = {}

    def build(step: str, host: Any, now: float) -> dict[str, Any]:
        head = index.head(now=int(NOW))  # what sync recorded: not part of the build
        t0 = time.perf_counter()
        catalog = build_catalog([head], host=host, policy=policy, cache=cache, now=now)
        t1 = time.perf_counter()
        files = render_files(catalog, [name], book, now=now)
        t2 = time.perf_counter()
        timings[step] = {
            "catalog_s": round(t1 - t0, 3),
            "render_s": round(t2 - t1, 3),
            "total_s": round(t2 - t0, 3),
            "offers": catalog.size,
        }
        print(f"{step}: {json.dumps(timings[step])}", flush=True)
        return files

    host = host_info()
    build("first", host, NOW)
    add(index, "cat-1/newpkg-1")
    build("head_moved", host, NOW + 10)
    installed = {**host.installed, "app-misc/other": {"0": "0"}}
    files = build("host_changed", host_info(installed=installed), NOW + 20)
    offers = list(files[name].offers.values())
    # baseline: Portage writing the same stanzas with its own PackageIndex
    from portage.getbinpkg import PackageIndex

    portage_index = PackageIndex(
        allowed_pkg_keys=None, default_header_data={"VERSION": "0"}, default_pkg_data={}
    )
    portage_index.packages = [package_stanza(o) for o in offers]
    t0 = time.perf_counter()
    out = io.StringIO()
    portage_index.write(out)
    portage_write = time.perf_counter() - t0
    server, port = _serve(files)
    try:
        base = f"http://127.0.0.1:{port}/{name}"
        served = {
            kind: round(statistics.median(_curl_ms(f"{base}/{kind}") for _ in range(10)), 2)
            for kind in ("Packages", "Packages.gz")
        }
    finally:
        server.should_exit = True
    file = files[name]
    results = {
        "entries": args.entries,
        "offers": len(file.offers),
        "builds": timings,
        "serve_ms_median": served,
        "bytes": {"Packages": len(file.text), "Packages.gz": len(file.gz)},
        "portage_packageindex_write_s": round(portage_write, 3),
        "first_build_vs_portage_write": round(timings["first"]["total_s"] / portage_write, 2),
        "index_setup_s": round(setup, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "targets": "Packages for 10^5 compatible entries built in <= 2 s and served in <= 20 ms",
        "machine": bench_report.machine(
            "2 cores shared with parallel work; wall times are pessimistic"
        ),
    }
    bench_report.write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
