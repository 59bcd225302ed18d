"""The block store over a Kubo daemon (where the index and descriptors live in production)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Final

from ipfsbin.codec.cid import CID, DAG_CBOR, cid_for
from ipfsbin.errors import BlockMismatchError, BlockNotFoundError, KuboCommandError
from ipfsbin.kubo.client import KuboClient

__all__ = ["KuboBlockStore"]

# Kubo's wording for a block that is not there (offline lookup, or a timed-out fetch).
_NOT_FOUND: Final = ("not found", "could not find", "context deadline exceeded")


class KuboBlockStore:
    """A :class:`~ipfsbin.store.base.BlockStore` over Kubo's ``block/*`` commands.

    ``offline=True`` (the default) answers only from the local repo, so a
    missing block is reported at once; with ``offline=False`` Kubo asks the
    network and gives up after ``fetch_timeout``.
    """

    def __init__(
        self,
        client: KuboClient,
        *,
        offline: bool = True,
        fetch_timeout: timedelta = timedelta(seconds=30),
        pin: bool = False,
    ) -> None:
        self.client = client
        self.offline = offline
        self.fetch_timeout = fetch_timeout
        self.pin = pin

    def get(self, cid: CID) -> bytes:
        try:
            data = self.client.block_get(
                cid, offline=self.offline, timeout=None if self.offline else self.fetch_timeout
            )
        except KuboCommandError as exc:
            if _is_not_found(exc):
                where = "in the local repo" if self.offline else "locally or on the network"
                raise BlockNotFoundError(
                    f"block {cid} is not {where} (kubo: {exc.kubo_message})"
                ) from exc
            raise
        if not cid.verify(data):
            raise BlockMismatchError(
                f"Kubo returned {len(data)} bytes for {cid} that do not hash to it"
            )
        return data

    def put(self, data: bytes, codec: int = DAG_CBOR) -> CID:
        cid = cid_for(codec, data)
        self.put_many([(cid, data)])
        return cid

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Store blocks in batches per codec; every CID Kubo reports must be the one given."""
        pending: dict[int, list[tuple[CID, bytes]]] = {}
        for cid, data in blocks:
            if not cid.verify(data):
                raise BlockMismatchError(f"block bytes do not hash to {cid}")
            group = pending.setdefault(cid.codec, [])
            group.append((cid, data))
            if len(group) >= 256:
                self._flush(cid.codec, group)
                pending[cid.codec] = []
        for codec, group in pending.items():
            if group:
                self._flush(codec, group)

    def _flush(self, codec: int, group: list[tuple[CID, bytes]]) -> None:
        stored = self.client.block_put_many([d for _, d in group], codec=codec, pin=self.pin)
        for (want, _), got in zip(group, stored, strict=True):
            if want.multihash != got.multihash or want.codec != got.codec:
                raise BlockMismatchError(f"Kubo stored a block as {got}, expected {want}")

    def has(self, cid: CID) -> bool:
        try:
            self.client.block_stat(cid, offline=True)
        except KuboCommandError as exc:
            if _is_not_found(exc):
                return False
            raise
        return True


def _is_not_found(exc: KuboCommandError) -> bool:
    message = exc.kubo_message.lower()
    return any(fragment in message for fragment in _NOT_FOUND)
