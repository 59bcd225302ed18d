"""``ipfsbin weather``: how much of this host's installed set the followed indexes cover.

For each wanted package (the installed set, ``@world``, or given atoms):
whether the catalog offers a build of it that fits this host (the
installed version when it is installed, any version otherwise), how many
builders agree on the bytes of the build Portage would take, and how many
other peers provide those bytes (``routing/findprovs``, bounded in time;
a client that installed through ipfsbin keeps them, so providers are the
usage vote). Missing packages are ranked by how many installed packages
depend on them, with the reasons the builds of them that exist were refused.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ipfsbin.catalog.build import Candidate, Offer
from ipfsbin.codec.cid import CID
from ipfsbin.descriptor.cpv import split_cpv
from ipfsbin.host.installed import InstalledSet
from ipfsbin.kubo.providers import count_providers

__all__ = [
    "PackageWeather",
    "Wanted",
    "Weather",
    "check_atoms",
    "count_providers",
    "select_wanted",
    "weigh",
]


@dataclass(frozen=True, kw_only=True)
class Wanted:
    cp: str
    """``category/package``."""
    cpv: str | None
    """The version wanted (the installed one); None: any version."""

    @property
    def label(self) -> str:
        return self.cpv or self.cp

    @property
    def category(self) -> str:
        return self.cp.partition("/")[0]


@dataclass(frozen=True, kw_only=True)
class PackageWeather:
    wanted: Wanted
    offer: Offer | None
    """The build Portage would take (rank 1), None when nothing fitting is offered."""
    builders: int
    providers: int | None
    """Peers other than this one providing the build's bytes; None when not asked or unknown."""
    dependents: int
    refusals: tuple[str, ...] = ()
    """For a missing package: why the builds of it that exist were refused (``axis: reason``)."""

    @property
    def available(self) -> bool:
        return self.offer is not None

    @property
    def providers_label(self) -> str:
        """For people: ``-`` when nothing is offered, ``?`` when the search failed."""
        if self.offer is None:
            return "-"
        return "?" if self.providers is None else str(self.providers)

    def to_json(self) -> dict[str, object]:
        return {
            "package": self.wanted.label,
            "available": self.available,
            "offered": None if self.offer is None else self.offer.cpv,
            "subscription": None if self.offer is None else self.offer.subscription,
            "binpkg": None if self.offer is None else str(self.offer.build.manifest.binpkg),
            "builders": self.builders,
            "providers": self.providers,
            "dependents": self.dependents,
            "refusals": list(self.refusals),
        }


@dataclass(frozen=True, kw_only=True)
class Weather:
    packages: tuple[PackageWeather, ...]

    @property
    def total(self) -> int:
        return len(self.packages)

    @property
    def available(self) -> int:
        return sum(p.available for p in self.packages)

    @property
    def percent(self) -> float:
        return 100.0 * self.available / self.total if self.total else 100.0

    @property
    def complete(self) -> bool:
        return self.available == self.total

    def missing(self) -> list[PackageWeather]:
        """Missing packages, the most depended-on first."""
        gone = [p for p in self.packages if not p.available]
        return sorted(gone, key=lambda p: (-p.dependents, p.wanted.label))

    def by_category(self) -> list[tuple[str, int, int]]:
        """(category, available, total), by category name."""
        counts: dict[str, list[int]] = {}
        for p in self.packages:
            pair = counts.setdefault(p.wanted.category, [0, 0])
            pair[0] += p.available
            pair[1] += 1
        return [(c, a, t) for c, (a, t) in sorted(counts.items())]

    def agreement(self) -> list[tuple[int, int]]:
        """(agreeing builders, packages) for the available packages, by builder count."""
        counts: dict[int, int] = {}
        for p in self.packages:
            if p.available:
                counts[p.builders] = counts.get(p.builders, 0) + 1
        return sorted(counts.items())

    def to_json(self) -> dict[str, object]:
        return {
            "available": self.available,
            "total": self.total,
            "percent": round(self.percent, 1),
            "packages": [p.to_json() for p in self.packages],
            "missing": [p.wanted.label for p in self.missing()],
            "by_category": [
                {"category": c, "available": a, "total": t} for c, a, t in self.by_category()
            ],
            "agreement": [{"builders": b, "packages": n} for b, n in self.agreement()],
        }


def check_atoms(atoms: Sequence[str]) -> None:
    """``ValueError`` naming the first of ``atoms`` that is neither ``@world`` nor an atom."""
    from portage.dep import Atom
    from portage.exception import InvalidAtom

    for atom in atoms:
        if atom == "@world":
            continue
        try:
            Atom(atom)
        except InvalidAtom:
            raise ValueError(
                f"{atom!r} is not a Portage atom (category/package, =category/package-1.0) "
                "or @world"
            ) from None


def select_wanted(atoms: Sequence[str], installed: InstalledSet) -> list[Wanted]:
    """The packages to weigh: ``atoms`` (``@world`` included), or else the whole installed set.

    An atom of an installed package means its installed version; any other
    atom means any version of it (``=cat/pkg-1.0``: that version).
    ``ValueError`` for something that is not an atom.
    """
    if not atoms:
        return [_installed(cpv) for cpv in installed.cpvs]
    found: dict[str, Wanted] = {}
    for atom in atoms:
        if atom == "@world":
            chosen = [_installed(cpv) for cpv in installed.world_cpvs]
        else:
            matches = installed.matching(atom)
            chosen = [_installed(cpv) for cpv in matches] or [_absent(atom)]
        for wanted in chosen:
            found.setdefault(wanted.label, wanted)
    return list(found.values())


def _installed(cpv: str) -> Wanted:
    category, package, _ = split_cpv(cpv)
    return Wanted(cp=f"{category}/{package}", cpv=cpv)


def _absent(atom: str) -> Wanted:
    from portage.dep import Atom

    parsed = Atom(atom)
    return Wanted(cp=str(parsed.cp), cpv=str(parsed.cpv) if parsed.operator == "=" else None)


def _best(wanted: Wanted, offers: Iterable[Offer]) -> Offer | None:
    def fits(offer: Offer) -> bool:
        if wanted.cpv is not None:
            return offer.cpv == wanted.cpv
        category, package, _ = split_cpv(offer.cpv)
        return f"{category}/{package}" == wanted.cp

    matching = [o for o in offers if fits(o)]
    if not matching:
        return None
    return min(matching, key=lambda o: (o.rank, -len(o.build.agreeing), o.subscription))


def _reasons(wanted: Wanted, judged: Iterable[Candidate]) -> tuple[str, ...]:
    reasons: dict[str, None] = {}
    for candidate in judged:
        if wanted.cpv is not None and candidate.cpv != wanted.cpv:
            continue
        category, package, _ = split_cpv(candidate.cpv)
        if f"{category}/{package}" != wanted.cp:
            continue
        for refusal in candidate.refusals:
            reasons[f"{refusal.axis}: {refusal.reason}"] = None
    return tuple(reasons)


def weigh(
    wanted: Sequence[Wanted],
    *,
    offers: Iterable[Offer],
    dependents: Mapping[str, int],
    judge: Callable[[Collection[str]], list[Candidate]],
    providers: Callable[[Sequence[CID]], Mapping[CID, int | None]],
) -> Weather:
    """The weather of ``wanted`` given the catalog's ``offers``.

    ``judge`` gives every build of some packages with its verdict (for the
    missing ones' reasons); ``providers`` counts the providers of binpkgs.
    """
    listed = list(offers)
    best = {w.label: _best(w, listed) for w in wanted}
    missing_cps = {w.cp for w in wanted if best[w.label] is None}
    judged = judge(missing_cps) if missing_cps else []
    found = best.values()
    counts = providers(sorted({o.build.manifest.binpkg for o in found if o is not None}, key=str))
    packages = []
    for w in wanted:
        offer = best[w.label]
        packages.append(
            PackageWeather(
                wanted=w,
                offer=offer,
                builders=0 if offer is None else len(offer.build.agreeing),
                providers=None if offer is None else counts.get(offer.build.manifest.binpkg),
                dependents=dependents.get(w.cp, 0),
                refusals=() if offer is not None else _reasons(w, judged),
            )
        )
    return Weather(packages=tuple(packages))
