"""``pin/remote/*``: Kubo as a client of a Pinning Service API; mixed into ``KuboClient``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ipfsbin.kubo._rpc import Param, Rpc, args

__all__ = ["RemotePin", "RemotePinningCommands"]

_ALL_STATUSES = ("queued", "pinning", "pinned", "failed")


@dataclass(frozen=True)
class RemotePin:
    """A pin on a remote service as Kubo lists it."""

    cid: str
    name: str
    status: str


class RemotePinningCommands:
    _rpc: Rpc

    def pin_remote_service_add(self, service: str, endpoint: str, key: str) -> None:
        """Register the Pinning Service API at ``endpoint`` as ``service``, token ``key``."""
        self._rpc.call("pin/remote/service/add", args([service, endpoint, key]))

    def pin_remote_service_names(self) -> tuple[str, ...]:
        obj = self._rpc.call_json("pin/remote/service/ls", [("stat", False)])
        return tuple(str(s["Service"]) for s in obj.get("RemoteServices") or ())

    def pin_remote_add(self, cid: str, *, service: str, name: str) -> None:
        """Ask ``service`` to pin ``cid``; returns once the request is queued (background)."""
        params: list[Param] = [*args([cid]), ("service", service), ("name", name)]
        params.append(("background", True))
        self._rpc.call_json("pin/remote/add", params)

    def pin_remote_ls(
        self, *, service: str, name: str | None = None, cids: Sequence[str] = ()
    ) -> list[RemotePin]:
        """Pins on ``service`` in any status, filtered by exact name or by CIDs."""
        params: list[Param] = [("service", service)]
        params += [("status", s) for s in _ALL_STATUSES]
        if name is not None:
            params.append(("name", name))
        params += [("cid", c) for c in cids]
        with self._rpc.stream("pin/remote/ls", params) as answer:
            return [
                RemotePin(cid=str(o["Cid"]), name=str(o.get("Name") or ""), status=str(o["Status"]))
                for o in answer.iter_json()
            ]

    def pin_remote_rm(self, cids: Sequence[str], *, service: str) -> None:
        """Remove every pin of these CIDs on ``service`` (``force``: several per CID are fine)."""
        params: list[Param] = [("service", service), ("force", True)]
        params += [("cid", c) for c in cids]
        params += [("status", s) for s in _ALL_STATUSES]
        self._rpc.call("pin/remote/rm", params)
