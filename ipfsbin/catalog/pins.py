"""``ipfsbin pin``: keep the fitting binaries of chosen packages in Kubo, and follow the index.

A pin fetches a build's binpkg (Kubo asks its peers), checks every byte
against the signed manifest (:class:`~ipfsbin.manifest.BinpkgVerifier`)
and keeps it under a recursive pin held in the node's pin ledger as
``ipfsbin:pin:<manifest CID>`` (so a binpkg also prefetched or kept by ``gc``
stays pinned when one of them lets go), so this host seeds it to others and
can install it offline. Pins are listed in
``<data dir>/user-pins.sqlite``. They follow the index: :func:`prune_pins`, run
after every sync, unpins what no followed head lists as ``ok`` any more (a
yanked or removed entry).

Selectors (:func:`select_offers`): ``@world``, ``@installed``, an atom
(``cat/pkg``, ``=cat/pkg-1.0``), a category (``cat`` or ``cat/*``), or every
offer (``all_compatible``). For each CPV the catalog's first choice is
pinned: the build Portage would install.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ipfsbin import _sqlite, paths
from ipfsbin.catalog.build import Catalog, Offer, parse_atom
from ipfsbin.catalog.heads import FollowedHead, read_heads
from ipfsbin.codec.cid import CID
from ipfsbin.errors import IpfsbinError, SubscriptionError, TrustError
from ipfsbin.host.profile import HostInfo
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.kubo import gclock
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.pins import PinLedger, pin_name
from ipfsbin.manifest import BinpkgVerifier
from ipfsbin.store.base import BlockStore
from ipfsbin.subscribe.follower import Follower

__all__ = [
    "PinBook",
    "PinOutcome",
    "PinnedBuild",
    "fetch_verify_pin",
    "pin_offers",
    "pinned_build",
    "release_pins",
    "prune_after_sync",
    "prune_pins",
    "select_offers",
    "unpin_selected",
    "world_cps",
]

_MIGRATIONS: Final = (
    _sqlite.Migration(
        version=1,
        apply=_sqlite.statements(
            "CREATE TABLE IF NOT EXISTS pins (manifest TEXT PRIMARY KEY, binpkg TEXT NOT NULL, "
            "cpv TEXT NOT NULL, subscription TEXT NOT NULL, size INTEGER NOT NULL, "
            "pinned_at REAL NOT NULL)"
        ),
    ),
)


@dataclass(frozen=True, kw_only=True)
class PinnedBuild:
    manifest: CID
    binpkg: CID
    cpv: str
    subscription: str
    size: int

    def to_json(self) -> dict[str, object]:
        return {
            "manifest": str(self.manifest),
            "binpkg": str(self.binpkg),
            "cpv": self.cpv,
            "subscription": self.subscription,
            "size": self.size,
        }


class PinBook:
    """The builds this host pinned on the user's request (``<data dir>/user-pins.sqlite``)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = paths.data_dir() / "user-pins.sqlite" if path is None else path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = _sqlite.connect(
            self.path,
            what="pin list",
            recovery="pin the packages again with `ipfsbin pin`",
        )
        _sqlite.migrate(
            self._db, _MIGRATIONS, what="pin list", path=self.path, error=SubscriptionError
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PinBook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def all(self) -> list[PinnedBuild]:
        rows = self._db.execute(
            "SELECT manifest, binpkg, cpv, subscription, size FROM pins ORDER BY cpv"
        ).fetchall()
        return [_row(r) for r in rows]

    def add(self, build: PinnedBuild) -> None:
        with _sqlite.transaction(self._db):
            self._db.execute(
                "INSERT OR REPLACE INTO pins VALUES (?, ?, ?, ?, ?, ?)",
                (
                    str(build.manifest),
                    str(build.binpkg),
                    build.cpv,
                    build.subscription,
                    build.size,
                    time.time(),
                ),
            )

    def remove(self, manifest: CID) -> None:
        with _sqlite.transaction(self._db):
            self._db.execute("DELETE FROM pins WHERE manifest = ?", (str(manifest),))


def _row(row: sqlite3.Row | tuple[str, str, str, str, int]) -> PinnedBuild:
    manifest, binpkg, cpv, subscription, size = row
    return PinnedBuild(
        manifest=CID.from_text(manifest),
        binpkg=CID.from_text(binpkg),
        cpv=cpv,
        subscription=subscription,
        size=int(size),
    )


def _matcher(selector: str, host: HostInfo) -> Callable[[str], bool]:
    """A test on CPVs for one selector; ``ValueError`` for one that is not understood."""
    if selector in ("@world", "@selected"):
        wanted = world_cps(host)
        return lambda cpv: _cp(cpv) in wanted
    if selector == "@installed":
        return lambda cpv: _cp(cpv) in host.installed
    if "/" not in selector or selector.endswith("/*"):
        category = selector.removesuffix("/*")
        if not category or any(c in category for c in " =<>~/@"):
            raise ValueError(f"{selector!r} is not a category, an atom or a set")
        return lambda cpv: cpv.split("/", 1)[0] == category
    category, package, version = parse_atom(selector)
    if version is None:
        return lambda cpv: _cp(cpv) == f"{category}/{package}"
    return lambda cpv: cpv == f"{category}/{package}-{version}"


def _cp(cpv: str) -> str:
    from ipfsbin.descriptor.cpv import split_cpv

    category, package, _ = split_cpv(cpv)
    return f"{category}/{package}"


def _cp_of(atom: str) -> str:
    """``cat/pkg`` of a world-file atom (``cat/pkg``, ``cat/pkg:slot``, ``=cat/pkg-1``)."""
    text = atom.lstrip("=<>~").split(":", 1)[0]
    try:
        return _cp(text)
    except ValueError:
        return text


def world_cps(host: HostInfo) -> frozenset[str]:
    """The ``category/package`` of every atom in the world file."""
    return frozenset(_cp_of(atom) for atom in host.world)


def select_offers(
    catalog: Catalog, selectors: Sequence[str], host: HostInfo, *, all_compatible: bool = False
) -> list[Offer]:
    """The first-choice offer of each CPV that a selector names (one per CPV)."""
    tests = [_matcher(s, host) for s in selectors]
    chosen: dict[str, Offer] = {}
    for name in sorted(catalog.offers):
        for offer in catalog.offers[name]:
            if offer.rank != 1 or offer.cpv in chosen:
                continue
            if all_compatible or any(test(offer.cpv) for test in tests):
                chosen[offer.cpv] = offer
    return [chosen[cpv] for cpv in sorted(chosen)]


@dataclass(frozen=True, kw_only=True)
class PinOutcome:
    build: PinnedBuild
    ok: bool
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        return {**self.build.to_json(), "ok": self.ok, "error": self.error}


def _verify_local(client: KuboClient, offer: Offer) -> None:
    manifest = offer.build.manifest
    verifier = BinpkgVerifier(manifest, offer.build.manifest_cid)
    for chunk in client.cat(manifest.binpkg, expected_size=manifest.size, offline=True):
        verifier.update(chunk)
    verifier.finish()


def _throttled(chunks: Iterable[bytes], rate: float) -> Iterator[bytes]:
    """``chunks`` at most ``rate`` bytes a second on average (Kubo fetches as they are read)."""
    started = time.monotonic()
    got = 0
    for chunk in chunks:
        got += len(chunk)
        yield chunk
        ahead = got / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)


def fetch_verify_pin(
    client: KuboClient,
    ledger: PinLedger,
    offer: Offer,
    *,
    holder: str,
    rate: float | None = None,
) -> None:
    """Fetch ``offer``'s binpkg, check every byte against its signed manifest, pin it for
    ``holder`` in the node's pin ledger; ``TrustError`` (nothing kept) when the bytes differ.

    Without ``rate`` Kubo fetches the file in bulk while pinning and the bytes are
    checked from the local repo (unpinned again if they fail); with ``rate``
    (bytes a second) the bytes are streamed at that pace through the check and
    pinned only when it passed (prefetch). Either way repo GC is held off
    until the pin is made (:mod:`ipfsbin.kubo.gclock`).
    """
    manifest = offer.build.manifest
    with gclock.fetching():
        if rate is None:
            ledger.hold(holder, [manifest.binpkg], recursive=True)
            try:
                _verify_local(client, offer)
            except TrustError:
                ledger.release(holder, [manifest.binpkg])
                raise
            return
        verifier = BinpkgVerifier(manifest, offer.build.manifest_cid)
        stream = client.cat(manifest.binpkg, expected_size=manifest.size, chunk_size=1 << 20)
        for chunk in _throttled(stream, rate):
            verifier.update(chunk)
        verifier.finish()
        ledger.hold(holder, [manifest.binpkg], recursive=True)


def pinned_build(offer: Offer) -> PinnedBuild:
    """What :class:`PinBook` (and the prefetch list) records of ``offer``."""
    manifest = offer.build.manifest
    return PinnedBuild(
        manifest=offer.build.manifest_cid,
        binpkg=manifest.binpkg,
        cpv=offer.cpv,
        subscription=offer.subscription,
        size=manifest.size,
    )


def pin_offers(
    client: KuboClient,
    book: PinBook,
    offers: Iterable[Offer],
    *,
    progress: Callable[[Offer], None] | None = None,
) -> list[PinOutcome]:
    """Fetch, check and pin each offer's binpkg; a build that fails the check is not kept."""
    ledger = PinLedger(client)
    outcomes = []
    for offer in offers:
        build = pinned_build(offer)
        try:
            fetch_verify_pin(client, ledger, offer, holder=pin_name("pin", str(build.manifest)))
        except IpfsbinError as exc:
            outcomes.append(
                PinOutcome(build=build, ok=False, error=f"{type(exc).__name__}: {exc.message}")
            )
        else:
            book.add(build)
            outcomes.append(PinOutcome(build=build, ok=True))
        if progress is not None:
            progress(offer)
    return outcomes


def release_pins(
    client: KuboClient, book: PinBook, builds: Iterable[PinnedBuild]
) -> list[PinnedBuild]:
    """Unlist and unpin (through the ledger) the user's pinned ``builds``; returns them."""
    # through the ledger: a binpkg that is also prefetched or kept by gc stays pinned
    ledger = PinLedger(client)
    done = []
    for build in builds:
        book.remove(build.manifest)
        ledger.release(pin_name("pin", str(build.manifest)), [build.binpkg])
        done.append(build)
    return done


def unpin_selected(
    client: KuboClient, book: PinBook, selectors: Sequence[str], host: HostInfo
) -> list[PinnedBuild]:
    """Unpin the pinned builds a selector names; returns them."""
    tests = [_matcher(s, host) for s in selectors]
    return release_pins(client, book, [p for p in book.all() if any(t(p.cpv) for t in tests)])


def prune_pins(
    client: KuboClient, book: PinBook, heads: Iterable[FollowedHead], store: BlockStore
) -> list[PinnedBuild]:
    """Unpin the builds no followed head lists as ``ok`` any more (yanked or removed)."""
    pinned = book.all()
    if not pinned:
        return []
    listed: set[CID] = set()
    for head in heads:
        for _, value in ProllyTree(store).items(head.index_root):
            entry = IndexEntry.from_dag(value)
            if entry.state == "ok":
                listed.add(entry.manifest)
    return release_pins(client, book, [p for p in pinned if p.manifest not in listed])


def prune_after_sync(follower: Follower, connect: Callable[[], KuboClient]) -> list[PinnedBuild]:
    """:func:`prune_pins` over ``follower``'s accepted heads, when anything is pinned.

    Nothing happens (and Kubo is not contacted) when no pin list exists or
    the follower works through a gateway (user pins live in Kubo).
    """
    book_path = paths.data_dir() / "user-pins.sqlite"
    if follower.config.gateway is not None or not book_path.exists():
        return []
    local = follower.held_blocks()
    now = time.time()
    heads = read_heads(
        follower.subscriptions(), local, freshness=lambda name: follower.freshness(name, now=now)
    )
    with PinBook(book_path) as book, connect() as client:
        return prune_pins(client, book, heads, local)
