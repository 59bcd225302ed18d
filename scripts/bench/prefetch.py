#!/usr/bin/env python3
"""Benchmark: ``emerge -uDN @world --getbinpkgonly`` after a sync that brings updates.

The user's real case (issue 18): a client has 20 packages installed; a new
head carries a newer build of each. A builder prefix builds v1 and v2 of
each with ``emerge --buildpkgonly`` (Portage writes PKGDIR/Packages); its
PKGDIR is kept and the prefix removed, and the client prefix is created at
the same path (:func:`emerge_harness.build_at`), so the binpkgs install as
on a real host, without Portage adjusting their EPREFIX at merge time. One
run, the same binpkgs three ways, each starting from the same client prefix
with v1 of the 20 installed (not timed; v1 is installed once, the prefix is
copied aside and put back before each way, at the same path since Portage
records installed files by their absolute path):

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

Each emerge also records the CPU seconds of emerge (with its children),
the shim, the client's Kubo node and nginx, the shim's catalog builds and
host reads during it, and the time between merges (``emerge.log``): on a
loaded machine the wall times follow the load, the CPU seconds do not.

Usage: ``.venv/bin/python scripts/bench/prefetch.py`` (the 20 packages,
about 40 minutes on a loaded 2-core machine); ``--packages 5 --rounds 3``
measures 5 of them with nginx and the shim after prefetch alternating three
times (medians), ``--no-cold`` skips the shim without prefetch, ``--keep
DIR`` keeps each emerge's output and logs. ``--link-mbit R`` has nginx send
at R Mbit/s per connection (its ``limit_rate``), as a plain binhost across a
link of that speed would, while the shim after prefetch reads local blocks:
on loopback a plain binhost pays nothing for distance, and prefetch can only
save what the download costs (the cold way is then skipped: Kubo's peer
cannot be slowed alike here).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
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
UPDATE = ("-uDN", "@world", "--getbinpkgonly")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KEEP: Path | None = None  # where --keep puts each emerge's output and logs


def _chosen(count: int) -> tuple[int, ...]:
    """``count`` of the 20 sizes, spread over the whole range (both ends kept)."""
    if count >= len(SIZES):
        return tuple(range(len(SIZES)))
    if count <= 1:
        return (len(SIZES) - 1,)
    return tuple(sorted({round(i * (len(SIZES) - 1) / (count - 1)) for i in range(count)}))


def _packages(count: int) -> dict[str, int]:
    """category/package -> size of its v1 binpkg's payload."""
    return {f"app-misc/upd{i:02d}": SIZES[i] for i in _chosen(count)}


def _ebuilds(packages: dict[str, int]) -> dict[str, Any]:
    return {
        f"{cp}-{version}": blob_ebuild(size + (version - 1) * size // 20)
        for cp, size in packages.items()
        for version in (1, 2)
    }


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` and its live descendants (0 if gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        children = [
            int(c)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for c in (task / "children").read_text().split()
        ]
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return own + sum(_cpu_seconds(c) for c in children)


def _events(log: Path, since: int) -> dict[str, int]:
    """How many of each structured event the shim logged after byte ``since`` of ``log``."""
    counts: dict[str, int] = {}
    with log.open("rb") as f:
        f.seek(since)
        for line in f:
            try:
                event = json.loads(line).get("event")
            except ValueError:
                continue
            if isinstance(event, str):
                counts[event] = counts.get(event, 0) + 1
    return counts


def _merge_seconds(client: Any, since: float) -> list[float]:
    """Seconds from each binary merge's start to the next one's (emerge.log, whole seconds)."""
    log = client.eprefix / "var/log/emerge.log"
    if not log.exists():
        return []
    marks = []
    for line in log.read_text().splitlines():
        stamp, _, text = line.partition(":")
        if (
            stamp.isdigit()
            and int(stamp) >= int(since)
            and (
                text.strip().startswith(">>> emerge (")
                or text.strip().startswith("*** terminating")
            )
        ):
            marks.append(int(stamp))
    return [float(b - a) for a, b in zip(marks, marks[1:], strict=False)]


def _measured(client: Any, shim: Any, web: Any, kind: str) -> dict[str, Any]:
    """Run the update emerge; its wall time, the servers' CPU and the shim's events."""
    serve = shim.serves[-1] if shim.serves and not kind.startswith("nginx") else None
    pid = serve[0].pid if serve else None
    log = Path(serve[1].name) if serve else None
    offset = log.stat().st_size if log else 0
    kubo = shim.beta.node.pid
    nginx = web.proc.pid if web.proc is not None else None
    before = (_cpu_seconds(pid), _cpu_seconds(kubo), os.times(), _cpu_seconds(nginx))
    wall = time.time()
    run = h.timed_emerge(client, *UPDATE)
    if KEEP is not None:
        KEEP.mkdir(parents=True, exist_ok=True)
        (KEEP / f"{kind}.out").write_text(run.output)
        for name in ("emerge.log", "emerge-fetch.log"):
            if (client.eprefix / "var/log" / name).exists():
                shutil.copy(client.eprefix / "var/log" / name, KEEP / f"{kind}.{name}")
    after = (_cpu_seconds(pid), _cpu_seconds(kubo), os.times(), _cpu_seconds(nginx))
    record: dict[str, Any] = {
        "seconds": round(run.seconds, 2),
        "shim_cpu_seconds": round(after[0] - before[0], 2),
        "kubo_cpu_seconds": round(after[1] - before[1], 2),
        "nginx_cpu_seconds": round(after[3] - before[3], 2),
        "emerge_cpu_seconds": round(
            after[2].children_user + after[2].children_system
            - before[2].children_user - before[2].children_system, 2
        ),
        "merge_seconds": _merge_seconds(client, wall),
    }  # fmt: skip
    record["cpu_seconds"] = round(
        sum(record[f"{k}_cpu_seconds"] for k in ("shim", "kubo", "nginx", "emerge")), 2
    )
    if log is not None:
        record["shim_events"] = _events(log, offset)
    _step(f"{kind}: {record}")
    return record


def _build(builder: Any, packages: Any) -> None:
    # one emerge per version: both in one would put two versions in one slot
    for version in (1, 2):
        atoms = (f"={cp}-{version}" for cp in packages)
        builder.build_only(*atoms, pkgdir=builder.pkgdir, timeout=1800)


def _installed_v1(client: Any, url: str, packages: Any) -> None:
    h.point_binrepos(client, url)
    h.timed_emerge(client, "--getbinpkgonly", *(f"={cp}-1" for cp in packages), timeout=1800)


def _step(what: str) -> None:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{time.strftime('%H:%M:%S')} {what} (load {load})", file=sys.stderr, flush=True)


def _restore(client: Any, saved: Path) -> None:
    """Put the prefix back as :func:`shutil.copytree` saved it (v1 installed, no v2 fetched).

    Copied beside the prefix and renamed into its place: a running shim reads this
    prefix's installed packages, and the copies keep the saved (old) mtimes, so its
    host read is due at once; copied in place, that read could see a half-copied
    database and list the updates for a host that has none of their dependencies.
    """
    fresh = client.eprefix.with_name(client.eprefix.name + ".restoring")
    old = client.eprefix.with_name(client.eprefix.name + ".replaced")
    for leftover in (fresh, old):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.copytree(saved, fresh, symlinks=True)
    client.eprefix.rename(old)
    fresh.rename(client.eprefix)
    shutil.rmtree(old)


def _check_updated(client: Any, kind: str, packages: Any) -> None:
    got = h.installed(client)
    missing = [cp for cp in packages if f"{cp}-2" not in got]
    if missing:
        raise RuntimeError(f"{kind}: not updated: {missing}")


def _prefetch(shim: Any, client: Any, packages: Any, timeout: float = 1800.0) -> float:
    """``sync --follow`` with prefetch on, until every update is ready; its seconds."""
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
            if ready >= {f"{cp}-2" for cp in packages}:
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


def _medians(runs: dict[str, dict[str, Any]], what: str) -> dict[str, float]:
    """Each way's median of ``what`` over its rounds (``nginx``, ``nginx#2``...)."""
    ways: dict[str, list[float]] = {}
    for name, run in runs.items():
        ways.setdefault(name.partition("#")[0], []).append(run[what])
    return {way: round(statistics.median(values), 2) for way, values in ways.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=h.ROOT / "bench-results/prefetch.json")
    parser.add_argument(
        "--packages",
        type=int,
        default=len(SIZES),
        help="how many of the 20 packages (sizes spread over the range)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure nginx and the shim after prefetch this many times, alternating",
    )
    parser.add_argument(
        "--link-mbit",
        type=float,
        default=0.0,
        help="serve nginx's binpkgs at this rate (Mbit/s per connection), as a binhost "
        "across a link would; 0: as fast as loopback",
    )
    parser.add_argument("--keep", type=Path, help="keep each emerge's output and logs here")
    parser.add_argument(
        "--no-cold", action="store_true", help="skip the shim without prefetch (blocks on the peer)"
    )
    args = parser.parse_args()  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    global KEEP
    KEEP = args.keep
    packages = _packages(args.packages)
    ebuilds = _ebuilds(packages)
    work = Path(tempfile.mkdtemp(prefix="ipfsbin-bench-prefetch-"))
    prefix, pkgdir = work / "prefix", work / "pkgdir"
    client = None
    saved = work / "client-v1"
    runs: dict[str, dict[str, Any]] = {}
    setup: dict[str, float] = {}
    load_start = os.getloadavg()
    try:
        _step(f"building v1 and v2 of {len(packages)} packages")
        started = time.monotonic()
        binpkgs = h.build_at(prefix, pkgdir, lambda b: _build(b, packages), ebuilds)
        setup["build"] = time.monotonic() - started
        v2_bytes = sum(binpkgs[f"{cp}-2"].stat().st_size for cp in packages)
        client = h.client_prefix(ebuilds, eprefix=prefix)
        with (
            h.ShimBinhost(work / "shim") as shim,
            h.Nginx(pkgdir, work / "nginx", rate=int(args.link_mbit * 1e6 / 8)) as web,
        ):
            shim.publish([binpkgs[f"{cp}-1"] for cp in packages])
            _step("installing v1 in the client")
            started = time.monotonic()
            _installed_v1(client, web.url, packages)
            setup["install_v1"] = time.monotonic() - started
            shutil.copytree(client.eprefix, saved, symlinks=True)
            shim.publish([binpkgs[f"{cp}-2"] for cp in packages])  # the sync that brings updates

            _step("emerge through nginx")
            runs["nginx"] = _measured(client, shim, web, "nginx")
            _check_updated(client, "nginx", packages)

            # the loopback peer cannot be slowed like nginx, so a shaped run has no cold way
            if not args.no_cold and not args.link_mbit:
                _restore(client, saved)
                shim.forget_binpkgs()  # the v2 blocks are only on the builder's node
                h.point_binrepos(client, shim.serve_for(client))
                _step("emerge through the shim, no prefetch")
                runs["shim"] = _measured(client, shim, web, "shim")
                _check_updated(client, "shim", packages)
                shim.stop_serving()

            _restore(client, saved)
            shim.forget_binpkgs()  # what the last emerge fetched is gone again
            _step("sync --follow with prefetch")
            setup["prefetch"] = _prefetch(shim, client, packages)
            _step("emerge through the shim after prefetch")
            shim_url = shim.serve_for(client)
            h.point_binrepos(client, shim_url)
            runs["shim_prefetch"] = _measured(client, shim, web, "shim_prefetch")
            _check_updated(client, "shim_prefetch", packages)
            for round_ in range(2, args.rounds + 1):
                # the same two ways again, alternating, so that both see the same load
                for kind, url in (("nginx", web.url), ("shim_prefetch", shim_url)):
                    _restore(client, saved)
                    h.point_binrepos(client, url)
                    runs[f"{kind}#{round_}"] = _measured(client, shim, web, f"{kind}#{round_}")
                    _check_updated(client, kind, packages)
    finally:
        if client is not None:
            client.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    seconds, cpu = (_medians(runs, what) for what in ("seconds", "cpu_seconds"))
    results = {
        "packages": len(packages),
        "sizes_bytes": list(packages.values()),
        "update_bytes": v2_bytes,
        "command": "emerge " + " ".join(UPDATE),
        "nginx_link_mbit": args.link_mbit or None,
        "seconds": seconds,
        "runs": runs,
        "prefetch_seconds": round(setup["prefetch"], 2),
        "setup_seconds": {k: round(v, 2) for k, v in setup.items()},
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "shim_prefetch_vs_nginx": round(seconds["shim_prefetch"] / seconds["nginx"], 2),
        "cpu_seconds": cpu,
        "cpu_shim_prefetch_vs_nginx": round(cpu["shim_prefetch"] / cpu["nginx"], 3),
        "built_and_installed_under": "one EPREFIX (no prefix adjustment at merge time)",
        "targets": {"shim_prefetch_vs_nginx": "<= 0.9", "shim_vs_nginx": "<= 1.15"},
        "machine": bench_report.machine(
            "one run; 2 cores shared with parallel work, so wall times are "
            "pessimistic; the LAN peer is a Kubo node on loopback (no link shaping)"
        ),
    }
    if "shim" in seconds:
        results["shim_vs_nginx"] = round(seconds["shim"] / seconds["nginx"], 2)
    bench_report.write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
