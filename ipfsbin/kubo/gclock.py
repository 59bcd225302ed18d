"""One lock between Kubo's repo GC and everything that fetches blocks before pinning them.

Kubo's ``repo/gc`` deletes every block no pin holds. A sync fetches (or
rebuilds from changesets) the new head's blocks first and pins them only
once the head is verified; a prefetch streams and verifies a binpkg before
pinning it. A GC in between deletes those blocks, and the head recorded next
is not whole (its rebuilt index nodes exist nowhere else). So every such
fetch-then-pin runs under :func:`fetching` (a shared lock; any number at
once), and ``ipfsbin gc`` runs under :func:`collecting` (exclusive): it waits
for the fetches in flight to be recorded, and new ones wait for it.

The lock is a ``flock`` on ``<data dir>/gc.lock``, so it holds across
processes (``sync --follow``, ``serve``, ``pin``, ``gc``) and is let go when a
holder dies.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ipfsbin import paths
from ipfsbin.errors import KuboError

__all__ = ["collecting", "fetching", "gc_lock_path"]


def gc_lock_path() -> Path:
    """``<data dir>/gc.lock``."""
    return paths.data_dir() / "gc.lock"


def _open(path: Path | None) -> BinaryIO:
    lock_path = gc_lock_path() if path is None else path
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    return open(lock_path, "a+b")  # noqa: SIM115 - closed by the callers' with


@contextmanager
def fetching(path: Path | None = None) -> Iterator[None]:
    """Hold off repo GC while blocks are fetched and not yet pinned (shared)."""
    with _open(path) as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def collecting(
    path: Path | None = None,
    *,
    on_wait: Callable[[], None] | None = None,
    timeout: float | None = None,
) -> Iterator[None]:
    """Run repo GC alone: wait until no fetch is in flight (exclusive).

    ``on_wait`` is called once when someone holds the lock (to say so);
    ``timeout`` gives up with ``KuboError`` after that many seconds.
    """
    with _open(path) as lock:
        deadline = None if timeout is None else time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and on_wait is not None:
                    on_wait()
                    told = True
                if deadline is not None and time.monotonic() >= deadline:
                    raise KuboError(
                        f"a sync or prefetch held {lock.name} for over {timeout:.0f} s",
                        hint="run `ipfsbin gc` again later; a sync's deadline bounds the wait",
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
