"""A mirror round's pin requests: several in flight at once, each failure recorded."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from ipfsbin.errors import ClusterError
from ipfsbin.mirror.service import _each


def test_requests_overlap_and_failures_do_not_stop_the_rest() -> None:
    together = threading.Barrier(4, timeout=10)  # only passes if 4 requests are in flight
    done: list[int] = []
    lock = threading.Lock()

    def pin(item: int) -> None:
        if item < 4:
            together.wait()
        if item % 5 == 0:
            raise ClusterError(f"pin {item} refused")
        with lock:
            done.append(item)

    errors: list[str] = []
    assert _each(list(range(20)), pin, errors, workers=8) == [i for i in range(20) if i % 5]
    assert sorted(errors) == sorted(f"pin {i} refused" for i in (0, 5, 10, 15))
    assert sorted(done) == [i for i in range(20) if i % 5]


def test_nothing_to_do_starts_no_worker() -> None:
    errors: list[str] = []
    assert _each([], lambda item: None, errors, workers=8) == [] and errors == []


def test_a_mirror_needs_one_request_at_a_time_at_least() -> None:
    from ipfsbin.mirror.service import Mirror

    with pytest.raises(ValueError, match="concurrency"):
        Mirror(None, None, None, replication=2, concurrency=0)  # type: ignore[arg-type]


class _BatchingEngine:
    """Records pins only from the third listing on, as a batching engine commits later."""

    def __init__(self, pins: dict[str, str]) -> None:
        self.pins = pins
        self.listings = 0

    def pinned(self, prefix: str) -> dict[str, str]:
        self.listings += 1
        return self.pins if self.listings >= 3 else {}


def _mirror(engine: object, seconds: float) -> Any:
    from ipfsbin.mirror.service import Mirror

    return Mirror(None, engine, None, replication=2, timeout=timedelta(seconds=seconds))  # type: ignore[arg-type]


def test_a_round_ends_when_the_engine_lists_its_pins() -> None:
    engine = _BatchingEngine({"bafy1": "ipfsbin:mirror:k:index"})
    errors: list[str] = []
    _mirror(engine, 10)._settle("ipfsbin:mirror:k:", {"bafy1"}, set(), errors)
    assert engine.listings == 3 and errors == []


def test_pins_the_engine_never_lists_are_reported() -> None:
    engine = _BatchingEngine({})
    errors: list[str] = []
    _mirror(engine, 1)._settle("ipfsbin:mirror:k:", {"bafy1"}, set(), errors)
    assert errors == ["the engine does not list 1 new pins and still lists 0 removed ones after 1s"]
