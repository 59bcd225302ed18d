"""Keeps each served subscription's ``Packages`` file built ahead of the requests.

A :class:`Publisher` reads the followed heads through a
:class:`~ipfsbin.subscribe.follower.Follower` (one per thread), owns the
current :class:`Snapshot` (the catalog and one rendered
:class:`~ipfsbin.serve.packages.PackagesFile` per subscription) and
replaces it whole when its inputs change: a followed head moved (``sync``
recorded a new one), a head became stale, this host's Portage state
changed (a package was installed, make.conf or package.use edited; acted on
once it has settled, :class:`~ipfsbin.serve.settle.HostSettle`), or a build could not be
delivered. Requests only ever read the last snapshot, so
Portage's 10-second index timeout is never spent on IPNS, the DHT or a slow
peer. Only what changed is judged and rendered again
(:class:`~ipfsbin.catalog.CatalogBuilder`: the CPVs whose entries differ in
the index nodes new since the last head, or whose host inputs changed). A
head that cannot be read (Kubo down for a moment) keeps the last snapshot
rather than emptying it. At start, the files served before are served again
when they list for the same inputs (:meth:`Publisher.start`,
:mod:`ipfsbin.serve.listing`), and the catalog is built in the background.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ipfsbin.catalog.build import Catalog, HeadState
from ipfsbin.catalog.builder import CatalogBuilder
from ipfsbin.catalog.cache import BuildCache
from ipfsbin.catalog.heads import FollowedHead, head_refusal, read_heads
from ipfsbin.catalog.kept import read_kept, write_kept
from ipfsbin.codec.cid import CID
from ipfsbin.config import ClientConfig
from ipfsbin.descriptor.cpv import split_cpv
from ipfsbin.errors import IpfsbinError, TrustError
from ipfsbin.host.profile import HostInfo
from ipfsbin.manifest import Manifest
from ipfsbin.serve.listing import host_digest, listing_key, read_listing, write_listing
from ipfsbin.serve.packages import PackagesFile, TimestampBook, render_body
from ipfsbin.serve.settle import HostSettle
from ipfsbin.store.local_first import LocalFirstStore
from ipfsbin.subscribe.follower import Follower
from ipfsbin.subscribe.state import Subscription

__all__ = ["Publisher", "Snapshot", "render_files"]

_log = logging.getLogger("ipfsbin.serve")

KEEP_INTERVAL = 300.0
"""Seconds between two writes of the kept-builds file (the first after start is at once)."""


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    catalog: Catalog
    files: dict[str, PackagesFile]
    """subscription name -> its rendered index (every served subscription, even empty)."""
    subscriptions: tuple[Subscription, ...]
    built_at: float
    build_seconds: float
    host: HostInfo | None
    errors: tuple[str, ...] = field(default=())
    key: bytes = b""
    """:func:`~ipfsbin.serve.listing.listing_key` of the inputs the files list."""
    kept: bool = False
    """The files were read back from the kept listing; the catalog is being rebuilt."""


def render_files(
    catalog: Catalog,
    names: Iterable[str],
    book: TimestampBook,
    *,
    now: float,
    builder: CatalogBuilder | None = None,
    previous: Mapping[str, PackagesFile] | None = None,
) -> dict[str, PackagesFile]:
    """One rendered ``Packages`` per subscription in ``names`` (empty when nothing fits).

    With the ``builder`` that built ``catalog``, its stanzas already rendered
    and its PATH maps are used; a file of ``previous`` whose stanzas are the
    very same bytes object is kept.
    """
    files = {}
    for name in names:
        offers = catalog.offers.get(name, ())
        body = None if builder is None else builder.bodies.get(name)
        stanzas = None if builder is None or body is None else builder.stanzas.get(name)
        if body is None:
            body = render_body(offers)
        kept = (previous or {}).get(name)
        if kept is not None and kept.listed is None and kept.body is body:
            files[name] = kept
            continue
        stamp = book.timestamp(name, body, now=int(now))
        paths = None if builder is None else builder.paths.get(name)
        files[name] = PackagesFile.render(
            name,
            offers,
            stamp,
            body=body,
            paths=None if paths is None else dict(paths),
            stanzas=stanzas,
            members=None if kept is None else kept.members,
        )
    return files


class Publisher:
    """Builds snapshots from the subscription state, the local blocks and this host."""

    def __init__(
        self,
        *,
        config: ClientConfig,
        open_follower: Callable[[], Follower],
        cache: BuildCache,
        book: TimestampBook,
        read_host: Callable[[], HostInfo],
        clock: Callable[[], float] = time.time,
        host_settle: HostSettle | None = None,
        kept_path: Path | None = None,
        listing_path: Path | None = None,
        local_first: LocalFirstStore | None = None,
    ) -> None:
        self.config = config
        self._open_follower = open_follower
        self._local = threading.local()
        self.cache = cache
        self.builder = CatalogBuilder(cache, render=render_body)
        self.book = book
        self.read_host = read_host
        self.clock = clock
        self._host: HostInfo | None = None
        self._host_stamp: tuple[int, ...] | None = None
        self._settle = host_settle or HostSettle(settle=10.0, max_wait=120.0)
        self._inputs: bytes | None = None
        self._lock = threading.Lock()
        self._undeliverable: dict[CID, str] = {}
        self._undeliverable_lock = threading.Lock()
        self._kept_for: list[str] = []
        self._kept_path = kept_path
        self._kept_read = False
        self._kept_changes = 0
        self._kept_at: float | None = None
        self._listing_path = listing_path
        self._listing_written: tuple[bytes, tuple[tuple[str, int], ...]] | None = None
        """Key and TIMESTAMPs of the listing last written to (or read from) ``listing_path``."""
        self._host_digest = ""
        self._manifests: dict[bytes, Manifest] = {}
        """Manifests loaded for downloads of a kept listing, by CID (until the rebuild)."""
        self.local_first = local_first
        """``cache``'s store when it reads the network only in :meth:`run`'s thread."""
        self.building = False
        """:meth:`run` is building (in memory, maybe waiting on the network), not writing."""
        self.snapshot = Snapshot(
            catalog=Catalog(heads=()),
            files={},
            subscriptions=(),
            built_at=0.0,
            build_seconds=0.0,
            host=None,
        )

    def _follower(self) -> Follower:
        # a follower (its SQLite connection) stays in the thread that opened it
        follower: Follower | None = getattr(self._local, "follower", None)
        if follower is None:
            follower = self._open_follower()
            self._local.follower = follower
        return follower

    def _served(self) -> list[Subscription]:
        subs = self._follower().subscriptions()
        return [s for s in subs if self.config.serve.serves(s.name)]

    def _heads(self, subs: list[Subscription], errors: list[str], now: float) -> list[FollowedHead]:
        def note(sub: Subscription, exc: IpfsbinError) -> None:
            errors.append(f"{sub.name}: cannot read the accepted head: {exc.message}")

        follower = self._follower()
        return read_heads(
            subs,
            follower.held_blocks(),
            freshness=lambda name: follower.freshness(name, now=now),
            on_error=note,
        )

    def mark_undeliverable(self, manifest: CID, reason: str) -> None:
        """Stop listing ``manifest``: its bytes failed verification; the next refresh drops it."""
        with self._undeliverable_lock:
            self._undeliverable[manifest] = reason
        _log.warning(
            "build withdrawn", extra={"fields": {"manifest": str(manifest), "reason": reason}}
        )

    def refresh(self, *, force: bool = False) -> bool:
        """Build a new snapshot if an input changed (or ``force``); True when one was built."""
        with self._lock:
            errors: list[str] = []
            with self._undeliverable_lock:
                undeliverable = dict(self._undeliverable)
            subs = self._served()
            now = self.clock()
            heads = self._heads(subs, errors, now)
            if errors and (self._inputs is not None or self.snapshot.kept):
                # most likely Kubo is down for a moment: an outage is no reason to
                # list nothing, so the last snapshot stays until the heads can be read
                if errors != self._kept_for:
                    _log.warning("catalog kept", extra={"fields": {"errors": errors}})
                self._kept_for = errors
                return False
            self._kept_for = []
            host = self._host
            if host is None or self._settle.due(host.stamp(), self._host_stamp):
                host = self._read_host()
            policy = self.config.policy
            key = self._key(subs, heads, now, undeliverable)
            if not force and key == self._inputs:
                return False
            started = time.monotonic()
            if self._kept_path is not None and not self._kept_read:
                self._kept_read = True
                self.cache.kept = read_kept(self._kept_path)
                self._kept_changes = self.cache.changes
            catalog = self.builder.build(
                heads, host=host, policy=policy, now=now, undeliverable=undeliverable
            )
            files = render_files(
                catalog,
                [s.name for s in subs],
                self.book,
                now=now,
                builder=self.builder,
                previous=self.snapshot.files,
            )
            self.snapshot = Snapshot(
                catalog=catalog,
                files=files,
                subscriptions=tuple(subs),
                built_at=now,
                build_seconds=time.monotonic() - started,
                host=host,
                errors=tuple(errors),
                key=key,
            )
            self._inputs = key
            self._manifests = {}
            # what a build keeps lives until the next one: taking it out of the cyclic
            # collector's scans keeps later builds and requests from walking 10^5 offers
            # again and again (reference counting still frees it)
            gc.freeze()
            _log.info(
                "catalog built",
                extra={
                    "fields": {
                        "offers": catalog.size,
                        "subscriptions": len(files),
                        "seconds": round(self.snapshot.build_seconds, 3),
                        "loaded": self.cache.loaded,
                        "from_kept": self.cache.from_kept,
                        "rejudged": self.builder.rejudged,
                        "missed_blocks": self.missed_blocks(),
                    }
                },
            )
            return True

    def start(self) -> None:
        """The first snapshot: the kept listing when it lists for the current inputs, else built.

        With the kept listing, ``Packages`` is answered at once and the
        catalog is built by the first :meth:`refresh` of :meth:`run` (in the
        background, at niceness 10); requests read the kept files until then.
        A build made here waits on the network for a block at most once, briefly
        (:meth:`LocalFirstStore.briefly`): a build whose blocks are not here then is
        listed once :meth:`run` has fetched them.
        """
        brief = contextlib.nullcontext() if self.local_first is None else self.local_first.briefly()
        with brief:
            self._start()

    def _start(self) -> None:
        if self._listing_path is None:
            self.refresh(force=True)
            return
        with self._lock:
            errors: list[str] = []
            subs = self._served()
            now = self.clock()
            heads = self._heads(subs, errors, now)
            host = self._read_host()
            key = self._key(subs, heads, now, {})
            files = None
            if errors:
                _log.warning(
                    "kept listing not used",
                    extra={"fields": {"reason": errors, "then": "the catalog is built"}},
                )
            else:
                files = read_listing(self._listing_path, key, self.book, [s.name for s in subs])
            if files is not None:
                max_age = self.config.policy.max_head_age
                states = (HeadState(head=h, stale=head_refusal(h, now=now, max_age=max_age))
                          for h in heads)  # fmt: skip
                self.snapshot = Snapshot(
                    catalog=Catalog(heads=tuple(states)),
                    files=files,
                    subscriptions=tuple(subs),
                    built_at=now,
                    build_seconds=0.0,
                    host=host,
                    key=key,
                    kept=True,
                )
                self._listing_written = (
                    key,
                    tuple((n, f.timestamp) for n, f in sorted(files.items())),
                )
                return
        self.refresh(force=True)

    def _key(
        self,
        subs: list[Subscription],
        heads: list[FollowedHead],
        now: float,
        undeliverable: Mapping[CID, str],
    ) -> bytes:
        max_age = self.config.policy.max_head_age
        fresh = {h.name: head_refusal(h, now=now, max_age=max_age) is None for h in heads}
        return listing_key(
            subs,
            fresh,
            host=self._host_digest,
            policy=self.config.policy,
            undeliverable=undeliverable.keys(),
        )

    def kept_manifest(self, file: PackagesFile, path: str) -> tuple[CID, Manifest] | None:
        """The signed manifest of ``path`` in a ``file`` read back from the kept listing;
        None if it does not list ``path``.

        Loaded by its CID from the block store (checked against it, decoded
        strictly): a download before the rebuild is checked as any other.
        ``IpfsbinError`` when the block cannot be had.
        """
        if file.listed is None:
            return None
        try:
            raw = file.listed.table.get(path)
        except ValueError:
            return None
        if raw is None:
            return None
        manifest = self._manifests.get(raw)
        cid = CID(raw)
        if manifest is None:
            manifest = Manifest.from_block(cid, self.cache.store.get(cid))
            category, package, version = split_cpv(manifest.cpv)
            if not path.startswith(f"{category}/{package}/{package}-{version}-"):
                raise TrustError(
                    f"{path} is listed with the manifest of {manifest.cpv}",
                    hint="the kept listing is damaged; restart `ipfsbin serve` after removing it",
                )
            self._manifests[raw] = manifest
        return cid, manifest

    def keep_listing(self) -> bool:
        """Write the served files to the kept listing if they changed; True when written."""
        snapshot = self.snapshot
        # the same key lists the same bytes, unless a build could not be read this time
        listed = (snapshot.key, tuple((n, f.timestamp) for n, f in sorted(snapshot.files.items())))
        if self._listing_path is None or snapshot.kept or listed == self._listing_written:
            return False
        started = time.monotonic()
        try:
            size = write_listing(self._listing_path, snapshot.key, snapshot.files)
        except OSError as exc:
            _log.warning("kept listing not written", extra={"fields": {"error": str(exc)}})
            return False
        self._listing_written = listed
        _log.info(
            "kept listing written",
            extra={"fields": {"bytes": size, "seconds": round(time.monotonic() - started, 3)}},
        )
        return True

    def keep_builds(self, *, interval: float = KEEP_INTERVAL) -> bool:
        """Write the verified builds to the kept-builds file if they changed; True when written.

        The first time after start at once (a restart then finds them), later
        at most every ``interval`` seconds: a sync changes a few builds, the
        file holds them all.
        """
        with self._lock:
            if self._kept_path is None or self.cache.changes == self._kept_changes:
                return False
            now = time.monotonic()
            if self._kept_at is not None and now - self._kept_at < interval:
                return False
            changes = self.cache.changes
            try:
                count = write_kept(self._kept_path, self.cache.verified())
            except OSError as exc:
                _log.warning("kept builds not written", extra={"fields": {"error": str(exc)}})
                self._kept_at = now
                return False
            self._kept_changes, self._kept_at = changes, now
            _log.info(
                "kept builds written",
                extra={"fields": {"builds": count, "seconds": round(time.monotonic() - now, 3)}},
            )
            return True

    def missed_blocks(self) -> int:
        """Blocks of builds not listed because they are not here, yet to be fetched."""
        return 0 if self.local_first is None else self.local_first.missed()

    def _reaching(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext() if self.local_first is None else self.local_first.reaching()

    def fetch_missed(self) -> bool:
        """Judge again, reading the network, the builds whose blocks were missed where only
        local blocks are read (the build at start, requests); True when a build was made."""
        missed = set() if self.local_first is None else self.local_first.take_missed()
        if not missed:
            return False
        _log.info("fetching missed blocks", extra={"fields": {"blocks": len(missed)}})
        self.builder.retry_unreadable()
        return self.refresh(force=True)

    def _read_host(self) -> HostInfo:
        started = time.monotonic()
        host = self._host = self.read_host()
        self._host_stamp = host.stamp()
        self._host_digest = host_digest(host, self._host_stamp)
        self._settle.read()
        _log.info(
            "host read",
            extra={"fields": {"seconds": round(time.monotonic() - started, 3)}},
        )
        return host

    def run(self, stop: threading.Event, *, interval: float) -> None:
        """Refresh every ``interval`` seconds until ``stop`` is set; failures are logged.

        The thread runs at niceness 10: the rebuilds it does after a sync or a
        merge should not take the CPU from the ``emerge`` that is merging
        (requests are answered by another thread, from the last snapshot).
        """
        tid = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, tid, max(10, os.getpriority(os.PRIO_PROCESS, tid)))
        except OSError:  # pragma: no cover - raising one's own niceness is always allowed
            pass
        while not stop.wait(interval):
            try:
                self.building = True
                try:
                    with self._reaching():
                        self.fetch_missed()
                        self.refresh()
                finally:
                    self.building = False
                self.keep_listing()
                self.keep_builds()
            except IpfsbinError as exc:
                _log.error(
                    "catalog build failed",
                    extra={"fields": {"error": exc.message, "hint": exc.hint}},
                )
