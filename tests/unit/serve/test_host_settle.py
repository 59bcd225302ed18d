"""The host is read again once its files stop changing, not after every merge."""

from __future__ import annotations

from ipfsbin.serve.settle import HostSettle

SECOND = 1_000_000_000  # a stamp holds modification times in nanoseconds


class Clocks:
    """The monotonic and wall clocks a refresh loop sees, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def mono(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now


def _settle(clocks: Clocks, settle: float = 10.0, max_wait: float = 120.0) -> HostSettle:
    return HostSettle(settle=settle, max_wait=max_wait, clock=clocks.mono, wall=clocks.wall)


def _stamp(at: float) -> tuple[int, ...]:
    return (int(at * SECOND), 0)


def test_a_merge_burst_is_read_once_after_it_settles() -> None:
    clocks = Clocks()
    settle = _settle(clocks)
    read = _stamp(clocks.now - 100)
    reads = 0
    stamp = read
    # ten merges 4 s apart, the refresh loop polling every 0.5 s
    for _merge in range(10):
        stamp = _stamp(clocks.now)
        for _ in range(8):
            if settle.due(stamp, read):
                read = stamp
                settle.read()
                reads += 1
            clocks.now += 0.5
    assert reads == 0  # not while the merges go on
    for _ in range(40):  # the burst is over: read once, then nothing
        if settle.due(stamp, read):
            read = stamp
            settle.read()
            reads += 1
        clocks.now += 0.5
    assert reads == 1
    assert read == stamp


def test_an_old_change_is_read_at_once() -> None:
    # the files changed long before the change was first seen: nothing to wait for
    clocks = Clocks()
    settle = _settle(clocks)
    assert settle.due(_stamp(clocks.now - 30), _stamp(clocks.now - 100))


def test_an_unchanged_host_is_not_read() -> None:
    clocks = Clocks()
    settle = _settle(clocks)
    stamp = _stamp(clocks.now - 100)
    for _ in range(10):
        assert not settle.due(stamp, stamp)
        clocks.now += 60


def test_a_host_that_never_settles_is_read_every_max_wait() -> None:
    clocks = Clocks()
    settle = _settle(clocks, settle=10.0, max_wait=30.0)
    read = _stamp(clocks.now - 100)
    read_at = []
    for tick in range(200):  # a change every 2 s for 100 s, polled every 0.5 s
        if tick % 4 == 0:
            stamp = _stamp(clocks.now)
        if settle.due(stamp, read):
            read = stamp
            settle.read()
            read_at.append(clocks.now)
        clocks.now += 0.5
    assert len(read_at) == 3
    assert all(30.0 <= b - a <= 32.0 for a, b in zip(read_at, read_at[1:], strict=False))


def test_a_file_clock_ahead_still_settles_by_what_was_seen() -> None:
    # a stamp from a file system clock 1 h ahead: settled once it is seen unchanged
    clocks = Clocks()
    settle = _settle(clocks)
    ahead = _stamp(clocks.now + 3600)
    old = _stamp(clocks.now - 100)
    assert not settle.due(ahead, old)
    clocks.now += 9.5
    assert not settle.due(ahead, old)
    clocks.now += 0.5
    assert settle.due(ahead, old)
