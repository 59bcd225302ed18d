#!/usr/bin/env python3
"""Benchmark: how fast ``ipfsbin serve`` hands a binpkg to Portage, against plain servers.

One run, side by side on the same random files (``--sizes`` in MB, default
1, 50, 500), each fetched with curl to /dev/null (the same client for every
HTTP server):

- ``nginx``: Debian's nginx serving the file from disk (baseline for HTTP);
- ``gateway``: Kubo's own HTTP gateway for the same CID, blocks local;
- ``cat_cold``: ``ipfs cat`` on the local node while the blocks are only on
  a connected loopback peer (the local repo is garbage-collected first);
- ``shim_warm``: ``ipfsbin serve``'s HTTP app and streaming path (the
  manifest's BinpkgVerifier over Kubo's ``cat``), blocks local;
- ``shim_cold``: the same with the blocks only on the peer.

Also: the shim's time to first byte (warm, 1 MB file, median of 20); its
peak RSS while serving 16 parallel downloads of the largest file; and
rendering and serving a ``Packages`` file of ``--entries`` offers (default
10^5). The shim runs in its own process (``--serve``) fed a snapshot of
offers directly, so no index or Portage host is needed; everything else in
its path is the production code.

Needs nginx (``apt-get install nginx``; ``scripts/lib/setup.sh`` has
``ensure_bench_packages``) and curl. Results go to
``bench-results/fetch.json``.

Usage: ``.venv/bin/python scripts/bench/fetch.py [--sizes 1,50,500] [--entries 100000]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ipfsbin.catalog.build import Build, Offer  # noqa: E402
from ipfsbin.codec.cid import CID  # noqa: E402
from ipfsbin.descriptor.model import Descriptor, OptProfile, Package, Platform  # noqa: E402
from ipfsbin.kubo.install import ensure_kubo  # noqa: E402
from ipfsbin.kubo.node import ManagedNode  # noqa: E402
from ipfsbin.manifest import BuildHost, Manifest  # noqa: E402
from ipfsbin.serve.packages import PackagesFile  # noqa: E402

MB = 1_000_000
PLATFORM = Platform(
    chost="x86_64-pc-linux-gnu", arch="amd64", profile="default/linux/amd64/23.0",
    libc="glibc", libc_version="2.39", compiler="gcc", compiler_version="13.2.1",
    cflags=OptProfile(target="x86_64", tune=None, opt="2", flags=()), cxxflags=None, ldflags=(),
)  # fmt: skip


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _offer(i: int, cid: CID, size: int, digests: tuple[bytes, bytes, bytes]) -> Offer:
    cpv = f"bench-cat/pkg{i:06d}-1"
    desc = Descriptor(
        platform=PLATFORM.cid, cpv=cpv, slot="0", subslot="0", repository="bench", eapi="8",
        use=(), iuse=(), deps=(), requires=(),
    )  # fmt: skip
    sha256, sha1, md5 = digests
    manifest = Manifest.create(
        descriptor=desc.cid, binpkg=cid, format="gpkg", size=size, sha256=sha256, sha1=sha1,
        md5=md5, portage={"CPV": cpv, "EAPI": "8", "SLOT": "0", "BUILD_TIME": "1767225600"},
        build=BuildHost(chost=PLATFORM.chost),
    )  # fmt: skip
    build = Build(
        manifest_cid=manifest.to_block()[0],
        manifest=manifest,
        package=Package(descriptor=desc, platform=PLATFORM),
        agreeing=(),
    )
    return Offer(
        subscription="bench", build=build, rank=1, build_id=i + 1, build_time=1767225600,
        path=f"bench-cat/pkg{i:06d}/pkg{i:06d}-1-{i + 1}.gpkg.tar",
    )  # fmt: skip


class _Snapshot:
    def __init__(self, files: dict[str, PackagesFile]) -> None:
        self.files = files


class _Publisher:
    """What the app reads from a publisher: the snapshot (and where to report bad bytes)."""

    def __init__(self, files: dict[str, PackagesFile]) -> None:
        self.snapshot = _Snapshot(files)

    def mark_undeliverable(self, manifest: CID, reason: str) -> None:
        sys.stderr.write(f"bench shim: {manifest} undeliverable: {reason}\n")


def serve(spec_path: Path, port: int, api: str, entries: int) -> None:
    """The shim process: offers for the bench files (+ ``entries`` synthetic ones)."""
    import uvicorn

    from ipfsbin.kubo.client import KuboClient
    from ipfsbin.serve.app import Downloads, create_app
    from ipfsbin.serve.run import KuboSource

    spec = json.loads(spec_path.read_text())
    offers = [
        _offer(i, CID.from_text(f["cid"]), f["size"],
               (bytes.fromhex(f["sha256"]), bytes.fromhex(f["sha1"]), bytes.fromhex(f["md5"])))
        for i, f in enumerate(spec)
    ]  # fmt: skip
    files = {"bench": PackagesFile.render("bench", offers, int(time.time()))}
    if entries:
        first = offers[0].build.manifest
        digests = (first.sha256, first.sha1, first.md5)
        many = [_offer(i, first.binpkg, first.size, digests) for i in range(entries)]
        started = time.perf_counter()
        files["many"] = PackagesFile.render("many", many, int(time.time()))
        render = time.perf_counter() - started
        (spec_path.parent / "render.json").write_text(json.dumps({"seconds": render}))
    client = KuboClient.from_multiaddr(api, timeout=120.0)
    app = create_app(_Publisher(files), KuboSource(client), Downloads())  # type: ignore[arg-type]
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _curl(url: str) -> tuple[float, float, int]:
    fmt = "%{time_total} %{time_starttransfer} %{size_download}"
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", fmt, url], capture_output=True, text=True,
        check=True,
    ).stdout.split()  # fmt: skip
    return float(out[0]), float(out[1]), int(out[2])


def _rate(size: int, seconds: float) -> float:
    return round(size / seconds / 1e9, 3)


def _rss_peak(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _rss_now(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,50,500")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results/fetch.json")
    parser.add_argument("--serve", nargs=3, metavar=("SPEC", "PORT", "API"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]), args.serve[2], args.entries)
        return 0
    # a SIGTERM must still stop the daemons and servers this run started (finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("fetch.py needs nginx: apt-get install nginx")
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="ipfsbin-bench-fetch-"))
    binary = ensure_kubo()
    nodes = [
        ManagedNode(work / name, binary=binary, profile="test", routing="dht")
        for name in ("local", "peer")
    ]
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, Any] = {"sizes_mb": sizes, "files": {}}
    try:
        for node in nodes:
            node.start(timeout=60)
        local, peer = nodes
        with local.client() as lc, peer.client() as pc:
            lc.swarm_connect(peer.swarm_addrs())
            spec = []
            for size_mb in sizes:
                path = work / f"file-{size_mb}mb.gpkg.tar"
                with path.open("wb") as out:
                    for _ in range(size_mb):
                        out.write(os.urandom(MB))
                data_hash = [hashlib.sha256(), hashlib.sha1(), hashlib.md5()]  # noqa: S324
                with path.open("rb") as f:
                    while chunk := f.read(1 << 20):
                        for h in data_hash:
                            h.update(chunk)
                added = pc.add(path, name=path.name, chunker="size-1048576")
                spec.append({
                    "cid": str(added.cid), "size": size_mb * MB, "path": str(path),
                    "sha256": data_hash[0].hexdigest(), "sha1": data_hash[1].hexdigest(),
                    "md5": data_hash[2].hexdigest(),
                })  # fmt: skip
            spec_path = work / "spec.json"
            spec_path.write_text(json.dumps(spec))
            shim_port, nginx_port = _port(), _port()
            shim = subprocess.Popen(  # noqa: S603
                [sys.executable, __file__, "--entries", str(args.entries), "--serve",
                 str(spec_path), str(shim_port), local.api_multiaddr],
            )  # fmt: skip
            procs.append(shim)
            conf = work / "nginx.conf"
            # as root, nginx's workers would run as nobody and not see the private work dir
            user = "user root;\n" if os.getuid() == 0 else ""
            conf.write_text(
                f"{user}daemon off; pid {work}/nginx.pid; error_log {work}/nginx.err;\n"
                "events {}\n"
                f"http {{ access_log off; sendfile on; server {{ listen 127.0.0.1:{nginx_port}; "
                f"root {work}; }} }}\n"
            )
            procs.append(subprocess.Popen([nginx, "-c", str(conf), "-p", str(work)]))  # noqa: S603
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                try:
                    if _curl(f"http://127.0.0.1:{shim_port}/bench/Packages")[2] > 0:
                        break
                except subprocess.CalledProcessError:
                    time.sleep(0.5)
            packages = json.loads((work / "render.json").read_text()) if args.entries else {}
            gateway = local.gateway_url.rstrip("/")
            offers = {
                int(f["size"] / MB): f"http://127.0.0.1:{shim_port}/bench/"
                f"bench-cat/pkg{i:06d}/pkg{i:06d}-1-{i + 1}.gpkg.tar"
                for i, f in enumerate(spec)
            }
            for f in spec:
                size_mb, cid, size = int(f["size"] / MB), f["cid"], f["size"]
                row: dict[str, float] = {}
                # cold: the blocks are only on the peer (local repo garbage-collected)
                local.run("repo", "gc", timeout=600)
                started = time.perf_counter()
                out = local.run("cat", cid, timeout=600)
                row["cat_cold"] = _rate(len(out.stdout), time.perf_counter() - started)
                del out
                local.run("repo", "gc", timeout=600)
                total, _, got = _curl(offers[size_mb])
                row["shim_cold"] = _rate(got, total)
                # warm: every block local
                lc.pin_add([CID.from_text(cid)], recursive=True, timeout=600)
                total, _, got = _curl(f"http://127.0.0.1:{nginx_port}/{Path(f['path']).name}")
                row["nginx"] = _rate(got, total)
                total, _, got = _curl(f"{gateway}/ipfs/{cid}")
                row["gateway"] = _rate(got, total)
                total, _, got = _curl(offers[size_mb])
                row["shim_warm"] = _rate(got, total)
                assert got == size, (got, size)
                row["shim_warm_vs_gateway"] = round(row["shim_warm"] / row["gateway"], 2)
                row["shim_cold_vs_cat_cold"] = round(row["shim_cold"] / row["cat_cold"], 2)
                results["files"][f"{size_mb}MB"] = row
                print(f"{size_mb} MB: {json.dumps(row)}", flush=True)
            smallest = offers[min(offers)]
            firsts = [_curl(smallest)[1] for _ in range(20)]
            results["shim_first_byte_ms_warm"] = round(statistics.median(firsts) * 1000, 1)
            biggest = offers[max(offers)]
            baseline_rss = _rss_now(shim.pid)
            peak = [0]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], _rss_now(shim.pid))
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample)
            sampler.start()
            started = time.perf_counter()
            curls = [
                subprocess.Popen(["curl", "-s", "-o", "/dev/null", biggest])  # noqa: S603
                for _ in range(16)
            ]
            codes = [c.wait() for c in curls]
            elapsed = time.perf_counter() - started
            done.set()
            sampler.join()
            results["parallel_16"] = {
                "file_mb": max(offers),
                "all_ok": all(c == 0 for c in codes),
                "seconds": round(elapsed, 2),
                "aggregate_gbps": _rate(16 * max(offers) * MB, elapsed),
                "rss_before_mb": round(baseline_rss / 2**20, 1),
                "rss_peak_mb": round(peak[0] / 2**20, 1),
            }
            if args.entries:
                serve_times = [
                    _curl(f"http://127.0.0.1:{shim_port}/many/Packages.gz")[0] for _ in range(10)
                ]
                packages["entries"] = args.entries
                packages["render_seconds"] = round(packages.pop("seconds"), 3)
                packages["serve_ms_median"] = round(statistics.median(serve_times) * 1000, 2)
                results["packages"] = packages
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for node in nodes:
            node.stop()
        shutil.rmtree(work, ignore_errors=True)
    results["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(json.dumps(results, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
