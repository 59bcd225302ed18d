"""``ipfsbin gc``: decide what this host keeps, pin that, unpin the rest, run Kubo's repo GC.

Kept (every one through the node's pin ledger, ``pins.sqlite``):

- what the followed heads need: the follower's own pins (commits, roots,
  index nodes; never touched here) and, as ``ipfsbin:keep``, the manifest,
  descriptor, platform and attestations of every ``ok`` entry this node
  holds, so the catalog (and the shim's ``Packages``) is rebuilt without
  the network;
- the user's pins (``ipfsbin pin``), as long as a head lists them ``ok``;
- prefetched packages, until installed or superseded;
- the builds of the installed packages (the catalog's first choice for each
  installed CPV) that this node holds whole, as ``ipfsbin:keep``: with a
  size budget, the least recently requested of them are dropped first
  (:mod:`.plan`);
- what this node published (workspace, publish and mirror holders): their
  pins are left alone.

Released: what no holder needs any more (the ``keep`` holder's old needs, the
leftovers of syncs that died, yanked pins, installed or superseded
prefetches). Then ``repo/gc`` deletes every block no pin holds, and the
repo's size before and after gives the freed bytes.

All of it runs under :func:`ipfsbin.kubo.gclock.collecting`: a sync or a
prefetch in flight (blocks fetched, not pinned yet) finishes first, and new
ones wait until gc is done. gc itself never fetches: only blocks already
held are pinned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ipfsbin import paths
from ipfsbin.catalog.build import Catalog
from ipfsbin.catalog.current import current_catalog
from ipfsbin.catalog.heads import FollowedHead, read_heads
from ipfsbin.catalog.pins import PinBook, PinnedBuild, release_pins
from ipfsbin.codec.cid import CID, DAG_CBOR, cid_for
from ipfsbin.config import ClientPolicy
from ipfsbin.descriptor.model import Descriptor
from ipfsbin.errors import IpfsbinError, KuboError
from ipfsbin.gc.plan import Kept, choose_within_budget
from ipfsbin.host.profile import HostInfo
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.kubo import gclock
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.pins import pin_name
from ipfsbin.manifest import Manifest
from ipfsbin.prefetch.plan import plan_updates
from ipfsbin.prefetch.worker import default_prefetch_path, release_prefetched
from ipfsbin.serve.requests import read_requests
from ipfsbin.store.base import BlockStore
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.subscribe._held import release_leftovers
from ipfsbin.subscribe.follower import Follower
from ipfsbin.subscribe.keepers import KuboKeeper
from ipfsbin.trust.signing import load_signed_blocks

__all__ = ["KEEP_HOLDER", "GcReport", "collect_garbage"]

KEEP_HOLDER = pin_name("keep")
_PUBLISHING_ROLES = ("index", "publish", "cosign", "mirror", "share")


@dataclass(frozen=True, kw_only=True)
class GcReport:
    """What one gc kept, let go and freed (``freed_bytes`` is None on a dry run)."""

    dry_run: bool
    repo_before: int
    repo_after: int | None
    removed_blocks: int | None
    head_blocks: int
    metadata_blocks: int
    kept: tuple[Kept, ...]
    dropped: tuple[Kept, ...]
    """Installed packages' builds not kept because of the size budget."""
    released_pins: tuple[PinnedBuild, ...]
    released_prefetched: tuple[PinnedBuild, ...]
    released_keep: int
    """CIDs the ``keep`` holder no longer needs."""
    leftovers: int
    """Blocks left pinned by syncs that died, released now."""
    published: dict[str, int] = field(default_factory=dict)
    """Publishing holders left alone, with how many CIDs each pins."""
    keep_size: int | None = None

    @property
    def freed_bytes(self) -> int | None:
        return None if self.repo_after is None else self.repo_before - self.repo_after

    @property
    def kept_bytes(self) -> int:
        return sum(k.size for k in self.kept)

    def to_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "repo_before": self.repo_before,
            "repo_after": self.repo_after,
            "freed_bytes": self.freed_bytes,
            "removed_blocks": self.removed_blocks,
            "head_blocks": self.head_blocks,
            "metadata_blocks": self.metadata_blocks,
            "kept": [k.to_json() for k in self.kept],
            "kept_bytes": self.kept_bytes,
            "keep_size": self.keep_size,
            "dropped": [k.to_json() for k in self.dropped],
            "released_pins": [b.to_json() for b in self.released_pins],
            "released_prefetched": [b.to_json() for b in self.released_prefetched],
            "released_keep": self.released_keep,
            "leftovers": self.leftovers,
            "published": dict(self.published),
        }


def _entry_blocks(store: BlockStore, entry: IndexEntry) -> list[CID]:
    """An entry's manifest, descriptor, platform and attestations (envelopes and payloads)."""
    manifest = Manifest.from_block(entry.manifest, store.get(entry.manifest))
    descriptor = Descriptor.from_block(manifest.descriptor, store.get(manifest.descriptor))
    found = [entry.manifest, manifest.descriptor, descriptor.platform]
    for link in entry.attestations:
        _, payload = load_signed_blocks(store, link)
        found += [link, cid_for(DAG_CBOR, payload)]
    return found


def _head_entries(
    store: BlockStore, heads: Iterable[FollowedHead], present: set[bytes]
) -> tuple[set[CID], set[CID]]:
    """(metadata blocks of the held ``ok`` entries, the manifests the heads list ``ok``)."""
    blocks: set[CID] = set()
    listed: set[CID] = set()
    for head in heads:
        for _, value in ProllyTree(store).items(head.index_root):
            entry = IndexEntry.from_dag(value)
            if entry.state != "ok":
                continue
            listed.add(entry.manifest)
            if entry.manifest.multihash not in present:
                continue  # never fetched here: nothing to keep
            try:
                found = _entry_blocks(store, entry)
            except IpfsbinError:
                continue  # partly held: the catalog fetches it again when it needs it
            blocks.update(c for c in found if c.multihash in present)
    return blocks, listed


def _held_whole(client: KuboClient, cid: CID, present: set[bytes]) -> bool:
    if cid.multihash not in present:
        return False
    try:
        client.dag_stat(cid, offline=True)
    except KuboError:
        return False
    return True


def _installed_builds(
    client: KuboClient, catalog: Catalog, host: HostInfo, present: set[bytes]
) -> list[Kept]:
    """The first-choice build of every installed CPV that this node holds whole."""
    first = {o.cpv: o for offers in catalog.offers.values() for o in offers if o.rank == 1}
    requests = read_requests()
    found = []
    for package in host.packages:
        offer = first.get(package.cpv)
        if offer is None:
            continue
        binpkg = offer.build.manifest.binpkg
        if not _held_whole(client, binpkg, present):
            continue
        seen = requests.get(binpkg)
        found.append(
            Kept(
                cpv=package.cpv,
                binpkg=binpkg,
                size=offer.build.manifest.size,
                why="installed",
                last_requested=None if seen is None else seen.last,
            )
        )
    return found


def _promised(builds: Iterable[PinnedBuild], why: str) -> list[Kept]:
    return [Kept(cpv=b.cpv, binpkg=b.binpkg, size=b.size, why=why) for b in builds]


def collect_garbage(
    client: KuboClient,
    follower: Follower,
    host: HostInfo,
    policy: ClientPolicy,
    *,
    keep_size: int | None = None,
    dry_run: bool = False,
    on_wait: Callable[[], None] | None = None,
    lock_timeout: float | None = None,
) -> GcReport:
    """Keep what this host needs, release the rest, run repo GC (see the module's text)."""
    with gclock.collecting(on_wait=on_wait, timeout=lock_timeout):
        return _collect(client, follower, host, policy, keep_size=keep_size, dry_run=dry_run)


def _collect(
    client: KuboClient,
    follower: Follower,
    host: HostInfo,
    policy: ClientPolicy,
    *,
    keep_size: int | None,
    dry_run: bool,
) -> GcReport:
    before = client.repo_stat().repo_size
    ledger = follower.ledger(client)
    state = follower.state
    leftovers = 0
    if not dry_run:
        keeper = KuboKeeper(client, ledger)
        for sub in follower.subscriptions():
            with state.keeping():
                leftovers += release_leftovers(state, sub.name, keeper)
    subs = follower.subscriptions()
    head_blocks = sum(len(state.held(s.name)) for s in subs)
    local = KuboBlockStore(client, offline=True)
    present = client.refs_local()
    heads = read_heads(subs, local, freshness=lambda name: follower.freshness(name))
    metadata, listed = _head_entries(local, heads, present)
    catalog = current_catalog(follower, client, host=host, policy=policy, offline=True)

    with PinBook(paths.data_dir() / "user-pins.sqlite") as pins:
        stale_pins = [p for p in pins.all() if p.manifest not in listed]
        if not dry_run:
            release_pins(client, pins, stale_pins)
        pinned = [p for p in pins.all() if p not in stale_pins]
    updates = {u.offer.build.manifest_cid for u in plan_updates(catalog, host, "@installed")}
    with PinBook(default_prefetch_path()) as book:
        done = [b for b in book.all() if b.manifest not in updates]
        if not dry_run:
            release_prefetched(client, book, done)
        prefetched = [b for b in book.all() if b not in done]

    promised = _promised(pinned, "pin") + _promised(prefetched, "prefetch")
    covered = {k.binpkg for k in promised}
    installed = [
        k for k in _installed_builds(client, catalog, host, present) if k.binpkg not in covered
    ]
    kept, dropped = choose_within_budget(promised, installed, keep_size)
    want = {c: False for c in metadata} | {k.binpkg: True for k in kept}
    current = ledger.held_by(KEEP_HOLDER)
    stale = [c for c in current if c not in want]
    removed: int | None = None
    after: int | None = None
    if not dry_run:
        ledger.hold(KEEP_HOLDER, [c for c, r in want.items() if not r and c not in current],
                    recursive=False)  # fmt: skip
        ledger.hold(KEEP_HOLDER, [c for c, r in want.items() if r and not current.get(c)],
                    recursive=True)  # fmt: skip
        ledger.release(KEEP_HOLDER, stale)
        removed = len(client.repo_gc(timeout=3600.0))
        after = client.repo_stat().repo_size
    published = {
        holder: count
        for holder, count in ledger.holders().items()
        if holder.split(":")[1:2] and holder.split(":")[1] in _PUBLISHING_ROLES
    }  # their pins are left alone: Kubo's GC keeps what they pin (recursively, too)
    return GcReport(
        dry_run=dry_run,
        repo_before=before,
        repo_after=after,
        removed_blocks=removed,
        head_blocks=head_blocks,
        metadata_blocks=len(metadata),
        kept=tuple(promised + kept),
        dropped=tuple(dropped),
        released_pins=tuple(stale_pins),
        released_prefetched=tuple(done),
        released_keep=len(stale),
        leftovers=leftovers,
        published=published,
        keep_size=keep_size,
    )
