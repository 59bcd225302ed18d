#!/usr/bin/env python3
"""Benchmark: what a follower moves per index update, and how soon it sees a new head.

Three real Kubo nodes on loopback (publisher, mirror, client; test profile,
DHT routing). The publisher holds an index of ``--entries`` synthetic builds
(keys shaped ``platform/category/package/version/digest``), built in memory
with the prolly ``build`` and stored with batched ``block/put``.

1. Blocks and bytes: the client and the mirror follow the first head (the
   baseline: the full index), then updates of 1, 100 and 1000 entries, each
   committed with its changeset, published and synced. Two shapes of update:
   ``random`` (entries rewritten all over the key space, the worst case for
   any B-tree-like structure) and ``clustered`` (new builds under one
   platform and category, as one builder's batch lands: adjacent keys).
   The client rebuilds the new index from the changeset (``changeset``); the
   mirror syncs with ``changesets=False`` and fetches the new nodes
   (``nodes``, the behaviour before changesets), on the same index. Reported
   per follower: blocks and bytes that came over the network and their
   fraction of the full index, and the blocks written locally.
2. Latency: from the start of ``publish_head`` to the client's sync seeing the
   new head (polling every 0.2 s), ``--rounds`` times. Baseline: Kubo alone,
   ``name/publish`` on the publisher and ``name/resolve --nocache`` polled on
   the client until it returns the new path.

Usage: ``.venv/bin/python scripts/bench/sync.py [--entries 100000] [--rounds 5]
[--out bench-results/sync.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ipfsbin.codec import dagcbor  # noqa: E402
from ipfsbin.codec.cid import CID, DAG_CBOR, cid_for  # noqa: E402
from ipfsbin.index import IndexEntry, ProllyTree  # noqa: E402
from ipfsbin.index.changeset import put_changeset, split_changes  # noqa: E402
from ipfsbin.ipns.publish import publish_head  # noqa: E402
from ipfsbin.kubo.client import KuboClient  # noqa: E402
from ipfsbin.kubo.install import ensure_kubo  # noqa: E402
from ipfsbin.kubo.node import ManagedNode  # noqa: E402
from ipfsbin.kubo.pins import PinLedger  # noqa: E402
from ipfsbin.store.kubo import KuboBlockStore  # noqa: E402
from ipfsbin.store.memory import MemoryBlockStore  # noqa: E402
from ipfsbin.subscribe import (  # noqa: E402
    KuboKeeper,
    KuboRecordSource,
    SubscriptionStore,
    SyncResult,
    sync_subscription,
)
from ipfsbin.trust.commit import SignedCommit, make_commit, put_commit, sign_commit  # noqa: E402
from ipfsbin.trust.keys import SigningKey  # noqa: E402
from ipfsbin.trust.root import SignedRoot, make_root, put_root, sign_root  # noqa: E402
from ipfsbin.trust.state import RootPin  # noqa: E402

WAIT = timedelta(seconds=30)
CATEGORIES = [
    f"{a}-{b}"
    for a in ("app", "dev", "media", "net", "sys", "x11", "games", "sci", "www", "mail")
    for b in ("libs", "lang", "util", "misc", "apps", "text", "video", "sound", "db", "fonts")
]


class Builds:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.platforms = [f"p{self.rng.randbytes(6).hex()}" for _ in range(8)]
        self.serial = 0

    def entry(self) -> dagcbor.Value:
        rng = self.rng
        links = [cid_for(DAG_CBOR, rng.randbytes(16)) for _ in range(rng.randrange(1, 4))]
        return IndexEntry.new(cid_for(DAG_CBOR, rng.randbytes(16)), links).to_dag()

    def key(self, platform_id: str | None = None, category: str | None = None) -> str:
        rng = self.rng
        self.serial += 1
        return "/".join(
            (
                platform_id or rng.choice(self.platforms),
                category or rng.choice(CATEGORIES),
                f"pkg{rng.randrange(3000)}",
                f"{rng.randrange(1, 30)}.{rng.randrange(20)}.{self.serial}",
                rng.randbytes(8).hex(),
            )
        )


class Lan:
    """Three nodes on loopback and the objects the publisher signs."""

    def __init__(self, base: Path) -> None:
        binary = ensure_kubo()
        config = {"Ipns.MaxCacheTTL": "1s"}
        self.nodes = [
            ManagedNode(base / name, binary=binary, extra_config=config)
            for name in ("publisher", "mirror", "client")
        ]
        for node in self.nodes:
            node.start(timeout=60)
        self.clients = [n.client(timeout=120) for n in self.nodes]
        for i, client in enumerate(self.clients):
            others = [a for j, n in enumerate(self.nodes) if j != i for a in n.swarm_addrs()[:1]]
            client.swarm_connect(others)
        self.pub, self.mirror, self.client = self.clients
        self.maintainer = SigningKey.generate()
        self.publisher = SigningKey.generate()
        self.memory = MemoryBlockStore()
        self.root: SignedRoot = sign_root(
            make_root(
                expires=int(time.time()) + 30 * 86400,
                maintainers=[self.maintainer.public_key],
                publishers=[self.publisher.public_key],
            ),
            self.maintainer,
        )
        put_root(self.memory, self.root)
        self.uploaded: set[CID] = set()
        self.heads: list[SignedCommit] = []
        self.state = SubscriptionStore(base / "client.sqlite")
        self.mirror_state = SubscriptionStore(base / "mirror.sqlite")
        for state in (self.state, self.mirror_state):
            state.add(self.name, RootPin(cid=self.root.root_id), self.root.cid, now=time.time())

    @property
    def name(self) -> str:
        return self.publisher.key_id

    def upload(self) -> None:
        fresh = [c for c in self.memory if c not in self.uploaded]
        KuboBlockStore(self.pub).put_many((c, self.memory.get(c)) for c in fresh)
        self.uploaded.update(fresh)

    def commit(self, index: CID, upserts: dict[str, dagcbor.Value] | None = None) -> SignedCommit:
        changes: tuple[CID, ...] = ()
        if upserts is not None and self.heads:
            base = self.heads[-1].commit.index
            changes = put_changeset(self.memory, split_changes(base, upserts))
        commit = make_commit(
            index=index,
            root=self.root,
            time=int(time.time()),
            parents=self.heads[-1:],
            changes=changes,
        )
        signed = sign_commit(commit, self.maintainer)
        put_commit(self.memory, signed)
        self.upload()
        self.heads.append(signed)
        return signed

    def publish(self, head: SignedCommit) -> None:
        publish_head(self.pub, self.publisher, head=head, root=self.root, timeout=WAIT)

    def sync(self, *, mirror: bool = False) -> SyncResult:
        """The client's sync (with changesets), or the mirror's (fetching nodes)."""
        node = self.mirror if mirror else self.client
        state = self.mirror_state if mirror else self.state
        result = sync_subscription(
            state,
            self.name,
            records=KuboRecordSource(node, timeout=WAIT),
            store=KuboBlockStore(node, offline=False, fetch_timeout=WAIT),
            keeper=KuboKeeper(node, PinLedger(node, state.path.with_name("pins.sqlite"))),
            local_store=KuboBlockStore(node, offline=True),
            changesets=not mirror,
        )
        if result.outcome in ("refused", "failed"):
            raise RuntimeError(f"sync failed: {result.error}")
        return result

    def close(self) -> None:
        self.state.close()
        self.mirror_state.close()
        for client in self.clients:
            client.close()
        for node in self.nodes:
            node.stop()


def machine(kubo: KuboClient) -> dict[str, Any]:
    return {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "kubo": kubo.version().version,
    }


def moved(result: SyncResult, full: dict[str, int]) -> dict[str, Any]:
    return {
        "via": result.via,
        "index_blocks": result.index_blocks,
        "blocks": result.blocks_fetched,
        "bytes": result.bytes_fetched,
        "fraction_blocks": round(result.blocks_fetched / full["blocks"], 5),
        "fraction_bytes": round(result.bytes_fetched / full["bytes"], 5),
        "changeset_blocks": result.changeset_blocks,
        "blocks_written": result.blocks_written,
        "bytes_written": result.bytes_written,
        "sync_seconds": round(result.seconds, 3),
    }


def updates(lan: Lan, tree: ProllyTree, builds: Builds, full: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    index = lan.heads[-1].commit.index
    for shape in ("random", "clustered"):
        out[shape] = {}
        for size in (1, 100, 1000):
            if shape == "random":
                keys = [k for k, _ in tree.items(index)]
                upserts = {k: builds.entry() for k in builds.rng.sample(keys, size)}
            else:
                platform_id = builds.platforms[0]
                category = builds.rng.choice(CATEGORIES)
                upserts = {builds.key(platform_id, category): builds.entry() for _ in range(size)}
            started = time.perf_counter()
            index = tree.mutate(index, upserts)
            head = lan.commit(index, upserts)
            lan.publish(head)
            result = lan.sync()
            assert result.height == head.height and result.via == "changeset", result.fallback
            after = moved(result, full)
            after["publish_to_synced_seconds"] = round(time.perf_counter() - started, 3)
            before = lan.sync(mirror=True)
            assert before.height == head.height and before.via == "nodes"
            out[shape][str(size)] = {"changeset": after, "nodes": moved(before, full)}
            print(f"{shape} {size}: {out[shape][str(size)]}", file=sys.stderr)
    return out


def poll(check: Callable[[], bool], limit: float = 60.0) -> float:
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > limit:
            raise TimeoutError("not visible within the limit")
        time.sleep(0.2)
    return time.perf_counter() - started


def latency(lan: Lan, tree: ProllyTree, builds: Builds, rounds: int) -> dict[str, Any]:
    ours: list[float] = []
    for _ in range(rounds):
        upserts = {builds.key(): builds.entry()}
        index = tree.mutate(lan.heads[-1].commit.index, upserts)
        head = lan.commit(index, upserts)
        started = time.perf_counter()
        lan.publish(head)
        published = time.perf_counter() - started
        seen = poll(lambda h=head: lan.sync().height == h.height)  # type: ignore[misc]
        ours.append(published + seen)
    kubo_key = SigningKey.generate()
    lan.pub.key_import("bench", kubo_key.to_pem())
    theirs: list[float] = []
    for i in range(rounds):
        target = lan.memory.put(dagcbor.encode({"kubo-baseline": i, "at": time.time()}))
        lan.upload()
        started = time.perf_counter()
        lan.pub.name_publish(target, key="bench", allow_offline=True)

        def resolved(target: CID = target) -> bool:
            try:
                path = lan.client.name_resolve(
                    kubo_key.key_id, nocache=True, dht_timeout=timedelta(seconds=5)
                )
            except Exception:
                return False
            return path == f"/ipfs/{target}"

        poll(resolved)
        theirs.append(time.perf_counter() - started)

    def summary(values: list[float]) -> dict[str, Any]:
        return {
            "seconds": [round(v, 3) for v in values],
            "median": round(statistics.median(values), 3),
            "max": round(max(values), 3),
        }

    return {
        "ipfsbin_publish_to_client_head": summary(ours),
        "kubo_publish_resolve": summary(theirs),
    }


def run(entries: int, rounds: int) -> dict[str, Any]:
    builds = Builds(7)
    with tempfile.TemporaryDirectory(prefix="ipfsbin-bench-sync-") as tmp:
        lan = Lan(Path(tmp))
        try:
            tree = ProllyTree(lan.memory)
            started = time.perf_counter()
            items = sorted((builds.key(), builds.entry()) for _ in range(entries))
            index = tree.build(items)
            build_seconds = time.perf_counter() - started
            started = time.perf_counter()
            head = lan.commit(index)
            upload_seconds = time.perf_counter() - started
            stats = tree.stats(index)
            lan.publish(head)
            first = lan.sync()
            lan.sync(mirror=True)
            full = {"blocks": first.blocks_fetched, "bytes": first.bytes_fetched}
            print(f"full: {full}, {first.seconds:.1f}s", file=sys.stderr)
            result = {
                "benchmark": "sync",
                "machine": machine(lan.pub),
                "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "entries": entries,
                "index": {
                    "blocks": stats.blocks,
                    "bytes": stats.bytes,
                    "depth": stats.depth,
                    "build_seconds": round(build_seconds, 3),
                    "upload_seconds": round(upload_seconds, 3),
                },
                "baseline_full_fetch": {**moved(first, full)},
                "updates": updates(lan, tree, builds, full),
                "latency": latency(lan, tree, builds, rounds),
            }
        finally:
            lan.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "sync.json")
    options = parser.parse_args()
    result = run(options.entries, options.rounds)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
