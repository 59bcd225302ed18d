"""Publishing an index head under its IPNS name, and keeping the record alive.

The record says only "the newest commit is the envelope at this CID";
sequence = the commit's height (``schema/ipns.md``). It is made and signed in
Python and handed to Kubo with ``routing/put``. Kubo 0.39 answers success
even for a record it refused to store, so :func:`publish_head` reads the name
back with ``routing/get`` and verifies that what the network serves is the
record just made.

:func:`republish` is for anyone (a mirror): it re-puts the current best valid
record unchanged, so the name stays resolvable when the publisher is away
(DHT servers drop records after 48 h).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ipfsbin.errors import BlockNotFoundError, IpnsError, KuboError
from ipfsbin.ipns.name import ipns_path
from ipfsbin.ipns.record import (
    DEFAULT_LIFETIME,
    DEFAULT_TTL,
    IpnsRecord,
    create_record,
    verify_record,
)
from ipfsbin.kubo.client import KuboClient
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.trust.commit import SignedCommit
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.root import SignedRoot

__all__ = ["PublishedRecord", "current_record", "publish_head", "republish"]


@dataclass(frozen=True, kw_only=True)
class PublishedRecord:
    """The record now served for ``name``."""

    name: str
    value: str
    sequence: int
    validity: str
    record_bytes: int
    previous_sequence: int | None

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "value": self.value,
            "sequence": self.sequence,
            "validity": self.validity,
            "record_bytes": self.record_bytes,
            "previous_sequence": self.previous_sequence,
        }


def current_record(
    client: KuboClient, name: str, *, timeout: timedelta = timedelta(seconds=30)
) -> IpnsRecord:
    """The best record Kubo finds for ``name``, verified; ``IpnsError`` if none or invalid."""
    try:
        raw = client.routing_get(ipns_path(name), timeout=timeout)
    except KuboError as exc:
        raise IpnsError(
            f"no IPNS record found for {name} ({exc.message})",
            hint="is the node connected to peers that hold the record? "
            "(`ipfs swarm peers`); records vanish 48 h after the last (re)publish",
        ) from exc
    return verify_record(raw, name)


def publish_head(
    client: KuboClient,
    key: SigningKey,
    *,
    head: SignedCommit,
    root: SignedRoot,
    lifetime: timedelta = DEFAULT_LIFETIME,
    ttl: timedelta = DEFAULT_TTL,
    allow_offline: bool = False,
    timeout: timedelta = timedelta(seconds=60),
    now: datetime | None = None,
) -> PublishedRecord:
    """Point the IPNS name of ``key`` at ``head``'s envelope, sequence = its height.

    Refuses a key that is not in ``root``'s publishers role, a head whose
    envelope the local node does not hold (followers could not fetch it), and
    a head below the sequence the network already serves.
    """
    name = key.key_id
    publishers = root.root.publishers
    if name not in publishers:
        raise IpnsError(
            f"key {name} is not in the publishers role of trust root version {root.version} "
            f"(publishers: {', '.join(publishers.keys)})",
            hint="publish with a key the root lists (--key NAME), or rotate the root to add it",
        )
    local = KuboBlockStore(client, offline=True)
    for cid in (head.cid, head.commit_id):
        if not local.has(cid):
            raise BlockNotFoundError(
                f"block {cid} of head commit {head.commit_id} is not in the local Kubo node; "
                "followers could not fetch it",
                hint="store the index's blocks in this node before publishing",
            )
    previous: IpnsRecord | None
    try:
        previous = current_record(client, name, timeout=min(timeout, timedelta(seconds=15)))
    except IpnsError:
        previous = None  # first publish, or nothing valid out there: ours replaces it
    if previous is not None and previous.sequence > head.height:
        raise IpnsError(
            f"the network already serves sequence {previous.sequence} for {name} "
            f"({previous.value}), above this head's height {head.height}",
            hint="publish the newest head of the index",
        )
    raw = create_record(
        key, head.cid, head.height, lifetime=lifetime, ttl=ttl, now=now or datetime.now(UTC)
    )
    client.routing_put(ipns_path(name), raw, allow_offline=allow_offline, timeout=timeout)
    # Kubo says success even when it refused the record: look at what it serves now.
    served = current_record(client, name, timeout=timeout)
    if served.raw != raw:
        raise IpnsError(
            f"Kubo did not keep the new record for {name}: it serves sequence "
            f"{served.sequence} ({served.value}), expected {head.height} (/ipfs/{head.cid})",
            hint="a record with a higher sequence or later validity exists; publish a newer head",
        )
    return PublishedRecord(
        name=name,
        value=served.value,
        sequence=served.sequence,
        validity=served.validity_text,
        record_bytes=len(raw),
        previous_sequence=None if previous is None else previous.sequence,
    )


def republish(
    client: KuboClient,
    name: str,
    *,
    allow_offline: bool = False,
    timeout: timedelta = timedelta(seconds=60),
) -> IpnsRecord:
    """Re-put the best valid record of ``name`` unchanged (anyone may); return it."""
    record = current_record(client, name, timeout=timeout)
    client.routing_put(ipns_path(name), record.raw, allow_offline=allow_offline, timeout=timeout)
    return record
