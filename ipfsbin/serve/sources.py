"""Where the shim reads a binpkg's bytes: the repo's block files, the gateway, RPC ``cat``.

None is trusted. When the serving user can read the local node's repo,
the file's blocks are read from their files there, each checked against
its CID (:class:`RepoSource`; the gateway takes over from a block the repo
lacks); the gateway's and the RPC's streams are checked by
:mod:`ipfsbin.serve.stream` against the manifest's sha256. The repo first:
Kubo's gateway spent about as much CPU relaying a file (0.41 s per 500 MB)
as the shim did checking it, on the same two cores. Otherwise the
node's gateway, which fetches missing blocks from peers. Measured on the
2-core development machine for a 200 MB file with local blocks: RPC
``cat`` 0.08 GB/s (Kubo sends it in 4 KiB pieces), the gateway read with
httpx 0.18-0.30 GB/s, the gateway read with ``http.client`` in large
reads 0.59 GB/s. So the gateway is read with ``http.client``: a plain GET
of ``/ipfs/<cid>`` on loopback needs nothing httpx adds.

The repo and the gateway's address are found once at start-up
(:func:`find_repo_blocks`, :func:`find_gateway`); when there is no
gateway, or it answers anything but 200 before the first byte, the RPC
``cat`` serves that download.
"""

from __future__ import annotations

import http.client
import logging
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, Protocol

from ipfsbin.codec.cid import CID
from ipfsbin.errors import BlockNotFoundError, KuboError, KuboStreamError
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.daemon import API_ENV, user_repo_path
from ipfsbin.kubo.flatfs import FlatfsBlocks
from ipfsbin.manifest import BinpkgVerifier, Manifest
from ipfsbin.serve.blockcheck import (
    MAX_AHEAD,
    Checked,
    Missing,
    checked_blocks,
    read_leaf,
    same_start,
)
from ipfsbin.serve.stream import ByteRange, verified_range

__all__ = [
    "CHUNK",
    "GATEWAY_ENV",
    "LARGEST_READ",
    "REPO_ENV",
    "GatewaySource",
    "KuboSource",
    "ReadBudget",
    "RepoSource",
    "find_gateway",
    "find_repo_blocks",
    "gateway_from_multiaddr",
]

GATEWAY_ENV: Final = "IPFSBIN_GATEWAY"
REPO_ENV: Final = "IPFSBIN_REPO"
CHUNK: Final = 1 << 18
"""Bytes per RPC ``cat`` read, and the least the gateway is read in."""
LARGEST_READ: Final = 1 << 20
READ_BUDGET: Final = 8 << 20
"""Bytes of gateway reads in flight shared by all downloads: the read size is
this over the open reads, between :data:`CHUNK` and :data:`LARGEST_READ`.
Each piece costs the same Python and system calls whatever its size, so one
download reads in 1 MiB (shim CPU per 500 MB 0.63 s at 256 KiB, 0.55 s at
1 MiB), while 16 at once read in 512 KiB, as 1 MiB there took the shim to
130-145 MB RSS and 512 KiB to 97 MB (``fetch.py``, same machine)."""
_log = logging.getLogger("ipfsbin.serve")


class KuboSource:
    """Binpkg bytes through Kubo's RPC ``cat`` (from the local repo, or fetched from peers)."""

    def __init__(self, client: KuboClient) -> None:
        self.client = client

    def chunks(self, cid: CID, size: int) -> Iterator[bytes]:
        return self.client.cat(cid, expected_size=size, chunk_size=CHUNK)


class ReadBudget:
    """How large each read is: :data:`READ_BUDGET` shared by the reads open at the moment."""

    def __init__(self) -> None:
        self._open = 0
        self._lock = threading.Lock()

    @contextmanager
    def reading(self) -> Iterator[Callable[[], int]]:
        """Count one read open while inside; gives the function that sizes its next piece."""
        with self._lock:
            self._open += 1
        try:
            yield self.size
        finally:
            with self._lock:
                self._open -= 1

    def size(self) -> int:
        return max(CHUNK, min(LARGEST_READ, READ_BUDGET // max(self._open, 1)))

    def ahead(self) -> int:
        """Blocks of 1 MiB one download may read and hash ahead: 2 alone, 1 among 8 or more."""
        return max(1, min(MAX_AHEAD, READ_BUDGET // max(self._open, 1) // LARGEST_READ))


class _GatewayRefused(Exception):
    """The gateway did not start an answer (down, or not 200): use the RPC instead."""


class GatewaySource:
    """Binpkg bytes through the local Kubo node's own HTTP gateway, in reads of 256 KiB-1 MiB.

    Falls back to ``fallback`` (RPC ``cat``) when the gateway cannot be
    reached or does not answer 200; once bytes flow, a failure is the
    download's (``KuboStreamError``), as with the RPC.
    """

    def __init__(
        self,
        base_url: str,
        fallback: KuboSource,
        *,
        timeout: float = 120.0,
        budget: ReadBudget | None = None,
    ) -> None:
        self.budget = ReadBudget() if budget is None else budget
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the Kubo gateway must be an http:// URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._prefix = parts.path.rstrip("/")
        self.fallback = fallback
        self.timeout = timeout

    def chunks(self, cid: CID, size: int) -> Iterator[bytes]:
        try:
            conn, answer = self._open(cid)
        except _GatewayRefused as exc:
            _log.warning(
                "gateway read refused, using the RPC",
                extra={"fields": {"cid": str(cid), "gateway": self.base_url, "why": str(exc)}},
            )
            yield from self.fallback.chunks(cid, size)
            return
        try:
            with self.budget.reading() as read_size:
                yield from _body(cid, answer, size, self.base_url, read_size)
        finally:
            conn.close()

    def _open(self, cid: CID) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            conn.request("GET", f"{self._prefix}/ipfs/{cid}", headers={"Accept": "*/*"})
            answer = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise _GatewayRefused(f"{type(exc).__name__}: {exc}") from exc
        if answer.status != 200:
            conn.close()
            raise _GatewayRefused(f"HTTP {answer.status} {answer.reason}")
        return conn, answer


def _body(
    cid: CID, answer: http.client.HTTPResponse, size: int, where: str, read_size: Callable[[], int]
) -> Iterator[bytes]:
    got = 0
    try:
        while got < size:
            chunk = answer.read(min(read_size(), size - got))
            if not chunk:
                break
            got += len(chunk)
            yield chunk
        if got == size and answer.read(1):
            raise KuboStreamError(f"kubo gateway {where}/ipfs/{cid}: more than {size} bytes")
    except (OSError, http.client.HTTPException) as exc:
        raise KuboStreamError(
            f"kubo gateway {where}/ipfs/{cid}: the stream broke after {got} of {size} bytes "
            f"({type(exc).__name__})",
            hint="the Kubo daemon may have stopped; try again once it runs",
        ) from exc
    if got != size:
        raise KuboStreamError(
            f"kubo gateway {where}/ipfs/{cid}: the stream ended after {got} of {size} bytes",
            hint="the Kubo daemon may have stopped or lost the data; try again",
        )


class _Source(Protocol):
    def chunks(self, cid: CID, size: int) -> Iterator[bytes]: ...


class RepoSource:
    """Binpkg bytes from the local repo's block files, each block checked against its CID.

    The file's UnixFS DAG is walked from the manifest's signed ``binpkg``
    CID (:mod:`ipfsbin.serve.blockcheck`): no byte leaves before its block
    and every block before it hashed to the CIDs that name them. A block
    the repo does not hold (not fetched yet, or garbage collected) hands the
    download to ``fallback`` (the gateway, which fetches it from peers): its
    whole file goes through the manifest's size and sha256 check, its first
    bytes must be the parts the repo already gave, and only its bytes from
    where the repo stopped are passed on.
    """

    def __init__(
        self, blocks: FlatfsBlocks, fallback: _Source, *, budget: ReadBudget | None = None
    ) -> None:
        self.blocks = blocks
        self.fallback = fallback
        self.budget = ReadBudget() if budget is None else budget

    def checked(
        self,
        manifest: Manifest,
        manifest_cid: CID,
        want: ByteRange | None = None,
        *,
        fallback: bool = True,
    ) -> Iterator[bytes]:
        """The bytes of ``want`` (default: all), checked; ``TrustError`` before a bad one.

        ``fallback`` False: :class:`~ipfsbin.serve.blockcheck.Missing` instead of the
        fallback's bytes when the repo lacks a block.
        """
        size = manifest.size
        start, end = (0, size - 1) if want is None else (want.start, want.end)
        check = Checked(manifest, manifest_cid)
        given: list[tuple[int, bytes]] = []
        pos = 0
        try:
            with self.budget.reading():
                parts = checked_blocks(
                    check, self._node, self._leaf, end=end + 1, ahead=self.budget.ahead,
                    given=given,
                )  # fmt: skip
                for part in parts:
                    lo, hi = max(start - pos, 0), min(end + 1 - pos, len(part))
                    pos += len(part)
                    if lo < hi:
                        yield part if hi - lo == len(part) else part[lo:hi]
            return
        except Missing as missing:
            if not fallback:
                raise
            _log.info(
                "block not in the repo, using the gateway",
                extra={"fields": {"cid": str(manifest.binpkg), "from": pos, "why": str(missing)}},
            )
        rest = same_start(self.fallback.chunks(manifest.binpkg, size), given, check)
        verifier = BinpkgVerifier(manifest, manifest_cid, portage_digests=False)
        yield from verified_range(rest, verifier, ByteRange(start=max(start, pos), end=end))

    def _node(self, cid: CID) -> bytes:
        try:
            return self.blocks.read(cid)
        except (BlockNotFoundError, OSError) as exc:
            raise Missing(str(exc)) from exc

    def _leaf(self, cid: CID) -> bytes:
        return read_leaf(self.blocks.path(cid))


def find_repo_blocks() -> FlatfsBlocks | None:
    """The local node's block files when this user can read them, or None.

    ``IPFSBIN_REPO`` first; else the managed node's repo when no other
    daemon is named (``IPFSBIN_API``).
    """
    override = os.environ.get(REPO_ENV, "").strip()
    if override:
        return FlatfsBlocks.open(Path(override))
    if os.environ.get(API_ENV, "").strip():
        return None
    return FlatfsBlocks.open(user_repo_path())


def gateway_from_multiaddr(addr: str) -> str | None:
    """``/ip4/H/tcp/P`` (or ip6/dns) → ``http://H:P``; None for port 0 or another shape."""
    parts = addr.strip().split("/")
    if len(parts) < 5 or parts[0] or parts[3] != "tcp" or not parts[4].isdigit():
        return None
    kind, host, port = parts[1], parts[2], int(parts[4])
    if port == 0 or kind not in ("ip4", "ip6", "dns", "dns4", "dns6"):
        return None
    if host in ("0.0.0.0", "::"):  # noqa: S104 - a listen-everywhere address, reached on loopback
        host = "127.0.0.1" if kind == "ip4" else "::1"
    return f"http://[{host}]:{port}" if kind == "ip6" else f"http://{host}:{port}"


def find_gateway(client: KuboClient) -> str | None:
    """The local Kubo node's gateway URL, or None (then the RPC ``cat`` serves).

    ``IPFSBIN_GATEWAY`` first; for the managed node (no ``IPFSBIN_API``), the
    address its daemon wrote to ``<repo>/gateway``; else ``Addresses.Gateway``
    from the daemon's config when it names a fixed port.
    """
    override = os.environ.get(GATEWAY_ENV, "").strip()
    if override:
        return override.rstrip("/")
    if not os.environ.get(API_ENV, "").strip():
        written = _read(user_repo_path() / "gateway")
        if written:
            return written.rstrip("/")
    try:
        value = client.config_get("Addresses.Gateway")
    except KuboError:
        return None
    for addr in [value] if isinstance(value, str) else value if isinstance(value, list) else []:
        url = gateway_from_multiaddr(str(addr))
        if url is not None:
            return url
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
