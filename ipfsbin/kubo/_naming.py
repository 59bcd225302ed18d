"""IPNS names, routing values and keys: the part of the Kubo client that speaks IPNS."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import timedelta
from typing import Final

import httpx

from ipfsbin.codec.cid import CID
from ipfsbin.errors import KuboStreamError
from ipfsbin.kubo._rpc import Param, Rpc, args, file_part, go_duration, string_field
from ipfsbin.kubo.records import KeyInfo, NameEntry

__all__ = ["NamingCommands"]

_ROUTING_VALUE_EVENT: Final = 5  # routing.Value in go-libp2p's QueryEventType


class NamingCommands:
    """``name/*``, ``routing/*`` and ``key/*``; mixed into ``KuboClient``."""

    _rpc: Rpc

    def name_publish(
        self,
        path: CID | str,
        *,
        key: str = "self",
        lifetime: timedelta = timedelta(hours=48),
        ttl: timedelta = timedelta(minutes=5),
        sequence: int | None = None,
        allow_offline: bool = False,
        resolve: bool = False,
    ) -> NameEntry:
        """Publish ``/ipfs/<cid>`` (or a path) under the key ``key``."""
        target = f"/ipfs/{path}" if isinstance(path, CID) else path
        params: list[Param] = [
            ("arg", target),
            ("key", key),
            ("lifetime", go_duration(lifetime)),
            ("ttl", go_duration(ttl)),
            ("resolve", resolve),
            ("allow-offline", allow_offline),
            # V1 signs undomained bytes with the key; Kubo verifies V2 only (schema/ipns.md)
            ("v1compat", False),
            ("quieter", False),
            ("ipns-base", "base36"),
        ]
        if sequence is not None:
            params.append(("sequence", sequence))
        obj = self._rpc.call_json("name/publish", params)
        return NameEntry(
            name=string_field("name/publish", obj, "Name"),
            value=string_field("name/publish", obj, "Value"),
        )

    def name_resolve(
        self,
        name: str,
        *,
        recursive: bool = True,
        nocache: bool = False,
        dht_timeout: timedelta = timedelta(seconds=30),
        dht_record_count: int = 16,
        offline: bool = False,
    ) -> str:
        """The path an IPNS name points to now (``/ipfs/<cid>...``)."""
        target = name if name.startswith("/ipns/") else f"/ipns/{name}"
        params: list[Param] = [
            ("arg", target),
            ("recursive", recursive),
            ("nocache", nocache),
            ("dht-timeout", go_duration(dht_timeout)),
            ("dht-record-count", dht_record_count),
            ("stream", False),
            ("offline", offline),
        ]
        http_timeout = httpx.Timeout(dht_timeout.total_seconds() + 30.0, connect=5.0)
        obj = self._rpc.call_json("name/resolve", params, timeout=http_timeout)
        return string_field("name/resolve", obj, "Path")

    def routing_get(self, key: str, *, timeout: timedelta = timedelta(seconds=60)) -> bytes:
        """The best value for a routing key such as ``/ipns/k51…`` (a raw IPNS record)."""
        params: list[Param] = [("arg", key), ("timeout", go_duration(timeout))]
        http_timeout = httpx.Timeout(timeout.total_seconds() + 10.0, connect=5.0)
        with self._rpc.stream("routing/get", params, timeout=http_timeout) as answer:
            for event in answer.iter_json():
                if event.get("Type") == _ROUTING_VALUE_EVENT and isinstance(
                    event.get("Extra"), str
                ):
                    try:
                        return base64.b64decode(event["Extra"], validate=True)
                    except ValueError as exc:
                        raise KuboStreamError(
                            f"kubo routing/get {key}: the value is not base64 ({exc})"
                        ) from exc
        raise KuboStreamError(f"kubo routing/get {key}: the answer ended without a value")

    def routing_put(
        self,
        key: str,
        value: bytes,
        *,
        allow_offline: bool = False,
        timeout: timedelta = timedelta(seconds=60),
    ) -> None:
        """Store a routing value (a signed IPNS record under ``/ipns/<name>``)."""
        params: list[Param] = [
            ("arg", key),
            ("allow-offline", allow_offline),
            ("timeout", go_duration(timeout)),
        ]
        http_timeout = httpx.Timeout(timeout.total_seconds() + 10.0, connect=5.0)
        with self._rpc.stream(
            "routing/put", params, files=[file_part(value, "record")], timeout=http_timeout
        ) as answer:
            events = list(answer.iter_json())
        if not any(e.get("Type") == _ROUTING_VALUE_EVENT for e in events):
            raise KuboStreamError(f"kubo routing/put {key}: the answer ended without confirmation")

    def key_import(self, name: str, pem: bytes, *, allow_any_key_type: bool = False) -> KeyInfo:
        """Import a PKCS#8 PEM private key (ed25519) under ``name``."""
        params: list[Param] = [
            ("arg", name),
            ("format", "pem-pkcs8-cleartext"),
            ("allow-any-key-type", allow_any_key_type),
            ("ipns-base", "base36"),
        ]
        obj = self._rpc.call_json("key/import", params, files=[file_part(pem, "key.pem")])
        return KeyInfo(
            name=string_field("key/import", obj, "Name"), id=string_field("key/import", obj, "Id")
        )

    def key_list(self) -> tuple[KeyInfo, ...]:
        obj = self._rpc.call_json("key/list", [("l", False), ("ipns-base", "base36")])
        return tuple(
            KeyInfo(name=string_field("key/list", k, "Name"), id=string_field("key/list", k, "Id"))
            for k in obj.get("Keys") or ()
        )

    def key_rm(self, names: Sequence[str]) -> None:
        self._rpc.call_json("key/rm", [*args(names), ("l", False), ("ipns-base", "base36")])
