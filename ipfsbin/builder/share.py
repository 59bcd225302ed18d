"""``ipfsbin share``: publish what this host builds, through the persistent share queue.

A :class:`Sharer` finds binpkgs in PKGDIR (:func:`scan_pkgdir`), queues them
(:class:`~ipfsbin.builder.queue.ShareQueue`), has worker processes apply the
sharing filters (:mod:`ipfsbin.builder.filters`) and check each build
(:mod:`ipfsbin.builder.examine`), signs and publishes the rest in batches
(:mod:`ipfsbin.builder.bulk`); then announces them in the builder's feed
(:func:`feed_announcer`, :mod:`ipfsbin.builder.feed`).
Only one process shares from a queue at a time (an ``flock`` beside it);
another one that finds it taken only queues what it found and leaves the
work to the holder, which looks at the queue again after letting go, so
nothing queued is left behind (:meth:`Sharer.drain`).

Crash safety: a batch's rows are marked ``publishing`` with their
attestation CIDs and the batch's root (the one block pinned for the batch)
before anything is pinned, and ``published`` after the pin, each in one
transaction. A run killed in between leaves ``publishing`` rows; the next
run publishes them again (the same files give the same CIDs, so nothing is
stored or pinned twice) or, when a file is gone or changed, releases the pin
it may have made. The pins are the ledger holder ``ipfsbin:share``'s; the
tests compare them with the published rows' batch roots.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Final

from ipfsbin.binpkg import SETUID_PACKAGES
from ipfsbin.builder.bulk import (
    CheckedPackage,
    InspectedPackage,
    batch_root,
    complete_package,
    forget_checked,
    store_batch,
)
from ipfsbin.builder.examine import Examiner, Examiners, Failed, Gone, Outcome, Skipped
from ipfsbin.builder.feed import Feed, publish_feed
from ipfsbin.builder.filters import Skip, switched_off
from ipfsbin.builder.indexed import BuildIdentity
from ipfsbin.builder.queue import QueueItem, QueueState, ShareQueue
from ipfsbin.codec.cid import CID
from ipfsbin.config import ShareConfig
from ipfsbin.errors import BinpkgError, IpfsbinError
from ipfsbin.host.facts import HostFacts
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.pins import PinLedger, pin_name
from ipfsbin.trust.keys import SigningKey

__all__ = [
    "SHARE_HOLDER",
    "Announce",
    "Indexed",
    "ShareRound",
    "Sharer",
    "feed_announcer",
    "is_binpkg_name",
    "scan_pkgdir",
    "watch_pkgdir",
]

SHARE_HOLDER: Final = pin_name("share")
"""The pin ledger holder (and Kubo pin name) of every attestation ``share`` published."""
_SUFFIXES: Final = (".gpkg.tar", ".xpak", ".tbz2")
_LOG = logging.getLogger("ipfsbin.share")
_TO_DO: Final[tuple[QueueState, ...]] = ("publishing", "queued")
_ADDS: Final = 4
"""Kubo ``add`` requests of larger files in flight at once."""

Indexed = Callable[[BuildIdentity], str | None]
"""Where a followed index already has these bytes (in words), or None."""
Announce = Callable[[Sequence[QueueItem]], None]
"""Append published builds to the builder's feed; raises to leave them ``published``."""


def feed_announcer(client: KuboClient, feed: Feed) -> Announce:
    """The announce stage: append published builds to the builder's feed, then publish it.

    ``Feed.append`` is idempotent (an attestation already in the feed is
    skipped), so a run killed after appending and before the queue moved its
    rows to ``announced`` loses and duplicates nothing. The feed's IPNS
    record is the pointer, not the announcement: when publishing it fails the
    rows are announced all the same and the next append publishes it again.
    """

    def announce(items: Sequence[QueueItem]) -> None:
        head = feed.append([i.attestation for i in items if i.attestation is not None])
        try:
            publish_feed(client, feed, allow_offline=True, timeout=timedelta(seconds=30))
        except IpfsbinError as exc:
            _LOG.warning(
                "feed %s is at height %d, its IPNS record is not: %s", feed.name, head.height,
                exc.message,
            )  # fmt: skip

    return announce


def is_binpkg_name(name: str) -> bool:
    """A binpkg's file name (not a hidden or temporary file Portage is still writing)."""
    return not name.startswith(".") and name.endswith(_SUFFIXES)


def scan_pkgdir(pkgdir: Path) -> list[tuple[Path, int, int]]:
    """Every binpkg under ``pkgdir`` as (path, size, mtime_ns), in path order."""
    found = []
    for root, dirs, files in os.walk(pkgdir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if is_binpkg_name(name):
                path = Path(root, name)
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                found.append((path, st.st_size, st.st_mtime_ns))
    return found


@dataclass
class ShareRound:
    """What one pass over the queue did."""

    published: list[QueueItem] = field(default_factory=list)
    skipped: list[tuple[QueueItem, Skip]] = field(default_factory=list)
    failed: list[tuple[QueueItem, str]] = field(default_factory=list)
    announced: int = 0

    def add(self, other: ShareRound) -> None:
        self.published += other.published
        self.skipped += other.skipped
        self.failed += other.failed
        self.announced += other.announced


class Sharer:
    """Shares one PKGDIR through one queue, with one key, on one Kubo node."""

    def __init__(
        self,
        *,
        queue: ShareQueue,
        client: KuboClient,
        ledger: PinLedger,
        key: SigningKey,
        host: HostFacts,
        config: ShareConfig,
        config_root: Path = Path("/"),
        indexed: Indexed | None = None,
        announce: Announce | None = None,
        setuid_packages: frozenset[str] = SETUID_PACKAGES,
    ) -> None:
        self.queue = queue
        self.client = client
        self.ledger = ledger
        self.key = key
        self.host = host
        self.config = config
        self.config_root = config_root
        self.indexed = indexed
        self.announce = announce
        self.setuid_packages = setuid_packages

    # -- locking ------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[bool]:
        """Whether this process holds the queue (another one working it: False at once)."""
        lock = self.queue.path.with_name(self.queue.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    # -- the work --------------------------------------------------------------------

    def catch_up(self) -> ShareRound:
        """Queue every binpkg in PKGDIR (and what filters switched off since skipped), drain."""
        self.queue.enqueue(scan_pkgdir(self.config.pkgdir))
        self.queue.requeue_skipped(switched_off(self.config))
        return self.drain()

    def drain(self) -> ShareRound:
        """Work the queue empty, unless another process holds it (then it does the work)."""
        total = ShareRound()
        with Examiners(self._examiner(), self.config.workers) as examiners:
            while True:
                with self._locked() as mine:
                    if not mine:
                        return total
                    total.add(self._work_queue(examiners))
                    total.add(self.announce_published())
                # Anything queued after the last look and before the lock was let go is ours.
                if not self.queue.items(_TO_DO, limit=1):
                    return total

    def _examiner(self) -> Examiner:
        return Examiner(
            config=self.config,
            config_root=self.config_root,
            host=self.host,
            setuid_packages=frozenset(self.setuid_packages),
        )

    def announce_published(self) -> ShareRound:
        done = ShareRound()
        if self.announce is None:
            return done
        items = self.queue.items(("published",))
        if items:
            self.announce(items)
            self.queue.announced(items)
            done.announced = len(items)
            _LOG.info("announced %d build(s) in the feed", len(items))
        return done

    def _work_queue(self, examiners: Examiners) -> ShareRound:
        """Work every queued batch of up to ``config.batch`` rows: filter, check, store and
        pin each batch together; the workers examine the next batch while one is stored."""
        done = ShareRound()
        items = self.queue.items(_TO_DO, limit=self.config.batch)
        pending = examiners.submit(items)
        while items:
            following = self.queue.items(_TO_DO, limit=self.config.batch, after=items[-1].id)
            upcoming = examiners.submit(following)
            try:
                done.add(self._finish_batch(items, pending))
            except BaseException:
                _discard(upcoming)
                raise
            items, pending = following, upcoming
        return done

    def _finish_batch(
        self, items: Sequence[QueueItem], pending: Sequence[Future[Outcome]]
    ) -> ShareRound:
        """Record what the workers found for ``items``; sign, store and pin what passed."""
        done = ShareRound()
        found: list[Outcome | CheckedPackage] = []
        try:
            # Larger files go to Kubo's add a few at a time: each add waits on Kubo's
            # writes more than on this process.
            with ThreadPoolExecutor(_ADDS, thread_name_prefix="ipfsbin-share-add") as adds:
                completing = [
                    adds.submit(self._complete, examined)
                    if isinstance(examined := future.result(), InspectedPackage)
                    else examined
                    for future in pending
                ]
            failure: BaseException | None = None
            for one in completing:
                if not isinstance(one, Future):
                    found.append(one)
                elif one.exception() is not None:
                    failure = failure or one.exception()
                else:
                    found.append(one.result())  # kept, so that a failure undoes its add
            if failure is not None:
                raise failure
            ready: list[tuple[QueueItem, CheckedPackage]] = []
            for item, outcome in zip(items, found, strict=True):
                checked = self._record(item, outcome, done)
                if checked is not None:
                    ready.append((item, checked))
            self._store(ready)
        except BaseException:
            _discard(pending)
            for kept in found:
                if isinstance(kept, CheckedPackage):
                    forget_checked(kept)
            raise
        done.published += [item for item, _ in ready]
        for _, checked in ready:
            _LOG.info("published %s as %s", checked.prepared.cpv, checked.objects.attestation)
        return done

    def _complete(self, inspected: InspectedPackage) -> CheckedPackage | Failed:
        try:
            return complete_package(inspected, client=self.client, key=self.key)
        except BinpkgError as exc:
            detail = exc.message if not exc.hint else f"{exc.message} ({exc.hint})"
            return Failed(inspected.prepared.cpv, detail)

    def _store(self, ready: Sequence[tuple[QueueItem, CheckedPackage]]) -> None:
        if not ready:
            return
        root, block = batch_root([checked for _, checked in ready])
        # A row left ``publishing`` by a killed run whose batch now has another root (a
        # build of it dropped out, another key) gives up the old pin first, before the
        # row stops naming it.
        stale = {pin for item, _ in ready if (pin := _pin_of(item)) is not None and pin != root}
        if stale:
            self.ledger.release(SHARE_HOLDER, sorted(stale, key=str))
        self.queue.begin_publishing(
            [(item, checked.prepared.cpv, checked.objects.attestation) for item, checked in ready],
            batch=root,
        )
        store_batch(
            [checked for _, checked in ready],
            root=(root, block),
            client=self.client,
            ledger=self.ledger,
            holder=SHARE_HOLDER,
        )
        self.queue.finish_publishing(
            [(item, checked.objects.manifest, checked.binpkg) for item, checked in ready]
        )

    def _gone(self, item: QueueItem, why: str, done: ShareRound) -> None:
        """The file of ``item`` is not the one queued any more."""
        if (pin := _pin_of(item)) is not None:
            self.ledger.release(SHARE_HOLDER, [pin])
            self.queue.abandon(item, why)
        else:
            self.queue.fail(item, item.cpv, why)
        done.failed.append((item, why))

    def _record(
        self, item: QueueItem, outcome: Outcome | CheckedPackage, done: ShareRound
    ) -> CheckedPackage | None:
        """Write what the examiner found; the checked package when it is to be stored."""
        if isinstance(outcome, Gone):
            self._gone(item, outcome.why, done)
            if outcome.now is not None:
                self.queue.enqueue([outcome.now])
            return None
        if isinstance(outcome, Skipped):
            self._skip(item, outcome.cpv, outcome.skip, done)
            return None
        if isinstance(outcome, Failed):
            if (pin := _pin_of(item)) is not None:
                self.ledger.release(SHARE_HOLDER, [pin])
                self.queue.abandon(item, outcome.detail)
            else:
                self.queue.fail(item, outcome.cpv, outcome.detail)
            done.failed.append((item, outcome.detail))
            _LOG.warning("not shared: %s", outcome.detail)
            return None
        if isinstance(outcome, InspectedPackage):
            raise TypeError("an inspected package is completed before it is recorded")
        checked = outcome
        if self.config.skip_indexed and self.indexed is not None:
            where = self.indexed(
                BuildIdentity(
                    platform=checked.objects.platform,
                    descriptor=checked.objects.descriptor,
                    cpv=checked.prepared.cpv,
                    manifest=checked.objects.manifest,
                    sha256=checked.objects.manifest_value.sha256,
                )
            )
            if where is not None:
                forget_checked(checked)
                self._skip(item, checked.prepared.cpv, Skip(filter="indexed", reason=where), done)
                return None
        return checked

    def _skip(self, item: QueueItem, cpv: str | None, skip: Skip, done: ShareRound) -> None:
        if (pin := _pin_of(item)) is not None:
            self.ledger.release(SHARE_HOLDER, [pin])
        self.queue.skip(item, cpv, skip.filter, skip.reason)
        done.skipped.append((item, skip))
        _LOG.info("skipped %s (%s): %s", cpv, skip.filter, skip.reason)


def _pin_of(item: QueueItem) -> CID | None:
    """The pin a ``publishing`` row may have got: its batch root (or, for a row of a queue
    from before batch roots, its attestation); None for rows in any other state.

    Releasing a batch root that other ``publishing`` rows name too is safe: none of them
    is published, so they are all stored and pinned again under their next batch's root.
    """
    if item.state != "publishing":
        return None
    return item.batch if item.batch is not None else item.attestation


def _discard(pending: Sequence[Future[Outcome]]) -> None:
    """Futures whose outcome will not be recorded: cancel them (a worker stores nothing)."""
    for future in pending:
        future.cancel()


def watch_pkgdir(
    sharer: Sharer,
    *,
    stop: threading.Event,
    poll_ms: int = 5000,
    on_round: Callable[[ShareRound], None] | None = None,
) -> None:
    """Catch up, then share every binpkg that appears in PKGDIR until ``stop`` is set.

    watchfiles (inotify) reports new and rewritten files; it yields every
    ``poll_ms`` even when nothing changed, and the queue is worked then too,
    so rows another process queued (the Portage hook) are not left waiting.
    """
    import watchfiles

    def binpkgs(change: watchfiles.Change, path: str) -> bool:
        return change != watchfiles.Change.deleted and is_binpkg_name(os.path.basename(path))

    pkgdir = sharer.config.pkgdir
    first = sharer.catch_up()
    if on_round is not None:
        on_round(first)
    for changes in watchfiles.watch(
        pkgdir,
        watch_filter=binpkgs,
        stop_event=stop,
        rust_timeout=poll_ms,
        yield_on_timeout=True,
        raise_interrupt=False,
    ):
        found = []
        for _, raw in changes:
            try:
                st = os.stat(raw)
            except FileNotFoundError:
                continue
            found.append((Path(raw), st.st_size, st.st_mtime_ns))
        if found:
            sharer.queue.enqueue(found)
        try:
            done = sharer.drain()
        except IpfsbinError as exc:
            # the daemon restarting, say: the rows stay where they are and the next tick retries
            _LOG.error("%s; trying again in %d s", exc.message, poll_ms // 1000)
            continue
        if on_round is not None and (done.published or done.skipped or done.failed):
            on_round(done)
