"""The lock between repo GC and fetch-then-pin: fetches share it, gc waits for them."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ipfsbin.errors import KuboError
from ipfsbin.kubo.gclock import collecting, fetching


def test_fetches_share_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / "gc.lock"
    with fetching(lock), fetching(lock):
        pass


def test_gc_waits_for_a_fetch_in_flight_and_fetches_wait_for_gc(tmp_path: Path) -> None:
    lock = tmp_path / "gc.lock"
    told: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def fetch() -> None:
        with fetching(lock):
            holding.set()
            release.wait(10)

    worker = threading.Thread(target=fetch)
    worker.start()
    holding.wait(10)
    with pytest.raises(KuboError, match="held .*gc.lock for over 0 s"):
        with collecting(lock, on_wait=lambda: told.append("waiting"), timeout=0.3):
            pytest.fail("gc ran while a fetch held the lock")
    assert told == ["waiting"]
    release.set()
    worker.join(10)
    order: list[str] = []
    with collecting(lock, timeout=5):
        late = threading.Thread(target=lambda: (fetching(lock).__enter__(), order.append("f")))
        late.start()
        late.join(0.5)
        order.append("gc done")
    late.join(10)
    assert order == ["gc done", "f"]
