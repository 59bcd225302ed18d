"""What the Kubo client hands back: small frozen records, one per kind of answer.

Kubo's wire names (``Hash``, ``CumulativeSize``, ``Id``…) are mapped to these
records in ``client.py`` and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ipfsbin.codec.cid import CID

__all__ = [
    "AddResult",
    "BlockStat",
    "DagImportResult",
    "DagStat",
    "FileStat",
    "KeyInfo",
    "KuboVersion",
    "NameEntry",
    "NodeIdentity",
    "Pin",
    "PinType",
    "RepoStat",
    "SwarmPeer",
]

PinType = Literal["direct", "indirect", "recursive"]


def _non_negative(name: str, value: int) -> None:
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")


@dataclass(frozen=True, kw_only=True, slots=True)
class AddResult:
    """A file added with ``add``: its root CID, the bytes read and the DAG's total size."""

    cid: CID
    name: str
    size: int
    dag_size: int

    def __post_init__(self) -> None:
        _non_negative("size", self.size)
        _non_negative("dag_size", self.dag_size)


@dataclass(frozen=True, kw_only=True, slots=True)
class BlockStat:
    cid: CID
    size: int

    def __post_init__(self) -> None:
        _non_negative("size", self.size)


@dataclass(frozen=True, kw_only=True, slots=True)
class FileStat:
    """A UnixFS node (``files/stat``): ``size`` is the file's bytes, ``blocks`` its children."""

    cid: CID
    size: int
    cumulative_size: int
    blocks: int
    type: str

    def __post_init__(self) -> None:
        _non_negative("size", self.size)
        _non_negative("cumulative_size", self.cumulative_size)


@dataclass(frozen=True, kw_only=True, slots=True)
class DagStat:
    """A whole DAG below ``cid``: total bytes of its blocks and how many there are."""

    cid: CID
    size: int
    num_blocks: int

    def __post_init__(self) -> None:
        _non_negative("size", self.size)
        _non_negative("num_blocks", self.num_blocks)


@dataclass(frozen=True, kw_only=True, slots=True)
class DagImportResult:
    """A CAR imported with ``dag/import``: the roots pinned, and the blocks read."""

    roots: tuple[CID, ...]
    blocks: int
    bytes: int

    def __post_init__(self) -> None:
        _non_negative("blocks", self.blocks)
        _non_negative("bytes", self.bytes)


@dataclass(frozen=True, kw_only=True, slots=True)
class Pin:
    cid: CID
    type: PinType
    name: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class NameEntry:
    """An IPNS name and the path it now points to (``name/publish``)."""

    name: str
    value: str


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyInfo:
    """A key in the node's keystore; ``id`` is its IPNS name (base36 ``k51…``)."""

    name: str
    id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class SwarmPeer:
    peer_id: str
    addr: str


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeIdentity:
    peer_id: str
    public_key: str
    addresses: tuple[str, ...]
    agent_version: str
    protocols: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class KuboVersion:
    version: str
    commit: str
    repo: str
    system: str
    golang: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RepoStat:
    repo_size: int
    storage_max: int
    num_objects: int
    repo_path: str
    version: str

    def __post_init__(self) -> None:
        _non_negative("repo_size", self.repo_size)
        _non_negative("num_objects", self.num_objects)
