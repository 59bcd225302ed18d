#!/usr/bin/env python3
"""Benchmark: ``emerge -uDN @world --getbinpkgonly`` after a sync that brings updates.

The user's real case (issue 18): a client has 20 packages installed; a new
head carries a newer build of each. One run, the same binpkgs three ways,
each starting from the same client prefix with v1 of the 20 installed (not
timed; v1 is installed once, the prefix is copied aside and put back before
each way, at the same path since Portage records installed files by their
absolute path):

- ``nginx``: Debian's nginx serving the builder's PKGDIR (Portage's own
  ``Packages``) from disk: the plain binhost, the baseline;
- ``shim``: ``ipfsbin serve`` on the client's Kubo node, the v2 blocks only
  on the builder's node (a LAN peer; here a loopback peer): emerge waits
  for every byte to come over;
- ``shim_prefetch``: the same after ``ipfsbin sync --follow`` with
  ``prefetch = "@world"`` has fetched, verified and pinned the 20 updates in
  the background (the prefetch's own time is reported, not timed as emerge).

Sizes are spread like a binhost's (many small packages, a few large ones:
40 KB to 30 MB, 68 MB in all), of random bytes so compression cannot shrink
them. Built on :mod:`emerge_harness` (client prefixes, binrepos.conf,
nginx, the two-node shim). Results go to ``bench-results/prefetch.json``;
the machine is shared with parallel work, so wall times are pessimistic and
the ratios are what counts.

Usage: ``.venv/bin/python scripts/bench/prefetch.py``
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_report  # noqa: E402
import emerge_harness as h  # noqa: E402

from tests.playground.ebuilds import blob_ebuild  # noqa: E402

KB = 1000
MB = 1000 * KB
SIZES = (
    40 * KB, 60 * KB, 80 * KB, 120 * KB, 150 * KB, 200 * KB, 250 * KB, 300 * KB, 400 * KB,
    500 * KB, 700 * KB, 900 * KB, 1200 * KB, 1500 * KB, 2 * MB, 3 * MB, 5 * MB, 8 * MB,
    15 * MB, 30 * MB,
)  # fmt: skip
PACKAGES = tuple(f"app-misc/upd{i:02d}" for i in range(len(SIZES)))
UPDATE = ("-uDN", "@world", "--getbinpkgonly")
EBUILDS = {
    f"{cp}-{version}": blob_ebuild(size + (version - 1) * size // 20)
    for cp, size in zip(PACKAGES, SIZES, strict=True)
    for version in (1, 2)
}


def _installed_v1(client: Any, url: str) -> None:
    h.point_binrepos(client, url)
    h.timed_emerge(client, "--getbinpkgonly", *(f"={cp}-1" for cp in PACKAGES), timeout=1800)


def _step(what: str) -> None:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{time.strftime('%H:%M:%S')} {what} (load {load})", file=sys.stderr, flush=True)


def _restore(client: Any, saved: Path) -> None:
    """Put the prefix back as :func:`shutil.copytree` saved it (v1 installed, no v2 fetched)."""
    shutil.rmtree(client.eprefix)
    shutil.copytree(saved, client.eprefix, symlinks=True)


def _check_updated(client: Any, kind: str) -> None:
    got = h.installed(client)
    missing = [cp for cp in PACKAGES if f"{cp}-2" not in got]
    if missing:
        raise RuntimeError(f"{kind}: not updated: {missing}")


def _prefetch(shim: Any, client: Any, timeout: float = 1800.0) -> float:
    """``sync --follow`` with prefetch on, until all 20 updates are ready; its seconds."""
    config = shim.beta.path / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "ipfsbin.toml").write_text(
        '[prefetch]\nmode = "@world"\nbudget = "1G"\nrate = "100M"\n'
    )
    portage = client.env()
    env = {**shim.beta.env(), **{k: portage[k] for k in h.PORTAGE_KEYS}}
    log = (shim.work / "follow.log").open("wb")
    started = time.monotonic()
    proc = subprocess.Popen([h.IPFSBIN, "sync", "--follow", "--interval", "2s"],
                            env=env, stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
    try:
        while time.monotonic() - started < timeout:
            status = shim.beta.json("status")
            ready = {b["cpv"] for s in status for b in s["prefetched"]}
            if ready >= {f"{cp}-2" for cp in PACKAGES}:
                return time.monotonic() - started
            if proc.poll() is not None:
                raise RuntimeError(f"sync --follow exited {proc.returncode}")
            time.sleep(0.5)
        raise RuntimeError("prefetch did not finish in time")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=h.ROOT / "bench-results/prefetch.json")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="ipfsbin-bench-prefetch-"))
    builder = h.client_prefix(EBUILDS)
    client = h.client_prefix(EBUILDS)
    saved = work / "client-v1"
    seconds: dict[str, float] = {}
    setup: dict[str, float] = {}
    load_start = os.getloadavg()
    try:
        _step("building v1 and v2 of 20 packages")
        started = time.monotonic()
        for version in (1, 2):
            builder.emerge("--oneshot", "--buildpkg", "--quiet-build=y",
                           *(f"={cp}-{version}" for cp in PACKAGES), timeout=1800)  # fmt: skip
        binpkgs = builder.refresh()
        setup["build"] = time.monotonic() - started
        v2_bytes = sum(binpkgs[f"{cp}-2"].stat().st_size for cp in PACKAGES)
        with h.ShimBinhost(work / "shim") as shim, h.Nginx(builder.pkgdir, work / "nginx") as web:
            shim.publish([binpkgs[f"{cp}-1"] for cp in PACKAGES])
            _step("installing v1 in the client")
            started = time.monotonic()
            _installed_v1(client, web.url)
            setup["install_v1"] = time.monotonic() - started
            shutil.copytree(client.eprefix, saved, symlinks=True)
            shim.publish([binpkgs[f"{cp}-2"] for cp in PACKAGES])  # the sync that brings updates

            _step("emerge through nginx")
            seconds["nginx"] = h.timed_emerge(client, *UPDATE).seconds
            _check_updated(client, "nginx")

            _restore(client, saved)
            shim.forget_binpkgs()  # the v2 blocks are only on the builder's node
            h.point_binrepos(client, shim.serve_for(client))
            _step("emerge through the shim, no prefetch")
            seconds["shim"] = h.timed_emerge(client, *UPDATE).seconds
            _check_updated(client, "shim")

            shim.stop_serving()
            _restore(client, saved)
            shim.forget_binpkgs()  # what the last emerge fetched is gone again
            _step("sync --follow with prefetch")
            prefetch_seconds = _prefetch(shim, client)
            _step("emerge through the shim after prefetch")
            h.point_binrepos(client, shim.serve_for(client))
            seconds["shim_prefetch"] = h.timed_emerge(client, *UPDATE).seconds
            _check_updated(client, "shim_prefetch")
    finally:
        for playground in (builder, client):
            playground.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    results = {
        "packages": len(PACKAGES),
        "sizes_bytes": list(SIZES),
        "update_bytes": v2_bytes,
        "command": "emerge " + " ".join(UPDATE),
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "prefetch_seconds": round(prefetch_seconds, 2),
        "setup_seconds": {k: round(v, 2) for k, v in setup.items()},
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "shim_prefetch_vs_nginx": round(seconds["shim_prefetch"] / seconds["nginx"], 2),
        "shim_vs_nginx": round(seconds["shim"] / seconds["nginx"], 2),
        "targets": {"shim_prefetch_vs_nginx": "<= 0.9", "shim_vs_nginx": "<= 1.15"},
        "machine": bench_report.machine(
            "one run; 2 cores shared with parallel work, so wall times are "
            "pessimistic; the LAN peer is a Kubo node on loopback (no link shaping)"
        ),
    }
    bench_report.write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
