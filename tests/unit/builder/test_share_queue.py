"""The share queue: each build queued once, rows only moving forward, state kept on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipfsbin.builder.queue import ShareQueue
from ipfsbin.codec.cid import RAW, cid_for
from ipfsbin.errors import BinpkgError

ATT, MAN, BIN = (cid_for(RAW, word) for word in (b"attestation", b"manifest", b"binpkg"))


def test_a_build_is_queued_once(tmp_path: Path) -> None:
    with ShareQueue(tmp_path / "share.sqlite") as queue:
        a = (tmp_path / "a.gpkg.tar", 10, 1)
        assert queue.enqueue([a, a]) == 1
        assert queue.enqueue([a]) == 0
        # the same path rebuilt in place is another build
        assert queue.enqueue([(a[0], 11, 2)]) == 1
        assert queue.counts()["queued"] == 2


def test_rows_move_forward_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "share.sqlite"
    with ShareQueue(path) as queue:
        queue.enqueue([(tmp_path / "a.gpkg.tar", 10, 1), (tmp_path / "b.gpkg.tar", 20, 2)])
        a, b = queue.items(("queued",))
        queue.begin_publishing([(a, "dev-libs/a-1", ATT)])
    # a "crash": the row stays publishing, with the attestation it was going to pin
    with ShareQueue(path) as queue:
        (pending,) = queue.items(("publishing",))
        assert pending.attestation == ATT and pending.cpv == "dev-libs/a-1"
        queue.finish_publishing([(pending, MAN, BIN)])
        queue.finish_publishing([(pending, MAN, BIN)])  # a second time changes nothing
        (done,) = queue.items(("published",))
        assert (done.manifest, done.binpkg) == (MAN, BIN)
        # a published row is never taken up for publishing again
        queue.begin_publishing([(done, "dev-libs/a-1", ATT)])
        assert queue.items(("publishing",)) == []
        queue.announced([done])
        assert queue.counts() == {
            "queued": 1,
            "skipped": 0,
            "failed": 0,
            "publishing": 0,
            "published": 0,
            "announced": 1,
        }


def test_skipped_builds_come_back_only_for_filters_switched_off(tmp_path: Path) -> None:
    with ShareQueue(tmp_path / "share.sqlite") as queue:
        queue.enqueue([(tmp_path / f"{n}.gpkg.tar", n, n) for n in range(3)])
        a, b, c = queue.items(("queued",))
        queue.skip(a, "x/a-1", "origin", "made by quickpkg")
        queue.skip(b, "x/b-1", "restricted", "RESTRICT=bindist")
        queue.fail(c, "x/c-1", "not a binpkg")
        assert queue.skip_reasons() == {"origin": 1, "restricted": 1}
        assert queue.requeue_skipped([]) == 0
        assert queue.requeue_skipped(["origin"]) == 1
        assert [i.cpv for i in queue.items(("queued",))] == ["x/a-1"]
        assert queue.items(("failed",))[0].detail == "not a binpkg"


def test_abandoned_rows_forget_their_attestation(tmp_path: Path) -> None:
    with ShareQueue(tmp_path / "share.sqlite") as queue:
        queue.enqueue([(tmp_path / "a.gpkg.tar", 1, 1)])
        (a,) = queue.items(("queued",))
        queue.begin_publishing([(a, "x/a-1", ATT)])
        (a,) = queue.items(("publishing",))
        queue.abandon(a, "removed before it was shared")
        (gone,) = queue.items(("failed",))
        assert gone.attestation is None and gone.detail == "removed before it was shared"


def test_a_newer_queue_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "share.sqlite"
    ShareQueue(path).close()
    import sqlite3

    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=9")
    db.close()
    with pytest.raises(BinpkgError, match="schema version 9"):
        ShareQueue(path)


def test_rows_name_their_batch_root_until_they_leave_publishing(tmp_path: Path) -> None:
    root = cid_for(RAW, b"batch root")
    with ShareQueue(tmp_path / "share.sqlite") as queue:
        queue.enqueue([(tmp_path / f"{n}.gpkg.tar", n, n) for n in range(3)])
        a, b, c = queue.items(("queued",))
        queue.begin_publishing(
            [(a, "x/a-1", ATT), (b, "x/b-1", ATT), (c, "x/c-1", ATT)], batch=root
        )
        a, b, c = queue.items(("publishing",))
        assert {a.batch, b.batch, c.batch} == {root}
        queue.finish_publishing([(a, MAN, BIN)])
        queue.abandon(b, "removed before it was shared")
        queue.skip(c, "x/c-1", "origin", "made by quickpkg")
        (done,) = queue.items(("published",))
        assert done.batch == root and done.to_json()["batch"] == str(root)
        # a row that left publishing any other way names no pin any more
        assert [i.batch for i in queue.items(("failed", "skipped"))] == [None, None]


def test_a_queue_from_before_batch_roots_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "share.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE builds (id INTEGER PRIMARY KEY, path TEXT NOT NULL, size INTEGER NOT NULL,"
        " mtime_ns INTEGER NOT NULL, cpv TEXT, state TEXT NOT NULL, reason TEXT, detail TEXT,"
        " binpkg TEXT, manifest TEXT, attestation TEXT, found REAL NOT NULL,"
        " changed REAL NOT NULL, UNIQUE (path, size, mtime_ns));"
        f"INSERT INTO builds VALUES (1, 'a.gpkg.tar', 1, 1, 'x/a-1', 'publishing', NULL, NULL,"
        f" NULL, NULL, '{ATT}', 0, 0);"
        "PRAGMA user_version=1;"
    )
    db.close()
    with ShareQueue(path) as queue:
        (old,) = queue.items(("publishing",))
        # its pin is its attestation's, as version 1 made it
        assert old.attestation == ATT and old.batch is None
