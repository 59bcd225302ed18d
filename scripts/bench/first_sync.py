#!/usr/bin/env python3
"""Benchmark: a follower's first sync of a big index, full and host-scoped, against Kubo's own.

A publisher node on loopback holds a signed index of ``--entries`` builds
over ten platforms, two of which fit the benchmark's host (the others are
refused on CHOST, CPU features, compiler family or C library: about one
platform in five usable). Entries link manifests by identity-hash CIDs (the
bytes inline in the CID), except the first few of each platform, which link
real manifest, descriptor and platform blocks (what the survey reads), so
Kubo's own recursive ``pin add`` of the index root fetches the index nodes
and those few blocks: the baseline, measured in the same run from the same
peer.

Each mechanism is a real :meth:`ipfsbin.subscribe.Follower.sync` (trust
chain, survey, walk with every node checked against its parent, pins, state)
in a fresh child process, so its peak RSS is the sync's own:

- ``kubo_pin_add``: ``pin add -r`` of the index root on a fresh node (no checks of ours);
- ``kubo_full`` / ``kubo_host``: through a fresh Kubo node connected only to
  the publisher, keeping the whole index / the platforms this host could use;
- ``gateway_full`` / ``gateway_host``: daemon-less, from the publisher's
  trustless gateway (``sync --gateway``);
- ``kubo_full_walk``: ``kubo_full`` without the bulk mover (the level walk alone,
  8 ``block/get`` at a time), the mechanism before it;
- ``kubo_full_serial``: the same as ``kubo_full`` since pins are no longer made
  while the index moves (the name kept so that older commands and results
  still compare).

Through Kubo the index nodes are kept in the follower's holder DAG once the
index has moved: ``pin_seconds`` is the time spent in the keeper in all,
``pin_after_fetch_seconds`` the part in the syncing thread (all of it now),
and ``fetch_check_seconds`` the rest of the sync (moving and checking), so
each can be compared with the baseline. ``refs_walks_after_the_first``
counts the ``refs`` walks that took over from a stalled one (or walked a
lower level), ``nodes_fetched_one_by_one`` the nodes no walk delivered for
30 s.

Reported per mechanism: seconds (the first sync's check for newer trust
roots, a DHT lookup costing 8-10 s here whatever the index size, is done
beforehand and not counted), ratio to the baseline, index nodes held,
bytes moved (Kubo's ``bitswap stat`` on the client node; the sync's own count
for the gateway), peak RSS of the syncing process. For the host-scoped ones,
bytes moved over the usable share of the index (index bytes x usable entries
/ entries; target <= 1.3).

Usage: ``.venv/bin/python scripts/bench/first_sync.py [--entries 100000]
[--only kubo_full,...] [--out bench-results/first_sync.json]
[--profile DIR [--profile-mode memory]]``
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import dataclasses
import hashlib
import inspect
import json
import os
import pickle
import platform
import random
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ipfsbin.codec import dagcbor  # noqa: E402
from ipfsbin.codec.cid import CID, DAG_CBOR, IDENTITY, RAW  # noqa: E402
from ipfsbin.index import IndexEntry, ProllyTree  # noqa: E402
from ipfsbin.index._node import Node  # noqa: E402
from ipfsbin.index.keys import platform_id  # noqa: E402
from ipfsbin.ipns.publish import publish_head  # noqa: E402
from ipfsbin.kubo.client import KuboClient  # noqa: E402
from ipfsbin.kubo.install import ensure_kubo  # noqa: E402
from ipfsbin.kubo.node import ManagedNode  # noqa: E402
from ipfsbin.store.kubo import KuboBlockStore  # noqa: E402
from ipfsbin.store.memory import MemoryBlockStore  # noqa: E402
from ipfsbin.subscribe import FollowConfig, Follower  # noqa: E402
from ipfsbin.subscribe import follower as follower_module  # noqa: E402
from ipfsbin.subscribe._bulk import RefsBulk  # noqa: E402
from ipfsbin.subscribe._delta import Moved  # noqa: E402
from ipfsbin.subscribe.keepers import KuboKeeper  # noqa: E402
from ipfsbin.trust.commit import make_commit, put_commit, sign_commit  # noqa: E402
from ipfsbin.trust.keys import SigningKey  # noqa: E402
from ipfsbin.trust.root import make_root, put_root, sign_root  # noqa: E402
from tests.unit.maintainer.maintainer_helpers import descriptor, make_manifest  # noqa: E402
from tests.unit.subscribe.survey_helpers import (  # noqa: E402
    FITTING,
    MORE_REFUSED,
    REFUSED,
    fits,
)

PLATFORMS = [*FITTING, *REFUSED.values(), *MORE_REFUSED]
REAL_PER_PLATFORM = 4
WAIT = timedelta(seconds=60)
MECHANISMS = (
    "gateway_host",
    "gateway_full",
    "kubo_host",
    "kubo_full",
    "kubo_pin_add",
    "kubo_full_walk",
    "kubo_full_serial",
)
STALL = 600.0
"""A mechanism still running after this many seconds is recorded as stalled (Kubo's bitswap
has been seen to stop answering a peer's wants for good on this loaded machine)."""


def inline_cid(value: dagcbor.Value) -> CID:
    """A dag-cbor CID whose identity multihash carries the block itself (nothing to fetch)."""
    data = dagcbor.encode(value)
    return CID.v1(DAG_CBOR, bytes([IDENTITY, len(data)]) + data)


@dataclass
class Index:
    memory: MemoryBlockStore
    root: CID
    usable_entries: int
    blocks: int
    bytes: int


CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ipfsbin" / "bench"
"""Where built indexes are kept between runs (the 10^6 one takes a quarter of an hour to build)."""


def cached_build(entries: int, seed: int) -> Index:
    """:func:`build`, read back from :data:`CACHE` when this script built the same index before
    (the file is named by entries, seed and a hash of :func:`build`'s source, so a changed
    builder rebuilds)."""
    digest = hashlib.sha256(inspect.getsource(build).encode()).hexdigest()[:12]
    path = CACHE / f"first_sync-{entries}-{seed}-{digest}.pickle"
    if path.exists():
        with path.open("rb") as f:
            root, usable, blocks, size, raw = pickle.load(f)
        memory = MemoryBlockStore()
        memory.put_many((CID(c), d) for c, d in raw)
        return Index(memory, CID(root), usable, blocks, size)
    index = build(entries, seed)
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as f:
        raw = [(c.bytes, index.memory.get(c)) for c in index.memory]
        pickle.dump((index.root.bytes, index.usable_entries, index.blocks, index.bytes, raw), f)
    partial.rename(path)
    return index


def build(entries: int, seed: int) -> Index:
    rng = random.Random(seed)
    memory = MemoryBlockStore()
    keys: dict[int, list[str]] = {i: [] for i in range(len(PLATFORMS))}
    for i in range(entries):
        which = rng.randrange(len(PLATFORMS))
        digest = base64.b32encode(rng.randbytes(16)).decode().rstrip("=").lower()
        cpv = f"cat-{rng.randrange(100)}/pkg{rng.randrange(3000)}/1.{i}"
        keys[which].append(f"{platform_id(PLATFORMS[which].cid)}/{cpv}/{digest}")
    items: list[tuple[str, dagcbor.Value]] = []
    for which, platform_keys in keys.items():
        plat = PLATFORMS[which]
        memory.put(plat.block[1])
        desc = descriptor(f"dev-libs/bench{which}-1.0")
        desc = dataclasses.replace(desc, platform=plat.cid)
        memory.put(desc.block[1])
        for n, key in enumerate(sorted(platform_keys)):
            if n < REAL_PER_PLATFORM:  # what the survey reads: real blocks
                memory.put(key.encode(), RAW)  # the "binpkg", so that pin add -r finds it
                manifest = memory.put(make_manifest(desc, key.encode()).to_block()[1])
            else:
                manifest = inline_cid({"m": rng.randbytes(8)})
            items.append((key, IndexEntry.new(manifest).to_dag()))
    tree = ProllyTree(memory)
    root = tree.build(sorted(items))
    stats = tree.stats(root)
    usable = {f"{platform_id(p.cid)}/" for p in FITTING}
    return Index(
        memory=memory,
        root=root,
        usable_entries=sum(1 for k, _ in items if k[:27] in usable),
        blocks=stats.blocks,
        bytes=stats.bytes,
    )


def _sync_child(
    mechanism: str,
    api: str | None,
    gateway: str | None,
    name: str,
    root: str,
    home: str,
    stall: float = STALL,
    profile_dir: str | None = None,
    profile_mode: str = "cpu",
) -> dict[str, Any]:
    """Runs in a fresh process: one first sync, its figures and the process's peak RSS.

    With ``profile_dir``, the sync runs under cProfile (``<mechanism>.prof``) or, with
    ``profile_mode="memory"``, tracemalloc (what is alive when pinning starts,
    ``<mechanism>.memory.txt``); its times are then not comparable.
    """
    profile = None if profile_dir is None else Path(profile_dir)
    config = FollowConfig(
        gateway=gateway,
        state_path=Path(home) / "state.sqlite",
        block_path=Path(home) / "blocks.sqlite",
        timeout=WAIT,
        deadline=timedelta(seconds=stall),
        default_replica="host" if "host" in mechanism else "full",
        host=lambda: fits,
    )
    pinning = {"all": 0.0, "after": 0.0}  # every keep; those of the syncing thread
    keep = KuboKeeper.keep
    snapped = [0]

    def timed_keep(self: KuboKeeper, cids: Sequence[CID], *, label: str) -> None:
        if profile is not None and tracemalloc.is_tracing():
            now, peak = tracemalloc.get_traced_memory()
            if now > snapped[0] * 1.2:  # what is alive at the highest point seen so far
                snapped[0] = now
                top = tracemalloc.take_snapshot().statistics("lineno")[:25]
                lines = [f"traced {now / 2**20:.1f} MiB, peak {peak / 2**20:.1f}", *map(str, top)]
                (profile / f"{mechanism}.memory.txt").write_text("\n".join(lines) + "\n")
        begun = time.perf_counter()
        keep(self, cids, label=label)
        spent = time.perf_counter() - begun
        pinning["all"] += spent
        if threading.current_thread() is threading.main_thread():
            pinning["after"] += spent

    KuboKeeper.keep = timed_keep  # type: ignore[method-assign]
    one_by_one = RefsBulk._one_by_one
    left_behind = [0]  # nodes the refs walks owed for 30 s, fetched one by one
    walks = [0]  # refs walks after the first (a walk left after a stall, or one more level)

    def counted(
        self: RefsBulk,
        wanted: list[CID],
        expected: dict[CID, tuple[Node, int]],
        moved: dict[CID, None],
    ) -> int:
        left_behind[0] += len(wanted)
        return one_by_one(self, wanted, expected, moved)

    below = RefsBulk.below

    def below_counted(self: RefsBulk, tops: Sequence[Node]) -> Moved:
        try:
            return below(self, tops)
        finally:
            walks[0] += self.restarts
            self.restarts = 0

    RefsBulk._one_by_one = counted  # type: ignore[method-assign]
    RefsBulk.below = below_counted  # type: ignore[method-assign]
    if mechanism.endswith("_walk"):  # the bulk mover off: the level walk alone
        vars(follower_module)["refs_bulk"] = lambda *_, **__: nullcontext(None)

    def connect() -> KuboClient:
        return KuboClient.from_multiaddr(api or "", timeout=300)

    profiler = cProfile.Profile() if profile is not None and profile_mode == "cpu" else None
    with Follower(config, connect=connect) as follower:
        follower.subscribe(name, root=CID.from_text(root))
        # the check for newer trust roots is a DHT lookup of the maintainers' announcements
        # (8-10 s on this two-node network whatever the index size): not part of moving it
        follower.state.record_roots_checked(name, now=time.time())
        if profile is not None and profile_mode == "memory":
            tracemalloc.start(8)
        started = time.perf_counter()
        rss: list[tuple[float, float]] = []
        sampled = threading.Event()
        sampler = threading.Thread(target=_sample_rss, args=(rss, sampled), daemon=True)
        sampler.start()
        with profiler if profiler is not None else nullcontext():
            result = follower.sync(name)
        seconds = time.perf_counter() - started
        sampled.set()
        sampler.join()
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile / f"{mechanism}.prof")
    if result.outcome != "accepted":
        raise RuntimeError(f"{mechanism}: {result.outcome}: {result.error}")
    return {
        "seconds": round(seconds, 2),
        "fetch_check_seconds": round(seconds - pinning["after"], 2),
        "pin_seconds": round(pinning["all"], 2),
        "pin_after_fetch_seconds": round(pinning["after"], 2),
        "nodes_fetched_one_by_one": left_behind[0],
        "refs_walks_after_the_first": walks[0],
        "index_nodes": result.index_blocks,
        "sync_bytes_fetched": result.bytes_fetched,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_mb_every_5s": [mb for _, mb in rss],
    }


def _sample_rss(samples: list[tuple[float, float]], done: threading.Event) -> None:
    """The process's RSS every 5 s until ``done`` (where in the sync the peak falls)."""
    begun = time.perf_counter()
    while not done.wait(5.0):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                mb = round(int(line.split()[1]) / 1024, 1)
                samples.append((round(time.perf_counter() - begun, 1), mb))


def _peak_rss_mb() -> float:
    """This process's own peak RSS (``VmHWM``): ``ru_maxrss`` would carry over the RSS of the
    parent that forked it before the exec, the benchmark with its index in memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def received(node: ManagedNode) -> int:
    stat = json.loads(node.run("bitswap", "stat", "--enc=json").stdout)
    return int(stat["DataReceived"])


def run(options: argparse.Namespace) -> dict[str, Any]:
    load_at_start = os.getloadavg()
    started = time.perf_counter()
    index = cached_build(options.entries, 7)
    print(f"built {index.blocks} nodes in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    binary = ensure_kubo()
    maintainer, signer = SigningKey.generate(), SigningKey.generate()
    signed_root = sign_root(
        make_root(
            expires=int(time.time()) + 86400,
            maintainers=[maintainer.public_key],
            publishers=[signer.public_key],
        ),
        maintainer,
    )
    put_root(index.memory, signed_root)
    head = sign_commit(
        make_commit(index=index.root, root=signed_root, time=int(time.time())), maintainer
    )
    put_commit(index.memory, head)
    out: dict[str, Any] = {}
    spawn = get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="ipfsbin-bench-first-") as tmp:
        publisher = ManagedNode(Path(tmp) / "publisher", binary=binary)
        publisher.start(timeout=60)
        try:
            with publisher.client(timeout=600) as pub:
                KuboBlockStore(pub).put_many((c, index.memory.get(c)) for c in index.memory)
                publish_head(pub, signer, head=head, root=signed_root, timeout=WAIT)
                version = pub.version().version
            for mechanism in options.only:
                home = Path(tmp) / f"home-{mechanism}"
                home.mkdir()
                gateway = publisher.gateway_url if mechanism.startswith("gateway") else None
                node = None
                if gateway is None:
                    node = ManagedNode(Path(tmp) / mechanism, binary=binary)
                    node.start(timeout=60)
                try:
                    if node is not None:
                        with node.client(timeout=60) as client:
                            client.swarm_connect(publisher.swarm_addrs()[:1])
                    if mechanism == "kubo_pin_add":
                        assert node is not None
                        with node.client(timeout=options.stall) as client:
                            begun = time.perf_counter()
                            client.pin_add([index.root], recursive=True, timeout=options.stall)
                            row: dict[str, Any] = {
                                "seconds": round(time.perf_counter() - begun, 2),
                                "index_nodes": index.blocks,
                            }
                    else:
                        api = None if node is None else node.api_multiaddr
                        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
                            row = pool.submit(
                                _sync_child,
                                mechanism,
                                api,
                                gateway,
                                signer.key_id,
                                str(signed_root.cid),
                                str(home),
                                options.stall,
                                options.profile,
                                options.profile_mode,
                            ).result(timeout=options.stall)
                    row["bytes_moved"] = (
                        received(node) if node is not None else row["sync_bytes_fetched"]
                    )
                except Exception as exc:  # noqa: BLE001 - recorded, the next mechanism runs
                    row = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                    if node is not None:
                        row["bytes_moved"] = received(node)
                finally:
                    if node is not None:
                        node.stop()
                out[mechanism] = row
                print(mechanism, row, file=sys.stderr, flush=True)
        finally:
            publisher.stop()
    usable_share = index.bytes * index.usable_entries / options.entries
    base = out.get("kubo_pin_add", {}).get("seconds")
    for mechanism, row in out.items():
        if "error" in row:
            continue
        if base:
            row["ratio_to_kubo"] = round(row["seconds"] / base, 2)
            if "fetch_check_seconds" in row and mechanism.startswith("kubo_"):
                row["fetch_check_ratio_to_kubo"] = round(row["fetch_check_seconds"] / base, 2)
        if "host" in mechanism:
            row["bytes_over_usable_share"] = round(row["bytes_moved"] / usable_share, 2)
    return {
        "benchmark": "first_sync",
        "machine": {
            "system": platform.system(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "note": "2 cores shared with parallel work: wall times are pessimistic",
            "load_average_at_start": load_at_start,
            "load_average_at_end": os.getloadavg(),
        },
        "kubo": version,
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "entries": options.entries,
        "platforms": len(PLATFORMS),
        "usable_platforms": len(FITTING),
        "usable_entries": index.usable_entries,
        "usable_share_bytes": round(usable_share),
        "index": {"blocks": index.blocks, "bytes": index.bytes},
        "mechanisms": out,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument(
        "--stall", type=float, default=STALL, help="seconds one mechanism may take (and its sync)"
    )
    parser.add_argument("--profile", help="directory for a profile of each sync (slows it)")
    parser.add_argument("--profile-mode", choices=("cpu", "memory"), default="cpu")
    parser.add_argument("--only", type=lambda s: s.split(","), default=list(MECHANISMS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "first_sync.json")
    options = parser.parse_args()
    result = run(options)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
