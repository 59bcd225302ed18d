#!/usr/bin/env python3
"""Benchmark: how fast ``ipfsbin serve`` hands a binpkg to Portage, against plain servers.

One run, side by side on the same random files (``--sizes`` in MB, default
1, 50, 500), each fetched with curl to /dev/null (the same client for every
HTTP server):

- ``nginx``: Debian's nginx serving the file from disk (baseline for HTTP);
- ``gateway``: Kubo's own HTTP gateway for the same CID, blocks local;
- ``cat_cold``: ``ipfs cat`` on the local node while the blocks are only on
  a connected loopback peer (the local repo is garbage-collected first);
- ``shim_warm``: ``ipfsbin serve``'s HTTP app and streaming path, blocks
  local: as for the managed node, the shim may read the local repo's block
  files (``IPFSBIN_REPO``), each checked against its CID from the manifest's
  signed one;
- ``shim_cold``: the same with the blocks only on the peer (the repo lacks
  them, so the bytes come through the node's gateway);
- ``shim_warm_via_gateway``: the shim without the repo, bytes through the
  node's gateway, blocks local;
- ``shim_warm_uvloop``: ``shim_warm`` on uvloop, the loop it ran on before (when
  uvloop is installed), fetched in turn with the other two;
- ``shim_warm_rpc``: the shim forced onto its fallback, Kubo's RPC ``cat``
  (what every download used before the gateway path), blocks local.

Warm rates are the best of ``--repeat`` fetches, the gateway's and the
shim's taken in turn so both see the same load; the CPU seconds the shim
(its event loop and its reading and hashing threads apart), Kubo and curl
spent on each warm fetch are recorded too (they depend far less on the
machine's load than the rates do), and one core's sha256 rate, which
bounds one checked stream (``sha256_one_core_gbps``). Also: the time to the first
body byte, warm, at every size (median of 10; the connection is closed
after it), for the shim and the gateway; the shim's peak RSS while serving
16 parallel downloads of the largest file; the load average beside each
size. The
shims run in their own processes (``--serve``) fed a snapshot of offers
directly, so no index or Portage host is needed; everything else in their
path is the production code (:func:`ipfsbin.serve.run.byte_source`).
Building and serving ``Packages`` is measured by ``scripts/bench/packages.py``;
the user's whole update (``emerge -uDN @world --getbinpkgonly`` after a sync
bringing updates of 20 installed packages, through the shim with and
without prefetch and through nginx) by ``scripts/bench/prefetch.py``: it
needs Portage prefixes and a followed index, which this one does without.

Needs nginx (``apt-get install nginx``; ``scripts/lib/setup.sh`` has
``ensure_bench_packages``) and curl. Results go to
``bench-results/fetch.json``.

Usage: ``.venv/bin/python scripts/bench/fetch.py [--sizes 1,50,500] [--repeat 3] [--out FILE]``
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import resource
import shutil
import signal
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

from ipfsbin.catalog.build import Offer  # noqa: E402
from ipfsbin.catalog.cache import Build  # noqa: E402
from ipfsbin.codec.cid import CID  # noqa: E402
from ipfsbin.descriptor.model import Descriptor, Package  # noqa: E402
from ipfsbin.kubo.install import ensure_kubo  # noqa: E402
from ipfsbin.kubo.node import ManagedNode  # noqa: E402
from ipfsbin.manifest import BuildHost, Manifest  # noqa: E402
from ipfsbin.serve.packages import PackagesFile  # noqa: E402
from tests.unit.maintainer.maintainer_helpers import PLATFORM as _PLATFORM  # noqa: E402

MB = 1_000_000
LOOP_ENV = "IPFSBIN_BENCH_LOOP"
PLATFORM = _PLATFORM


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


class StaticSnapshot:
    def __init__(self, files: dict[str, PackagesFile]) -> None:
        self.files = files


class StaticPublisher:
    """What the app reads from a publisher: the snapshot (and where to report bad bytes)."""

    def __init__(self, files: dict[str, PackagesFile]) -> None:
        self.snapshot = StaticSnapshot(files)

    def mark_undeliverable(self, manifest: CID, reason: str) -> None:
        sys.stderr.write(f"bench shim: {manifest} undeliverable: {reason}\n")


def serve(spec_path: Path, port: int, api: str, gateway: str) -> None:
    """A shim process offering the bench files; ``gateway`` ``-`` leaves only the RPC."""
    import uvicorn

    from ipfsbin.kubo.client import KuboClient
    from ipfsbin.serve.app import Downloads, create_app
    from ipfsbin.serve.run import LOOP, ServeOptions, byte_source
    from ipfsbin.serve.sources import KuboSource

    spec = json.loads(spec_path.read_text())
    offers = [
        _offer(i, CID.from_text(f["cid"]), f["size"],
               (bytes.fromhex(f["sha256"]), bytes.fromhex(f["sha1"]), bytes.fromhex(f["md5"])))
        for i, f in enumerate(spec)
    ]  # fmt: skip
    files = {"bench": PackagesFile.render("bench", offers, int(time.time()))}
    client = KuboClient.from_multiaddr(api, timeout=120.0)
    if gateway == "-":
        source: Any = KuboSource(client)
        sys.stderr.write("bench shim: binpkg bytes from Kubo's RPC cat\n")
    else:
        os.environ["IPFSBIN_GATEWAY"] = gateway
        source, where = byte_source(client, ServeOptions())
        sys.stderr.write(f"bench shim: binpkg bytes from {where}\n")
    app = create_app(StaticPublisher(files), source, Downloads())  # type: ignore[arg-type]
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
        loop=os.environ.get(LOOP_ENV, LOOP),
        http="httptools",
    )  # fmt: skip


def _curl(url: str) -> tuple[float, float, int]:
    fmt = "%{time_total} %{time_starttransfer} %{size_download}"
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", fmt, url], capture_output=True, text=True,
        check=True,
    ).stdout.split()  # fmt: skip
    return float(out[0]), float(out[1]), int(out[2])


def _cpu_seconds(pid: int, tid: int | None = None) -> float:
    """CPU seconds of process ``pid``, or of its thread ``tid``."""
    where = f"/proc/{pid}" if tid is None else f"/proc/{pid}/task/{tid}"
    fields = Path(f"{where}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of ``pid``."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found[int(task.name)] = _cpu_seconds(pid, int(task.name))
        except (OSError, ValueError):
            continue  # a thread that ended meanwhile
    return found


def _timed_curl(url: str, pids: dict[str, int]) -> tuple[float, int, dict[str, float]]:
    """curl's total time and bytes, and the CPU seconds spent meanwhile by each of ``pids``,
    by curl, and, for ``shim``, by its event loop (its main thread), its other threads
    (reading and sha256) and the busiest of all its threads: on an idle machine with two
    cores a download takes at least the busiest thread's time and half of all the CPU."""
    before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    shim = pids.get("shim")
    threads_before = None if shim is None else _thread_cpu(shim)
    curl_before = _children_cpu()
    total, _, got = _curl(url)
    spent = {name: round(_cpu_seconds(pid) - before[name], 2) for name, pid in pids.items()}
    spent["curl"] = round(_children_cpu() - curl_before, 2)
    if shim is not None and threads_before is not None:
        threads = _thread_cpu(shim)
        used = {tid: cpu - threads_before.get(tid, 0.0) for tid, cpu in threads.items()}
        spent["shim_loop"] = round(used.get(shim, 0.0), 2)
        spent["shim_threads"] = round(spent["shim"] - spent["shim_loop"], 2)
        spent["shim_busiest_thread"] = round(max(used.values(), default=0.0), 2)
    return total, got, spent


def _sha256_gbps(megabytes: int = 256) -> float:
    """One core's sha256 over 1 MiB pieces in memory: what bounds one checked stream."""
    piece = os.urandom(1 << 20)
    digest = hashlib.sha256()
    started = time.perf_counter()
    for _ in range(megabytes):
        digest.update(piece)
    return _rate(megabytes << 20, time.perf_counter() - started)


def _first_body_byte(url: str) -> float:
    """Seconds from connecting to the first byte of the body; the connection is then dropped."""
    parts = url.split("/", 3)
    host, port = parts[2].split(":")
    started = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=60) as conn:
        conn.sendall(f"GET /{parts[3]} HTTP/1.1\r\nHost: {parts[2]}\r\n\r\n".encode())
        seen = b""
        while b"\r\n\r\n" not in seen or seen.endswith(b"\r\n\r\n"):
            piece = conn.recv(65536)
            if not piece:
                raise RuntimeError(f"{url}: closed before the body")
            seen += piece
        return time.perf_counter() - started


def _load() -> float:
    return round(os.getloadavg()[0], 1)


def _rate(size: int, seconds: float) -> float:
    return round(size / seconds / 1e9, 4)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def _rss_now(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _start_shim(
    spec: Path, api: str, gateway: str, repo: Path | None = None, loop: str | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """A shim process; with ``repo``, it may read that repo's block files (as the managed
    node's shim does), else it reads through ``gateway`` (``-``: the RPC); ``loop``: on
    that uvicorn loop instead of the shim's own."""
    port = _port()
    env = {k: v for k, v in os.environ.items() if k not in ("IPFSBIN_REPO", "IPFSBIN_API")}
    if loop is not None:
        env[LOOP_ENV] = loop
    if repo is not None:
        env["IPFSBIN_REPO"] = str(repo)
    else:
        env["IPFSBIN_API"] = api  # a daemon named: the managed node's repo is not looked for
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, __file__, "--serve", str(spec), str(port), api, gateway], env=env
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if _curl(f"http://127.0.0.1:{port}/bench/Packages")[2] > 0:
                return proc, port
        except subprocess.CalledProcessError:
            time.sleep(0.3)
    raise RuntimeError("the bench shim did not come up")


def _parallel(pid: int, url: str, count: int) -> dict[str, Any]:
    """``count`` curls of ``url`` at once while the shim's RSS is sampled every 50 ms."""
    baseline = _rss_now(pid)
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_now(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    fmt = "%{size_download}"
    curls = [
        subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-w", fmt, url], stdout=subprocess.PIPE)  # noqa: S603
        for _ in range(count)
    ]
    sizes = [int(c.communicate()[0] or 0) for c in curls]
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    return {
        "downloads": count,
        "all_ok": all(c.returncode == 0 for c in curls) and len(set(sizes)) == 1,
        "seconds": round(elapsed, 2),
        "aggregate_gbps": _rate(sum(sizes), elapsed),
        "rss_before_mb": round(baseline / 2**20, 1),
        "rss_peak_mb": round(peak[0] / 2**20, 1),
    }


def start_nginx(nginx: str, root: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Debian's nginx serving ``root`` from disk (``sendfile on``) on a free loopback port."""
    port = _port()
    conf = root / "nginx.conf"
    # as root, nginx's workers would run as nobody and not see the private work dir
    user = "user root;\n" if os.getuid() == 0 else ""
    conf.write_text(
        f"{user}daemon off; pid {root}/nginx.pid; error_log {root}/nginx.err;\n"
        "events {}\n"
        f"http {{ access_log off; sendfile on; server {{ listen 127.0.0.1:{port}; "
        f"root {root}; }} }}\n"
    )
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(root)])  # noqa: S603
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,50,500")
    parser.add_argument("--repeat", type=int, default=3, help="warm fetches of each kind")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results/fetch.json")
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]), args.serve[2], args.serve[3])
        return 0
    # a SIGTERM must still stop the daemons and servers this run started (finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("fetch.py needs nginx: apt-get install nginx")
    sizes = [int(s) for s in args.sizes.split(",")]
    load_start = _load()
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
            gateway = local.gateway_url.rstrip("/")
            shim, shim_port = _start_shim(spec_path, local.api_multiaddr, gateway, local.repo_path)
            procs.append(shim)
            # the same shim on uvloop (the loop before), fetched in turn: what the loop costs
            uv_shim = None
            if importlib.util.find_spec("uvloop") is not None:
                uv_shim = _start_shim(
                    spec_path, local.api_multiaddr, gateway, local.repo_path, "uvloop"
                )
                procs.append(uv_shim[0])
            gw_shim, gw_shim_port = _start_shim(spec_path, local.api_multiaddr, gateway)
            procs.append(gw_shim)
            rpc_shim, rpc_port = _start_shim(spec_path, local.api_multiaddr, "-")
            procs.append(rpc_shim)
            nginx_proc, nginx_port = start_nginx(nginx, work)
            procs.append(nginx_proc)

            def offer_url(port: int, i: int) -> str:
                path = f"bench-cat/pkg{i:06d}/pkg{i:06d}-1-{i + 1}.gpkg.tar"
                return f"http://127.0.0.1:{port}/bench/{path}"

            for i, f in enumerate(spec):
                size_mb, cid, size = int(f["size"] / MB), f["cid"], f["size"]
                row: dict[str, Any] = {}
                load = _load()
                # cold: the blocks are only on the peer (local repo garbage-collected)
                local.run("repo", "gc", timeout=600)
                started = time.perf_counter()
                out = local.run("cat", cid, timeout=600)
                row["cat_cold"] = _rate(len(out.stdout), time.perf_counter() - started)
                del out
                # a download Kubo's gateway cut short (it gives up on a block that takes
                # too long: seen once at load 12) is aborted by the shim; noted, tried again
                row["shim_cold_cut_short"] = 0
                while True:
                    local.run("repo", "gc", timeout=600)
                    try:
                        total, _, got = _curl(offer_url(shim_port, i))
                        break
                    except subprocess.CalledProcessError:
                        row["shim_cold_cut_short"] += 1
                        if row["shim_cold_cut_short"] > 2:
                            raise
                assert got == size, (got, size)
                row["shim_cold"] = _rate(got, total)
                # warm: every block local
                lc.pin_add([CID.from_text(cid)], recursive=True, timeout=600)
                total, _, got = _curl(f"http://127.0.0.1:{nginx_port}/{Path(f['path']).name}")
                row["nginx"] = _rate(got, total)
                kubo_pid = local.pid or 0
                gateway_runs, shim_runs, uv_runs = [], [], []
                for _ in range(args.repeat):
                    total, got, spent = _timed_curl(f"{gateway}/ipfs/{cid}", {"kubo": kubo_pid})
                    gateway_runs.append((_rate(got, total), spent))
                    pids = {"shim": shim.pid, "kubo": kubo_pid}
                    total, got, spent = _timed_curl(offer_url(shim_port, i), pids)
                    assert got == size, (got, size)
                    shim_runs.append((_rate(got, total), spent))
                    if uv_shim is not None:
                        pids = {"shim": uv_shim[0].pid}
                        total, got, spent = _timed_curl(offer_url(uv_shim[1], i), pids)
                        uv_runs.append((_rate(got, total), spent))
                row["gateway"], gateway_cpu = max(gateway_runs, key=lambda r: r[0])
                row["shim_warm"], shim_cpu = max(shim_runs, key=lambda r: r[0])
                row["gateway_runs"] = [r[0] for r in gateway_runs]
                row["shim_warm_runs"] = [r[0] for r in shim_runs]
                row["cpu_s_gateway"] = gateway_cpu
                row["cpu_s_shim_warm"] = shim_cpu
                if uv_runs:
                    row["shim_warm_uvloop"], row["cpu_s_shim_warm_uvloop"] = max(
                        uv_runs, key=lambda r: r[0]
                    )
                    row["shim_warm_uvloop_vs_gateway"] = _ratio(
                        row["shim_warm_uvloop"], row["gateway"]
                    )
                total, _, got = _curl(offer_url(gw_shim_port, i))
                row["shim_warm_via_gateway"] = _rate(got, total)
                total, _, got = _curl(offer_url(rpc_port, i))
                row["shim_warm_rpc"] = _rate(got, total)
                row["shim_warm_vs_gateway"] = _ratio(row["shim_warm"], row["gateway"])
                row["shim_cold_vs_cat_cold"] = _ratio(row["shim_cold"], row["cat_cold"])
                row["shim_warm_vs_nginx"] = _ratio(row["shim_warm"], row["nginx"])
                row["first_byte_ms_shim_warm"] = round(
                    statistics.median(_first_body_byte(offer_url(shim_port, i)) for _ in range(10))
                    * 1000, 1,
                )  # fmt: skip
                row["first_byte_ms_gateway"] = round(
                    statistics.median(_first_body_byte(f"{gateway}/ipfs/{cid}") for _ in range(10))
                    * 1000, 1,
                )  # fmt: skip
                row["load"] = load
                results["files"][f"{size_mb}MB"] = row
                print(f"{size_mb} MB: {json.dumps(row)}", flush=True)
            biggest = sizes.index(max(sizes))
            results["parallel_16"] = {
                "file_mb": max(sizes),
                "load": _load(),
                **_parallel(shim.pid, offer_url(shim_port, biggest), 16),
            }
            print(f"parallel: {json.dumps(results['parallel_16'])}", flush=True)
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
    results["load_average"] = {"start": load_start, "end": _load()}
    # best of 3: the ceiling of one stream checked on one core (the gateway hashes nothing)
    results["sha256_one_core_gbps"] = max(_sha256_gbps() for _ in range(3))
    results["machine"] = bench_report.machine(
        "2 cores shared with parallel work; rates are pessimistic, ratios count"
    )
    bench_report.write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
