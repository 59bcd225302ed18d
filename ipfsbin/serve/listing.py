"""The served listing kept across restarts: ``Packages`` answered at once after a start.

The served ``Packages`` is a pure function of its inputs: the followed heads
and trust roots, which of them are fresh, this host's profile, the client's
policy, the builds withdrawn as undeliverable, and the code. :func:`listing_key`
digests them; :func:`write_listing` keeps every subscription's rendered file
(text, ``.gz``, TIMESTAMP) with that key and, per listed PATH, the manifest CID
a download is checked against, in ``<data dir>/serve-listing`` (sealed by
:mod:`ipfsbin.catalog.sealed`). :func:`read_listing` gives the files back only when the
key is the current inputs' key, the file is whole and of this code, and the
TIMESTAMP book agrees; else it says why in one log line and the shim builds
as on a first start (``schema/binhost.md``, "The listing kept across
restarts").
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
from collections.abc import Collection, Iterable, Mapping
from functools import cache
from pathlib import Path

from ipfsbin.catalog.sealed import (
    FileRefused,
    SealedReader,
    code_fingerprint,
    open_sealed,
    package_sources,
    write_sealed,
)
from ipfsbin.codec.cid import CID
from ipfsbin.config import ClientPolicy
from ipfsbin.host.profile import HostInfo
from ipfsbin.serve.packages import ListedManifests, PackagesFile, TimestampBook, header_of
from ipfsbin.subscribe.state import Subscription

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "host_digest",
    "listing_fingerprint",
    "listing_key",
    "read_listing",
    "write_listing",
]

FORMAT_VERSION = 1
MAGIC = b"ipfsbin-served-listing\n"
_FILE = struct.Struct(">HQQQIQQ")
"""Per subscription: lengths of its name, TIMESTAMP, lengths of the text and the .gz,
PATHs listed, lengths of the PATHs and of the manifest CIDs (:class:`ListedManifests`)."""

_log = logging.getLogger("ipfsbin.serve")


@cache
def listing_fingerprint() -> bytes:
    """SHA-256 over the format version and every module of the package.

    What is listed depends on most of the package (the predicate, the
    ranking, the rendering, the host reading): any change of code, and the
    kept listing is not used.
    """
    return code_fingerprint(FORMAT_VERSION, package_sources())


def host_digest(host: HostInfo, stamp: tuple[int, ...]) -> str:
    """This host as the catalog judges it: its profile, and the files the USE comes from.

    The USE configuration of each package is read through Portage on demand,
    so it is stood for by the modification times of the files it comes from
    (``stamp`` of :attr:`HostInfo.watched`, as the running shim notices a
    change).
    """
    facts = {**host.to_json(), "watched": list(host.watched), "stamp": list(stamp)}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def _policy(policy: ClientPolicy) -> dict[str, object]:
    return {
        "min_builders": policy.min_builders,
        "allowed_builders": sorted(policy.allowed_builders),
        "max_head_age": policy.max_head_age,
        "sharing": sorted(policy.sharing.may_differ),
    }


def listing_key(
    subs: Iterable[Subscription],
    fresh: Mapping[str, bool],
    *,
    host: str,
    policy: ClientPolicy,
    undeliverable: Collection[CID],
) -> bytes:
    """The key of what is listed: equal keys, the same ``Packages`` bytes.

    ``fresh`` names the subscriptions whose head was read, and whether it
    may be offered (``head_refusal`` is None) at the time; ``host`` is
    :func:`host_digest`.
    """
    inputs = {
        "version": FORMAT_VERSION,
        "subscriptions": [
            {
                "name": s.name,
                "head": None if s.head is None else str(s.head),
                "index": None if s.index_root is None else str(s.index_root),
                "root": str(s.roots[-1]) if s.roots else None,
                "fresh": fresh.get(s.name),
            }
            for s in sorted(subs, key=lambda s: s.name)
        ],
        "host": host,
        "policy": _policy(policy),
        "undeliverable": sorted(str(c) for c in undeliverable),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).digest()


def write_listing(path: Path, key: bytes, files: Mapping[str, PackagesFile]) -> int:
    """Replace ``path`` with ``files`` under ``key``; its length in bytes.

    Killed at any moment, the writer leaves the old file or the new one.
    """
    parts = [key, struct.pack(">I", len(files))]
    for name in sorted(files):
        file = files[name]
        listed = file.manifests()
        raw = name.encode()
        head = _FILE.pack(
            len(raw),
            file.timestamp,
            len(file.text),
            len(file.gz),
            listed.count,
            len(listed.paths),
            len(listed.cids),
        )
        parts += (head, raw, file.text, file.gz, listed.paths, listed.cids)
    return write_sealed(
        path, parts, magic=MAGIC, version=FORMAT_VERSION, fingerprint=listing_fingerprint()
    )


def _files(reader: SealedReader) -> tuple[bytes, dict[str, PackagesFile]]:
    key = reader.read(32)
    (count,) = struct.unpack(">I", reader.read(4))
    files = {}
    for _ in range(count):
        name_len, timestamp, text_len, gz_len, listed, paths_len, cids_len = _FILE.unpack(
            reader.read(_FILE.size)
        )
        name = reader.read(name_len).decode()
        text = reader.read(text_len)
        gz = reader.read(gz_len)
        manifests = ListedManifests(listed, reader.read(paths_len), reader.read(cids_len))
        if not text.startswith(header_of(listed, timestamp=timestamp, name=name)):
            raise FileRefused(f"holds a {name} file whose header is not its own")
        # no copy of the stanzas beside the text: the rebuild renders its own
        files[name] = PackagesFile(
            name=name, timestamp=timestamp, text=text, gz=gz, offers={}, body=b"", listed=manifests
        )
    reader.finish()
    return key, files


def read_listing(
    path: Path, key: bytes, book: TimestampBook, names: Collection[str]
) -> dict[str, PackagesFile] | None:
    """The kept files of ``path`` when they are what ``key``'s inputs list; else None.

    ``names`` are the subscriptions served now; the TIMESTAMP ``book`` must
    give each file its own TIMESTAMP (a listing older than the book is not
    served: a client may hold the newer one). Why a file is not used is
    logged once.
    """
    try:
        with open_sealed(
            path,
            magic=MAGIC,
            version=FORMAT_VERSION,
            fingerprint=listing_fingerprint,
            what="kept listing",
        ) as reader:
            if reader is None:
                return _not_used(path, "there is none yet", warn=False)
            kept_key, files = _files(reader)
    except FileRefused as exc:
        return _not_used(path, exc.reason)
    except UnicodeDecodeError as exc:
        return _not_used(path, f"holds a name that is not UTF-8: {exc}")
    if kept_key != key:
        return _not_used(
            path,
            "it lists for other inputs (a head moved or turned stale, this host, "
            "the policy or a withdrawn build changed)",
        )
    if set(files) != set(names):
        return _not_used(path, "it lists other subscriptions than those served")
    for name, file in files.items():
        header = header_of(file.size, timestamp=file.timestamp, name=name)
        if not book.agrees(name, memoryview(file.text)[len(header) :], file.timestamp):
            return _not_used(path, f"the TIMESTAMP book has moved past its {name} file")
    _log.info(
        "kept listing served",
        extra={
            "fields": {
                "path": str(path),
                "packages": {n: f.size for n, f in files.items()},
                "then": "the catalog is rebuilt in the background",
            }
        },
    )
    return files


def _not_used(path: Path, why: str, *, warn: bool = True) -> dict[str, PackagesFile] | None:
    (_log.warning if warn else _log.info)(
        "kept listing not used",
        extra={"fields": {"path": str(path), "reason": why, "then": "the catalog is built"}},
    )
    return None
