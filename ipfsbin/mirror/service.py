"""``ipfsbin mirror``: follow indexes and keep them, with their packages, in a pinning engine.

One round: the :class:`~ipfsbin.subscribe.Follower` syncs every subscribed
index (verifying the chain as any client does); for each accepted head the
mirror works out the pins it wants (:mod:`ipfsbin.mirror.plan`), pins what
the engine lacks with the mirror's replication factor and unpins what
fell out (yanked entries, entries outside the policy, index nodes of older
heads); then it re-puts each index's current IPNS record, so that the name
stays resolvable while the publisher is offline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from ipfsbin.errors import IpfsbinError
from ipfsbin.index.entry import IndexEntry
from ipfsbin.ipns.publish import republish
from ipfsbin.kubo.client import KuboClient
from ipfsbin.mirror.engine import EnginePin, PinEngine
from ipfsbin.mirror.plan import (
    MirrorPolicy,
    changes,
    index_pin_prefix,
    kept_entries,
    package_pin_prefix,
    wanted_pins,
)
from ipfsbin.mirror.vote import Vote, count_votes, most_requested
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.subscribe.follower import Follower, require_subscriptions

__all__ = ["Mirror", "MirrorRound"]

_T = TypeVar("_T")


@dataclass(frozen=True, kw_only=True)
class MirrorRound:
    """What one round did for one index."""

    name: str
    outcome: str
    height: int | None
    wanted: int = 0
    pinned: int = 0
    unpinned: int = 0
    republished: int | None = None
    errors: tuple[str, ...] = field(default=())
    most_requested: tuple[Vote, ...] | None = None  # the top N kept, with --most-requested

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "outcome": self.outcome,
            "height": self.height,
            "wanted": self.wanted,
            "pinned": self.pinned,
            "unpinned": self.unpinned,
            "republished_sequence": self.republished,
            "errors": list(self.errors),
            "most_requested": (
                None if self.most_requested is None else [v.to_json() for v in self.most_requested]
            ),
        }


class Mirror:
    """Keeps every index ``follower`` subscribes to in ``engine``, ``replication`` copies each.

    ``kubo`` is the mirror's own daemon: it reads the index for the plan and
    re-puts the IPNS records; the engine's peers fetch the blocks from the
    swarm it belongs to. ``concurrency`` pin (and unpin) requests are in
    flight at once: each is a round trip through the engine's consensus
    (Cluster commits them in batches when its CRDT batching is on, as
    :class:`~ipfsbin.cluster.peer.ClusterPeer` configures it).
    """

    def __init__(
        self,
        follower: Follower,
        engine: PinEngine,
        kubo: KuboClient,
        *,
        replication: int,
        policy: MirrorPolicy | None = None,
        timeout: timedelta = timedelta(seconds=30),
        concurrency: int = 16,
        provider_timeout: timedelta = timedelta(seconds=10),
    ) -> None:
        if replication < 1:
            raise ValueError(f"replication must be at least 1, got {replication}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self.follower = follower
        self.engine = engine
        self.kubo = kubo
        self.replication = replication
        self.policy = policy or MirrorPolicy()
        self.timeout = timeout
        self.provider_timeout = provider_timeout

    def round(self, names: Sequence[str] = ()) -> list[MirrorRound]:
        """Sync, reconcile and republish ``names`` (default: every subscription) once."""
        if not names:
            names = [s.name for s in require_subscriptions(self.follower.state)]
        rounds = []
        for name in names:
            result = self.follower.sync(name)
            rounds.append(self._reconcile(result.name, result.outcome))
        return rounds

    def status(self, names: Sequence[str] = ()) -> dict[str, list[EnginePin]]:
        """Each mirrored index's pins with their status as the engine reports it."""
        if not names:
            names = [s.name for s in require_subscriptions(self.follower.state)]
        return {
            sub.name: self.engine.status(index_pin_prefix(sub.name))
            for sub in (self.follower.state.get(name) for name in names)
        }

    def _settle(self, prefix: str, pinned: set[str], unpinned: set[str], errors: list[str]) -> None:
        """Wait until the engine lists what this round pinned, and no longer what it unpinned.

        An engine may record a request after answering it (Cluster with CRDT
        batching commits a batch within a second): a round ends when its
        changes show, so the next round or ``--status`` sees them. Bounded by
        ``timeout``; what is still missing then is reported as an error.
        """
        if not pinned and not unpinned:
            return
        deadline = time.monotonic() + self.timeout.total_seconds()
        while True:
            listed = self.engine.pinned(prefix).keys()
            missing, left = pinned - listed, unpinned & listed
            if not missing and not left:
                return
            if time.monotonic() >= deadline:
                errors.append(
                    f"the engine does not list {len(missing)} new pins and still lists "
                    f"{len(left)} removed ones after {self.timeout.total_seconds():.0f}s"
                )
                return
            time.sleep(0.5)

    def _reconcile(self, name: str, outcome: str) -> MirrorRound:
        subscription = self.follower.state.get(name)
        if subscription.head is None or subscription.index_root is None:
            return MirrorRound(name=name, outcome=outcome, height=None)
        errors: list[str] = []
        store = KuboBlockStore(self.kubo, offline=False, fetch_timeout=self.timeout)
        entries = kept_entries(subscription.index_root, store, self.policy)
        prefix = index_pin_prefix(name)
        pinned = self.engine.pinned(prefix)
        top = None
        if self.policy.most_requested is not None:
            top, keys = self._vote(name, self.policy.most_requested, store, entries, pinned, errors)
            entries = [(key, entry) for key, entry in entries if key in keys]
        wanted = wanted_pins(name, held=self.follower.state.held(name), entries=entries)
        by_text = {str(cid): pin for cid, pin in wanted.items()}
        to_pin, to_unpin = changes(by_text, pinned, prefix)
        done_pin = _each(
            to_pin,
            lambda pin: self.engine.pin(str(pin.cid), name=pin.name, replication=self.replication),
            errors,
            workers=self.concurrency,
        )
        done_unpin = _each(to_unpin, self.engine.unpin, errors, workers=self.concurrency)
        self._settle(prefix, {str(p.cid) for p in done_pin}, set(done_unpin), errors)
        sequence = None
        try:
            sequence = republish(self.kubo, name, timeout=self.timeout).sequence
        except IpfsbinError as exc:
            errors.append(f"republish: {exc.message}")
        return MirrorRound(
            name=name,
            outcome=outcome,
            height=subscription.height,
            wanted=len(wanted),
            pinned=len(done_pin),
            unpinned=len(done_unpin),
            republished=sequence,
            errors=tuple(errors),
            most_requested=None if top is None else tuple(top),
        )

    def _vote(
        self,
        name: str,
        n: int,
        store: KuboBlockStore,
        entries: list[tuple[str, IndexEntry]],
        pinned: Mapping[str, str],
        errors: list[str],
    ) -> tuple[list[Vote], frozenset[str]]:
        """The top ``n`` of ``entries`` by the usage vote, and the index keys to keep."""
        votes = count_votes(
            self.kubo,
            store,
            entries,
            exclude=self.engine.holders(index_pin_prefix(name)),
            timeout=self.provider_timeout,
            workers=self.concurrency,
        )
        failed = sum(1 for v in votes if v.providers is None)
        if failed:
            errors.append(f"{failed} provider searches failed; packages pinned now keep their pins")
        package = package_pin_prefix(name)
        held = {pin[len(package) :] for pin in pinned.values() if pin.startswith(package)}
        return most_requested(votes, n, held)


def _each(
    items: list[_T], act: Callable[[_T], None], errors: list[str], *, workers: int
) -> list[_T]:
    """Apply ``act`` to each item, ``workers`` at a time; a failure is recorded, the rest go.

    Returns the items ``act`` succeeded for.
    """
    if not items:
        return []

    def attempt(item: _T) -> str | None:
        try:
            act(item)
        except IpfsbinError as exc:
            return exc.message
        return None

    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        failures = list(pool.map(attempt, items))
    errors.extend(f for f in failures if f is not None)
    return [item for item, f in zip(items, failures, strict=True) if f is None]
