"""One schema scheme for every state file: files written before it open, newer ones are refused.

The files in tests/data/state were written by the code before the scheme
(tests/data/state/generate.py says how); each test opens a copy.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from ipfsbin import _sqlite
from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.errors import (
    DamagedStateError,
    IndexOperationError,
    IpfsbinError,
    StoreError,
    SubscriptionError,
)
from ipfsbin.maintainer.workspace import Workspace, workspace_dir
from ipfsbin.store.sqlite import SqliteBlockStore
from ipfsbin.subscribe.state import SubscriptionStore

DATA = Path(__file__).resolve().parents[1] / "data" / "state"
NAME = "k51qzi5uqu5dm0t4vbwri4lkg76q03b4x9tsvekgvbu4zli6454ff7w8wdosa4"
ROOT = CID.from_text("bafyreibvzbcnd4p2kd7yvlty7uq6wqcpsem6sn75ttdyyazy2za3kw35oi")


def cid(n: int) -> CID:
    return dagcbor.encode_block({"n": n})[0]


def version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        found: int = db.execute("PRAGMA user_version").fetchone()[0]
    db.close()
    return found


def set_version(path: Path, value: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {value}")
    db.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IPFSBIN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def copy(name: str, to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / name, to)
    return to


def test_subscriptions_written_before_open_with_their_head_and_held_blocks(tmp_path: Path) -> None:
    path = copy("subscriptions-v2.sqlite", tmp_path / "subscriptions.sqlite")
    with SubscriptionStore(path) as state:
        sub = state.get(NAME)
        assert (sub.head, sub.head_envelope, sub.index_root, sub.height) == (
            cid(1),
            cid(2),
            cid(3),
            1,
        )
        assert sub.roots == (ROOT,)
        assert state.held(NAME) == {cid(1), cid(2), cid(3)}
        assert state.pending(NAME) == frozenset()
        # version 3: expiries unknown until the next sync reads them; nothing being released
        assert (sub.head_expires, sub.root_expires, sub.roots_checked_at) == (None, None, None)
        assert state.releasing(NAME) == frozenset()
        # version 4: no scope recorded means the whole index is held
        assert state.scope(NAME).everything
        # version 5: no replica policy given, no survey of the platforms yet
        assert state.replica_policy(NAME) is None and state.survey(NAME) is None
    assert version(path) == 5


def test_block_file_without_a_version_is_adopted_as_version_1(tmp_path: Path) -> None:
    path = copy("gateway-blocks-before-versions.sqlite", tmp_path / "blocks.sqlite")
    assert version(path) == 0
    with_block = dagcbor.encode_block({"n": 1})[0]
    store = SqliteBlockStore(path)
    try:
        assert store.get(with_block) == b"\xa1an\x01" and len(store) == 1
    finally:
        store.close()
    assert version(path) == 1


def test_workspace_with_its_format_in_meta_is_migrated(home: Path) -> None:
    path = copy("workspace-before-versions.sqlite", workspace_dir("default") / "state.sqlite")
    assert version(path) == 0
    with Workspace.open("default") as ws:
        assert ws.root == ROOT and ws.root_envelopes() == (ROOT,)
    assert version(path) == 2
    with sqlite3.connect(path) as db:  # an older ipfsbin still reads its format number
        assert db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone() == ("1",)
    db.close()
    with Workspace.open("default") as ws:  # opening again changes nothing
        assert ws.root_envelopes() == (ROOT,)


def test_workspace_whose_meta_names_another_format_is_refused(home: Path) -> None:
    path = copy("workspace-before-versions.sqlite", workspace_dir("default") / "state.sqlite")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '2' WHERE name = 'schema'")
    db.close()
    with pytest.raises(IndexOperationError, match="has format version 2, expected 1"):
        Workspace.open("default")


def _open_subscriptions(path: Path) -> None:
    SubscriptionStore(path).close()


def _open_blocks(path: Path) -> None:
    SqliteBlockStore(path).close()


def _open_workspace(path: Path) -> None:
    Workspace.open("default").close()


@pytest.mark.parametrize(
    ("data", "where", "opener", "error", "known"),
    [
        ("subscriptions-v2.sqlite", "subs.sqlite", _open_subscriptions, SubscriptionError, 5),
        ("gateway-blocks-before-versions.sqlite", "b.sqlite", _open_blocks, StoreError, 1),
        ("workspace-before-versions.sqlite", None, _open_workspace, IndexOperationError, 2),
    ],
)
def test_a_newer_file_is_refused_untouched(
    home: Path,
    data: str,
    where: str | None,
    opener: Callable[[Path], None],
    error: type[IpfsbinError],
    known: int,
) -> None:
    target = home / where if where else workspace_dir("default") / "state.sqlite"
    path = copy(data, target)
    set_version(path, 99)
    before = path.read_bytes()
    with pytest.raises(error, match=f"schema version 99; this ipfsbin knows version {known}") as e:
        opener(path)
    assert e.value.hint == "upgrade ipfsbin"
    assert version(path) == 99 and path.read_bytes() == before


def test_a_failing_migration_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    db = _sqlite.connect(tmp_path / "x.sqlite", what="test state", recovery="start over")

    def boom(db: sqlite3.Connection) -> None:
        raise RuntimeError("boom")

    steps = (
        _sqlite.Migration(version=1, apply=_sqlite.statements("CREATE TABLE t (x)")),
        _sqlite.Migration(version=2, apply=boom),
    )
    with pytest.raises(RuntimeError, match="boom"):
        _sqlite.migrate(db, steps, what="test file", path=tmp_path, error=StoreError)
    assert _sqlite.schema_version(db) == 0
    assert db.execute("SELECT name FROM sqlite_master").fetchall() == []
    assert _sqlite.migrate(db, steps[:1], what="test file", path=tmp_path, error=StoreError) == 0
    assert _sqlite.migrate(db, steps[:1], what="test file", path=tmp_path, error=StoreError) == 1
    db.close()


def test_migrations_must_be_numbered_from_one(tmp_path: Path) -> None:
    db = _sqlite.connect(tmp_path / "x.sqlite", what="test state", recovery="start over")
    step = _sqlite.Migration(version=2, apply=_sqlite.statements())
    with pytest.raises(ValueError, match="numbered 1, 2"):
        _sqlite.migrate(db, (step,), what="test file", path=tmp_path, error=StoreError)
    db.close()


def test_a_damaged_file_is_named_with_its_recovery_wherever_the_damage_shows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.sqlite"
    path.write_bytes(b"not a database\n" * 400)
    db = _sqlite.connect(path, what="test state", recovery="start over")
    with pytest.raises(DamagedStateError) as caught:
        db.execute("PRAGMA user_version").fetchone()
    db.close()
    assert caught.value.message == f"test state {path} is damaged (file is not a database)"
    assert caught.value.hint == (
        f"move it aside (`mv {path} {path}.damaged`) and start over; ipfsbin repairs, moves "
        "and deletes nothing by itself"
    )
    # damage deep in the file shows only when a page is read: a fetch, not the open
    made = tmp_path / "big.sqlite"
    with sqlite3.connect(made) as raw:
        raw.execute("CREATE TABLE t (a TEXT)")
        raw.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 2000)
    raw.close()
    data = made.read_bytes()
    made.write_bytes(data[: len(data) // 2])
    db = _sqlite.connect(made, what="test state", recovery="start over")
    with pytest.raises(DamagedStateError, match="database disk image is malformed"):
        for _row in db.execute("SELECT a FROM t"):
            pass
    db.close()
    # locks and misuse are not damage: they keep their own errors
    db = _sqlite.connect(tmp_path / "fine.sqlite", what="test state", recovery="start over")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        db.execute("SELECT * FROM missing")
    db.close()
