"""Providers and the daemon's own configuration: what ``doctor`` and ``weather`` ask Kubo."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

import httpx

from ipfsbin.codec.cid import CID
from ipfsbin.errors import KuboError
from ipfsbin.kubo._rpc import Param, Rpc, go_duration

__all__ = ["NetworkCommands"]

_PROVIDER_EVENT: Final = 4  # routing.Provider in go-libp2p's QueryEventType


class NetworkCommands:
    """``routing/findprovs`` and ``config/show``; mixed into ``KuboClient``."""

    _rpc: Rpc

    def routing_findprovs(
        self,
        cid: CID,
        *,
        num_providers: int = 20,
        timeout: timedelta = timedelta(seconds=10),
    ) -> tuple[str, ...]:
        """Peer IDs the routing system names as providers of ``cid``, found within ``timeout``.

        A search that runs out of time returns what it found so far: providers
        are a count here, never a condition for fetching.
        """
        params: list[Param] = [
            ("arg", str(cid)),
            ("num-providers", num_providers),
            ("timeout", go_duration(timeout)),
            ("verbose", False),
        ]
        http_timeout = httpx.Timeout(timeout.total_seconds() + 5.0, connect=5.0)
        found: dict[str, None] = {}
        try:
            with self._rpc.stream("routing/findprovs", params, timeout=http_timeout) as answer:
                for event in answer.iter_json():
                    if event.get("Type") != _PROVIDER_EVENT:
                        continue
                    for response in event.get("Responses") or ():
                        peer = response.get("ID") if isinstance(response, dict) else None
                        if isinstance(peer, str) and peer:
                            found[peer] = None
        except KuboError:
            if not found:
                raise
        return tuple(found)

    def config_show(self) -> dict[str, Any]:
        """The daemon's whole configuration (``ipfs config show``; private key removed by Kubo)."""
        return self._rpc.call_json("config/show")
