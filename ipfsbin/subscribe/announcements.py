"""Asking the maintainers for newer trust roots (``schema/trust.md``, "root announcements").

The index's IPNS name could withhold a rotation; each maintainer of the
newest accepted root that is not one of its publishers announces the root
chain under its own key's name, which the holder of the publisher key cannot
suppress. A follower asks them all (in parallel, under the sync's deadline)
and feeds the roots after its accepted version to the chain one at a time,
each verified before the next is fetched. A missing, invalid or stale
announcement is skipped and reported; only roots that pass are returned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from ipfsbin.errors import IpfsbinError
from ipfsbin.ipns.record import IpnsRecord, verify_record
from ipfsbin.kubo.netlimits import within_operation
from ipfsbin.store.base import BlockStore
from ipfsbin.subscribe._held import release_leftovers
from ipfsbin.subscribe.keepers import Keeper
from ipfsbin.subscribe.sources import RecordSource
from ipfsbin.subscribe.state import Subscription, SubscriptionStore
from ipfsbin.trust.root import SignedRoot, load_root
from ipfsbin.trust.rootlist import load_root_list
from ipfsbin.trust.state import TrustedChain

__all__ = [
    "ROOT_CHECK_INTERVAL",
    "Announcements",
    "ask_for_roots",
    "ask_maintainers",
    "check_announcements",
]

_log = logging.getLogger(__name__)

ROOT_CHECK_INTERVAL: Final = 3600.0
"""Seconds between two checks of one subscription's announcements."""


@dataclass(frozen=True, kw_only=True)
class Announcements:
    """What asking the maintainers found: the names asked, roots learned, and what failed."""

    asked: tuple[str, ...]
    learned: tuple[SignedRoot, ...] = ()
    problems: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        return {
            "asked": list(self.asked),
            "learned": [r.version for r in self.learned],
            "problems": list(self.problems),
        }


def ask_maintainers(root: SignedRoot) -> tuple[str, ...]:
    """The names a follower at ``root`` asks: its maintainers that are not its publishers."""
    publishers = set(root.root.publishers.keys)
    return tuple(k for k in root.root.maintainers.keys if k not in publishers)


def check_announcements(
    chain: TrustedChain,
    records: RecordSource,
    store: BlockStore,
    *,
    now: datetime,
    workers: int = 4,
) -> Announcements:
    """Feed ``chain`` the newer roots its newest root's maintainers announce.

    Call after the accepted roots were loaded and before any commit. Never
    raises for what a source sent: a bad announcement is a problem listed in
    the result, and the chain keeps every root that passed.
    """
    asked = ask_maintainers(chain.root)
    if not asked:
        return Announcements(asked=())
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(asked)))) as pool:
        fetched = list(pool.map(within_operation(_fetch(records, now)), asked))
    problems = [f"{name}: {error}" for name, _, error in fetched if error is not None]
    found = [(name, record) for name, record, _ in fetched if record is not None]
    learned: list[SignedRoot] = []
    # the highest announcement first: the others rarely add anything after it
    for name, record in sorted(found, key=lambda pair: -pair[1].sequence):
        version = chain.root.version
        if record.sequence <= version:
            continue
        try:
            _take(chain, store, record, learned)
        except IpfsbinError as exc:
            problems.append(f"{name}: {type(exc).__name__}: {exc.message}")
        except ValueError as exc:  # a root version update_root refuses as malformed
            problems.append(f"{name}: {exc}")
    return Announcements(asked=asked, learned=tuple(learned), problems=tuple(problems))


_Fetched = tuple[str, IpnsRecord | None, str | None]


def _fetch(records: RecordSource, now: datetime) -> Callable[[str], _Fetched]:
    def fetch(name: str) -> _Fetched:
        try:
            record = verify_record(records.fetch_record(name), name, now=now)
        except IpfsbinError as exc:
            return name, None, f"{type(exc).__name__}: {exc.message}"
        if record.cid is None:
            return name, None, f"announcement points to {record.value!r}, not /ipfs/<roots list>"
        return name, record, None

    return fetch


def _take(
    chain: TrustedChain, store: BlockStore, record: IpnsRecord, taken: list[SignedRoot]
) -> None:
    """Roots after the chain's version from the list ``record`` points at, each verified.

    Each accepted root joins ``taken`` at once, so those before a bad one stay.
    """
    if record.cid is None:
        raise ValueError("announcement without a roots list")  # filtered when fetched
    listed = load_root_list(store, record.cid).roots
    # version n sits at position n - 1: skip the accepted ones without fetching them
    for cid in listed[chain.root.version :]:
        signed = load_root(store, cid)
        chain.update_root(signed)
        taken.append(signed)


def ask_for_roots(
    state: SubscriptionStore,
    sub: Subscription,
    records: RecordSource,
    store: BlockStore,
    keeper: Keeper,
    moment: float,
) -> list[str]:
    """Ask the maintainers for newer roots (``schema/trust.md``); keep and record what passes.

    Returns warnings: the announcements that were refused (a missing or
    expired record is not worth one: most maintainers announce nothing most
    of the time).
    """
    chain = TrustedChain(sub.pin, now=int(moment), head=sub.head, height=sub.height)
    for cid in sub.roots:  # held after the first sync; the pinned root is fetched before it
        chain.update_root(load_root(store, cid))
    found = check_announcements(chain, records, store, now=datetime.fromtimestamp(moment, UTC))
    state.record_roots_checked(sub.name, now=moment)
    warnings = [
        f"root announcement refused: {p}" for p in found.problems if ": IpnsError: " not in p
    ]
    if not found.learned:
        return warnings
    keep = [c for r in found.learned for c in (r.cid, r.root_id)]
    with state.keeping():
        state.add_pending(sub.name, keep)
        try:
            keeper.keep(keep, label=sub.name)
            state.record_roots(
                sub.name,
                [*sub.roots, *(r.cid for r in found.learned)],
                root_expires=chain.root.root.expires,
                keep=keep,
                expect_roots=sub.roots,
            )
        except IpfsbinError:
            release_leftovers(state, sub.name, keeper)
            raise
    versions = ", ".join(str(r.version) for r in found.learned)
    _log.info("%s: learned trust root version(s) %s from the maintainers", sub.name, versions)
    return [*warnings, f"learned trust root version(s) {versions} from the maintainers"]
