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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ipfsbin.codec.cid import CID
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
from ipfsbin.trust.rootlist import put_root_list

__all__ = [
    "PublishedRecord",
    "announce_roots",
    "announcing_keys",
    "current_record",
    "publish_head",
    "republish",
]


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
    return _put_record(
        client,
        name,
        raw,
        expected=f"{head.height} (/ipfs/{head.cid})",
        previous=previous,
        allow_offline=allow_offline,
        timeout=timeout,
    )


def _put_record(
    client: KuboClient,
    name: str,
    raw: bytes,
    *,
    expected: str,
    previous: IpnsRecord | None,
    allow_offline: bool,
    timeout: timedelta,
) -> PublishedRecord:
    """``routing/put`` the record, then check Kubo serves exactly it."""
    client.routing_put(ipns_path(name), raw, allow_offline=allow_offline, timeout=timeout)
    # Kubo says success even when it refused the record: look at what it serves now.
    served = current_record(client, name, timeout=timeout)
    if served.raw != raw:
        raise IpnsError(
            f"Kubo did not keep the new record for {name}: it serves sequence "
            f"{served.sequence} ({served.value}), expected {expected}",
            hint="a record with a higher sequence or later validity exists; publish a newer one",
        )
    return PublishedRecord(
        name=name,
        value=served.value,
        sequence=served.sequence,
        validity=served.validity_text,
        record_bytes=len(raw),
        previous_sequence=None if previous is None else previous.sequence,
    )


def announcing_keys(chain: Sequence[SignedRoot]) -> frozenset[str]:
    """Key IDs that announce ``chain`` (``schema/trust.md``): maintainers of the newest
    root or the one before it that are not publishers of the newest (their names carry heads).
    """
    if not chain:
        raise ValueError("no trust root to announce")
    newest = chain[-1].root
    maintainers = set(newest.maintainers.keys)
    if len(chain) > 1:
        maintainers |= set(chain[-2].root.maintainers.keys)
    return frozenset(maintainers - set(newest.publishers.keys))


def announce_roots(
    client: KuboClient,
    key: SigningKey,
    *,
    chain: Sequence[SignedRoot],
    lifetime: timedelta = DEFAULT_LIFETIME,
    ttl: timedelta = DEFAULT_TTL,
    allow_offline: bool = False,
    timeout: timedelta = timedelta(seconds=60),
    now: datetime | None = None,
) -> tuple[CID, PublishedRecord]:
    """Announce the root ``chain`` (version 1 first) under the IPNS name of maintainer ``key``.

    The record points at an ``ipfsbin/roots/1`` block listing the chain's
    envelopes; its sequence is the newest version. Returns the list's CID
    (the caller keeps it pinned) and the record served.
    """
    name = key.key_id
    if name not in announcing_keys(chain):
        raise IpnsError(
            f"key {name} does not announce trust root version {chain[-1].version}: only "
            "maintainers of it (or of the version before) that are not its publishers do",
            hint="announce with a maintainer key; a publisher key's name carries the index head",
        )
    envelopes = [r.cid for r in chain]
    if [r.version for r in chain] != list(range(1, len(chain) + 1)):
        raise ValueError("the chain must hold every root version from 1 on, in order")
    list_cid = put_root_list(KuboBlockStore(client, offline=True), envelopes)
    previous: IpnsRecord | None
    try:
        previous = current_record(client, name, timeout=min(timeout, timedelta(seconds=15)))
    except IpnsError:
        previous = None
    version = chain[-1].version
    if previous is not None and previous.sequence > version:
        raise IpnsError(
            f"the network already serves sequence {previous.sequence} for {name}, above "
            f"trust root version {version}",
            hint="announce the newest trust root",
        )
    raw = create_record(
        key, list_cid, version, lifetime=lifetime, ttl=ttl, now=now or datetime.now(UTC)
    )
    result = _put_record(
        client,
        name,
        raw,
        expected=f"{version} (/ipfs/{list_cid})",
        previous=previous,
        allow_offline=allow_offline,
        timeout=timeout,
    )
    return list_cid, result


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
