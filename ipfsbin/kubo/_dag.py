"""DAG walks and CAR files: the part of the Kubo client that moves whole trees."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import IO, Any

from ipfsbin.codec.cid import CID
from ipfsbin.errors import KuboCommandError, KuboStreamError
from ipfsbin.kubo._rpc import (
    IterReader,
    Param,
    Params,
    Rpc,
    cid_field,
    file_part,
    go_duration,
    int_field,
    string_field,
)
from ipfsbin.kubo.records import DagImportResult, DagStat

__all__ = ["DagCommands"]


class DagCommands:
    """``refs`` and ``dag/*``; mixed into ``KuboClient``."""

    _rpc: Rpc

    def refs(
        self,
        cids: CID | Sequence[CID],
        *,
        max_depth: int,
        offline: bool = False,
        timeout: timedelta | None = None,
    ) -> Iterator[CID]:
        """The CIDs under ``cids`` down to ``max_depth`` levels, each once, each printed once
        Kubo has fetched it; it opens only those above the bound."""
        if max_depth < 1:
            raise ValueError(f"max_depth must be at least 1, got {max_depth}")
        tops = [cids] if isinstance(cids, CID) else list(cids)
        params: list[Param] = [
            *(("arg", str(c)) for c in tops),
            ("recursive", True),
            ("unique", True),
            ("max-depth", max_depth),
            ("edges", False),
            ("format", "<dst>"),
            ("offline", offline),
        ]
        if timeout is not None:
            params.append(("timeout", go_duration(timeout)))
        with self._rpc.stream("refs", params, timeout=None) as answer:
            for event in answer.iter_json():
                error = event.get("Err")
                if error:
                    raise KuboCommandError("refs", str(error))
                yield CID.from_text(string_field("refs", event, "Ref"))

    def refs_local(self) -> set[bytes]:
        """The multihash of every block in the local repo (Kubo keys blocks by multihash)."""
        found: set[bytes] = set()
        with self._rpc.stream("refs/local", [], timeout=None) as answer:
            for event in answer.iter_json():
                error = event.get("Err")
                if error:
                    raise KuboCommandError("refs/local", str(error))
                found.add(CID.from_text(string_field("refs/local", event, "Ref")).multihash)
        return found

    def dag_import(
        self,
        car: bytes | IO[bytes] | Iterable[bytes],
        *,
        pin_roots: bool = True,
        expected_roots: Sequence[CID] | None = None,
        timeout: float | None = None,
    ) -> DagImportResult:
        """Import a CAR (bytes, file object or chunks); with ``pin_roots`` its roots are pinned.

        Every root must be reported pinned without error, and ``expected_roots``
        (if given) must all be among them.
        """
        if isinstance(car, bytes):
            body: Any = car
        elif hasattr(car, "read"):
            body = car
        else:
            body = IterReader(car)
        params: Params = [
            ("pin-roots", pin_roots),
            ("stats", True),
            ("silent", False),
            ("allow-big-block", False),
            ("fast-provide-root", False),
        ]
        roots: list[CID] = []
        stats: dict[str, Any] | None = None
        with self._rpc.stream(
            "dag/import", params, files=[file_part(body, "import.car")], timeout=timeout
        ) as answer:
            for event in answer.iter_json():
                root = event.get("Root")
                if isinstance(root, dict):
                    cid = cid_field("dag/import", root, "Cid")
                    if root.get("PinErrorMsg"):
                        raise KuboCommandError(
                            "dag/import", f"pinning root {cid} failed: {root['PinErrorMsg']}"
                        )
                    roots.append(cid)
                if isinstance(event.get("Stats"), dict):
                    stats = event["Stats"]
        if stats is None:
            raise KuboStreamError(
                "kubo dag/import: the answer ended before the import statistics",
                hint="the daemon may have failed mid-way; see its log",
            )
        if pin_roots and expected_roots is not None:
            missing = [str(c) for c in expected_roots if c not in roots]
            if missing:
                raise KuboStreamError(
                    f"kubo dag/import: roots {', '.join(missing)} were not reported pinned; "
                    f"Kubo pinned {', '.join(map(str, roots)) or 'none'}"
                )
        return DagImportResult(
            roots=tuple(roots),
            blocks=int_field("dag/import", stats, "BlockCount", default=0),
            bytes=int_field("dag/import", stats, "BlockBytesCount", default=0),
        )

    def dag_export(self, cid: CID, *, offline: bool = False) -> Iterator[bytes]:
        """Stream the DAG below ``cid`` as a CARv1.

        Kubo cannot tell us when an export fails after it began (the error goes
        into a dropped HTTP trailer): the reader must check that every linked
        block arrived.
        """
        params: list[Param] = [("arg", str(cid)), ("progress", False), ("offline", offline)]
        with self._rpc.stream("dag/export", params) as answer:
            yield from answer.iter_bytes()

    def dag_stat(self, cid: CID, *, offline: bool = False) -> DagStat:
        params: list[Param] = [("arg", str(cid)), ("progress", False), ("offline", offline)]
        with self._rpc.stream("dag/stat", params) as answer:
            last: dict[str, Any] | None = None
            for event in answer.iter_json():
                last = event
        stats = (last or {}).get("DagStats")
        if not isinstance(stats, list) or not stats or not isinstance(stats[0], dict):
            raise KuboStreamError(f"kubo dag/stat {cid}: the answer ended without statistics")
        entry = stats[0]
        return DagStat(
            cid=cid_field("dag/stat", entry, "Cid"),
            size=int_field("dag/stat", entry, "Size", default=0),
            num_blocks=int_field("dag/stat", entry, "NumBlocks", default=0),
        )
