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

Memory (``--rss``): the peak resident set (VmHWM) of a fresh process that
publishes one package holding a single large ELF file (a gcc-built program
with a random 60 MiB section added by objcopy, its ``.comment`` kept), next
to the same for a package of the same size whose large file is the same
random bytes without the ELF around them (the baseline). The ELF scan reads
section headers and ``.comment`` only, so the difference should stay under
32 MiB.

Bulk (``--bulk N``, 1,000 in the README): a PKGDIR of N real-shaped
binpkgs, each the emerge-built template under its own package name with a
random payload: 90 % between 4 KB and 1 MB, 9 % between 1 and 8 MB, 1 %
between 10 and 40 MB (log-uniform within each band; seeded, so every run
has the same sizes), then indexed by Portage's own ``emaint binhost --fix``
into ``PKGDIR/Packages``, as Portage keeps a builder's PKGDIR (share takes
MD5/SHA1 from entries that still describe their files, ``schema/share.md``
§4; ``--bulk-no-index`` leaves the index out, so every digest is hashed and
every gpkg gets Portage's full Manifest check). In the same run, on the same daemon: ``ipfs add -r``
of the directory (CIDv1, raw leaves, 1 MiB chunks, pinned; the baseline),
then, after unpinning it and ``ipfs repo gc``, ``ipfs share``'s catch-up
of the same directory (queue, filters, checks, one CAR import and one pin
request per batch; the next batch is checked in ``workers`` processes while
one is stored). Also timed, for the breakdown: the checks alone (every
package examined in this one process as share's workers examine it, no
Kubo: what one core costs), and the
per-package path (``publish_binpkgs`` one package at a time, as ``ipfsbin
publish`` did for each file) over the first ``--bulk-old`` packages. CPU
seconds are recorded beside the wall times (the Kubo daemon's in both runs,
the sharing process's, the checks'): on a shared machine they move less
than wall times, and they bound the ratio on an idle one.

Usage: ``.venv/bin/python scripts/bench/publish.py [--trials N] [--sizes 10K,10M,200M]
[--rss] [--rss-size 60M] [--bulk 1000] [--bulk-old 200] [--bulk-out FILE] [--bulk-no-index]``
(``--sizes ''`` skips the throughput runs)
Writes ``bench-results/publish.json`` (throughput), with ``--rss``
``bench-results/publish-rss.json``, with ``--bulk`` ``bench-results/publish-bulk.json``
(or ``--bulk-out``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import subprocess
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


def large_elf(size: int, dst: Path, work: Path) -> bytes:
    """A real gcc-built program carrying ``size`` random bytes in an extra section."""
    src = work / "big.c"
    src.write_text("int main(void) { return 0; }\n")
    small = work / "small"
    subprocess.run(["gcc", "-O2", "-o", str(small), str(src)], check=True)  # noqa: S607
    blob = work / "blob"
    blob.write_bytes(os.urandom(size))
    subprocess.run(  # noqa: S603
        ["objcopy", "--add-section", f".ipfsbin_blob={blob}", str(small), str(dst)],  # noqa: S607
        check=True,
    )
    return dst.read_bytes()


_RSS_CHILD = """
import sys
from pathlib import Path
from ipfsbin.kubo.client import KuboClient
from ipfsbin.builder.publish import detect_host_facts, publish_binpkgs
from ipfsbin.trust.keys import SigningKey
path, api, root = sys.argv[1:4]
host = detect_host_facts(config_root=Path(root))
with KuboClient.from_multiaddr(api, timeout=3600.0) as client:
    publish_binpkgs([path], client=client, key=SigningKey.generate(), host=host)
for line in Path("/proc/self/status").read_text().splitlines():
    if line.startswith("VmHWM:"):
        print(int(line.split()[1]) * 1024)
"""


def peak_rss(path: Path, api: str, config_root: Path) -> int:
    """VmHWM in bytes of a fresh process that publishes ``path``."""
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed script
        [sys.executable, "-c", _RSS_CHILD, str(path), api, str(config_root)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return int(done.stdout.strip().splitlines()[-1])


def measure_rss(
    template: Path, size: int, node: ManagedNode, config_root: Path, work: Path
) -> dict[str, Any]:
    elf = large_elf(size, work / "big", work)
    plain = os.urandom(len(elf))
    with_elf = rewrite_gpkg(template, work / "libfoo-1-1.gpkg.tar",
                            extra_image=[("image/usr/bin/big", elf)])  # fmt: skip
    without = rewrite_gpkg(template, work / "libfoo-1-2.gpkg.tar",
                           extra_image=[("image/usr/share/big", plain)])  # fmt: skip
    api = node.api_multiaddr
    rss_elf = peak_rss(with_elf, api, config_root)
    rss_plain = peak_rss(without, api, config_root)
    row = {
        "file_bytes": len(elf),
        "binpkg_bytes_with_elf": with_elf.stat().st_size,
        "binpkg_bytes_without_elf": without.stat().st_size,
        "peak_rss_with_elf_bytes": rss_elf,
        "peak_rss_without_elf_bytes": rss_plain,
        "difference_bytes": rss_elf - rss_plain,
        "target_difference_bytes": 32 * 1024 * 1024,
    }
    print(json.dumps(row), file=sys.stderr)
    return row


def bulk_sizes(count: int, seed: int = 12) -> list[int]:
    """Sizes of a real-shaped PKGDIR: mostly under 1 MB, a few large (see the docstring)."""
    rnd = random.Random(seed)  # noqa: S311 - sizes, not secrets
    sizes = []
    for _ in range(count):
        band = rnd.random()
        low, high = (4e3, 1e6) if band < 0.90 else (1e6, 8e6) if band < 0.99 else (10e6, 40e6)
        sizes.append(int(math.exp(rnd.uniform(math.log(low), math.log(high)))))
    return sizes


def make_pkgdir(template: Path, pkgdir: Path, sizes: list[int]) -> list[Path]:
    """One binpkg per size, each its own package (``dev-libs/pkgN-1``), under ``pkgdir``."""
    paths = []
    base = template.stat().st_size
    for n, size in enumerate(sizes):
        dst = pkgdir / "dev-libs" / f"pkg{n}" / f"pkg{n}-1-1.gpkg.tar"
        dst.parent.mkdir(parents=True, exist_ok=True)
        payload = os.urandom(max(size - base - 4096, 16))
        rewrite_gpkg(template, dst, set_metadata={"PF": f"pkg{n}-1\n".encode()},
                     extra_image=[(f"image/usr/share/pkg{n}/data", payload)])  # fmt: skip
        paths.append(dst)
    return paths


def index_pkgdir(builder: BuilderPlayground, pkgdir: Path) -> None:
    """Write ``pkgdir/Packages`` with Portage's own ``emaint binhost --fix``."""
    from portage.const import PORTAGE_BIN_PATH

    subprocess.run(  # noqa: S603 - this interpreter, Portage's script
        [sys.executable, "-b", os.path.join(PORTAGE_BIN_PATH, "emaint"), "binhost", "--fix"],
        env=builder.env({"PKGDIR": str(pkgdir)}),
        capture_output=True,
        check=True,
        timeout=600,
    )


def _ipfs(node: ManagedNode, *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - the Kubo binary, fixed arguments
        [str(node.binary), *args], env=node.env(), capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _add_r(node: ManagedNode, directory: Path) -> None:
    """``ipfs add -r`` with the options publish uses for a binpkg, pinned."""
    _ipfs(node, "add", "-r", "-Q", "--cid-version=1", "--raw-leaves",
          f"--chunker={UNIXFS_CHUNKER}", "--pin=true", str(directory))  # fmt: skip


def _forget_everything(node: ManagedNode) -> None:
    """Unpin every recursive pin and collect garbage: the next run starts cold."""
    pins = _ipfs(node, "pin", "ls", "--type=recursive", "-q").split()
    if pins:
        _ipfs(node, "pin", "rm", *pins)
    _ipfs(node, "repo", "gc", "-q")


def _cpu_s(pid: int | None) -> float:
    """User + system CPU seconds process ``pid`` has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_bulk(count: int, old_count: int, out: Path, *, index: bool = True) -> dict[str, Any]:
    from ipfsbin.binpkg import SETUID_PACKAGES
    from ipfsbin.builder.examine import Examiner
    from ipfsbin.builder.queue import QueueItem, ShareQueue
    from ipfsbin.builder.share import Sharer
    from ipfsbin.config import ShareConfig
    from ipfsbin.kubo.pins import PinLedger

    work = Path(tempfile.mkdtemp(prefix="ipfsbin-bench-bulk-"))
    builder = BuilderPlayground.create()
    try:
        builder.emerge("--oneshot", "--buildpkg", "--quiet-build=y", "dev-libs/libfoo")
        template = builder.refresh()[TEMPLATE]
        host = detect_host_facts(config_root=builder.eprefix)
        key = SigningKey.generate()
        pkgdir = work / "pkgdir"
        sizes = bulk_sizes(count)
        start = time.perf_counter()
        paths = make_pkgdir(template, pkgdir, sizes)
        print(f"made {count} binpkgs in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        if index:
            index_pkgdir(builder, pkgdir)
        total = sum(p.stat().st_size for p in paths)
        node = ManagedNode(work / "repo", binary=ensure_kubo(), profile="test", routing="dht")
        with node:
            info = machine_info(node)
            kubo_cpu, start = _cpu_s(node.pid), time.perf_counter()
            _add_r(node, pkgdir)
            raw_s = time.perf_counter() - start
            raw_kubo_cpu_s = _cpu_s(node.pid) - kubo_cpu
            _forget_everything(node)

            config = ShareConfig(enabled=True, pkgdir=pkgdir, allow_restricted=True)
            examine = Examiner(config=config, config_root=Path("/"), host=host,
                               setuid_packages=SETUID_PACKAGES)  # fmt: skip
            start, cpu = time.perf_counter(), time.process_time()
            for n, path in enumerate(paths):
                st = path.stat()
                examine(QueueItem(id=n + 1, path=path, size=st.st_size, mtime_ns=st.st_mtime_ns,
                                  state="queued"))  # fmt: skip
            checks_s = time.perf_counter() - start
            checks_cpu_s = time.process_time() - cpu
            load_before = os.getloadavg()[0]
            with node.client(timeout=3600.0) as client, ShareQueue(work / "q.sqlite") as queue:
                sharer = Sharer(queue=queue, client=client, ledger=PinLedger(client, work / "p"),
                                key=key, host=host, config=config)  # fmt: skip
                kubo_cpu, cpu = _cpu_s(node.pid), time.process_time()
                start = time.perf_counter()
                done = sharer.catch_up()
                bulk_s = time.perf_counter() - start
                share_kubo_cpu_s, share_main_cpu_s = (
                    _cpu_s(node.pid) - kubo_cpu,
                    time.process_time() - cpu,
                )
                load_after = os.getloadavg()[0]
                if len(done.published) != count:
                    raise RuntimeError(f"published {len(done.published)} of {count}: {done}")
                _forget_everything(node)
                old = paths[:old_count]
                start = time.perf_counter()
                for path in old:
                    publish_binpkgs([path], client=client, key=key, host=host)
                old_s = time.perf_counter() - start
                _forget_everything(node)
                old_raw_dir = work / "old"
                for path in old:
                    target = old_raw_dir / path.relative_to(pkgdir)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.link(path, target)
                start = time.perf_counter()
                if old:
                    _add_r(node, old_raw_dir)
                old_raw_s = time.perf_counter() - start
        small = sum(1 for s in sizes if s < 1e6)
        result = {
            "benchmark": "publish-bulk",
            "machine": info,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "note": "one run on a 2-core machine shared with other work; "
            "wall times; load average (1 min) before and after the share run below",
            "load_average": [round(load_before, 1), round(load_after, 1)],
            "share_workers": config.workers,
            "share_batch": config.batch,
            "packages": count,
            "packages_under_1MB": small,
            "pkgdir_indexed": index,
            "bytes": total,
            "raw_add_r_s": round(raw_s, 2),
            "share_catch_up_s": round(bulk_s, 2),
            "ratio": round(raw_s / bulk_s, 3),
            "target_ratio": 0.6,
            "checks_only_s": round(checks_s, 2),
            "checks_only_what": "every package examined in one process as share's workers "
            "do (metadata, filters, Portage's full check, image scan, digests), no Kubo",
            "checks_only_ratio_ceiling": round(raw_s / checks_s, 3),
            "cpu_s": {
                "what": "CPU seconds (user + system): the Kubo daemon during `ipfs add -r` and "
                "during the catch-up, the sharing process itself (not its workers), and the "
                "checks alone (what the workers spend between them)",
                "raw_add_r_kubo": round(raw_kubo_cpu_s, 2),
                "share_kubo": round(share_kubo_cpu_s, 2),
                "share_process": round(share_main_cpu_s, 2),
                "checks_only": round(checks_cpu_s, 2),
            },
            "per_package_publish": {
                "packages": len(old),
                "publish_s": round(old_s, 2),
                "raw_add_r_s": round(old_raw_s, 2),
                "ratio": round(old_raw_s / old_s, 3) if old else None,
            },
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        return result
    finally:
        builder.cleanup()
        shutil.rmtree(work, ignore_errors=True)


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


def run(sizes: list[int], trials: int, out: Path, rss_size: int | None = None) -> dict[str, Any]:
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
            rss = (
                None
                if rss_size is None
                else measure_rss(template, rss_size, node, builder.eprefix, work)
            )
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
        if rows:
            out.write_text(json.dumps(result, indent=2) + "\n")
        if rss is not None:
            result["rss"] = rss
            memory = {"benchmark": "publish-rss", "machine": info, "rss": rss}
            out.with_name("publish-rss.json").write_text(json.dumps(memory, indent=2) + "\n")
        return result
    finally:
        builder.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--sizes", default="10K,10M,200M")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "publish.json")
    parser.add_argument("--rss", action="store_true", help="measure peak RSS with a large ELF")
    parser.add_argument("--rss-size", default="60M", help="size of the large file (--rss)")
    parser.add_argument("--bulk", type=int, default=0, help="packages in the bulk case (0: skip)")
    parser.add_argument("--bulk-old", type=int, default=200, help="of which, per-package path")
    parser.add_argument(
        "--bulk-out", type=Path, default=ROOT / "bench-results" / "publish-bulk.json"
    )
    parser.add_argument(
        "--bulk-no-index", action="store_true", help="no PKGDIR/Packages (every digest hashed)"
    )
    args = parser.parse_args()
    if shutil.which("zstd") is None:
        print("needs zstd on PATH", file=sys.stderr)
        return 2
    if args.bulk:
        bulk = run_bulk(args.bulk, args.bulk_old, args.bulk_out, index=not args.bulk_no_index)
        old = bulk["per_package_publish"]
        print(
            f"{bulk['packages']} binpkgs, {bulk['bytes'] / 1e6:.0f} MB: ipfs add -r "
            f"{bulk['raw_add_r_s']} s, share {bulk['share_catch_up_s']} s, ratio {bulk['ratio']} "
            f"(checks alone {bulk['checks_only_s']} s; per-package publish of {old['packages']}: "
            f"ratio {old['ratio']})"
        )
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    rss_size = parse_size(args.rss_size) if args.rss else None
    if not sizes and rss_size is None:
        return 0
    result = run(sizes, args.trials, args.out, rss_size)
    for row in result["summary"]:
        print(
            f"{row['size_bytes']:>11} B  raw add {row['raw_add_MBps']:>7} MB/s  "
            f"publish {row['publish_MBps']:>7} MB/s  ratio {row['ratio']} "
            f"(median of trials {row['median_trial_ratio']})"
        )
    if "rss" in result:
        rss = result["rss"]
        print(
            f"peak RSS publishing a {rss['file_bytes'] / 2**20:.0f} MiB ELF: "
            f"{rss['peak_rss_with_elf_bytes'] / 2**20:.0f} MiB, same size without ELF: "
            f"{rss['peak_rss_without_elf_bytes'] / 2**20:.0f} MiB, "
            f"difference {rss['difference_bytes'] / 2**20:.1f} MiB (target < 32 MiB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
