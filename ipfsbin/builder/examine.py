"""Examining queued builds: read, filter, check and hash, in worker processes.

What ``share`` does to a binpkg before it signs and stores it needs neither
Kubo nor the signing key, and is Python and Portage work that holds the
GIL (tar headers, Portage's checksum helpers and settings, the descriptor's
normalization). :class:`Examiner` does it for one queued build and returns
a value that pickles, so a :class:`Examiners` pool runs it in
``workers`` processes, for the next batch while the current one is stored.
The key stays in the process that signs.

The metadata is read without Portage's separate check of the metadata part
(``read_binpkg_metadata(check_metadata=False)``): Portage's check in
:func:`~ipfsbin.builder.bulk.inspect_package` covers it (and every other
part, but the image of a gpkg the builder's own ``Packages`` entry still
describes, whose MD5/SHA1 are taken from that entry), and nothing is
published without it (``schema/share.md`` §4).
"""

from __future__ import annotations

import multiprocessing
import os
import select
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ipfsbin.binpkg import read_binpkg_metadata
from ipfsbin.builder.bulk import InspectedPackage, inspect_package
from ipfsbin.builder.filters import Skip, check_filters
from ipfsbin.builder.pkgindex import packages_index
from ipfsbin.builder.queue import QueueItem
from ipfsbin.config import ShareConfig
from ipfsbin.errors import BinpkgError, DescriptorError
from ipfsbin.host.facts import HostFacts

__all__ = ["Examiner", "Examiners", "Failed", "Gone", "Outcome", "Skipped"]


@dataclass(frozen=True)
class Gone:
    why: str
    now: tuple[Path, int, int] | None
    """The file found at the path instead, to queue as a build of its own."""


@dataclass(frozen=True)
class Skipped:
    cpv: str | None
    skip: Skip


@dataclass(frozen=True)
class Failed:
    cpv: str | None
    detail: str


Outcome = Gone | Skipped | Failed | InspectedPackage


@dataclass(frozen=True, kw_only=True)
class Examiner:
    """Everything examining a build needs; pickles, to run in another process."""

    config: ShareConfig
    config_root: Path
    host: HostFacts
    setuid_packages: frozenset[str]

    def __call__(self, item: QueueItem) -> Outcome:
        """Read, filter and check one queued build; touches neither the queue nor Kubo."""
        try:
            st = item.path.stat()
        except FileNotFoundError:
            return Gone(f"{item.path}: removed before it was shared", None)
        if (st.st_size, st.st_mtime_ns) != (item.size, item.mtime_ns):
            return Gone(
                f"{item.path}: replaced before it was shared (queued anew)",
                (item.path, st.st_size, st.st_mtime_ns),
            )
        cpv = item.cpv
        try:
            meta = read_binpkg_metadata(item.path, check_metadata=False)
            cpv = meta.cpv
            skip = check_filters(meta, self.config, config_root=self.config_root)
            if skip is not None:
                return Skipped(cpv, skip)
            recorded = None
            if meta.identity is not None:
                recorded = packages_index(self.config.pkgdir).recorded(item.path, meta.identity)
            return inspect_package(
                meta, host=self.host, setuid_packages=self.setuid_packages, recorded=recorded
            )
        except (BinpkgError, DescriptorError) as exc:
            detail = exc.message if not exc.hint else f"{exc.message} ({exc.hint})"
            return Failed(cpv, detail)


class Examiners:
    """Up to ``workers`` processes examining builds, or this process for a few builds.

    Workers are forked from a fork server (this process may hold threads and
    sockets that a plain fork would copy) that has imported this module, so
    each starts with Portage and ipfsbin loaded. They start when a call
    brings at least ``pool_from`` builds (starting them costs about what
    examining a handful does: a watcher's one or two new builds are examined
    here; while they start, this process examines the first builds itself)
    and stop at :meth:`close`.
    """

    def __init__(self, examiner: Examiner, workers: int, *, pool_from: int = 8) -> None:
        self.examiner = examiner
        self.workers = workers
        self.pool_from = pool_from
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, items: Sequence[QueueItem]) -> list[Future[Outcome]]:
        """One future per item, in order."""
        if self._pool is None and (self.workers <= 1 or len(items) < self.pool_from):
            return [_done(self.examiner, item) for item in items]
        if self._pool is None:
            return self._start(items)
        return [self._pool.submit(self.examiner, item) for item in items]

    def _start(self, items: Sequence[QueueItem]) -> list[Future[Outcome]]:
        """Start the workers; examine builds from the front of ``items`` here meanwhile.

        Starting them (a fork server importing Portage and ipfsbin, then a
        fork each) takes about a second in which this process would only
        wait: a thread starts them by handing them the last builds, and this
        process examines from the front until they are up.
        """
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        pool = ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=_end_with, initargs=(os.getpid(),)
        )
        self._pool = pool
        split = max(len(items) - self.workers, 0)
        front, tail = items[:split], items[split:]
        handed: list[Future[Outcome]] = []
        failure: list[BaseException] = []

        def start() -> None:
            try:
                handed.extend(pool.submit(self.examiner, item) for item in tail)
            except BaseException as exc:  # noqa: BLE001 - raised again by the caller's thread
                failure.append(exc)

        starting = threading.Thread(target=start, name="ipfsbin-examine-start", daemon=True)
        starting.start()
        here: list[Future[Outcome]] = []
        for item in front:
            if not starting.is_alive():
                break
            here.append(_done(self.examiner, item))
        starting.join()
        if failure:
            raise failure[0]
        return here + [pool.submit(self.examiner, item) for item in front[len(here) :]] + handed

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Examiners:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _end_with(pid: int) -> None:
    """In a worker: exit as soon as process ``pid`` (the sharing process) ends, even by SIGKILL.

    A worker holds both ends of its own task queue, and the fork server stays
    up while any worker holds its "alive" pipe: without this, a sharing
    process killed with -9 would leave its workers and the fork server
    waiting forever.
    """
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(1)

    def wait() -> None:
        select.select([handle], [], [])
        os._exit(1)

    threading.Thread(target=wait, name="ipfsbin-examine-parent", daemon=True).start()


def _done(examiner: Examiner, item: QueueItem) -> Future[Outcome]:
    future: Future[Outcome] = Future()
    try:
        future.set_result(examiner(item))
    except Exception as exc:  # noqa: BLE001 - handed on through the future, as a pool would
        future.set_exception(exc)
    return future
