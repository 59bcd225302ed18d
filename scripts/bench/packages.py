#!/usr/bin/env python3
"""Benchmark: building and serving ``ipfsbin serve``'s Packages file for many compatible entries.

An in-memory followed index of ``--entries`` builds (default 10^5) that all
fit a synthetic host; the production code builds the catalog and its
stanzas (:class:`~ipfsbin.catalog.CatalogBuilder` with
:func:`~ipfsbin.serve.packages.render_body`) and the files
(:func:`~ipfsbin.serve.publisher.render_files`: TIMESTAMP book,
Packages.gz) as ``serve``'s publisher does, timed:

- ``first``: nothing verified yet (every manifest and descriptor decoded
  strictly, checked and judged), as on a host's first ``serve``; as there,
  worker processes (one per core beyond the building thread's,
  ``ipfsbin/catalog/decoding.py``) decode while the building thread judges,
  so ``cpu_s`` (this process) leaves their share out: ``workers_cpu_s``;
- ``start_kept``: a restarted ``serve`` on a host that built its catalog
  before: the first build's kept-builds file (``kept_file``: records,
  bytes, write time) read back, then a new cache and builder build from it
  (``read_s`` reading the file, ``from_file`` builds taken from it); its
  body must equal the first build's byte for byte;
- ``start_listing``: the start of a shim process on that host
  (``scripts/bench/shim_start.py``, run three times): "start" is from the
  moment the process is started to the first complete ``Packages`` answer
  (interpreter, imports, the inputs' key, the kept listing read and checked,
  uvicorn listening, the request answered); ``listing_file``: its bytes and
  write time. The catalog's rebuild that follows in the background is
  ``start_kept`` above;
- ``sync_1pct``: a sync changed 1% of the index (0.5% new entries, 0.25%
  yanked, 0.25% removed): only the CPVs the index diff names are judged;
- ``sync_one``: a sync brought one new entry;
- ``host_changed``: this host's installed packages changed (after an emerge)
  in a package no build depends on;

each with its wall time and the CPU time this process spent (``cpu_s``:
less disturbed by other work on a shared machine); then the app serves
the result and curl fetches ``Packages`` and ``Packages.gz`` ten times each
(median). Baselines in the same run:
Portage's own ``PackageIndex.write`` of the same stanzas (what Portage does
for a PKGDIR's Packages file), and Debian's nginx serving the same bytes
from disk (``sendfile on``).

The entries carry no builder attestations (``min_builders = 0``): checking
10^5 signatures costs the first build only, a rebuild reuses the verdicts.
The index fixture is kept in the temporary directory between runs
(``--fresh`` makes it again). Results go to ``bench-results/packages.json``.

Usage: ``.venv/bin/python scripts/bench/packages.py [--entries 100000] [--fresh]``
"""

from __future__ import annotations

import argparse
import gc
import http.client
import io
import json
import os
import pickle
import resource
import shutil
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
from fetch import StaticPublisher, start_nginx  # noqa: E402

from ipfsbin.catalog import BuildCache, CatalogBuilder  # noqa: E402
from ipfsbin.catalog.kept import read_kept, write_kept  # noqa: E402
from ipfsbin.config import ClientPolicy  # noqa: E402
from ipfsbin.descriptor.model import Descriptor  # noqa: E402
from ipfsbin.index.entry import IndexEntry  # noqa: E402
from ipfsbin.index.keys import index_key  # noqa: E402
from ipfsbin.serve.listing import host_digest, listing_key, write_listing  # noqa: E402
from ipfsbin.serve.packages import TimestampBook, package_stanza, render_body  # noqa: E402
from ipfsbin.serve.publisher import render_files  # noqa: E402
from ipfsbin.subscribe.state import Subscription  # noqa: E402
from ipfsbin.trust.state import RootPin  # noqa: E402
from tests.unit.catalog.catalog_helpers import NOW, Index, host_info  # noqa: E402
from tests.unit.maintainer.maintainer_helpers import PLATFORM, make_manifest  # noqa: E402

NAME = "k51test"


def make_index(count: int, *, fresh: bool) -> Index:
    """``count`` builds of distinct CPVs on one platform, each with USE=ssl (kept between runs)."""
    kept = Path(tempfile.gettempdir()) / f"ipfsbin-bench-packages-{count}.pickle"
    if kept.exists() and not fresh:
        with kept.open("rb") as f:
            index: Index = pickle.load(f)  # noqa: S301 - this benchmark's own file
        return index
    index = Index()
    index.store.put_many([PLATFORM.block])
    for i in range(count):
        add(index, f"cat-{i % 50}/pkg{i:06d}-1")
    tmp = kept.with_suffix(f".{os.getpid()}")
    with tmp.open("wb") as f:
        pickle.dump(index, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(kept)
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


def sync_one_percent(index: Index, count: int) -> dict[str, int]:
    """Change 1% of ``count`` entries: half new, a quarter yanked, a quarter removed."""
    keys = sorted(index.entries)
    step = 400
    yanked = keys[::step]
    removed = keys[step // 2 :: step]
    for key in yanked:
        index.entries[key] = index.entries[key].yanked("benchmark")
    for key in removed:
        del index.entries[key]
    new = count // 200
    for i in range(new):
        add(index, f"cat-new/new{i:06d}-1")
    return {"new": new, "yanked": len(yanked), "removed": len(removed)}


def _serve(files: dict[str, Any]) -> tuple[Any, int]:
    import uvicorn

    from ipfsbin.serve.app import Downloads, create_app
    from ipfsbin.serve.run import LOOP

    port = _port()
    app = create_app(StaticPublisher(files), None, Downloads())  # type: ignore[arg-type]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            loop=LOOP,
            http="httptools",
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, port


def _children_cpu() -> float:
    """CPU seconds of the ended child processes (the decoding workers of a build)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _curl_ms(url: str) -> float:
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download}", url],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    if int(out[1]) == 0:
        raise RuntimeError(f"{url} answered nothing")
    return float(out[0]) * 1000


def _median_ms(url: str) -> float:
    return round(statistics.median(_curl_ms(url) for _ in range(10)), 2)


def restart(
    index: Index,
    path: Path,
    builder: CatalogBuilder,
    host: Any,
    policy: ClientPolicy,
    timings: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Write the first build's kept-builds file, then build as a restarted ``serve`` would.

    The restarted process reads the file and builds with a new cache and
    builder (``start_kept``): its ``Packages`` body must be the first build's,
    byte for byte.
    """
    c0, t0 = time.process_time(), time.perf_counter()
    count = write_kept(path, builder.cache.verified())
    written, written_cpu = time.perf_counter() - t0, time.process_time() - c0
    size = path.stat().st_size
    head = index.head(now=int(NOW))
    c1, t1, w1 = time.process_time(), time.perf_counter(), _children_cpu()
    cache = BuildCache(index.store, kept=read_kept(path))
    t2 = time.perf_counter()
    restarted = CatalogBuilder(cache, render=render_body)
    catalog = restarted.build([head], host=host, policy=policy, now=NOW)
    t3 = time.perf_counter()
    files = render_files(catalog, [NAME], TimestampBook(path.with_name("t2.json")), now=NOW,
                         builder=restarted)  # fmt: skip
    c4, t4, w4 = time.process_time(), time.perf_counter(), _children_cpu()
    if restarted.bodies[NAME] != builder.bodies[NAME]:
        raise RuntimeError("the restarted build lists other bytes than the first")
    timings["start_kept"] = {
        "read_s": round(t2 - t1, 3),
        "catalog_s": round(t3 - t2, 3),
        "render_s": round(t4 - t3, 3),
        "total_s": round(t4 - t1, 3),
        "cpu_s": round(c4 - c1, 3),
        "workers_cpu_s": round(w4 - w1, 3),
        "offers": catalog.size,
        "cpvs_judged": restarted.rejudged,
        "from_file": cache.loaded,
    }
    print(f"start_kept: {timings['start_kept']}", flush=True)
    del files, restarted, cache, catalog
    return {
        "records": count,
        "bytes": size,
        "write_s": round(written, 3),
        "write_cpu_s": round(written_cpu, 3),
    }


def start_listing(
    index: Index,
    files: dict[str, Any],
    book: Path,
    policy: ClientPolicy,
    work: Path,
    timings: dict[str, dict[str, Any]],
    runs: int = 3,
) -> dict[str, Any]:
    """Keep the first build's listing, then time shim processes started on it."""
    head = index.head(now=int(NOW))
    sub = Subscription(name=NAME, pin=RootPin(cid=head.head), roots=(head.head,),
                       head=head.head, height=head.height, index_root=head.index_root)  # fmt: skip
    host = host_info()
    key = listing_key([sub], {NAME: True}, host=host_digest(host, host.stamp()), policy=policy,
                      undeliverable=())  # fmt: skip
    path = work / "serve-listing"
    t0 = time.perf_counter()
    size = write_listing(path, key, files)
    written = time.perf_counter() - t0
    spec = work / "start.pickle"
    inputs = {"head": head, "subscription": sub, "policy": policy, "now": NOW,
              "listing": str(path), "book": str(book)}  # fmt: skip
    spec.write_bytes(pickle.dumps(inputs))
    expected = len(files[NAME].text)
    measured = [_start_once(spec, expected) for _ in range(runs)]
    timings["start_listing"] = {
        "total_s": statistics.median(m["total_s"] for m in measured),
        "runs": measured,
    }
    print(f"start_listing: {timings['start_listing']}", flush=True)
    return {"bytes": size, "write_s": round(written, 3)}


def _start_once(spec: Path, expected: int) -> dict[str, Any]:
    """One shim process started: seconds to the first complete ``Packages``, its phases, RSS."""
    port = _port()
    started = time.time()
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts/bench/shim_start.py"),
                             str(spec), str(port)], stdout=subprocess.PIPE)  # fmt: skip
    try:
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", f"/{NAME}/Packages")
                answer = conn.getresponse()
                body = answer.read()
                conn.close()
            except ConnectionRefusedError:
                if proc.poll() is not None:
                    raise RuntimeError("the shim process ended before answering") from None
                time.sleep(0.005)
                continue
            if answer.status != 200 or len(body) != expected:
                raise RuntimeError(f"the shim answered {answer.status}, {len(body)} bytes")
            break
        answered = time.time()
        status = Path(f"/proc/{proc.pid}/status").read_text()
        fields = (line.split(":", 1) for line in status.splitlines())
        rss = {k: int(v.split()[0]) / 1024 for k, v in fields if k in ("VmRSS", "VmHWM")}
        assert proc.stdout is not None
        phases = json.loads(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {
        "total_s": round(answered - started, 3),
        "interpreter_and_imports_s": round(phases["imported"] - started, 3),
        "inputs_key_s": round(phases["keyed"] - phases["imported"], 3),
        "listing_read_s": round(phases["listing_read"] - phases["keyed"], 3),
        "listening_and_answer_s": round(answered - phases["listing_read"], 3),
        "rss_mb": round(rss["VmRSS"], 1),
        "peak_rss_mb": round(rss["VmHWM"], 1),
        "peak_rss_mb_before_the_answer": phases["peak_rss_mb_before_serving"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--fresh", action="store_true", help="make the index fixture again")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results/packages.json")
    args = parser.parse_args()
    started = time.perf_counter()
    index = make_index(args.entries, fresh=args.fresh)
    setup = time.perf_counter() - started
    # the fixture stands for Kubo's repo, another process: the collector need not scan it
    gc.collect()
    gc.freeze()
    print(f"index of {args.entries} entries ready in {setup:.1f} s", flush=True)
    policy = ClientPolicy(min_builders=0)
    builder = CatalogBuilder(BuildCache(index.store), render=render_body)
    work = Path(tempfile.mkdtemp(prefix="ipfsbin-bench-packages-"))
    book = TimestampBook(work / "t.json")
    timings: dict[str, dict[str, Any]] = {}
    files: dict[str, Any] = {}

    def build(step: str, host: Any, now: float) -> None:
        nonlocal files
        head = index.head(now=int(NOW))  # what sync recorded: not part of the build
        c0, t0, w0 = time.process_time(), time.perf_counter(), _children_cpu()
        catalog = builder.build([head], host=host, policy=policy, now=now)
        t1 = time.perf_counter()
        files = render_files(catalog, [NAME], book, now=now, builder=builder, previous=files)
        c2, t2, w2 = time.process_time(), time.perf_counter(), _children_cpu()
        gc.freeze()  # as Publisher.refresh does after a build
        timings[step] = {
            "catalog_s": round(t1 - t0, 3),
            "render_s": round(t2 - t1, 3),
            "total_s": round(t2 - t0, 3),
            "cpu_s": round(c2 - c0, 3),
            "workers_cpu_s": round(w2 - w0, 3),
            "offers": catalog.size,
            "cpvs_judged": builder.rejudged,
        }
        print(f"{step}: {timings[step]}", flush=True)

    host = host_info()
    build("first", host, NOW)
    kept = restart(index, work / "catalog-builds", builder, host, policy, timings)
    listing = start_listing(index, files, work / "t.json", policy, work, timings)
    changed = sync_one_percent(index, args.entries)
    build("sync_1pct", host, NOW + 10)
    add(index, "cat-1/newpkg-1")
    build("sync_one", host, NOW + 20)
    installed = {**host.installed, "app-misc/other": {"0": "0"}}
    build("host_changed", host_info(installed=installed), NOW + 30)
    file = files[NAME]
    offers = list(file.offers.values())
    # baseline: Portage writing the same stanzas with its own PackageIndex
    from portage.getbinpkg import PackageIndex

    portage_index = PackageIndex(
        allowed_pkg_keys=None, default_header_data={"VERSION": "0"}, default_pkg_data={}
    )
    portage_index.packages = [package_stanza(o) for o in offers]
    t0 = time.perf_counter()
    out = io.StringIO()
    c0 = time.process_time()
    portage_index.write(out)
    portage_write = time.perf_counter() - t0
    portage_cpu = time.process_time() - c0
    served: dict[str, dict[str, float]] = {}
    static = work / "static" / NAME
    static.mkdir(parents=True)
    (static / "Packages").write_bytes(file.text)
    (static / "Packages.gz").write_bytes(file.gz)
    server, port = _serve(files)
    nginx, nginx_port = start_nginx(shutil.which("nginx") or "/usr/sbin/nginx", work / "static")
    try:
        for kind in ("Packages", "Packages.gz"):
            shim = _median_ms(f"http://127.0.0.1:{port}/{NAME}/{kind}")
            baseline = _median_ms(f"http://127.0.0.1:{nginx_port}/{NAME}/{kind}")
            served[kind] = {
                "shim_ms": shim,
                "nginx_ms": baseline,
                "shim_vs_nginx": round(shim / baseline, 2),
            }
    finally:
        server.should_exit = True
        nginx.terminate()
        nginx.wait(timeout=30)
    results = {
        "entries": args.entries,
        "sync_1pct": changed,
        "offers": len(file.offers),
        "builds": timings,
        "serve_ms_median": served,
        "bytes": {"Packages": len(file.text), "Packages.gz": len(file.gz)},
        "portage_packageindex_write_s": round(portage_write, 3),
        "first_build_vs_portage_write": round(timings["first"]["total_s"] / portage_write, 2),
        "start_kept_vs_portage_write": round(timings["start_kept"]["total_s"] / portage_write, 2),
        "kept_file": kept,
        "start": "shim process started -> first complete Packages answer, from the kept listing",
        "start_s": timings["start_listing"]["total_s"],
        "start_vs_portage_write": round(timings["start_listing"]["total_s"] / portage_write, 2),
        "listing_file": listing,
        "sync_1pct_vs_portage_write": round(timings["sync_1pct"]["total_s"] / portage_write, 2),
        "portage_packageindex_write_cpu_s": round(portage_cpu, 3),
        "sync_1pct_cpu_vs_portage_write_cpu": round(timings["sync_1pct"]["cpu_s"] / portage_cpu, 2),
        "index_setup_s": round(setup, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "targets": "Packages for 10^5 compatible entries built in <= 2 s and served in <= 20 ms; "
        "ready <= 2 s after a start of the shim",
        "machine": bench_report.machine(
            "2 cores shared with parallel work; wall times are pessimistic"
        ),
    }
    shutil.rmtree(work, ignore_errors=True)
    bench_report.write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
