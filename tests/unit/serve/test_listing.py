"""The served listing kept across restarts: used only for the very inputs it lists, whole."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ipfsbin.catalog import BuildCache, CatalogBuilder
from ipfsbin.catalog.sealed import HEAD
from ipfsbin.codec.cid import CID
from ipfsbin.config import ClientPolicy
from ipfsbin.descriptor.verdict import SAME_ISA
from ipfsbin.serve.listing import MAGIC, host_digest, listing_key, read_listing, write_listing
from ipfsbin.serve.packages import PackagesFile, TimestampBook, render_body
from ipfsbin.serve.publisher import render_files
from ipfsbin.subscribe.state import Subscription
from ipfsbin.trust.state import RootPin
from tests.unit.catalog.catalog_helpers import NOW, Index, host_info
from tests.unit.writer_kills import kill_writer_at_moments

NAME = "k51test"
ROOT = Path(__file__).resolve().parents[3]
HEAD_CID = CID.from_text("bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
TRUST = CID.from_text("bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")


def _sub(**change: Any) -> Subscription:
    values: dict[str, Any] = {
        "name": NAME,
        "pin": RootPin(cid=TRUST),
        "roots": (TRUST,),
        "head": HEAD_CID,
        "height": 3,
        "index_root": HEAD_CID,
    }
    values.update(change)
    return Subscription(**values)


def _key(
    sub: Subscription | None = None,
    *,
    fresh: bool = True,
    host: str | None = None,
    policy: ClientPolicy | None = None,
    undeliverable: tuple[CID, ...] = (),
) -> bytes:
    return listing_key(
        [sub or _sub()],
        {NAME: fresh},
        host=host or host_digest(host_info(), (1, 2)),
        policy=policy or ClientPolicy(),
        undeliverable=undeliverable,
    )


def _files(tmp_path: Path) -> tuple[dict[str, PackagesFile], TimestampBook]:
    index = Index()
    for i in range(8):
        index.add(f"p{i}", f"app-misc/p{i}-1")
    builder = CatalogBuilder(BuildCache(index.store), render=render_body)
    catalog = builder.build([index.head()], host=host_info(), policy=ClientPolicy(), now=NOW)
    book = TimestampBook(tmp_path / "timestamps.json")
    return render_files(catalog, [NAME], book, now=NOW, builder=builder), book


def _written(tmp_path: Path) -> tuple[Path, dict[str, PackagesFile], TimestampBook]:
    files, book = _files(tmp_path)
    path = tmp_path / "serve-listing"
    write_listing(path, _key(), files)
    return path, files, book


def test_the_kept_files_are_served_as_they_were(tmp_path: Path) -> None:
    path, files, book = _written(tmp_path)
    kept = read_listing(path, _key(), book, [NAME])
    assert kept is not None
    built, back = files[NAME], kept[NAME]
    assert (back.text, back.gz, back.timestamp) == (built.text, built.gz, built.timestamp)
    assert back.body == b""  # the stanzas are not held twice
    assert back.size == built.size == 8
    # every PATH names the manifest its download is checked against
    assert back.listed is not None
    assert back.listed.table == {p: o.build.manifest_cid.bytes for p, o in built.offers.items()}


def test_the_key_moves_with_every_input() -> None:
    base = _key()
    other_host = host_info(installed={"dev-libs/libfoo": {"0": "2"}})
    moved = {
        "head moved": _key(_sub(head=TRUST, height=4)),
        "index moved": _key(_sub(index_root=TRUST)),
        "trust root": _key(_sub(roots=(TRUST, HEAD_CID))),
        "turned stale": _key(fresh=False),
        "host profile": _key(host=host_digest(other_host, (1, 2))),
        "host files touched": _key(host=host_digest(host_info(), (1, 3))),
        "policy": _key(policy=ClientPolicy(min_builders=2)),
        "sharing": _key(policy=ClientPolicy(sharing=SAME_ISA)),
        "head age": _key(policy=ClientPolicy(max_head_age=86400)),
        "withdrawn build": _key(undeliverable=(HEAD_CID,)),
    }
    assert base not in moved.values()
    assert len(set(moved.values())) == len(moved)
    assert _key() == base


_KEY = """
from ipfsbin.config import ClientPolicy
from ipfsbin.descriptor.verdict import SharingPolicy
from tests.unit.serve.test_listing import _key
policy = ClientPolicy(allowed_builders=frozenset("abcdefgh"),
                      sharing=SharingPolicy(may_differ=frozenset({"opt", "math", "flags"})))
print(_key(policy=policy).hex())
"""


def test_the_key_is_the_same_in_another_process() -> None:
    """Sets are listed sorted: string hashing differs from one process to the next."""
    keys = {
        subprocess.run(
            [sys.executable, "-c", _KEY],
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(keys) == 1


def _damage(path: Path, how: str, book: TimestampBook) -> None:
    data = path.read_bytes()
    start = len(MAGIC) + HEAD.size
    if how == "truncated":
        path.write_bytes(data[:-10])
    elif how == "flipped":
        at = start + 100
        path.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :])
    elif how == "other version":
        path.write_bytes(MAGIC + (7).to_bytes(4, "big") + data[len(MAGIC) + 4 :])
    elif how == "other code":
        at = len(MAGIC) + 4
        path.write_bytes(data[:at] + bytes(32) + data[at + 32 :])
    elif how == "foreign":
        path.write_bytes(b"Packages\n" + data)
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "book moved":
        book.timestamp(NAME, b"another list\n", now=int(NOW) + 60)
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    ["truncated", "flipped", "other version", "other code", "foreign", "empty", "book moved"],
)
def test_a_damaged_or_outdated_file_is_not_used(
    tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    path, _, book = _written(tmp_path)
    _damage(path, how, book)
    with caplog.at_level(logging.INFO, logger="ipfsbin.serve"):
        assert read_listing(path, _key(), book, [NAME]) is None
    assert [r.message for r in caplog.records] == ["kept listing not used"]


@pytest.mark.parametrize(
    "inputs",
    [
        {"sub": _sub(head=TRUST)},
        {"fresh": False},
        {"host": "another host"},
        {"policy": ClientPolicy(min_builders=2)},
    ],
    ids=["head moved", "turned stale", "host changed", "policy changed"],
)
def test_a_file_for_other_inputs_is_not_used(
    tmp_path: Path, inputs: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    path, _, book = _written(tmp_path)
    with caplog.at_level(logging.INFO, logger="ipfsbin.serve"):
        assert read_listing(path, _key(**inputs), book, [NAME]) is None
        assert read_listing(path, _key(), book, [NAME, "k51other"]) is None
    reasons = [r.__dict__["fields"]["reason"] for r in caplog.records]
    assert len(reasons) == 2
    assert "other inputs" in reasons[0]
    assert "other subscriptions" in reasons[1]


def test_no_file_yet_is_said_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, book = _files(tmp_path)
    with caplog.at_level(logging.INFO, logger="ipfsbin.serve"):
        assert read_listing(tmp_path / "none", _key(), book, [NAME]) is None
    assert [(r.levelno, r.message) for r in caplog.records] == [
        (logging.INFO, "kept listing not used")
    ]


_WRITER = """
import sys
from pathlib import Path
from ipfsbin.serve.listing import write_listing
from ipfsbin.serve.packages import PackagesFile
path = Path(sys.argv[1])
def files(n):
    text = b"".join(b"CPV: app-misc/p%d-1\\n\\n" % i for i in range(n))
    return {"k51test": PackagesFile.render("k51test", [], 1000 + n, body=text)}
versions = [(bytes([n % 256]) * 32, files(n)) for n in (300000, 500000)]
print("ready", flush=True)
while True:
    for key, written in versions:
        write_listing(path, key, written)
"""


def test_kill_9_while_writing_leaves_the_old_or_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "serve-listing"
    keys = [bytes([n % 256]) * 32 for n in (300000, 500000)]

    def one_of_them() -> None:
        found = [_read_any(path, key, tmp_path) for key in keys]
        assert sum(f is not None for f in found) == 1

    kill_writer_at_moments(_WRITER, path, one_of_them)
    # the next write replaces whatever a killed one left beside it
    write_listing(path, keys[0], {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["serve-listing"]


def _read_any(path: Path, key: bytes, tmp_path: Path) -> dict[str, PackagesFile] | None:
    """The file under ``key``, with a book that agrees with whatever it holds."""
    book = TimestampBook(tmp_path / "book.json")
    for n in (300000, 500000):
        body = b"".join(b"CPV: app-misc/p%d-1\n\n" % i for i in range(n))
        book._book[NAME] = {"digest": _sha256(body), "timestamp": 1000 + n}
        found = read_listing(path, key, book, [NAME])
        if found is not None:
            assert found[NAME].text.endswith(body)
            return found
    return None


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_a_listed_path_keeps_its_manifest_whatever_its_neighbours(tmp_path: Path) -> None:
    """The lookup refuses two strings that disagree rather than pairing PATHs with wrong CIDs."""
    path, files, book = _written(tmp_path)
    kept = read_listing(path, _key(), book, [NAME])
    assert kept is not None
    listed = kept[NAME].listed
    assert listed is not None
    for broken in (
        dataclasses.replace(listed, count=listed.count + 1),
        dataclasses.replace(listed, cids=listed.cids[:-1]),
        dataclasses.replace(listed, cids=listed.cids + b"\x01x"),
    ):
        with pytest.raises(ValueError):
            _ = broken.table
