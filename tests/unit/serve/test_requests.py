"""The shim's request log: counted in memory, written in batches, read by gc."""

from __future__ import annotations

import threading
from pathlib import Path

from ipfsbin.codec.cid import RAW, cid_for
from ipfsbin.serve.requests import RequestLog, read_requests

A = cid_for(RAW, b"a")
B = cid_for(RAW, b"b")


def test_counts_and_last_request_survive_flushes_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "requests.sqlite"
    log = RequestLog(path)
    log.note(A, "app-misc/a-1", at=100.0)
    log.note(A, "app-misc/a-1", at=300.0)
    log.note(B, "app-misc/b-1", at=200.0)
    assert read_requests(path) == {}  # nothing written before a flush
    assert log.flush() == 2
    log.note(A, "app-misc/a-1", at=250.0)  # an older moment never moves `last` back
    log.close()
    found = read_requests(path)
    assert (found[A].count, found[A].last, found[A].cpv) == (3, 300.0, "app-misc/a-1")
    assert (found[B].count, found[B].last) == (1, 200.0)


def test_no_log_reads_as_nothing_requested(tmp_path: Path) -> None:
    assert read_requests(tmp_path / "absent.sqlite") == {}
    assert not (tmp_path / "absent.sqlite").exists()


def test_the_writer_thread_flushes_on_stop(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "requests.sqlite")
    stop = threading.Event()
    writer = threading.Thread(target=log.run, args=(stop,), kwargs={"interval": 60.0})
    writer.start()
    log.note(A, "app-misc/a-1", at=1.0)
    stop.set()
    writer.join(timeout=10)
    assert not writer.is_alive()
    assert log.read()[A].count == 1
    log.close()
