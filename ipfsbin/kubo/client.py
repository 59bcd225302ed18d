"""A typed client for Kubo's RPC API: one method per endpoint, records out.

Every option the result depends on is sent explicitly, because Kubo silently
ignores options it does not know and falls back to the node's config.
Durations always carry units. Streamed answers are checked for completeness
(Kubo reports late errors only in an HTTP trailer that httpx drops).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self, cast

import httpx

from ipfsbin.codec.cid import CID, DAG_CBOR, DAG_PB, RAW
from ipfsbin.errors import KuboCommandError, KuboStreamError
from ipfsbin.kubo._dag import DagCommands
from ipfsbin.kubo._naming import NamingCommands
from ipfsbin.kubo._pinning import PinningCommands
from ipfsbin.kubo._remote import RemotePinningCommands
from ipfsbin.kubo._rpc import (
    CountingReader,
    IterReader,
    Param,
    Params,
    Rpc,
    args,
    base_url_from_multiaddr,
    cid_field,
    file_part,
    go_duration,
    int_field,
    string_field,
)
from ipfsbin.kubo.netlimits import NO_LIMITS, TransferLimits, limited_transport
from ipfsbin.kubo.records import (
    AddResult,
    BlockStat,
    FileStat,
    KuboVersion,
    NodeIdentity,
)

__all__ = ["DEFAULT_CHUNKER", "DEFAULT_TIMEOUT", "KuboClient", "ProgressCallback", "go_duration"]

ProgressCallback = Callable[[int], None]
"""Called with the number of bytes handled so far."""

DEFAULT_CHUNKER: Final = "size-262144"
DEFAULT_TIMEOUT: Final = httpx.Timeout(connect=5.0, read=120.0, write=120.0, pool=10.0)
# Kubo's own default, sent explicitly so a node's Import config cannot change our CIDs.
_MAX_FILE_LINKS: Final = 174
_BLOCK_CODECS: Final = {RAW: "raw", DAG_PB: "dag-pb", DAG_CBOR: "dag-cbor"}
# block/put batches: bounded so a long list of blocks never sits in memory at once.
_BATCH_BLOCKS: Final = 256
_BATCH_BYTES: Final = 8 * 1024 * 1024

AddSource = bytes | Path | IO[bytes] | Iterable[bytes]


def _codec_name(codec: int) -> str:
    try:
        return _BLOCK_CODECS[codec]
    except KeyError:
        raise ValueError(
            f"unsupported block codec 0x{codec:x}; expected raw, dag-pb or dag-cbor"
        ) from None


class KuboClient(NamingCommands, PinningCommands, RemotePinningCommands, DagCommands):
    """Talks to one Kubo daemon through an ``httpx.Client`` whose ``base_url`` is the API."""

    def __init__(self, http: httpx.Client, *, owns_http: bool = False) -> None:
        self._rpc = Rpc(http)
        self._owns_http = owns_http

    @classmethod
    def from_multiaddr(
        cls,
        addr: str,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        limits: TransferLimits = NO_LIMITS,
    ) -> KuboClient:
        """A client with its own connection pool for ``/ip4/127.0.0.1/tcp/5001`` (or a URL).

        Requests obey ``limits`` (none by default: an ``add`` of a large file may
        take long) and, always, the deadline of the operation they run in
        (``ipfsbin.kubo.netlimits.operation_deadline``).
        """
        base_url, uds = base_url_from_multiaddr(addr)
        transport = limited_transport(limits, uds=uds)
        http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)
        return cls(http, owns_http=True)

    @property
    def http(self) -> httpx.Client:
        return self._rpc.http

    def close(self) -> None:
        if self._owns_http:
            self._rpc.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- node ---------------------------------------------------------------

    def id(self) -> NodeIdentity:
        obj = self._rpc.call_json("id")
        return NodeIdentity(
            peer_id=string_field("id", obj, "ID"),
            public_key=string_field("id", obj, "PublicKey"),
            addresses=tuple(obj.get("Addresses") or ()),
            agent_version=string_field("id", obj, "AgentVersion"),
            protocols=tuple(obj.get("Protocols") or ()),
        )

    def version(self) -> KuboVersion:
        obj = self._rpc.call_json("version", [("all", False)])
        return KuboVersion(
            version=string_field("version", obj, "Version"),
            commit=str(obj.get("Commit", "")),
            repo=str(obj.get("Repo", "")),
            system=str(obj.get("System", "")),
            golang=str(obj.get("Golang", "")),
        )

    def config_get(self, key: str) -> Any:
        """One value of the daemon's configuration (``ipfs config KEY``), as JSON."""
        return self._rpc.call_json("config", [("arg", key)]).get("Value")

    # -- UnixFS files -------------------------------------------------------

    def add(
        self,
        source: AddSource,
        *,
        name: str = "file",
        chunker: str = DEFAULT_CHUNKER,
        pin: bool = True,
        only_hash: bool = False,
        progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> AddResult:
        """Add one file as UnixFS with CIDv1, raw leaves, sha2-256 and a fixed chunker.

        ``source`` is bytes, a path, a binary file object or an iterable of chunks.
        ``progress`` is called with the bytes sent so far. Raises
        ``KuboStreamError`` unless Kubo confirmed every byte and reported the root.
        """
        if isinstance(source, bytes):
            reader: CountingReader = CountingReader(IterReader([source]))
        elif isinstance(source, Path):
            return self._add_path(source, name, chunker, pin, only_hash, progress, timeout)
        elif hasattr(source, "read"):
            reader = CountingReader(cast(IO[bytes], source))
        else:
            reader = CountingReader(IterReader(source))
        return self._add(reader, name, chunker, pin, only_hash, progress, timeout)

    def _add_path(
        self,
        path: Path,
        name: str,
        chunker: str,
        pin: bool,
        only_hash: bool,
        progress: ProgressCallback | None,
        timeout: float | None,
    ) -> AddResult:
        with path.open("rb") as fh:
            return self._add(CountingReader(fh), name, chunker, pin, only_hash, progress, timeout)

    def _add(
        self,
        reader: CountingReader,
        name: str,
        chunker: str,
        pin: bool,
        only_hash: bool,
        progress: ProgressCallback | None,
        timeout: float | None,
    ) -> AddResult:
        params: Params = [
            ("cid-version", 1),
            ("raw-leaves", True),
            ("hash", "sha2-256"),
            ("chunker", chunker),
            ("max-file-links", _MAX_FILE_LINKS),
            ("trickle", False),
            ("inline", False),
            ("pin", pin),
            ("only-hash", only_hash),
            ("wrap-with-directory", False),
            ("progress", True),
            ("quiet", False),
            ("silent", False),
            ("fast-provide-root", False),
        ]
        upload = _ProgressReader(reader, progress)
        last: dict[str, Any] | None = None
        kubo_bytes = 0
        with self._rpc.stream(
            "add", params, files=[file_part(upload, name)], timeout=timeout
        ) as answer:
            for event in answer.iter_json():
                if "Hash" in event:
                    last = event
                else:
                    kubo_bytes = max(kubo_bytes, int_field("add", event, "Bytes", default=0))
        if last is None:
            raise KuboStreamError(
                f"kubo add: the answer ended without the root CID after {kubo_bytes} bytes",
                hint="the daemon may have failed mid-way; see its log",
            )
        if reader.consumed != kubo_bytes:
            raise KuboStreamError(
                f"kubo add: Kubo confirmed {kubo_bytes} bytes, {reader.consumed} were sent"
            )
        return AddResult(
            cid=cid_field("add", last, "Hash"),
            name=str(last.get("Name", "")),
            size=reader.consumed,
            dag_size=int_field("add", last, "Size", default=0),
        )

    def cat(
        self,
        cid: CID,
        *,
        offset: int = 0,
        length: int | None = None,
        expected_size: int | None = None,
        offline: bool = False,
        chunk_size: int | None = None,
    ) -> Iterator[bytes]:
        """Stream a UnixFS file's bytes (from ``offset``, at most ``length`` of them).

        ``chunk_size`` gathers the stream into pieces of that many bytes (the
        last may be shorter); without it pieces are as they come off the wire
        (often 4 KiB), which costs a consumer a call per few kilobytes.

        The byte count is checked against Kubo's announced length and against
        ``expected_size`` (the bytes this range should yield) when given; a
        short stream raises ``KuboStreamError`` after the last chunk arrived.
        """
        if offset < 0 or (length is not None and length < 0):
            raise ValueError(f"offset and length must not be negative ({offset}, {length})")
        params: list[Param] = [
            ("arg", str(cid)),
            ("offset", offset),
            ("progress", False),
            ("offline", offline),
        ]
        if length is not None:
            params.append(("length", length))
        with self._rpc.stream("cat", params) as answer:
            announced = answer.headers.get("X-Content-Length")
            want = expected_size
            if announced is not None and announced.isdigit():
                if want is not None and int(announced) != want:
                    raise KuboStreamError(
                        f"kubo cat {cid}: Kubo announces {announced} bytes, expected {want}"
                    )
                want = int(announced)
            if want is None:
                want = self._cat_size(cid, offset, length)
            got = 0
            for chunk in answer.iter_bytes(chunk_size=chunk_size):
                got += len(chunk)
                if got > want:
                    raise KuboStreamError(f"kubo cat {cid}: more than the {want} bytes expected")
                yield chunk
            if got != want:
                raise KuboStreamError(
                    f"kubo cat {cid}: the stream ended after {got} of {want} bytes",
                    hint="the daemon may have stopped or lost the data; try again",
                )

    def cat_bytes(self, cid: CID, **kwargs: Any) -> bytes:
        """The whole (checked) result of :meth:`cat`, for small files."""
        return b"".join(self.cat(cid, **kwargs))

    def _cat_size(self, cid: CID, offset: int, length: int | None) -> int:
        size = max(self.files_stat(cid).size - offset, 0)
        return size if length is None else min(size, length)

    def files_stat(self, cid: CID) -> FileStat:
        obj = self._rpc.call_json("files/stat", [("arg", f"/ipfs/{cid}"), ("with-local", False)])
        return FileStat(
            cid=cid_field("files/stat", obj, "Hash"),
            size=int_field("files/stat", obj, "Size"),
            cumulative_size=int_field("files/stat", obj, "CumulativeSize"),
            blocks=int_field("files/stat", obj, "Blocks", default=0),
            type=string_field("files/stat", obj, "Type"),
        )

    # -- blocks -------------------------------------------------------------

    def block_put(self, data: bytes, *, codec: int = RAW, pin: bool = False) -> CID:
        """Store one block verbatim; returns the CID Kubo computed."""
        return self.block_put_many([data], codec=codec, pin=pin)[0]

    def block_put_many(
        self, blocks: Iterable[bytes], *, codec: int = RAW, pin: bool = False
    ) -> list[CID]:
        """Store blocks of one codec in few requests; CIDs come back in the same order."""
        out: list[CID] = []
        batch: list[bytes] = []
        size = 0
        for data in blocks:
            batch.append(data)
            size += len(data)
            if len(batch) >= _BATCH_BLOCKS or size >= _BATCH_BYTES:
                out.extend(self._block_put_batch(batch, codec, pin))
                batch, size = [], 0
        if batch:
            out.extend(self._block_put_batch(batch, codec, pin))
        return out

    def _block_put_batch(self, batch: Sequence[bytes], codec: int, pin: bool) -> list[CID]:
        params: Params = [
            ("cid-codec", _codec_name(codec)),
            ("mhtype", "sha2-256"),
            ("mhlen", -1),
            ("pin", pin),
            ("allow-big-block", False),
        ]
        parts = [file_part(data, "block") for data in batch]
        with self._rpc.stream("block/put", params, files=parts) as answer:
            cids = [cid_field("block/put", event, "Key") for event in answer.iter_json()]
        if len(cids) != len(batch):
            raise KuboStreamError(
                f"kubo block/put: Kubo stored {len(cids)} of {len(batch)} blocks",
                hint="the daemon may have failed mid-way; see its log",
            )
        return cids

    def block_get(
        self, cid: CID, *, offline: bool = False, timeout: timedelta | None = None
    ) -> bytes:
        """The block's bytes as Kubo has them (not verified here; the block store does)."""
        params: list[Param] = [("arg", str(cid)), ("offline", offline)]
        if timeout is not None:
            params.append(("timeout", go_duration(timeout)))
        return self._rpc.call("block/get", params)

    def block_stat(self, cid: CID, *, offline: bool = False) -> BlockStat:
        obj = self._rpc.call_json("block/stat", [("arg", str(cid)), ("offline", offline)])
        return BlockStat(
            cid=cid_field("block/stat", obj, "Key"), size=int_field("block/stat", obj, "Size")
        )

    def block_rm(self, cids: Sequence[CID], *, force: bool = False) -> None:
        """Delete blocks from the local repo (pinned blocks are refused by Kubo)."""
        params: list[Param] = [*args(cids), ("force", force), ("quiet", False)]
        with self._rpc.stream("block/rm", params) as answer:
            for event in answer.iter_json():
                error = event.get("Error")
                if error:
                    raise KuboCommandError("block/rm", str(error))


class _ProgressReader:
    """Reports upload progress as httpx pulls bytes for the request body."""

    def __init__(self, inner: CountingReader, callback: ProgressCallback | None) -> None:
        self._inner = inner
        self._callback = callback

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        if self._callback is not None and data:
            self._callback(self._inner.consumed)
        return data
