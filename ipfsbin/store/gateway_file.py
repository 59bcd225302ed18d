"""A UnixFS file's bytes from a trustless gateway, each block checked against its CID first.

One request per file (the trustless gateway specification, ``schema/binhost.md``)::

    GET {url}/ipfs/{cid}?format=car&dag-scope=entity&car-version=1&car-order=dfs&car-dups=y
    Accept: application/vnd.ipld.car; version=1; order=dfs; dups=y

When the answer's ``Content-Type`` says ``order=dfs`` and ``dups=y``, its
blocks arrive in exactly the order a depth-first walk of the file needs
them, repeats included. So each block read from the CAR must be the next
one the walk wants (its bytes hashed against that CID by the CAR reader),
and it is dropped once its bytes are passed on: memory stays at one block
and the walk's list of pending CIDs. A gateway that answers without those
two parameters (an older or another implementation) is read block by block
instead (``?format=raw``, one request per block, each checked).

A wrong block, a block out of order, a CAR that ends before the file does,
or a gateway that drips bytes below the minimum rate
(:mod:`ipfsbin.kubo.netlimits`) raise before a byte of the offending block
is given out. Errors: :class:`~ipfsbin.errors.BlockMismatchError` for bytes
that do not hash to the CID the walk wants, :class:`~ipfsbin.errors.CodecError`
for a malformed or short answer, :class:`~ipfsbin.errors.StoreError` when
the gateway refuses or the transfer fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

import httpx

from ipfsbin.codec.car import MAX_BLOCK_BYTES, iter_car
from ipfsbin.codec.cid import CID, IDENTITY, RAW
from ipfsbin.codec.unixfs import decode_file_node
from ipfsbin.errors import BlockMismatchError, CodecError, StoreError
from ipfsbin.kubo.netlimits import TransferLimits
from ipfsbin.store.gateway import RAW_TYPE, gateway_get

__all__ = [
    "CAR_ACCEPT",
    "FILE_LIMITS",
    "GatewayFileSource",
    "car_url",
    "file_parts",
    "walk_file",
]

CAR_ACCEPT: Final = "application/vnd.ipld.car; version=1; order=dfs; dups=y"
FILE_LIMITS: Final = TransferLimits(deadline=None, min_rate=64 * 1024, grace=10.0)
"""A whole binpkg may take long; a gateway slower than 64 KiB/s on average is cut off."""
_HINT: Final = (
    "the gateway did not serve this file faithfully or in time; try again, or use another "
    "gateway (or a local Kubo node)"
)


def car_url(base: str, cid: CID) -> str:
    """The request for the whole file under ``cid`` as a CAR in walk order."""
    return f"{base}/ipfs/{cid}?format=car&dag-scope=entity&car-version=1&car-order=dfs&car-dups=y"


def _car_params(content_type: str | None) -> dict[str, str]:
    """``application/vnd.ipld.car; version=1; order=dfs`` → {"version": "1", "order": "dfs"}."""
    if content_type is None:
        return {}
    kind, *params = (p.strip() for p in content_type.split(";"))
    if kind.lower() != "application/vnd.ipld.car":
        return {}
    found = {}
    for param in params:
        key, _, value = param.partition("=")
        found[key.strip().lower()] = value.strip().strip('"').lower()
    return found


def file_parts(root: CID, block: Callable[[CID], bytes]) -> Iterator[bytes | CID]:
    """The UnixFS file ``root`` in order: bytes its dag-pb nodes carry, and its raw leaves
    as their CIDs, unread (for a reader that takes them in pieces of its own).

    ``block`` returns the bytes of the dag-pb node it is given. Identity
    CIDs carry their bytes and are never asked for.
    """
    pending = [root]
    while pending:
        cid = pending.pop()
        if cid.codec == RAW and cid.hash_code != IDENTITY:
            yield cid
            continue
        data = cid.digest if cid.hash_code == IDENTITY else block(cid)
        node = decode_file_node(cid, data)
        if node.data:
            yield node.data
        pending.extend(reversed(node.children))


def walk_file(root: CID, block: Callable[[CID], bytes]) -> Iterator[bytes]:
    """The bytes of the UnixFS file ``root``, asking ``block`` for each block in walk order.

    ``block`` returns the bytes of the CID it is given, checked against it.
    Identity CIDs carry their bytes and are never asked for.
    """
    for part in file_parts(root, block):
        data = part if isinstance(part, bytes) else block(part)
        if data:
            yield data


class GatewayFileSource:
    """Binpkg bytes from a trustless gateway (the daemon-less binhost's byte source)."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self.http = http
        self.url = url.rstrip("/")
        self.car_requests = 0
        self.block_requests = 0

    def chunks(self, cid: CID, size: int) -> Iterator[bytes]:
        """The file's bytes, one UnixFS leaf at a time (``size`` is checked by the caller)."""
        try:
            yield from self._chunks(cid)
        except httpx.HTTPError as exc:
            raise StoreError(
                f"gateway {self.url} failed while sending {cid}: {exc}", hint=_HINT
            ) from exc
        except BlockMismatchError as exc:
            raise BlockMismatchError(
                f"gateway {self.url} lied about {cid}: {exc.message}", hint=_HINT
            ) from exc
        except CodecError as exc:
            raise CodecError(
                f"gateway {self.url} sent a bad answer for {cid}: {exc.message}", hint=_HINT
            ) from exc

    def _chunks(self, cid: CID) -> Iterator[bytes]:
        self.car_requests += 1
        with self.http.stream("GET", car_url(self.url, cid), headers={"Accept": CAR_ACCEPT}) as ans:
            if ans.status_code != 200:
                text = ans.read()[:300].decode("utf-8", "replace").strip()
                raise StoreError(
                    f"gateway {self.url} answered {ans.status_code} for {cid}: {text}",
                    hint=_HINT,
                )
            params = _car_params(ans.headers.get("content-type"))
            if params.get("order") == "dfs" and params.get("dups") == "y":
                yield from _walk_car(cid, ans.iter_bytes())
                return
        yield from walk_file(cid, self._block)

    def _block(self, cid: CID) -> bytes:
        self.block_requests += 1
        data = gateway_get(
            self.http,
            f"{self.url}/ipfs/{cid}?format=raw",
            RAW_TYPE,
            MAX_BLOCK_BYTES,
            error=StoreError,
            hint=_HINT,
        )
        if not cid.verify(data):
            raise BlockMismatchError(f"{len(data)} bytes for {cid} do not hash to it")
        return data


def _walk_car(root: CID, body: Iterator[bytes]) -> Iterator[bytes]:
    _header, sections = iter_car(body)  # the spec: clients ignore the CAR's roots

    def block(cid: CID) -> bytes:
        got = next(sections, None)
        if got is None:
            raise CodecError(f"the CAR ended before block {cid}")
        if got[0] != cid:
            raise BlockMismatchError(f"sent block {got[0]} where the walk needs {cid}")
        return got[1]  # iter_car checked these bytes against got[0]

    yield from walk_file(root, block)
