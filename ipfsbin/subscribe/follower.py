"""The follower: one object, configured once, that every client-side feature stands on.

Like python-tuf's ``Updater``, a :class:`Follower` is built from a
:class:`FollowConfig` (a Kubo daemon or a trustless gateway, the state file,
the policy) and then answers the client's questions: subscribe, sync, follow,
unsubscribe, and which heads are accepted. The CLI, the binhost shim, GC and
doctor all construct one; none of them assembles record sources, block
stores or keepers itself.

The network is opened on the first sync and closed with the follower;
subscribing, unsubscribing with ``keep_pins`` and reading the state never
touch it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from ipfsbin.codec.cid import CID
from ipfsbin.errors import KuboUnavailableError, SubscriptionError
from ipfsbin.index.scope import EVERYTHING, KeyScope
from ipfsbin.kubo import gclock
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.daemon import connect
from ipfsbin.kubo.pins import PinLedger
from ipfsbin.store.base import BlockStore
from ipfsbin.store.gateway import GatewayBlockStore, gateway_client
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.store.sqlite import SqliteBlockStore, default_block_path
from ipfsbin.subscribe._bulk import refs_bulk
from ipfsbin.subscribe._delta import Bulk
from ipfsbin.subscribe._held import unsubscribe
from ipfsbin.subscribe._replicas import ReplicaPolicy
from ipfsbin.subscribe.keepers import BlockFileKeeper, GatewayKeeper, Keeper, KuboKeeper
from ipfsbin.subscribe.replica import Holding, holding
from ipfsbin.subscribe.sources import GatewayRecordSource, KuboRecordSource, RecordSource
from ipfsbin.subscribe.state import Subscription, SubscriptionStore
from ipfsbin.subscribe.survey import HostScope, PlatformFit
from ipfsbin.subscribe.sync import (
    DEFAULT_SYNC_DEADLINE,
    SyncResult,
    sync_all,
    sync_subscription,
)
from ipfsbin.trust.freshness import Freshness
from ipfsbin.trust.state import RootPin

__all__ = [
    "FollowConfig",
    "Follower",
    "Unsubscribed",
    "follow_forever",
    "require_subscriptions",
]


@dataclass(frozen=True, kw_only=True)
class FollowConfig:
    """How a follower reaches the network, where it keeps its state, and its policy.

    ``gateway`` is a trustless gateway's URL (blocks kept in ``block_path``);
    None follows through the Kubo daemon that ``connect`` finds (the user's
    own through ``IPFSBIN_API``, else the managed node). ``timeout`` bounds
    the wait for one record or one block; ``deadline`` one subscription's
    whole sync (every network read in it; then the next subscription goes
    on). ``allow_stale`` switches off the expiry check of commits and roots
    (freeze-attack protection): only to work offline on purpose.
    ``platforms`` keeps a partial replica: only the index entries of these
    platform ids (and the nodes on the paths to them). Without it, each
    subscription follows its replica policy: ``replica`` for this run, else
    the one given on subscribe, else ``default_replica``. ``"host"`` keeps the
    platforms ``host()``'s fit accepts (learnt from each index,
    :mod:`.survey`); ``"full"`` keeps the whole index (mirrors).
    """

    gateway: str | None = None
    state_path: Path | None = None
    block_path: Path | None = None
    timeout: timedelta = timedelta(seconds=30)
    deadline: timedelta = DEFAULT_SYNC_DEADLINE
    allow_stale: bool = False
    platforms: frozenset[str] | None = None
    replica: ReplicaPolicy | None = None
    default_replica: ReplicaPolicy = "full"
    host: Callable[[], PlatformFit] | None = None
    """Reads this host's fit for platforms (once, when a host-scoped sync needs it)."""
    workers: int = 8
    """Blocks fetched at a time by one sync."""

    @property
    def scope(self) -> KeyScope:
        return EVERYTHING if self.platforms is None else KeyScope.of_platforms(self.platforms)

    def __post_init__(self) -> None:
        if self.timeout <= timedelta(0):
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.deadline <= timedelta(0):
            raise ValueError(f"deadline must be positive, got {self.deadline}")
        if self.gateway is not None and not self.gateway.strip():
            raise ValueError("gateway URL is empty")


@dataclass(frozen=True, kw_only=True)
class Unsubscribed:
    """What :meth:`Follower.unsubscribe` did."""

    name: str
    released: tuple[CID, ...]
    kept_pins: bool
    kubo_skipped: bool
    """True when no Kubo node answered and only the gateway block file was cleaned."""

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "removed": True,
            "released": len(self.released),
            "kept_pins": self.kept_pins,
            "kubo_skipped": self.kubo_skipped,
        }


@dataclass(frozen=True, kw_only=True)
class _Link:
    """The network side of a follower, opened once: where records and blocks come from."""

    records: RecordSource
    local: BlockStore
    fetching: Callable[[], tuple[BlockStore, Keeper]]
    """A block store for one sync and the keeper that keeps what it fetched."""
    close: Callable[[], None]
    bulk: Callable[[], AbstractContextManager[Bulk | None]] = nullcontext
    """What moves whole new subtrees during one sync, if anything does."""


class Follower:
    """Follows the subscribed indexes under one :class:`FollowConfig`.

    ``connect`` gives the Kubo client (default: :func:`ipfsbin.kubo.daemon.connect`);
    pass another to follow through a node you manage. Use it as a context
    manager, or call :meth:`close`. Not shared across threads.
    """

    def __init__(
        self,
        config: FollowConfig | None = None,
        *,
        connect: Callable[[], KuboClient] = connect,
    ) -> None:
        self.config = FollowConfig() if config is None else config
        self._connect = connect
        self.state = SubscriptionStore(self.config.state_path)
        self._link: _Link | None = None
        self._host: HostScope | None = None

    def close(self) -> None:
        try:
            if self._link is not None:
                self._link.close()
                self._link = None
        finally:
            self.state.close()

    def __enter__(self) -> Follower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- subscriptions ------------------------------------------------------

    def subscriptions(self) -> list[Subscription]:
        """Every subscription with its accepted head, as the state has it now."""
        return self.state.all()

    def held_blocks(self) -> BlockStore:
        """The blocks this host keeps for the accepted heads (commits, roots, index nodes).

        Answers from what is kept here and never from the network, so a reader
        of the accepted heads (the binhost's catalog) never waits on a peer.
        """
        return self._open().local

    def freshness(self, name: str, *, now: float | None = None) -> Freshness | None:
        """Is the accepted head of ``name`` still usable (fresh, or stale on purpose)?

        Reads the state only, never the network: the binhost shim asks this
        before offering a head's packages and refuses when ``usable`` is
        false. None while no head (or its expiry) is known.
        """
        return self.state.get(name).freshness(
            now=time.time() if now is None else now, allow_stale=self.config.allow_stale
        )

    def subscribe(
        self,
        name: str,
        *,
        root: CID | None = None,
        root_key: str | None = None,
        replica: ReplicaPolicy | None = None,
    ) -> Subscription:
        """Follow ``name`` under a trust root (its envelope CID) or a maintainer key, or both."""
        if root is None and root_key is None:
            raise SubscriptionError(
                "a subscription needs a trust root (--root CID) or a maintainer key "
                "(--root-key KEYID)",
                hint="--root is the root's envelope CID (`ipfsbin index status` shows it); "
                "with --root-key alone the roots are taken from the commits' envelopes",
            )
        pin = RootPin(key_id=root_key) if root_key is not None else RootPin(cid=root)
        sub = self.state.add(name, pin, root, now=time.time())
        if replica is not None:
            self.state.set_replica_policy(sub.name, replica)
        return sub

    def replica_policy(self, name: str) -> ReplicaPolicy:
        """How much of ``name``'s index this follower keeps (see :class:`FollowConfig`)."""
        return self.config.replica or self.state.replica_policy(name) or self.config.default_replica

    def add_root(self, name: str, root: CID) -> Subscription:
        """Accept ``root`` (the next version's envelope) for ``name`` on its next sync."""
        sub = self.state.get(name)
        self.state.set_roots(sub.name, [*sub.roots, root])
        return self.state.get(sub.name)

    def unsubscribe(self, name: str, *, keep_pins: bool = False) -> Unsubscribed:
        """Forget ``name`` and release the blocks no other subscription holds.

        Releases from the gateway block file when there is one and from Kubo
        when it answers; with neither, raises (``keep_pins`` forgets only).
        """
        keepers: list[Keeper] = []
        closers: list[Callable[[], None]] = []
        local: KuboBlockStore | None = None
        kubo_skipped = False
        try:
            canonical = self.state.get(name).name
            if not keep_pins:
                block_file = self._block_path()
                if block_file.exists():
                    blocks = SqliteBlockStore(block_file)
                    closers.append(blocks.close)
                    keepers.append(BlockFileKeeper(blocks))
                try:
                    client = self._connect()
                except KuboUnavailableError as exc:
                    if not keepers:
                        raise KuboUnavailableError(
                            f"{exc.message}; cannot unpin the blocks of {canonical}",
                            hint="start the node (`ipfsbin node start`), or pass --keep-pins "
                            "to forget the subscription and leave its pins",
                        ) from exc
                    kubo_skipped = True  # a daemon-less follower: only the block file
                else:
                    closers.append(client.close)
                    keepers.append(KuboKeeper(client, self.ledger(client)))
                    local = KuboBlockStore(client, offline=True)
            released = unsubscribe(self.state, canonical, keepers=keepers, local_store=local)
        finally:
            for close in closers:
                close()
        return Unsubscribed(
            name=canonical,
            released=tuple(released),
            kept_pins=keep_pins,
            kubo_skipped=kubo_skipped,
        )

    # --- syncing ------------------------------------------------------------

    def sync(self, name: str) -> SyncResult:
        """Check ``name`` once; never raises for bad data or an unreachable network."""
        link = self._open()
        store, keeper = link.fetching()
        # blocks fetched or rebuilt are unpinned until the head is recorded: no repo GC meanwhile
        with gclock.fetching(), link.bulk() as bulk:
            return sync_subscription(
                self.state,
                name,
                records=link.records,
                store=store,
                keeper=keeper,
                local_store=link.local,
                allow_stale=self.config.allow_stale,
                deadline=self.config.deadline,
                workers=self.config.workers,
                scope=self._scope(name),
                bulk=bulk,
            )

    def _scope(self, name: str) -> KeyScope | HostScope:
        if self.config.platforms is not None or self.replica_policy(name) == "full":
            return self.config.scope
        if self._host is None:
            self._host = HostScope(self.config.host or _no_host)
        return self._host

    def sync_all(self) -> list[SyncResult]:
        """Sync every subscription once; ``SubscriptionError`` when there is none."""
        require_subscriptions(self.state)
        return self._round()

    def follow(
        self,
        on_results: Callable[[list[SyncResult]], None],
        *,
        interval: float,
        stop: threading.Event,
    ) -> int:
        """Sync every ``interval`` seconds until ``stop`` is set; returns the rounds."""
        require_subscriptions(self.state)
        return follow_forever(lambda: on_results(self._round()), interval=interval, stop=stop)

    def _round(self) -> list[SyncResult]:
        self._open()
        return sync_all(self.state, self.sync)

    def holdings(self) -> list[Holding]:
        """How much of each subscription's index is held, and why (without a node: no counts)."""
        try:
            local: BlockStore | None = self._open().local
        except KuboUnavailableError:
            local = None
        return [
            holding(self.state, sub, local, self.replica_policy(sub.name))
            for sub in self.state.all()
        ]

    def _block_path(self) -> Path:
        return default_block_path() if self.config.block_path is None else self.config.block_path

    def _open(self) -> _Link:
        if self._link is None:
            if self.config.gateway is None:
                self._link = self._open_kubo()
            else:
                self._link = self._open_gateway(self.config.gateway)
        return self._link

    def ledger(self, client: KuboClient) -> PinLedger:
        """The node's pin ledger: ``pins.sqlite`` beside the state file.

        The follower's holder DAG is built from every need listed there, so
        the ledger goes with the state (the data directory by default) and a
        state file of its own never pulls in another's blocks.
        """
        return PinLedger(client, self.state.path.with_name("pins.sqlite"))

    def _open_kubo(self) -> _Link:
        client = self._connect()
        wait = self.config.timeout
        store = KuboBlockStore(client, offline=False, fetch_timeout=wait)
        keeper = KuboKeeper(client, self.ledger(client))
        return _Link(
            records=KuboRecordSource(client, timeout=wait),
            local=KuboBlockStore(client, offline=True),
            fetching=lambda: (store, keeper),
            close=client.close,
            bulk=lambda: refs_bulk(client, fetch_timeout=wait, workers=self.config.workers),
        )

    def _open_gateway(self, url: str) -> _Link:
        http = gateway_client(self.config.timeout.total_seconds())
        path = self._block_path()
        local = SqliteBlockStore(path)
        # verified blocks of a head not accepted yet: a killed sync resumes from them
        spool = SqliteBlockStore(path.with_name(path.name + ".fetched"))

        def fetching() -> tuple[BlockStore, Keeper]:
            blocks = GatewayBlockStore(http, url, local, spool=spool)
            return blocks, GatewayKeeper(blocks)

        def close() -> None:
            http.close()
            local.close()
            spool.close()

        return _Link(
            records=GatewayRecordSource(http, url),
            local=local,
            fetching=fetching,
            close=close,
        )


def _no_host() -> PlatformFit:
    raise SubscriptionError("no host profile was given")


def follow_forever(
    run_once: Callable[[], object],
    *,
    interval: float,
    stop: threading.Event,
) -> int:
    """Call ``run_once`` every ``interval`` seconds until ``stop`` is set; returns the rounds."""
    if interval <= 0:
        raise ValueError(f"interval must be positive, got {interval}")
    rounds = 0
    while not stop.is_set():
        run_once()
        rounds += 1
        stop.wait(interval)
    return rounds


def require_subscriptions(state: SubscriptionStore) -> list[Subscription]:
    subs = state.all()
    if not subs:
        raise SubscriptionError(
            "no subscriptions", hint="subscribe first: `ipfsbin subscribe NAME --root CID`"
        )
    return subs
