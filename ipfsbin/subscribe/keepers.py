"""Keepers: how the blocks of accepted heads are kept, and let go.

Through Kubo they are direct pins; daemon-less, they are rows in the local
block file. Which subscription holds a block is counted in the state, not
here (see :mod:`ipfsbin.subscribe.sync`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

from ipfsbin.codec.cid import CID
from ipfsbin.errors import BlockNotFoundError, KuboCommandError
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.pins import pin_name
from ipfsbin.store.gateway import GatewayBlockStore
from ipfsbin.store.sqlite import SqliteBlockStore

__all__ = ["PIN_NAME", "BlockFileKeeper", "GatewayKeeper", "Keeper", "KuboKeeper"]

PIN_NAME: Final = pin_name("follow")
"""The name of every follower pin: a pin is shared by all subscriptions holding its block."""


class Keeper(Protocol):
    """Keeps the blocks of accepted heads (pins, or a local block file) and lets old ones go.

    A keeper does no counting: :func:`sync_subscription` asks it to release
    only blocks that no subscription holds any more. ``label`` names the
    subscription, for messages.
    """

    def keep(self, cids: Sequence[CID], *, label: str) -> None: ...

    def release(self, cids: Sequence[CID], *, label: str) -> None: ...


class KuboKeeper:
    """Direct pins, one per block, all named :data:`PIN_NAME` (``ipfsbin:follow``).

    Kubo keeps one pin per CID whatever its name, so the name cannot tell
    which subscription holds a block; the state does (``held``).

    Not a recursive pin on the head: index entries link manifests, manifests
    link the packages, and commits link all of history, so a recursive pin
    would download every package of every platform. A follower holds only the
    head's commit, its trust roots and its index nodes.
    """

    _BATCH: Final = 200

    def __init__(self, client: KuboClient) -> None:
        self.client = client

    def keep(self, cids: Sequence[CID], *, label: str) -> None:
        unique = list(dict.fromkeys(cids))
        for start in range(0, len(unique), self._BATCH):
            self.client.pin_add(unique[start : start + self._BATCH], recursive=False, name=PIN_NAME)

    def release(self, cids: Sequence[CID], *, label: str) -> None:
        unique = list(dict.fromkeys(cids))
        for start in range(0, len(unique), self._BATCH):
            batch = unique[start : start + self._BATCH]
            try:
                self.client.pin_rm(batch, recursive=False)
            except KuboCommandError as exc:
                if "not pinned" not in exc.kubo_message:
                    raise
                # Kubo drops the whole batch for one unpinned CID: go one by one
                for cid in batch:
                    self._unpin_one(cid)

    def _unpin_one(self, cid: CID) -> None:
        try:
            self.client.pin_rm([cid], recursive=False)
        except KuboCommandError as exc:
            if "not pinned" not in exc.kubo_message:
                raise


class GatewayKeeper:
    """Keeping is writing the fetched blocks to the local file; releasing is deleting them."""

    def __init__(self, blocks: GatewayBlockStore) -> None:
        self.blocks = blocks

    def keep(self, cids: Sequence[CID], *, label: str) -> None:
        fresh = self.blocks.take(cids)
        self.blocks.local.put_many(fresh)
        missing = [c for c in cids if not self.blocks.local.has(c)]
        if missing:
            raise BlockNotFoundError(
                f"{len(missing)} blocks to keep for {label} were never fetched "
                f"(first: {missing[0]})"
            )

    def release(self, cids: Sequence[CID], *, label: str) -> None:
        self.blocks.local.delete(cids)


class BlockFileKeeper:
    """Releasing from the local block file without a gateway (``ipfsbin unsubscribe``).

    It keeps nothing new: ``keep`` only checks the blocks are in the file.
    """

    def __init__(self, local: SqliteBlockStore) -> None:
        self.local = local

    def keep(self, cids: Sequence[CID], *, label: str) -> None:
        missing = [c for c in cids if not self.local.has(c)]
        if missing:
            raise BlockNotFoundError(
                f"{len(missing)} blocks to keep for {label} are not in {self.local.path} "
                f"(first: {missing[0]})"
            )

    def release(self, cids: Sequence[CID], *, label: str) -> None:
        self.local.delete(cids)
