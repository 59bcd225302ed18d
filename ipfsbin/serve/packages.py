"""The ``Packages`` file Portage reads from a binhost, rendered from a subscription's offers.

Portage's contract (``schema/binhost.md``): ``VERSION: 0``, no ``TTL``; a
``TIMESTAMP`` that rises by more than 5 s on every change (a refetch sends
``If-Modified-Since`` = cached TIMESTAMP + 5 s) and equals ``Last-Modified``;
per package SIZE/MD5/SHA1 from the signed manifest (the only digests Portage
checks), a BUILD_ID unique per CPV, an MTIME stable for the same bytes, and a
PATH under the subscription's own URL path that ends in ``.gpkg.tar`` or
``.xpak``. The file is rendered when the catalog changes, never on a request.

:class:`TimestampBook` keeps, per subscription, the digest of the last
rendered package list and its TIMESTAMP in a small JSON file, so a restarted
server keeps the TIMESTAMP of an unchanged list (Portage's cached copy stays
valid) and moves it past the old one for a changed list.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Final, cast

from ipfsbin.catalog.build import Offer

__all__ = [
    "GzipMembers",
    "ListedManifests",
    "PackagesFile",
    "TimestampBook",
    "header_of",
    "package_stanza",
    "render_body",
    "render_packages",
]

MIN_STEP: Final = 6
"""Seconds a changed file's TIMESTAMP moves at least (Portage adds 5 to its cached one)."""
GZIP_LEVEL: Final = 1


def package_stanza(offer: Offer) -> dict[str, str]:
    """The ``Packages`` entry of one offer: the manifest's Portage values, digests, PATH."""
    manifest = offer.build.manifest
    entry = {k: v for k, v in manifest.portage.items() if k != "BUILD_ID"}
    entry.setdefault("CHOST", manifest.build.chost)
    entry.update(
        {
            "BUILD_ID": str(offer.build_id),
            "BUILD_TIME": str(offer.build_time),
            "MD5": manifest.md5.hex(),
            "SHA1": manifest.sha1.hex(),
            "SIZE": str(manifest.size),
            "MTIME": str(offer.build.build_time),
            "PATH": offer.path,
        }
    )
    return entry


def _stanza_text(entry: dict[str, str]) -> str:
    return "".join([f"{key}: {value}\n" for key, value in sorted(entry.items())]) + "\n"


def render_body(offers: Sequence[Offer]) -> bytes:
    """The package stanzas, without the header (rendered once per catalog build)."""
    return "".join([_stanza_text(package_stanza(o)) for o in offers]).encode("utf-8")


def header_of(count: int, *, timestamp: int, name: str) -> bytes:
    """The file's first stanza (``count`` packages)."""
    header = {
        "PACKAGES": str(count),
        "TIMESTAMP": str(timestamp),
        "VERSION": "0",
        "IPFSBIN_SUBSCRIPTION": name,
    }
    return _stanza_text(header).encode("utf-8")


def render_packages(
    offers: Sequence[Offer], *, timestamp: int, name: str, body: bytes | None = None
) -> bytes:
    """The whole file: header (sorted keys, as Portage writes it), then one stanza per offer.

    ``body`` is :func:`render_body` of ``offers`` when the caller has it already.
    """
    header = header_of(len(offers), timestamp=timestamp, name=name)
    return header + (render_body(offers) if body is None else body)


def _gzip(data: bytes) -> bytes:
    # mtime=0: the same text always gives the same .gz bytes; level 1 is three
    # times faster than 6 here and 1.3 times the size
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


class GzipMembers:
    """``Packages.gz`` as gzip members of runs of stanzas, each compressed once.

    A gzip file may be several members one after the other (RFC 1952; Portage
    reads it with Python's ``GzipFile``, which reads them all). The stanzas are
    cut into runs after each one whose CRC-32 ends in :data:`RUN_BITS` zero
    bits (about 32 stanzas, 9 KB, a run; 3% larger than one member), so a run's
    bounds depend on its own stanzas only, and a rebuild compresses only the
    runs whose stanzas changed.
    """

    RUN_BITS: Final = 5

    def __init__(self) -> None:
        self._runs: dict[tuple[bytes, ...], bytes] = {}
        self._ends: dict[bytes, bool] = {}
        """Stanza -> whether a run ends after it: the CRC of 10^5 stanzas costs more
        than looking them up (a kept stanza's hash is cached in its bytes object)."""

    def _run_ends(self, stanzas: Sequence[bytes]) -> list[int]:
        """The positions (1-based) of the stanzas a run ends after."""
        mask = (1 << self.RUN_BITS) - 1
        ends = self._ends
        found = [ends.get(text) for text in stanzas]
        if None in found:
            for i, flag in enumerate(found):
                if flag is None:
                    text = stanzas[i]
                    found[i] = ends[text] = zlib.crc32(text) & mask == 0
        flags = cast(list[bool], found)  # every None was filled in above
        if len(ends) > 2 * len(stanzas):
            self._ends = dict(zip(stanzas, flags, strict=True))
        return list(itertools.compress(range(1, len(stanzas) + 1), flags))

    def compress(self, header: bytes, stanzas: Sequence[bytes]) -> bytes:
        """The header's member, then one member per run of ``stanzas``."""
        cuts = self._run_ends(stanzas)
        if stanzas and (not cuts or cuts[-1] != len(stanzas)):
            cuts.append(len(stanzas))
        kept: dict[tuple[bytes, ...], bytes] = {}
        members = [_gzip(header)]
        start = 0
        for end in cuts:
            run = tuple(stanzas[start:end])
            start = end
            member = kept.get(run) or self._runs.get(run)
            if member is None:
                member = _gzip(b"".join(run))
            kept[run] = member
            members.append(member)
        self._runs = kept
        return b"".join(members)


@dataclass(frozen=True)
class ListedManifests:
    """Every PATH of a file and the CID of the signed manifest its download is checked against.

    Kept as two byte strings (what the kept listing stores); the lookup
    table is made on first use, which only a download before the catalog is
    rebuilt needs.
    """

    count: int
    paths: bytes
    """The PATHs in UTF-8, joined by newlines (a PATH holds none: Packages is line-based)."""
    cids: bytes
    """For each PATH in order: one byte of length, then the manifest CID's binary form."""

    @classmethod
    def of(cls, offers: Mapping[str, Offer]) -> ListedManifests:
        cids: list[bytes] = []
        for offer in offers.values():
            raw = offer.build.manifest_cid.bytes
            cids += (bytes((len(raw),)), raw)
        return cls(len(offers), "\n".join(offers).encode(), b"".join(cids))

    @cached_property
    def table(self) -> dict[str, bytes]:
        """PATH -> manifest CID (binary); ``ValueError`` when the two strings disagree."""
        paths = self.paths.decode().split("\n") if self.count else []
        if len(paths) != self.count:
            raise ValueError(f"{len(paths)} PATHs listed for {self.count} packages")
        found: dict[str, bytes] = {}
        at = 0
        for where in paths:
            end = at + 1 + self.cids[at] if at < len(self.cids) else len(self.cids) + 1
            if end > len(self.cids):
                raise ValueError("the manifest CIDs end before the PATHs")
            found[where] = self.cids[at + 1 : end]
            at = end
        if at != len(self.cids):
            raise ValueError("more manifest CIDs than PATHs")
        return found


@dataclass(frozen=True, kw_only=True)
class PackagesFile:
    """One subscription's rendered index, ready to send."""

    name: str
    timestamp: int
    text: bytes
    gz: bytes
    offers: dict[str, Offer]
    """PATH -> offer."""
    body: bytes
    """The stanzas (``text`` without its header), as given; empty when read back from the
    kept listing."""
    members: GzipMembers | None = None
    """What compressed ``gz`` by runs, for the next file of this subscription."""
    listed: ListedManifests | None = None
    """Set on a file read back from the kept listing, whose ``offers`` are empty until the
    catalog is rebuilt (:mod:`ipfsbin.serve.listing`)."""

    @property
    def size(self) -> int:
        """How many packages the file lists."""
        return len(self.offers) if self.listed is None else self.listed.count

    def manifests(self) -> ListedManifests:
        """Every PATH listed and its manifest CID."""
        return ListedManifests.of(self.offers) if self.listed is None else self.listed

    @classmethod
    def render(
        cls,
        name: str,
        offers: Sequence[Offer],
        timestamp: int,
        *,
        body: bytes | None = None,
        paths: dict[str, Offer] | None = None,
        stanzas: Sequence[bytes] | None = None,
        members: GzipMembers | None = None,
    ) -> PackagesFile:
        """``body`` and ``paths`` (PATH -> offer) are those of ``offers``, when known.

        With ``stanzas`` (``body`` cut in pieces: one CPV's stanzas each),
        ``gz`` is compressed by runs (:class:`GzipMembers`, ``members`` when
        kept from the last file).
        """
        if body is None:
            body = render_body(offers)
        header = header_of(len(offers), timestamp=timestamp, name=name)
        text = header + body
        if stanzas is None:
            gz = _gzip(text)
        else:
            members = members or GzipMembers()
            gz = members.compress(header, stanzas)
        return cls(
            name=name,
            timestamp=timestamp,
            text=text,
            gz=gz,
            offers={o.path: o for o in offers} if paths is None else paths,
            body=body,
            members=members,
        )


class TimestampBook:
    """The last TIMESTAMP per subscription and the digest of the list it was given for."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            loaded = {}
        self._book: dict[str, dict[str, object]] = loaded if isinstance(loaded, dict) else {}

    def timestamp(self, name: str, body: bytes, *, now: int) -> int:
        """The TIMESTAMP to list ``body`` (:func:`render_body`) under.

        An unchanged list keeps its stamp; a changed one gets a higher one.
        """
        digest = hashlib.sha256(body).hexdigest()
        seen = self._book.get(name, {})
        old = seen.get("timestamp")
        if seen.get("digest") == digest and isinstance(old, int):
            return old
        stamp = now if not isinstance(old, int) else max(now, old + MIN_STEP)
        self._book[name] = {"digest": digest, "timestamp": stamp}
        self._save()
        return stamp

    def agrees(self, name: str, body: bytes | memoryview, timestamp: int) -> bool:
        """True when ``body`` is the last list recorded for ``name``, under ``timestamp``."""
        seen = self._book.get(name, {})
        digest = hashlib.sha256(body).hexdigest()
        return seen.get("digest") == digest and seen.get("timestamp") == timestamp

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".timestamps-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(self._book, out, sort_keys=True)
        os.replace(tmp, self.path)
