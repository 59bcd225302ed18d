#!/usr/bin/env python3
"""Benchmark: time for ``ipfsbin mirror`` to replicate an index and its packages in IPFS Cluster.

A real three-peer cluster on loopback, each peer with its own Kubo, and a
publisher node. The publisher holds a signed index of ``--entries`` entries;
each entry's manifest is a DAG-CBOR block linking a small raw "binpkg"
block, and its attestation a block linking the manifest (the shapes the
mirror pins, without the cost of making real packages).

1. ``Mirror.round()`` with replication 2 (sync of the index, plan, pins
   through the REST API, ``Mirror.concurrency`` requests in flight), until
   every pin is pinned on two peers. Then every pin is removed (16 requests
   at a time) and the cluster's Kubos collect their garbage, so the
   baseline starts cold too.
2. Baseline: ``ipfs-cluster-ctl pin add --replication 2`` of every CID the
   mirror pinned (the index blocks' raw aliases, the manifests and the
   attestations), one command per CID, ``--ctl-parallel`` commands at a
   time (as ``xargs -P`` would; 1 is a plain shell loop), until the cluster
   reports every pin pinned on two peers.

The mirror goes first so that a run stopped before its end still measured
the mirror. Every 30 s a line on standard error says how many pins are on
two peers, and the JSON file is written after each side with ``"partial"``
until both are done: a run cut short leaves an honest partial figure.

Both sides run against peers with Cluster's CRDT batching on
(``ClusterPeer``'s ``CRDT_BATCHING``).

Usage: ``.venv/bin/python scripts/bench/mirror.py [--entries 10000]
[--ctl-parallel 16] [--out bench-results/mirror.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ipfsbin.cluster.install import ensure_cluster  # noqa: E402
from ipfsbin.cluster.peer import CRDT_BATCHING, ClusterPeer, new_cluster_secret  # noqa: E402
from ipfsbin.cluster.rest import ClusterClient  # noqa: E402
from ipfsbin.codec import dagcbor  # noqa: E402
from ipfsbin.codec.cid import CID, DAG_CBOR, RAW, cid_for  # noqa: E402
from ipfsbin.index import IndexEntry, ProllyTree  # noqa: E402
from ipfsbin.ipns.publish import publish_head  # noqa: E402
from ipfsbin.kubo.install import ensure_kubo  # noqa: E402
from ipfsbin.kubo.node import ManagedNode  # noqa: E402
from ipfsbin.mirror import ClusterEngine, Mirror  # noqa: E402
from ipfsbin.mirror.plan import index_pin_prefix, kept_entries, wanted_pins  # noqa: E402
from ipfsbin.store.kubo import KuboBlockStore  # noqa: E402
from ipfsbin.store.memory import MemoryBlockStore  # noqa: E402
from ipfsbin.subscribe.follower import FollowConfig, Follower  # noqa: E402
from ipfsbin.trust.commit import make_commit, put_commit, sign_commit  # noqa: E402
from ipfsbin.trust.keys import SigningKey  # noqa: E402
from ipfsbin.trust.root import make_root, put_root, sign_root  # noqa: E402

WAIT = timedelta(seconds=60)
PLATFORM = "bp3js7i42m44tbofc25zviu45q"


def index_blocks(entries: int) -> tuple[MemoryBlockStore, CID]:
    """A prolly index of ``entries`` entries and every block it links, in memory."""
    memory = MemoryBlockStore()
    rows = []
    for i in range(entries):
        binpkg = f"binpkg {i}\n".encode() * 8
        binpkg_cid = cid_for(RAW, binpkg)
        manifest = dagcbor.encode({"binpkg": binpkg_cid, "n": i})
        manifest_cid = cid_for(DAG_CBOR, manifest)
        attestation = dagcbor.encode({"manifest": manifest_cid, "sig": bytes(64)})
        attestation_cid = cid_for(DAG_CBOR, attestation)
        memory.put_many(
            [(binpkg_cid, binpkg), (manifest_cid, manifest), (attestation_cid, attestation)]
        )
        digest = f"{i:026d}".translate(str.maketrans("0123456789", "abcdefghij"))
        key = f"{PLATFORM}/app-misc/pkg{i % 997}/1.{i}/{digest}"
        rows.append((key, IndexEntry.new(manifest_cid, [attestation_cid]).to_dag()))
    root = ProllyTree(memory).build(sorted(rows))
    return memory, root


def wait_pinned(cluster: ClusterClient, cids: set[str], copies: int, limit: float) -> float:
    """Seconds until every CID of ``cids`` is pinned on ``copies`` peers."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        done = {str(s.cid) for s in cluster.status() if s.pinned_on >= copies}
        if cids <= done:
            return time.monotonic() - start
        time.sleep(1.0)
    raise RuntimeError(f"not every pin was pinned on {copies} peers within {limit:.0f}s")


class Progress:
    """Logs every ``every`` seconds how many of ``cids`` are pinned on two peers (a thread)."""

    def __init__(self, url: str, cids: set[str], phase: str, every: float = 30.0) -> None:
        self.url, self.cids, self.phase, self.every = url, cids, phase, every
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Progress:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        with ClusterClient(self.url, timeout=600) as cluster:
            while not self.stop.wait(self.every):
                try:
                    statuses = cluster.status()
                except Exception as exc:  # noqa: BLE001 - a progress line, never the run
                    log(f"{self.phase}: status failed: {exc}")
                    continue
                ours = [s for s in statuses if str(s.cid) in self.cids]
                twice = sum(1 for s in ours if s.pinned_on >= 2)
                log(
                    f"{self.phase}: {time.monotonic() - self.started:.0f}s, {len(ours)} of "
                    f"{len(self.cids)} pins requested, {twice} on two peers"
                )


def log(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)


def timed(action: Callable[[], object]) -> float:
    start = time.monotonic()
    action()
    return time.monotonic() - start


def run(entries: int, ctl_parallel: int, out: Path) -> dict[str, Any]:
    kubo_binary = ensure_kubo()
    binaries = ensure_cluster()
    with tempfile.TemporaryDirectory(prefix="ipfsbin-bench-mirror-") as tmp:
        base = Path(tmp)
        nodes = [
            ManagedNode(base / f"kubo{i}", binary=kubo_binary, extra_config={}) for i in range(4)
        ]
        peers: list[ClusterPeer] = []
        try:
            for node in nodes:
                node.start(timeout=60)
            for i, node in enumerate(nodes):
                with node.client() as client:
                    others = [a for j, n in enumerate(nodes) if j != i for a in n.swarm_addrs()[:1]]
                    client.swarm_connect(others)
            publisher, *kubos = nodes
            secret = new_cluster_secret()
            for i, node in enumerate(kubos):
                peer = ClusterPeer(
                    base / f"peer{i}", kubo_api=node.api_multiaddr, secret=secret, binaries=binaries
                )
                peer.start(bootstrap=[p.multiaddr for p in peers])
                peers.append(peer)
            cluster = ClusterClient(peers[0].rest_url, timeout=600)
            while len(cluster.metrics()) < 3:
                time.sleep(0.5)
            return measure(entries, base, publisher, kubos, peers, cluster, ctl_parallel, out)
        finally:
            for peer in reversed(peers):
                peer.stop()
            for node in nodes:
                node.stop()


def measure(
    entries: int,
    base: Path,
    publisher: ManagedNode,
    kubos: list[ManagedNode],
    peers: list[ClusterPeer],
    cluster: ClusterClient,
    ctl_parallel: int,
    out: Path,
) -> dict[str, Any]:
    log(f"building and storing an index of {entries} entries")
    maintainer, publisher_key = SigningKey.generate(), SigningKey.generate()
    memory, index = index_blocks(entries)
    root = sign_root(
        make_root(
            expires=int(time.time()) + 30 * 86400,
            maintainers=[maintainer.public_key],
            publishers=[publisher_key.public_key],
        ),
        maintainer,
    )
    put_root(memory, root)
    head = sign_commit(make_commit(index=index, root=root, time=int(time.time())), maintainer)
    put_commit(memory, head)
    with publisher.client() as pub:
        KuboBlockStore(pub).put_many((c, memory.get(c)) for c in list(memory))
        publish_head(pub, publisher_key, head=head, root=root, timeout=WAIT)

    name = publisher_key.key_id
    follower = Follower(
        FollowConfig(state_path=base / "mirror.sqlite", timeout=WAIT), connect=kubos[0].client
    )
    follower.subscribe(name, root=root.cid)
    with kubos[0].client(timeout=600) as kubo:
        mirror = Mirror(follower, ClusterEngine(cluster), kubo, replication=2, timeout=WAIT)
        # What the mirror will pin: the follower's replica needs one sync first.
        follower.sync(name)
        sub = follower.state.get(name)
        assert sub.index_root is not None
        wanted = wanted_pins(
            name,
            held=follower.state.held(name),
            entries=kept_entries(sub.index_root, KuboBlockStore(kubo), mirror.policy),
        )
        cids = {str(c) for c in wanted}
        figures: dict[str, Any] = {"entries": entries, "pins": len(cids), "partial": True}
        figures["crdt_batching"] = CRDT_BATCHING

        ctl = [str(peers[0].binaries.ctl), "--host", f"/ip4/127.0.0.1/tcp/{port(peers[0])}"]

        def ctl_pin(cid: str) -> None:
            subprocess.run(  # noqa: S603 - our binary
                [*ctl, "pin", "add", "--no-status", "--replication", "2", cid],
                check=True,
                capture_output=True,
            )

        def ctl_pin_all() -> None:
            with ThreadPoolExecutor(ctl_parallel) as pool:
                list(pool.map(ctl_pin, sorted(cids)))

        log(f"mirror: one round, {len(cids)} pins")
        results: list[Any] = []
        with Progress(peers[0].rest_url, cids, "mirror"):
            mirror_submit = timed(lambda: results.extend(mirror.round([name])))
            mirror_wait = wait_pinned(cluster, cids, 2, 3600)
        (round_,) = results
        mine = [p for p in cluster.pinset() if p.name.startswith(index_pin_prefix(name))]
        figures["mirror"] = {
            "concurrency": mirror.concurrency,
            "pinned": round_.pinned,
            "errors": len(round_.errors),
            "submit_s": round(mirror_submit, 2),
            "replicated_s": round(mirror_submit + mirror_wait, 2),
            "pins_in_cluster": len(mine),
        }
        write(out, figures)

        log("removing every pin and collecting garbage")
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(cluster.unpin, sorted(cids)))
        while any(str(p.cid) in cids for p in cluster.pinset()):
            time.sleep(0.5)
        time.sleep(5)  # let the peers' Kubos drop their pins
        for node in kubos:
            node.run("repo", "gc", "--quiet", timeout=600)

        log(f"baseline: ipfs-cluster-ctl pin add, {ctl_parallel} at a time")
        with Progress(peers[0].rest_url, cids, "baseline"):
            baseline_submit = timed(ctl_pin_all)
            baseline_wait = wait_pinned(cluster, cids, 2, 3600)
    follower.close()
    figures["baseline_ctl_pin_add"] = {
        "parallel": ctl_parallel,
        "submit_s": round(baseline_submit, 2),
        "replicated_s": round(baseline_submit + baseline_wait, 2),
    }
    figures["ratio_mirror_to_baseline"] = round(
        figures["mirror"]["replicated_s"] / (baseline_submit + baseline_wait), 3
    )
    figures["partial"] = False
    return figures


def port(peer: ClusterPeer) -> int:
    return int(peer.rest_url.rsplit(":", 1)[1])


_HEADER: dict[str, Any] = {}


def write(out: Path, figures: dict[str, Any]) -> None:
    """The result so far as JSON in ``out`` (``partial`` until both sides are measured)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**_HEADER, **figures}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--ctl-parallel", type=int, default=16)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "mirror.json")
    options = parser.parse_args()
    _HEADER.update(
        benchmark="mirror",
        when=datetime.now(UTC).isoformat(timespec="seconds"),
        machine={"cpus": os.cpu_count(), "platform": platform.platform()},
        note="one run on a 2-core machine shared with parallel work: wall times are pessimistic",
    )
    figures = run(options.entries, options.ctl_parallel, options.out)
    write(options.out, figures)
    print(options.out.read_text())


if __name__ == "__main__":
    main()
