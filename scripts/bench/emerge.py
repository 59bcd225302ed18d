#!/usr/bin/env python3
"""Benchmark: ``emerge --getbinpkgonly`` of the demo's packages through the shim vs nginx.

One run, the same binpkgs both ways. A builder prefix builds the test
repository with ``emerge --buildpkg`` (so Portage writes PKGDIR/Packages);
its PKGDIR is kept and the prefix removed; the demo's set (usetest, hello,
libfoo, usesfoo) is published, indexed and followed by a second Kubo node.
Then, for each repeat, in a fresh client prefix each, created at the path
the builder's was (:func:`emerge_harness.build_at`: the binpkgs install as
on a real host, without Portage adjusting their EPREFIX):

- ``nginx``: Debian's nginx serving the builder's PKGDIR (Portage's own
  Packages file) from disk — the baseline;
- ``shim_cold``: ``ipfsbin serve`` on the client's node after a ``repo gc``
  (the binpkgs' blocks are only on the builder's node);
- ``shim_warm``: the same with the blocks local (what the cold run fetched).

Each is two timed emerges, as the demo does them: ``--getbinpkgonly
--oneshot app-misc/usetest dev-libs/libfoo`` (hello comes with usetest's
USE=foo), then ``app-misc/usesfoo`` (the shim lists it once libfoo:0/1 is
installed; that wait is reported, not timed). Starting the shim is not
timed either: it runs as a service before emerge is called.

Results go to ``bench-results/emerge.json``; the machine is shared with
parallel work, so wall times are pessimistic and the ratio is what counts.

Usage: ``.venv/bin/python scripts/bench/emerge.py [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_report  # noqa: E402
import emerge_harness as h  # noqa: E402

DEMO_SET = ("app-misc/usetest-1", "app-misc/hello-1", "dev-libs/libfoo-1", "app-misc/usesfoo-1")
FIRST = ("--getbinpkgonly", "--oneshot", "app-misc/usetest", "dev-libs/libfoo")
SECOND = ("--getbinpkgonly", "--oneshot", "app-misc/usesfoo")


def one_run(url_for: Any, kind: str, eprefix: Path) -> dict[str, Any]:
    """Both emerges in a fresh client prefix; ``url_for(client)`` gives the binhost URL."""
    client = h.client_prefix(eprefix=eprefix)
    try:
        url = url_for(client)
        h.point_binrepos(client, url)
        first = h.timed_emerge(client, *FIRST)
        waited = 0.0
        if kind != "nginx":
            waited = h.wait_listed(url, "app-misc/usesfoo-1")
        second = h.timed_emerge(client, *SECOND)
        got = h.installed(client)
        if not set(DEMO_SET) <= got:
            raise RuntimeError(f"{kind}: installed {sorted(got)}, expected {DEMO_SET}")
        return {
            "seconds": round(first.seconds + second.seconds, 2),
            "first_emerge_s": round(first.seconds, 2),
            "second_emerge_s": round(second.seconds, 2),
            "listed_after_s": round(waited, 2),
        }
    finally:
        client.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=h.ROOT / "bench-results/emerge.json")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="ipfsbin-bench-emerge-"))
    prefix, pkgdir = work / "prefix", work / "pkgdir"
    runs: dict[str, list[dict[str, Any]]] = {"nginx": [], "shim_cold": [], "shim_warm": []}
    load_start = os.getloadavg()
    try:
        binpkgs = h.build_at(prefix, pkgdir, lambda builder: builder.build_all())
        with h.ShimBinhost(work / "shim") as shim, h.Nginx(pkgdir, work / "nginx") as web:
            shim.publish([binpkgs[cpv] for cpv in DEMO_SET])
            sizes = sum(binpkgs[cpv].stat().st_size for cpv in DEMO_SET)
            for repeat in range(args.repeats):
                runs["nginx"].append(one_run(lambda _client: web.url, "nginx", prefix))
                shim.forget_binpkgs()
                for kind in ("shim_cold", "shim_warm"):
                    # each client prefix gets its own shim, as a host runs one
                    runs[kind].append(one_run(shim.serve_for, kind, prefix))
                    shim.stop_serving()
                load = " ".join(f"{x:.1f}" for x in os.getloadavg())
                print(f"repeat {repeat + 1} (load {load}): "
                      + json.dumps({k: v[-1] for k, v in runs.items()}), flush=True)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    median = {k: round(statistics.median(r["seconds"] for r in v), 2) for k, v in runs.items()}
    results = {
        "packages": list(DEMO_SET),
        "binpkg_bytes": sizes,
        "commands": [" ".join(FIRST), " ".join(SECOND)],
        "runs": runs,
        "median_seconds": median,
        "shim_warm_vs_nginx": round(median["shim_warm"] / median["nginx"], 2),
        "shim_cold_vs_nginx": round(median["shim_cold"] / median["nginx"], 2),
        "target": "emerge wall time through the shim <= 1.15x nginx",
        "built_and_installed_under": "one EPREFIX (no prefix adjustment at merge time)",
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "machine": bench_report.machine(
            "2 cores shared with parallel work; wall times are pessimistic"
        ),
    }
    bench_report.write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
