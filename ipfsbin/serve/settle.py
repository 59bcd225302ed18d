"""When a changed host is read again: once the files of its Portage state stop changing."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["HostSettle"]


class HostSettle:
    """Decides when a changed host is read again: once its files stop changing.

    Each merge of an ``emerge`` touches the installed-packages database
    several times; reading the host (through Portage, every installed
    package) after each touch would compete with the merges for the CPU and
    be out of date again a moment later. The host is read once the newest
    modification time of the watched files is ``settle`` seconds old (or the
    same times have been seen for that long, whatever the file system's
    clock says), or ``max_wait`` seconds after a change was first seen if
    they never settle. The listing built before stays true meanwhile for
    what it is used for: a running ``emerge`` resolved its packages from the
    ``Packages`` it read when it started, and Portage resolves a binary
    package's dependencies (built sub-slots included) against the installed
    packages itself, so a listing some seconds old can at worst offer a
    build Portage then passes over, never make it merge one whose
    dependencies are not met.
    """

    def __init__(
        self,
        *,
        settle: float,
        max_wait: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settle = settle
        self.max_wait = max_wait
        self.clock = clock
        self.wall = wall
        self._seen: tuple[int, ...] | None = None
        self._seen_at = 0.0
        self._first_at: float | None = None

    def due(self, stamp: tuple[int, ...], read: tuple[int, ...] | None) -> bool:
        """True when the host must be read now (``stamp`` now, ``read`` when last read)."""
        if stamp == read:
            self._first_at = None
            return False
        now = self.clock()
        if self._first_at is None:
            self._first_at = now
        if stamp != self._seen:
            self._seen, self._seen_at = stamp, now
        quiet = self.wall() - max(stamp, default=0) / 1e9
        return (
            quiet >= self.settle
            or now - self._seen_at >= self.settle
            or now - self._first_at >= self.max_wait
        )

    def read(self) -> None:
        """The host was just read."""
        self._first_at = None
