"""The catalog: the verified builds this host may install, ranked, and why the others may not.

Built from the accepted heads (:mod:`.heads`) over a block store
(:mod:`.builder`): index nodes are held locally by sync; manifests,
descriptors, platforms and attestations are fetched by CID (so verified by
their hash) the first time and kept in a :class:`BuildCache`. This module
holds the verdict on one build (:func:`assess_build`) and the ranking of one
CPV's offers; :mod:`.builder` applies them to the CPVs whose inputs changed.

Ranking among the offers for one CPV (schema/catalog.md): builds matching
this host's preferences (-O level, floating-point semantics, flags) first,
then the target closest to this host's microarchitecture, then the same
tuning and kept flags, then more agreeing builders, then the newest
BUILD_TIME. Portage orders instances by BUILD_TIME only, so
the BUILD_TIME each offer is listed with is lowered where needed to make
Portage's choice the catalog's first; BUILD_ID is derived from the manifest
CID, so the same build keeps its BUILD_ID (and PATH) while the index moves.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from ipfsbin.catalog.cache import Build, BuildCache
from ipfsbin.catalog.fit import Refusal, check_policy
from ipfsbin.catalog.heads import FollowedHead, head_refusal
from ipfsbin.codec.cid import CID
from ipfsbin.config import ClientPolicy
from ipfsbin.descriptor.compat import HostProfile
from ipfsbin.descriptor.cpv import split_cpv
from ipfsbin.descriptor.isa import isa_label
from ipfsbin.descriptor.model import Platform
from ipfsbin.descriptor.toolchain import chost_family
from ipfsbin.errors import IpfsbinError
from ipfsbin.host.profile import HostInfo
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.keys import IndexKey

__all__ = [
    "Candidate",
    "Catalog",
    "HeadState",
    "Offer",
    "assess_build",
    "explain",
    "in_rank_order",
    "judge_packages",
    "offers_of",
    "parse_atom",
    "rank_candidates",
]

_ATOM: Final = re.compile(r"^(?:=|~)?(?P<cat>[A-Za-z0-9_][A-Za-z0-9+_.-]*)/(?P<rest>[^\s/:]+)$")


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One build of one followed index, with the verdict for this host."""

    subscription: str
    key: str
    cpv: str
    build: Build | None
    refusals: tuple[Refusal, ...]
    differences: tuple[Refusal, ...] = ()
    """This host's preferences the build does not match, accepted by ``policy.sharing``."""
    rank: int | None = None
    """1 for Portage's first choice among the offers for this CPV; None when refused."""

    @property
    def ok(self) -> bool:
        return not self.refusals

    def to_json(self) -> dict[str, object]:
        build = self.build
        platform = build.package.platform if build is not None else None
        return {
            "subscription": self.subscription,
            "key": self.key,
            "cpv": self.cpv,
            "verdict": "offered" if self.ok else "refused",
            "rank": self.rank,
            "manifest": None if build is None else str(build.manifest_cid),
            "use": None if build is None else list(build.package.descriptor.use),
            "target": None if platform is None else _label(platform),
            "builders": None if build is None else list(build.agreeing),
            "build_time": None if build is None else build.build_time,
            "refusals": [r.to_json() for r in self.refusals],
            "differences": [r.to_json() for r in self.differences],
        }


@dataclass(frozen=True, kw_only=True)
class Offer:
    """A build listed in a subscription's ``Packages``."""

    subscription: str
    build: Build
    rank: int
    build_id: int
    build_time: int
    """As listed: the build's own, or lowered so that Portage picks rank 1 first."""
    path: str

    @property
    def cpv(self) -> str:
        return self.build.manifest.cpv


@dataclass(frozen=True, kw_only=True)
class HeadState:
    head: FollowedHead
    stale: str | None
    entries: int = 0
    offered: int = 0
    refused: int = 0


@dataclass(frozen=True, kw_only=True)
class Catalog:
    heads: tuple[HeadState, ...]
    offers: dict[str, tuple[Offer, ...]] = field(default_factory=dict)
    """subscription name -> offers, sorted by CPV then rank."""

    def offer_at(self, subscription: str, path: str) -> Offer | None:
        for offer in self.offers.get(subscription, ()):
            if offer.path == path:
                return offer
        return None

    @property
    def size(self) -> int:
        return sum(len(o) for o in self.offers.values())


def parse_atom(atom: str) -> tuple[str, str, str | None]:
    """``cat/pkg`` or ``[=]cat/pkg-version`` -> (category, package, version or None)."""
    match = _ATOM.match(atom.strip())
    if match is None:
        raise ValueError(f"{atom!r} is not an atom like category/package or =category/package-1.0")
    try:
        category, package, version = split_cpv(f"{match['cat']}/{match['rest']}")
    except ValueError:
        return match["cat"], match["rest"], None
    return category, package, version


def _label(platform: Platform) -> str:
    """archspec's name for the instruction set a platform's code uses (for people)."""
    return isa_label(chost_family(platform.chost), frozenset(platform.cflags.features))


def assess_build(
    head: FollowedHead,
    key: IndexKey,
    entry: IndexEntry,
    cache: BuildCache,
    host: HostInfo,
    profile: HostProfile,
    policy: ClientPolicy,
    stale: str | None,
    undeliverable: Mapping[CID, str],
) -> Candidate:
    refusals: list[Refusal] = []
    if undeliverable and entry.manifest in undeliverable:
        refusals.append(Refusal(axis="delivery", reason=undeliverable[entry.manifest]))
    if entry.state == "yanked":
        refusals.append(Refusal(axis="yanked", reason=f"yanked: {entry.reason}"))
    if stale is not None:
        refusals.append(Refusal(axis="freshness", reason=stale))
    try:
        build: Build | None = cache.load(key, entry, head.builders)
    except IpfsbinError as exc:
        build = None
        refusals.append(Refusal(axis="unreadable", reason=f"cannot load the build: {exc.message}"))
    differences: tuple[Refusal, ...] = ()
    if build is not None:
        refusals += check_policy(
            build.agreeing,
            min_builders=policy.min_builders,
            allowed=policy.allowed_builders,
        )
        fit = cache.fit(
            build, f"{key.category}/{key.package}", profile, host.accepted_chosts, policy.sharing
        )
        refusals += fit.refusals
        differences = fit.differences
    return Candidate(
        subscription=head.name,
        key=str(key),
        cpv=key.cpv,
        build=build,
        refusals=tuple(refusals),
        differences=differences,
    )


def _build_of(candidate: Candidate) -> Build:
    if candidate.build is None:
        raise RuntimeError(f"{candidate.key} was offered without a loaded build")
    return candidate.build


def rank_candidates(candidates: list[Candidate], profile: HostProfile) -> list[Candidate]:
    """Offers of one CPV in Portage's order of preference (rank 1 first)."""
    return [
        dataclasses.replace(c, rank=i + 1) for i, c in enumerate(in_rank_order(candidates, profile))
    ]


def in_rank_order(candidates: list[Candidate], profile: HostProfile) -> list[Candidate]:
    """The offers of one CPV sorted as :func:`rank_candidates` ranks them (``rank`` not set)."""
    if len(candidates) == 1:
        return candidates

    def order(c: Candidate) -> tuple[int, int, int, int, int, int, str]:
        build = _build_of(c)
        cflags = build.package.platform.cflags
        # Builds that match this host's preferences first (its own -O3 build
        # where one exists); then, as every offer already fits this CPU, the one
        # using the most of its features is the closest to it; then the same
        # tuning and kept flags as this host's.
        tune = cflags.tune != profile.cflags.tune
        kept_differ = set(cflags.flags) ^ set(profile.cflags.flags)
        return (
            len(c.differences),
            -len(cflags.features),
            int(tune),
            len(kept_differ),
            -len(build.agreeing),
            -build.build_time,
            c.key,
        )

    return sorted(candidates, key=order)


def offers_of(subscription: str, ranked_by_cpv: dict[str, list[Candidate]]) -> tuple[Offer, ...]:
    """The offers of each CPV's candidates, given in rank order (rank 1 first)."""
    offers: list[Offer] = []
    for cpv in sorted(ranked_by_cpv):
        category, package, version = split_cpv(cpv)
        used: set[int] = set()
        listed_time: int | None = None
        for rank, candidate in enumerate(ranked_by_cpv[cpv], 1):
            build = _build_of(candidate)
            build_id = int.from_bytes(build.manifest_cid.digest[:4], "big") % 2_000_000_000 + 1
            while build_id in used:
                build_id += 1
            used.add(build_id)
            own = build.build_time
            listed_time = own if listed_time is None else min(own, listed_time - 1)
            ext = "gpkg.tar" if build.manifest.format == "gpkg" else "xpak"
            offers.append(
                Offer(
                    subscription=subscription,
                    build=build,
                    rank=rank,
                    build_id=build_id,
                    build_time=max(listed_time, 0),
                    path=f"{category}/{package}/{package}-{version}-{build_id}.{ext}",
                )
            )
    return tuple(offers)


def explain(
    atom: str,
    heads: Iterable[FollowedHead],
    *,
    host: HostInfo,
    policy: ClientPolicy,
    cache: BuildCache,
    now: float,
    undeliverable: Mapping[CID, str] | None = None,
) -> list[Candidate]:
    """Every build of ``atom`` in every followed index, with its verdict and reasons."""
    category, package, version = parse_atom(atom)
    found = judge_packages(
        {f"{category}/{package}"},
        heads,
        host=host,
        policy=policy,
        cache=cache,
        now=now,
        undeliverable=undeliverable,
    )
    return [c for c in found if version is None or c.cpv == f"{category}/{package}-{version}"]


def judge_packages(
    cps: Collection[str],
    heads: Iterable[FollowedHead],
    *,
    host: HostInfo,
    policy: ClientPolicy,
    cache: BuildCache,
    now: float,
    undeliverable: Mapping[CID, str] | None = None,
) -> list[Candidate]:
    """Every build of the packages ``cps`` (``category/package``), in one pass over each index."""
    profile = host.compat_profile(cps)
    found: list[Candidate] = []
    for head in heads:
        stale = head_refusal(head, now=now, max_age=policy.max_head_age)
        by_cpv: dict[str, list[Candidate]] = {}
        for key, entry in cache.entries(head.index_root):
            if f"{key.category}/{key.package}" not in cps:
                continue
            candidate = assess_build(
                head, key, entry, cache, host, profile, policy, stale, undeliverable or {}
            )
            if candidate.ok:
                by_cpv.setdefault(candidate.cpv, []).append(candidate)
            else:
                found.append(candidate)
        for ranked in by_cpv.values():
            found += rank_candidates(ranked, profile)
    found.sort(key=lambda c: (c.subscription, c.cpv, not c.ok, c.rank or 0, c.key))
    return found
