"""Blocks read straight from a local Kubo repo's ``flatfs`` block store (one file per block).

Kubo keeps each block in ``<repo>/blocks/<shard>/<key>.data``, where
``key`` is the block's multihash in RFC 4648 base32 (upper case, no
padding) and, for the ``/repo/flatfs/shard/v1/next-to-last/2`` sharding
the repo names in ``blocks/SHARDING`` (Kubo's default), ``shard`` is the
two characters before the key's last (go-ds-flatfs). Kubo writes a block
to a temporary file and renames it into place, so a file that exists is
whole. Reading these files costs one copy from the page cache and no
round trip through the daemon; it is for the serving user's own node.

Nothing read here is trusted more than what Kubo sends: the caller checks
the bytes (the shim against the manifest's sha256). A repo with another
datastore or sharding is not read (:meth:`FlatfsBlocks.open` gives None).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Final

from ipfsbin.codec.cid import CID
from ipfsbin.errors import BlockNotFoundError

__all__ = ["SHARDING", "FlatfsBlocks"]

SHARDING: Final = "/repo/flatfs/shard/v1/next-to-last/2"


class FlatfsBlocks:
    """The block files under one repo's ``blocks`` directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._prefix = f"{root}{os.sep}"

    @classmethod
    def open(cls, repo: Path) -> FlatfsBlocks | None:
        """The repo's block files; None when it keeps blocks another way or is unreadable."""
        try:
            sharding = (repo / "blocks" / "SHARDING").read_text().strip()
        except OSError:
            return None
        return cls(repo / "blocks") if sharding == SHARDING else None

    def path(self, cid: CID) -> str:
        # a string, not a Path: pathlib's joins cost more than reading a small block
        key = base64.b32encode(cid.multihash).decode().rstrip("=")
        return f"{self._prefix}{key[-3:-1]}{os.sep}{key}.data"

    def read(self, cid: CID) -> bytes:
        """The block's bytes; :class:`BlockNotFoundError` when this repo does not hold it."""
        try:
            with open(self.path(cid), "rb") as block:
                return block.read()
        except FileNotFoundError as exc:
            raise BlockNotFoundError(
                f"block {cid} is not in the repo at {self.root.parent}"
            ) from exc
