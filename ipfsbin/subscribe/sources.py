"""Where IPNS records come from: Kubo's DHT or a trustless gateway (not yet verified)."""

from __future__ import annotations

from datetime import timedelta
from typing import Final, Protocol

import httpx

from ipfsbin.ipns.name import canonical_name, ipns_path
from ipfsbin.ipns.record import MAX_RECORD_SIZE
from ipfsbin.kubo.client import KuboClient
from ipfsbin.store.gateway import gateway_get

__all__ = ["GatewayRecordSource", "KuboRecordSource", "RecordSource"]

_RECORD_TYPE: Final = "application/vnd.ipfs.ipns-record"


class RecordSource(Protocol):
    """Where IPNS records come from; returns the raw record bytes (not yet verified)."""

    def fetch_record(self, name: str) -> bytes: ...


class KuboRecordSource:
    """Records from the DHT through Kubo's ``routing/get`` (Kubo returns the best one it saw)."""

    def __init__(self, client: KuboClient, *, timeout: timedelta = timedelta(seconds=30)) -> None:
        self.client = client
        self.timeout = timeout

    def fetch_record(self, name: str) -> bytes:
        return self.client.routing_get(ipns_path(name), timeout=self.timeout)


class GatewayRecordSource:
    def __init__(self, http: httpx.Client, url: str) -> None:
        self.http = http
        self.url = url.rstrip("/")

    def fetch_record(self, name: str) -> bytes:
        target = f"{self.url}/ipns/{canonical_name(name)}?format=ipns-record"
        return gateway_get(self.http, target, _RECORD_TYPE, MAX_RECORD_SIZE)
