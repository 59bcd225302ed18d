#!/usr/bin/env python3
"""The start of a shim process for ``packages.py``: kept listing read, then ``Packages`` served.

Run by ``packages.py`` as its own process (a fresh interpreter, as
``ipfsbin serve`` is): imports the serving side, computes the key of the
current inputs as :meth:`~ipfsbin.serve.publisher.Publisher.start` does
(the subscription and its head as ``sync`` recorded them, this host's
digest, the policy), reads the kept listing with
:func:`~ipfsbin.serve.listing.read_listing`, and answers on the app
``serve`` runs (uvicorn, same loop and HTTP parser). It imports what
``ipfsbin serve`` imports (the command line, the serve command's module,
Portage). The head and the subscription come pickled from the parent, and
the synthetic host of the tests stands for Portage's: reading the host
through Portage (its configuration and installed-packages database), the
Kubo reads of the head's commit and trust root, and the subscriptions'
SQLite file are not part of this process.
Writes one JSON line to stdout with the wall-clock times of its phases.

Usage: ``shim_start.py SPEC PORT`` (``SPEC`` a pickle written by ``packages.py``).
"""

from __future__ import annotations

import time

STARTED = time.time()

import json  # noqa: E402
import pickle  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    # what `ipfsbin serve` imports: the command line, the serve command's module, Portage
    import portage  # noqa: F401
    import uvicorn
    from fetch import StaticPublisher

    import ipfsbin.cli.client  # noqa: F401
    import ipfsbin.cli.main  # noqa: F401
    from ipfsbin.catalog.heads import head_refusal
    from ipfsbin.serve.app import Downloads, create_app
    from ipfsbin.serve.listing import host_digest, listing_key, read_listing
    from ipfsbin.serve.packages import TimestampBook
    from ipfsbin.serve.run import LOOP
    from tests.unit.catalog.catalog_helpers import host_info

    imported = time.time()
    spec = pickle.loads(Path(sys.argv[1]).read_bytes())  # noqa: S301 - the parent's own file
    port = int(sys.argv[2])
    host = host_info()
    head, sub, policy, now = spec["head"], spec["subscription"], spec["policy"], spec["now"]
    fresh = {head.name: head_refusal(head, now=now, max_age=policy.max_head_age) is None}
    digest = host_digest(host, host.stamp())
    key = listing_key([sub], fresh, host=digest, policy=policy, undeliverable=())
    keyed = time.time()
    files = read_listing(Path(spec["listing"]), key, TimestampBook(Path(spec["book"])), [sub.name])
    if files is None:
        raise SystemExit("the kept listing was not used")
    read = time.time()
    app = create_app(StaticPublisher(files), None, Downloads())  # type: ignore[arg-type]
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
            loop=LOOP, http="httptools",
        )
    )  # fmt: skip
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    phases = {
        "started": STARTED,
        "imported": imported,
        "keyed": keyed,
        "listing_read": read,
        "peak_rss_mb_before_serving": round(peak / 1024, 1),
    }
    print(json.dumps(phases), flush=True)
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
