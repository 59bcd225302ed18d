"""Following an index: resolve its IPNS name, verify the new head, fetch what changed.

One sync of one subscription (:func:`sync_subscription`):

1. fetch the IPNS record (a :class:`~ipfsbin.subscribe.sources.RecordSource`: the DHT, or a
   trustless gateway) and verify it under the name; a record older than the accepted
   head is a replay and refused; a record pointing at the accepted head is
   "nothing new";
2. restore a :class:`~ipfsbin.trust.state.TrustedChain` from the saved state
   (pin, roots, head, height), load the commit the record points at, feed the
   chain the trust roots its envelope lists that the state lacks (a key-only
   pin, or a rotation), check the name is one of the newest root's
   publishers, and let the chain accept the commit (signatures, expiry,
   height, ancestry);
3. get the index nodes the new head adds: when the new commit (and every
   commit back to the accepted head along first parents) carries a changeset
   based on the accepted index, apply the changesets to the local tree and
   check the root equals the signed ``index`` (:mod:`._rebuild`), so only the
   commits and changesets move over the network; otherwise, or when that
   fails in any way, fetch exactly the nodes the new tree adds (:mod:`._delta`);
4. list the blocks to keep as pending, keep them (a keeper, :mod:`.keepers`: one
   holder DAG pinned in Kubo, or rows in the local block file), record the new head and
   the blocks it holds in one transaction, then let go of the blocks the old
   head needed that no subscription holds any more.

Blocks are counted per subscription in the state (``held``): two subscriptions
sharing index nodes share one link in the holder, dropped only when neither holds the node.
A sync that died between keeping and recording left its blocks ``pending``;
one that died between recording and releasing left the old head's blocks in
``releasing``; the next sync (or ``unsubscribe``) of that name lets go of
those nobody holds. Before all that, at most hourly, the maintainers are
asked for newer trust roots (:mod:`.announcements`), and a record that names
the accepted head still has that head checked for expiry (freeze attacks).

Any failure before step 4 leaves the state as it was, except for the reason
and the time, which ``ipfsbin status`` shows. The network is only touched
outside SQLite transactions, so readers of the state (the binhost shim) never
wait on IPNS or on bitswap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from ipfsbin.codec.cid import CID
from ipfsbin.errors import (
    IpfsbinError,
    IpnsError,
    RollbackError,
    SubscriptionError,
    TrustError,
)
from ipfsbin.index.scope import EVERYTHING, KeyScope
from ipfsbin.ipns.record import IpnsRecord, verify_record
from ipfsbin.kubo.netlimits import operation_deadline
from ipfsbin.pause import pause_point
from ipfsbin.store.base import BlockStore
from ipfsbin.subscribe._delta import Bulk, TreeDelta, tree_delta
from ipfsbin.subscribe._held import adopt_held, release_leftovers
from ipfsbin.subscribe._rebuild import Metered, Rebuild, Refused, rebuild_index
from ipfsbin.subscribe._roots import check_publisher, load_roots
from ipfsbin.subscribe.announcements import ROOT_CHECK_INTERVAL, ask_for_roots
from ipfsbin.subscribe.keepers import Keeper
from ipfsbin.subscribe.sources import RecordSource
from ipfsbin.subscribe.state import AcceptedHead, Subscription, SubscriptionStore
from ipfsbin.subscribe.survey import HostScope
from ipfsbin.trust.commit import SignedCommit, load_commit, load_commit_payload
from ipfsbin.trust.freshness import Freshness, check_freshness
from ipfsbin.trust.root import load_root
from ipfsbin.trust.state import TrustedChain

__all__ = [
    "DEFAULT_SYNC_DEADLINE",
    "SyncOutcome",
    "SyncResult",
    "describe_error",
    "sync_all",
    "sync_subscription",
]

DEFAULT_SYNC_DEADLINE: Final = timedelta(minutes=10)
"""Most time one subscription's sync may spend on the network."""

SyncOutcome = Literal["accepted", "current", "refused", "failed"]
Via = Literal["changeset", "nodes"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SyncResult:
    """What one sync of one subscription did.

    ``blocks_fetched``/``bytes_fetched`` count what came over the network
    (commits, changesets, index nodes, roots not held yet);
    ``blocks_written``/``bytes_written`` the index nodes rebuilt locally from
    changesets. ``index_blocks`` is the new tree's nodes the old one lacked,
    however they arrived (``via``). ``fallback`` says why changesets were not
    used when a previous head existed.
    """

    name: str
    outcome: SyncOutcome
    head: CID | None
    height: int | None
    previous_height: int | None = None
    sequence: int | None = None
    index_blocks: int = 0
    blocks_fetched: int = 0
    bytes_fetched: int = 0
    blocks_written: int = 0
    bytes_written: int = 0
    via: Via | None = None
    changesets: int = 0
    """Commits whose changesets were applied."""
    changeset_blocks: int = 0
    fallback: str | None = None
    blocks_released: int = 0
    error: str | None = None
    hint: str | None = None
    warnings: tuple[str, ...] = field(default=())
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "outcome": self.outcome,
            "head": None if self.head is None else str(self.head),
            "height": self.height,
            "previous_height": self.previous_height,
            "sequence": self.sequence,
            "index_blocks": self.index_blocks,
            "blocks_fetched": self.blocks_fetched,
            "bytes_fetched": self.bytes_fetched,
            "blocks_written": self.blocks_written,
            "bytes_written": self.bytes_written,
            "via": self.via,
            "changesets": self.changesets,
            "changeset_blocks": self.changeset_blocks,
            "fallback": self.fallback,
            "blocks_released": self.blocks_released,
            "error": self.error,
            "hint": self.hint,
            "warnings": list(self.warnings),
            "seconds": round(self.seconds, 3),
        }


def describe_error(exc: IpfsbinError) -> str:
    """``ClassName: message``, the form kept in the state and shown by ``status``."""
    return f"{type(exc).__name__}: {exc.message}"


def _moment(now: float) -> datetime:
    return datetime.fromtimestamp(now, tz=UTC)


def _check_record(record: IpnsRecord, sub: Subscription) -> CID:
    target = record.cid
    if target is None:
        raise IpnsError(
            f"IPNS record of {sub.name} points to {record.value!r}, "
            "expected /ipfs/<commit envelope>"
        )
    if sub.height is not None and record.sequence < sub.height:
        raise RollbackError(
            f"IPNS record of {sub.name} has sequence {record.sequence}, below the accepted "
            f"height {sub.height}: an old record is being replayed",
            hint="keeping the accepted head; the newest record will win once it is seen",
        )
    return target


def sync_subscription(
    state: SubscriptionStore,
    name: str,
    *,
    records: RecordSource,
    store: BlockStore,
    keeper: Keeper,
    local_store: BlockStore | None = None,
    allow_stale: bool = False,
    now: float | None = None,
    workers: int = 8,
    changesets: bool = True,
    deadline: timedelta = DEFAULT_SYNC_DEADLINE,
    scope: KeyScope | HostScope = EVERYTHING,
    bulk: Bulk | None = None,
) -> SyncResult:
    """Check ``name`` once and move its head if a newer, valid commit is published.

    Every network read of the sync ends within ``deadline`` (on top of each
    client's own per-request limits), so a slow source fails this sync and
    :func:`sync_all` goes on with the next subscription.

    ``store`` fetches blocks (from the network); ``local_store`` answers only
    from what this host holds (used for the old index, which must not be
    fetched again). ``allow_stale`` switches off the expiry check of roots and
    commits (freeze-attack protection), for offline use on purpose only.
    ``changesets=False`` always fetches the new index nodes instead of
    rebuilding them (to compare, or to work around a faulty rebuild).
    ``scope`` keeps only some platforms' key ranges (a partial replica; the
    default keeps everything; a :class:`HostScope` surveys the index's
    platforms, :mod:`.survey`); ``bulk`` moves and checks whole new subtrees
    at once when there is no old index to compare with (:mod:`._bulk`).
    Never raises for bad data or an unreachable network: the result says
    what happened and the reason is kept in the state.
    """
    started = time.monotonic()
    moment = time.time() if now is None else now
    sub = state.get(name)
    warnings: list[str] = []
    try:
        with operation_deadline(deadline.total_seconds()):
            return _sync(
                warnings,
                state,
                sub,
                records,
                store,
                keeper,
                local_store,
                allow_stale,
                moment,
                workers,
                started,
                changesets,
                scope,
                bulk,
            )
    except IpfsbinError as exc:
        state.record_failure(sub.name, describe_error(exc), now=moment)
        refused = isinstance(exc, TrustError | IpnsError)
        return SyncResult(
            name=sub.name,
            outcome="refused" if refused else "failed",
            head=sub.head,
            height=sub.height,
            previous_height=sub.height,
            error=describe_error(exc),
            hint=exc.hint,
            warnings=tuple(warnings),
            seconds=time.monotonic() - started,
        )


def _sync(
    warnings: list[str],
    state: SubscriptionStore,
    sub: Subscription,
    records: RecordSource,
    store: BlockStore,
    keeper: Keeper,
    local_store: BlockStore | None,
    allow_stale: bool,
    moment: float,
    workers: int,
    started: float,
    changesets: bool,
    scope: KeyScope | HostScope,
    bulk: Bulk | None,
) -> SyncResult:
    with state.keeping():
        leftovers = release_leftovers(state, sub.name, keeper)
        if local_store is not None:
            adopt_held(state, sub, local_store)
    if sub.roots and (
        sub.roots_checked_at is None or moment - sub.roots_checked_at >= ROOT_CHECK_INTERVAL
    ):
        warnings += ask_for_roots(state, sub, records, store, keeper, moment)
        sub = state.get(sub.name)
    raw = records.fetch_record(sub.name)
    record = verify_record(raw, sub.name, now=_moment(moment))
    target = _check_record(record, sub)
    if target == sub.head_envelope:
        # nothing new; but whoever holds only the IPNS key can re-sign this pointer forever,
        # so the head it names must still be fresh (freeze attack)
        fresh = _head_freshness(state, sub, local_store or store, moment, allow_stale)
        fresh.verify(f"the accepted head of {sub.name} (height {sub.height})")
        state.record_checked(sub.name, now=moment)
        warnings += [w for w in (fresh.warning(),) if w is not None]
        return SyncResult(
            name=sub.name,
            outcome="current",
            head=sub.head,
            height=sub.height,
            previous_height=sub.height,
            sequence=record.sequence,
            blocks_released=leftovers,
            warnings=tuple(warnings),
            seconds=time.monotonic() - started,
        )
    chain = TrustedChain(
        sub.pin, now=int(moment), allow_stale=allow_stale, head=sub.head, height=sub.height
    )
    fetch = Metered(store, local_store)
    signed = load_commit(fetch, target)
    roots = load_roots(sub, chain, fetch, signed)
    check_publisher(sub, chain)
    if signed.height != record.sequence:
        raise IpnsError(
            f"IPNS record of {sub.name} has sequence {record.sequence} but points to commit "
            f"{signed.commit_id} at height {signed.height}; they must be equal",
            hint="the publisher must publish the record with the commit's height",
        )
    # the chain is verified before any changeset is looked at: changesets only save fetching
    chain.update_commit(signed, fetch)
    new_index = signed.commit.index
    if isinstance(scope, HostScope):  # the platforms this host could use, learnt from the index
        scope, unread = scope.resolve(state, sub.name, fetch, new_index)
        warnings += [unread] if unread else []
    old_index = sub.index_root
    holder = local_store or store
    if old_index is not None and not holder.has(old_index):
        old_index = None  # the old nodes are gone (e.g. another mode synced): fetch everything
    rescoped = old_index is not None and state.scope(sub.name) != scope
    if rescoped:
        old_index = None  # kept under other prefixes: walk the new scope (held nodes are local)
    rebuilt: Rebuild | None = None
    fallback: str | None = None
    if changesets:
        rebuilt, fallback = _try_rebuild(sub, signed, old_index, fetch, holder, workers)
    delta: TreeDelta
    if rebuilt is not None:
        delta = rebuilt.delta
    else:
        delta = tree_delta(
            fetch, new_index, old_index, old_store=holder, workers=workers, scope=scope, bulk=bulk
        )
    keep = [c for r in roots for c in (r.cid, r.root_id)]
    keep += [signed.cid, signed.commit_id, *delta.added]
    accepted = AcceptedHead(
        head=signed.commit_id,
        head_envelope=signed.cid,
        height=signed.height,
        index_root=new_index,
        sequence=record.sequence,
        roots=tuple(r.cid for r in roots),
        head_expires=signed.commit.expires,
        root_expires=chain.root.root.expires,
    )
    release = list(delta.removed)
    if rescoped:  # what the old scope held and the new one does not
        kept = set(keep)
        release.extend(c for c in state.held(sub.name) if c not in kept)
    if sub.head_envelope is not None and sub.head_envelope != signed.cid:
        release.append(sub.head_envelope)
    if sub.head is not None and sub.head != signed.commit_id:
        release.append(sub.head)
    fresh = check_freshness(
        head_expires=accepted.head_expires,
        root_expires=accepted.root_expires,
        now=int(moment),
        allow_stale=allow_stale,
    )
    warnings += [w for w in (fresh.warning(),) if w is not None]
    pause_point("before-keep")  # fetched and rebuilt, nothing pinned yet (the GC race test)
    with state.keeping():
        # pending first: if this process dies after keeping, the next sync finds the blocks
        state.add_pending(sub.name, keep)
        try:
            keeper.keep(keep, label=sub.name)
            state.record_accepted(
                sub.name, accepted, expect_head=sub.head, now=moment, keep=keep, release=release
            )
            state.record_scope(sub.name, scope)
        except IpfsbinError:
            release_leftovers(state, sub.name, keeper)
            raise
        pause_point("after-record")
        free = state.unheld(release)
        try:
            keeper.release(free, label=sub.name)
            state.clear_releasing(sub.name, release)
        except IpfsbinError as exc:
            # the new head is recorded; an old block kept too long is only disk space
            warnings.append(f"could not release {len(free)} old blocks: {describe_error(exc)}")
    return SyncResult(
        name=sub.name,
        outcome="accepted",
        head=signed.commit_id,
        height=signed.height,
        previous_height=sub.height,
        sequence=record.sequence,
        index_blocks=len(delta.added),
        blocks_fetched=fetch.blocks + delta.moved_blocks,
        bytes_fetched=fetch.bytes + delta.moved_bytes,
        blocks_written=0 if rebuilt is None else len(delta.added),
        bytes_written=0 if rebuilt is None else rebuilt.bytes_written,
        via="nodes" if rebuilt is None else "changeset",
        changesets=0 if rebuilt is None else len(rebuilt.commits),
        changeset_blocks=0 if rebuilt is None else rebuilt.changeset_blocks,
        fallback=fallback,
        blocks_released=leftovers + len(free),
        warnings=tuple(warnings),
        seconds=time.monotonic() - started,
    )


def _head_freshness(
    state: SubscriptionStore,
    sub: Subscription,
    local: BlockStore,
    moment: float,
    allow_stale: bool,
) -> Freshness:
    """The freshness of ``sub``'s accepted head; expiries missing from old state are read
    from the local blocks (the head's commit and newest root are kept) and recorded."""
    fresh = sub.freshness(now=moment, allow_stale=allow_stale)
    if fresh is not None:
        return fresh
    if sub.head is None or not sub.roots:
        raise SubscriptionError(f"{sub.name} has no accepted head to check")
    head_expires = load_commit_payload(local, sub.head).expires
    root_expires = load_root(local, sub.roots[-1]).root.expires
    state.set_expiry(sub.name, head_expires=head_expires, root_expires=root_expires)
    return check_freshness(
        head_expires=head_expires,
        root_expires=root_expires,
        now=int(moment),
        allow_stale=allow_stale,
    )


def _try_rebuild(
    sub: Subscription,
    signed: SignedCommit,
    old_index: CID | None,
    fetch: BlockStore,
    holder: BlockStore,
    workers: int,
) -> tuple[Rebuild | None, str | None]:
    """The new index rebuilt from changesets, or None and why not (None on a first sync)."""
    if sub.head is None:
        return None, None
    if old_index is None:
        reason = "the accepted index is not held locally"
    elif signed.commit.index == old_index:
        return None, None
    else:
        try:
            rebuilt = rebuild_index(
                fetch,
                holder,
                head_id=signed.commit_id,
                head=signed.commit,
                accepted=sub.head,
                accepted_index=old_index,
                workers=workers,
            )
        except Refused as exc:
            reason = str(exc)
        except IpfsbinError as exc:
            reason = describe_error(exc)
        except ValueError as exc:  # a key the index refuses (too long, not text)
            reason = f"ValueError: {exc}"
        else:
            return rebuilt, None
    _log.info("%s: fetching the index nodes instead of using changesets: %s", sub.name, reason)
    return None, reason


def sync_all(
    state: SubscriptionStore,
    sync_one: Callable[[str], SyncResult],
) -> list[SyncResult]:
    """Sync every subscription; one that fails does not stop the others."""
    results = []
    for sub in state.all():
        try:
            results.append(sync_one(sub.name))
        except IpfsbinError as exc:  # state could not even be read or written
            results.append(
                SyncResult(
                    name=sub.name,
                    outcome="failed",
                    head=sub.head,
                    height=sub.height,
                    error=describe_error(exc),
                    hint=exc.hint,
                )
            )
    return results
