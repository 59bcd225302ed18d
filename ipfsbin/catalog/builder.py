"""Builds the catalog again after a sync by re-judging only the CPVs whose inputs changed.

A :class:`CatalogBuilder` keeps, per followed index, every entry grouped by
CPV and, per CPV, its ranked offers (and their rendered ``Packages``
stanzas when given a ``render`` function). What the offers of one CPV
depend on, and what makes them be computed again (schema/catalog.md,
"Rebuilding"):

- the CPV's own entries: when a head moves, the entries that differ in the
  nodes new since the last root (:class:`~ipfsbin.catalog.tracked.TrackedIndex`),
  and only those;
- this host's USE configuration of the CPV's package, and the installed
  SLOT/SUBSLOT of the packages its builds depend on (``:=``): when the host
  is read again, only CPVs for which one of these changed;
- a build that could not be delivered: that build's CPV;
- everything else (the host's CHOST, CPU, compiler, libc and flags, the
  client's policy, the index's builders role): every CPV of that index.

Whether a platform (an index key's platform ID) may fit is decided once per
platform by :func:`~ipfsbin.descriptor.compat.check_platform`; builds of a
platform refused there are never loaded. A full build (:func:`build_catalog`,
or the first build of an index) and a rebuild give the same catalog.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import gc
import itertools
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from ipfsbin.catalog.build import (
    Candidate,
    Catalog,
    HeadState,
    Offer,
    assess_build,
    in_rank_order,
    offers_of,
)
from ipfsbin.catalog.cache import BuildCache
from ipfsbin.catalog.heads import FollowedHead, head_refusal
from ipfsbin.catalog.tracked import TrackedIndex
from ipfsbin.codec.cid import CID
from ipfsbin.config import ClientPolicy
from ipfsbin.descriptor.compat import HostProfile, UseConfig, check_platform
from ipfsbin.errors import IpfsbinError
from ipfsbin.host.profile import HostInfo
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.keys import IndexKey
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.trust.signing import Role

__all__ = ["CatalogBuilder", "build_catalog"]

Render = Callable[[Sequence[Offer]], bytes]
_Entries = dict[str, tuple[IndexKey, IndexEntry]]
"""One CPV's entries: index key (text) -> parsed key and entry."""


@dataclass(frozen=True, kw_only=True, slots=True)
class _Group:
    """One CPV's verdicts as offered: its ranked offers and what re-judging them needs."""

    offers: tuple[Offer, ...]
    text: bytes
    """``render(offers)``; empty without a render function."""
    deps: tuple[str, ...]
    """Packages the loaded builds depend on: a change of their installed sub-slot re-judges."""
    manifests: tuple[CID, ...]
    """(Tuples: most CPVs have one build and no ``:=`` dependency; a set of one costs 216 bytes.)"""
    unreadable: bool = False
    """A build could not be loaded (a block missing): :meth:`CatalogBuilder.retry_unreadable`."""


@dataclass(kw_only=True)
class _Index:
    """What the last build kept of one followed index."""

    builders: Role
    tracked: TrackedIndex = field(default_factory=TrackedIndex)
    paths: dict[str, Offer] = field(default_factory=dict)
    """PATH -> offer, for every offer."""
    groups: dict[str, _Group] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    """The CPVs with at least one offer, sorted; ``texts`` and ``rows`` hold theirs in step."""
    texts: list[bytes] = field(default_factory=list)
    rows: list[tuple[Offer, ...]] = field(default_factory=list)
    offers: tuple[Offer, ...] = ()
    body: bytes = b""
    assembled: bool = False


class CatalogBuilder:
    """Catalogs of the same heads over time, each one computed from what changed since the last.

    ``render`` turns one CPV's offers into its ``Packages`` stanzas; with it,
    :attr:`bodies` holds every subscription's stanzas joined (the file
    without its header), rendered once per changed CPV.
    """

    def __init__(self, cache: BuildCache, *, render: Render | None = None) -> None:
        self.cache = cache
        self._render = render
        self._indexes: dict[str, _Index] = {}
        # the nodes under an accepted head were decoded strictly by sync (schema/catalog.md)
        self._tree = ProllyTree(cache.store, cache_size=0, checked=True)
        self._platforms: dict[str, bool] = {}
        self._judged_for: object = None
        self._host: HostInfo | None = None
        self._use: dict[str, UseConfig] = {}
        self._profile: HostProfile | None = None
        self._undeliverable: frozenset[CID] = frozenset()
        self.bodies: dict[str, bytes] = {}
        self.paths: dict[str, Mapping[str, Offer]] = {}
        """Subscription -> PATH -> offer; the next build changes these maps: copy to keep one."""
        self.stanzas: dict[str, Sequence[bytes]] = {}
        """Subscription -> each listed CPV's stanzas, in order (the pieces of its body)."""
        self.rejudged = 0
        """CPVs judged by the last build (for logs and the benchmark)."""
        self._retry = False

    def retry_unreadable(self) -> None:
        """The next build judges again every CPV with a build it could not load (its blocks
        may be here now); the others keep their verdicts."""
        self._retry = True

    def build(
        self,
        heads: Iterable[FollowedHead],
        *,
        host: HostInfo,
        policy: ClientPolicy,
        now: float,
        undeliverable: Mapping[CID, str] | None = None,
    ) -> Catalog:
        """The offers of every head that is fresh enough (see :func:`build_catalog`)."""
        with _collector_paused():
            return self._build(heads, host, policy, now, undeliverable or {})

    def _build(
        self,
        heads: Iterable[FollowedHead],
        host: HostInfo,
        policy: ClientPolicy,
        now: float,
        undeliverable: Mapping[CID, str],
    ) -> Catalog:
        heads = list(heads)
        fresh = []
        states: dict[str, HeadState] = {}
        for head in heads:
            stale = head_refusal(head, now=now, max_age=policy.max_head_age)
            if stale is not None:
                states[head.name] = HeadState(head=head, stale=stale)
            else:
                fresh.append(head)
        # a stale head's kept verdicts would miss host and policy changes: read it afresh later
        self._indexes = {n: i for n, i in self._indexes.items() if n in {h.name for h in fresh}}
        dirty = {head.name: self._read(head) for head in fresh}
        everything = self._rejudge_host(host, policy, dirty)
        self._rejudge_undeliverable(frozenset(undeliverable), dirty)
        if self._retry:
            self._retry = False
            for name, index in self._indexes.items():
                dirty[name].update(c for c, g in index.groups.items() if g.unreadable)
        profile = self._profile
        if profile is None:  # pragma: no cover - _rejudge_host sets it
            raise RuntimeError("the host profile was not read")
        self.rejudged = 0
        offers: dict[str, tuple[Offer, ...]] = {}
        for head in fresh:
            index = self._indexes[head.name]
            cpvs = (
                set(index.tracked.by_cpv) | index.groups.keys() if everything else dirty[head.name]
            )
            self._judge(head, index, cpvs, host, profile, policy, undeliverable)
            offers[head.name] = index.offers
            states[head.name] = HeadState(
                head=head,
                stale=None,
                entries=index.tracked.count,
                offered=len(index.offers),
                refused=index.tracked.count - len(index.offers),
            )
        if self._render is not None:
            self.bodies = {name: self._indexes[name].body for name in offers}
            self.stanzas = {name: self._indexes[name].texts for name in offers}
        self.paths = {name: self._indexes[name].paths for name in offers}
        if everything or all(
            len(dirty[h.name]) >= len(self._indexes[h.name].tracked.by_cpv) for h in fresh
        ):
            # every kept build was asked for: drop the rest (entries gone from every head)
            self.cache.forget_unused()
        return Catalog(heads=tuple(states[h.name] for h in heads), offers=offers)

    def _read(self, head: FollowedHead) -> set[str]:
        """Bring the kept entries of ``head``'s index up to its root; the CPVs that changed."""
        index = self._indexes.get(head.name)
        if index is not None and index.builders == head.builders:
            try:
                changed = index.tracked.move_to(self._tree, head.index_root)
            except IpfsbinError:
                pass  # a node of the new root cannot be read: read the whole index below
            else:
                for entry in index.tracked.dropped:
                    self.cache.forget(entry, index.builders)
                return changed
        index = _Index(builders=head.builders)
        index.tracked.move_to(self._tree, head.index_root)
        self._indexes[head.name] = index
        return set(index.tracked.by_cpv)

    def _rejudge_host(
        self, host: HostInfo, policy: ClientPolicy, dirty: dict[str, set[str]]
    ) -> bool:
        """Bring the host profile up to date; True when every CPV must be judged again.

        The USE configuration is read for every package when the host was read
        again, else only for packages not seen before.
        """
        same_host = host is self._host
        if same_host:
            cps = {
                index.tracked.cps[cpv]
                for name, index in self._indexes.items()
                for cpv in dirty[name]
                if cpv in index.tracked.cps
            }
            new = cps - self._use.keys()
            if new:
                self._use.update(host.use_for(new))
        else:
            cps = {cp for index in self._indexes.values() for cp in index.tracked.cps.values()}
            self._use = dict(host.use_for(cps))
        old = self._profile
        profile = old
        if profile is None or not same_host or len(profile.use) != len(self._use):
            profile = dataclasses.replace(host.compat_profile(), use=self._use)
        self._profile, self._host = profile, host
        judged_for = (
            dataclasses.replace(profile, use={}, installed={}),
            host.accepted_chosts,
            policy,
        )
        if old is None or judged_for != self._judged_for:
            self._judged_for = judged_for
            self._platforms = {}
            return True
        if same_host:
            return False  # the USE of packages seen before and what is installed are as they were
        installed = {
            cp
            for cp in old.installed.keys() | profile.installed.keys()
            if old.installed.get(cp) != profile.installed.get(cp)
        }
        old_use = old.use
        use = {c for c, wanted in profile.use.items() if old_use.get(c) != wanted}
        use.update(old_use.keys() - profile.use.keys())
        for name, index in self._indexes.items():
            if installed:
                dirty[name].update(
                    cpv
                    for cpv, group in index.groups.items()
                    if not installed.isdisjoint(group.deps)
                )
            if use:
                dirty[name].update(c for c, cp in index.tracked.cps.items() if cp in use)
        return False

    def _rejudge_undeliverable(self, now: frozenset[CID], dirty: dict[str, set[str]]) -> None:
        changed = now ^ self._undeliverable
        self._undeliverable = now
        if not changed:
            return
        for name, index in self._indexes.items():
            for cpv, group in index.groups.items():
                if not changed.isdisjoint(group.manifests):
                    dirty[name].add(cpv)

    def _platform_fits(
        self,
        head: FollowedHead,
        key: IndexKey,
        entry: IndexEntry,
        host: HostInfo,
        profile: HostProfile,
    ) -> bool:
        """False when no build of ``key``'s platform can fit (decided once per platform)."""
        known = self._platforms.get(key.platform_id)
        if known is not None:
            return known
        try:
            build = self.cache.load(key, entry, head.builders)
        except IpfsbinError:
            return True  # undecided: this build is refused as unreadable
        refused = check_platform(
            build.package.platform, profile, accept_chosts=host.accepted_chosts
        ).mismatches
        self._platforms[key.platform_id] = not refused
        return not refused

    def _listable(
        self,
        head: FollowedHead,
        entries: Iterable[tuple[IndexKey, IndexEntry]],
        host: HostInfo,
        profile: HostProfile,
    ) -> Iterator[tuple[IndexKey, IndexEntry]]:
        """The entries not yanked whose platform can fit this host."""
        platforms = self._platforms
        for key, entry in entries:
            if entry.state == "ok" and (
                platforms.get(key.platform_id)  # known to fit: most entries
                or self._platform_fits(head, key, entry, host, profile)
            ):
                yield key, entry

    def _judge(
        self,
        head: FollowedHead,
        index: _Index,
        cpvs: Collection[str],
        host: HostInfo,
        profile: HostProfile,
        policy: ClientPolicy,
        undeliverable: Mapping[CID, str],
    ) -> None:
        changed: list[tuple[str, _Group | None]] = []
        by_cpv, order = index.tracked.by_cpv, list(cpvs)
        wanted = (
            [
                entry
                for cpv in order
                for _, entry in self._listable(head, by_cpv.get(cpv, {}).values(), host, profile)
            ]
            if self.cache.parallel_from and len(order) >= self.cache.parallel_from
            else []
        )
        with self.cache.decoding(wanted, head.builders):  # many new builds: on every core
            for cpv in order:
                had = index.groups.pop(cpv, None)
                group = self._group(
                    head, cpv, by_cpv.get(cpv, {}), host, profile, policy, undeliverable
                )
                if group is not None:
                    index.groups[cpv] = group
                if had is not None:
                    for offer in had.offers:
                        del index.paths[offer.path]
                if group is not None:
                    index.paths.update((offer.path, offer) for offer in group.offers)
                if (had is not None and had.offers) or (group is not None and group.offers):
                    changed.append((cpv, group))
        self.rejudged += len(cpvs)
        if not changed and index.assembled:
            return  # the same offers: the same stanzas object, so the served file is kept
        if index.assembled and len(changed) * 8 < len(index.order):
            for cpv, group in changed:
                self._place(index, cpv, group)
        else:
            groups = index.groups
            index.order = sorted(c for c, g in groups.items() if g.offers)
            index.texts = [groups[c].text for c in index.order]
            index.rows = [groups[c].offers for c in index.order]
        index.offers = tuple(itertools.chain.from_iterable(index.rows))
        if self._render is not None:
            index.body = b"".join(index.texts)
        index.assembled = True

    @staticmethod
    def _place(index: _Index, cpv: str, group: _Group | None) -> None:
        """Put ``cpv``'s offers (none: take it out) at its place in the sorted rows."""
        at = bisect.bisect_left(index.order, cpv)
        present = at < len(index.order) and index.order[at] == cpv
        if group is None or not group.offers:
            if present:
                del index.order[at], index.texts[at], index.rows[at]
        elif present:
            index.texts[at], index.rows[at] = group.text, group.offers
        else:
            index.order.insert(at, cpv)
            index.texts.insert(at, group.text)
            index.rows.insert(at, group.offers)

    def _group(
        self,
        head: FollowedHead,
        cpv: str,
        entries: _Entries,
        host: HostInfo,
        profile: HostProfile,
        policy: ClientPolicy,
        undeliverable: Mapping[CID, str],
    ) -> _Group | None:
        offered: list[Candidate] = []
        deps: set[str] = set()
        manifests: list[CID] = []
        unreadable = False
        for key, entry in self._listable(head, entries.values(), host, profile):
            candidate = assess_build(
                head, key, entry, self.cache, host, profile, policy, None, undeliverable
            )
            manifests.append(entry.manifest)
            unreadable = unreadable or candidate.build is None
            if candidate.build is not None and candidate.build.package.descriptor.deps:
                deps.update(d.name for d in candidate.build.package.descriptor.deps)
            if candidate.ok:
                offered.append(candidate)
        if not manifests:
            return None
        offers = offers_of(head.name, {cpv: in_rank_order(offered, profile)}) if offered else ()
        text = self._render(offers) if self._render is not None and offers else b""
        return _Group(
            offers=offers,
            text=text,
            deps=tuple(deps),
            manifests=tuple(manifests),
            unreadable=unreadable,
        )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the duration (reference counting still frees).

    A build allocates objects by the hundred thousand and keeps most of them:
    each allocation burst set off collections that walked the whole growing
    heap again (a quarter of a first build's time at 20,000 entries). What it
    kept is then frozen (as ``serve``'s publisher did after each build):
    otherwise the first allocation after the collector is back walks all of
    it once more (5% of a first build).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


def build_catalog(
    heads: Iterable[FollowedHead],
    *,
    host: HostInfo,
    policy: ClientPolicy,
    cache: BuildCache,
    now: float,
    undeliverable: Mapping[CID, str] | None = None,
) -> Catalog:
    """The offers of every head that is fresh enough; ``IpfsbinError`` only for the index.

    A head's freshness is the follower's (``FollowedHead.freshness``, with
    ``allow_stale`` as the follower was configured), plus the client's
    ``max_head_age`` at ``now``.

    ``undeliverable`` maps manifests whose bytes failed verification when
    served to why: they are not listed again (a listed package that cannot
    be delivered fails the whole emerge).

    One build from nothing kept; to rebuild as heads move, keep a
    :class:`CatalogBuilder`.
    """
    return CatalogBuilder(cache).build(
        heads, host=host, policy=policy, now=now, undeliverable=undeliverable
    )
