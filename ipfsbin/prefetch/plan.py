"""What ``emerge -uDN`` will want: the first choice per installed slot that changed.

For every installed package the prefetch mode names (``@world``: the world
file's packages; ``@installed``: all of them), the catalog's first choice
for the same ``category/package`` and SLOT is taken: rank 1 of its CPV,
the highest version among those. It is an update when its version is newer
than the installed one, or at the same version when its USE (within its
IUSE) or the sub-slots its ``:=`` dependencies were built against differ
from the installed package's: what ``-u``, ``-N`` and the sub-slot rebuilds
of ``emerge -uDN @world`` would install. A lower version is never one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ipfsbin.catalog.build import Catalog, Offer
from ipfsbin.catalog.pins import world_cps
from ipfsbin.descriptor.cpv import compare_versions, split_cpv
from ipfsbin.host.profile import HostInfo, InstalledPackage

__all__ = ["Reason", "Update", "first_choices", "plan_updates"]

Reason = Literal["version", "use", "subslot"]


@dataclass(frozen=True, kw_only=True)
class Update:
    """An offer that would replace an installed package, and why."""

    offer: Offer
    installed: str
    """The installed CPV it replaces."""
    reason: Reason


def _version(cpv: str) -> str:
    return split_cpv(cpv)[2]


def first_choices(catalog: Catalog) -> dict[tuple[str, str], Offer]:
    """(category/package, SLOT) -> the catalog's first choice: rank 1, highest version."""
    found: dict[tuple[str, str], Offer] = {}
    for offers in catalog.offers.values():
        for offer in offers:
            if offer.rank != 1:
                continue
            descriptor = offer.build.package.descriptor
            key = (descriptor.cp, descriptor.slot)
            best = found.get(key)
            if best is None or compare_versions(_version(offer.cpv), _version(best.cpv)) > 0:
                found[key] = offer
    return found


def _reason(offer: Offer, installed: InstalledPackage) -> Reason | None:
    order = compare_versions(_version(offer.cpv), _version(installed.cpv))
    if order > 0:
        return "version"
    if order < 0:
        return None
    descriptor = offer.build.package.descriptor
    # within IUSE: a descriptor's USE also holds implicit flags (arch, elibc_*), vardb's more
    iuse = frozenset(descriptor.iuse)
    if frozenset(descriptor.use) & iuse != installed.use & iuse:
        return "use"
    deps = frozenset((d.name, d.slot, d.subslot) for d in descriptor.deps)
    if deps != installed.deps:
        return "subslot"
    return None


def plan_updates(catalog: Catalog, host: HostInfo, mode: str) -> list[Update]:
    """The updates of the installed packages ``mode`` names (``@world`` or ``@installed``)."""
    if mode not in ("@world", "@installed"):
        raise ValueError(f"prefetch mode must be @world or @installed, got {mode!r}")
    wanted: Iterable[InstalledPackage] = host.packages
    if mode == "@world":
        cps = world_cps(host)
        wanted = [p for p in host.packages if p.cp in cps]
    choices = first_choices(catalog)
    updates = []
    for package in wanted:
        offer = choices.get((package.cp, package.slot))
        if offer is None:
            continue
        reason = _reason(offer, package)
        if reason is not None:
            updates.append(Update(offer=offer, installed=package.cpv, reason=reason))
    return sorted(updates, key=lambda u: u.offer.cpv)
