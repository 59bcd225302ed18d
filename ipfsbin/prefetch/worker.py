"""Fetching the planned updates in the background, within a disk budget and a bandwidth cap.

Each update goes through the same fetch-verify-pin as ``ipfsbin pin``
(:func:`ipfsbin.catalog.pins.fetch_verify_pin`, streamed at the ``rate``
cap): nothing unverified is pinned. Prefetched builds are listed in
``<data dir>/prefetch.sqlite`` (the same table as the user's pins) and
pinned in the node's ledger as ``ipfsbin:prefetch:<manifest CID>``. A
prefetched build that is no longer an update (installed since, or
superseded by a newer first choice) is let go on the next round, which frees
its share of the budget; ``ipfsbin gc`` keeps the listed ones like pins.

:class:`Prefetcher` runs rounds in one background thread at the lowest CPU
priority; asking for a round while one runs queues exactly one more, so a
sync never waits for a prefetch.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ipfsbin import paths
from ipfsbin.catalog.current import current_catalog
from ipfsbin.catalog.pins import PinBook, PinnedBuild, fetch_verify_pin, pinned_build
from ipfsbin.config import ClientConfig
from ipfsbin.errors import IpfsbinError
from ipfsbin.host.profile import read_host
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.pins import PinLedger, pin_name
from ipfsbin.prefetch.plan import Update, plan_updates
from ipfsbin.subscribe.follower import Follower

__all__ = [
    "PrefetchOutcome",
    "Prefetcher",
    "default_prefetch_path",
    "prefetch_round",
    "prefetch_updates",
    "read_prefetched",
    "release_prefetched",
]

_log = logging.getLogger(__name__)

PrefetchState = Literal["ready", "failed", "over-budget"]


def default_prefetch_path() -> Path:
    """``<data dir>/prefetch.sqlite``."""
    return paths.data_dir() / "prefetch.sqlite"


@dataclass(frozen=True, kw_only=True)
class PrefetchOutcome:
    build: PinnedBuild
    state: PrefetchState
    reason: str
    """Why it is an update (version, use, subslot), or why it failed."""

    def to_json(self) -> dict[str, object]:
        return {**self.build.to_json(), "state": self.state, "reason": self.reason}


def read_prefetched() -> list[PinnedBuild]:
    """The builds prefetched, verified and pinned so far (none when prefetch never ran)."""
    if not default_prefetch_path().exists():
        return []
    with PinBook(default_prefetch_path()) as book:
        return book.all()


def release_prefetched(client: KuboClient, book: PinBook, builds: Sequence[PinnedBuild]) -> None:
    """Unlist and unpin (through the ledger) prefetched ``builds``."""
    ledger = PinLedger(client)
    for build in builds:
        book.remove(build.manifest)
        ledger.release(pin_name("prefetch", str(build.manifest)), [build.binpkg])


def prefetch_updates(
    client: KuboClient,
    book: PinBook,
    updates: Sequence[Update],
    *,
    budget: int,
    rate: float | None,
) -> list[PrefetchOutcome]:
    """Let go of prefetched builds that are no longer updates, then fetch the new ones that fit."""
    wanted = {u.offer.build.manifest_cid for u in updates}
    release_prefetched(client, book, [b for b in book.all() if b.manifest not in wanted])
    held = {b.manifest for b in book.all()}
    used = sum(b.size for b in book.all())
    ledger = PinLedger(client)
    outcomes = []
    for update in updates:
        build = pinned_build(update.offer)
        if build.manifest in held:
            outcomes.append(PrefetchOutcome(build=build, state="ready", reason=update.reason))
            continue
        if used + build.size > budget:
            outcomes.append(
                PrefetchOutcome(
                    build=build,
                    state="over-budget",
                    reason=f"{used + build.size} bytes would pass prefetch.budget ({budget})",
                )
            )
            continue
        try:
            fetch_verify_pin(
                client,
                ledger,
                update.offer,
                holder=pin_name("prefetch", str(build.manifest)),
                rate=rate,
            )
        except IpfsbinError as exc:
            outcomes.append(
                PrefetchOutcome(
                    build=build, state="failed", reason=f"{type(exc).__name__}: {exc.message}"
                )
            )
            continue
        book.add(build)
        used += build.size
        outcomes.append(PrefetchOutcome(build=build, state="ready", reason=update.reason))
    return outcomes


def prefetch_round(
    config: ClientConfig,
    connect: Callable[[], KuboClient],
    *,
    open_follower: Callable[[], Follower] = Follower,
) -> list[PrefetchOutcome]:
    """One round: read this host and the catalog, plan the updates, fetch them."""
    mode = config.prefetch.mode
    if mode == "off":
        return []
    host = read_host(target=config.target)
    with open_follower() as follower, connect() as client:
        catalog = current_catalog(follower, client, host=host, policy=config.policy)
        updates = plan_updates(catalog, host, mode)
        with PinBook(default_prefetch_path()) as book:
            return prefetch_updates(
                client,
                book,
                updates,
                budget=config.prefetch.budget,
                rate=float(config.prefetch.rate) or None,
            )


class Prefetcher:
    """Runs ``run_once`` in a background thread at the lowest CPU priority, on request."""

    def __init__(
        self,
        run_once: Callable[[], list[PrefetchOutcome]],
        *,
        on_done: Callable[[list[PrefetchOutcome]], None] | None = None,
    ) -> None:
        self._run_once = run_once
        self._on_done = on_done
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def request(self) -> None:
        """Ask for a round (one more after the running one, if any); returns at once."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="prefetch", daemon=True)
            self._thread.start()
        self._wanted.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the running round (waits up to ``timeout`` seconds)."""
        self._stopping.set()
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except OSError:  # pragma: no cover - raising one's own niceness is always allowed
            pass
        while True:
            self._wanted.wait()
            if self._stopping.is_set():
                return
            self._wanted.clear()
            try:
                outcomes = self._run_once()
            except IpfsbinError as exc:
                _log.warning("prefetch failed: %s", exc.message)
                outcomes = []
            except Exception:  # the thread must live on: the next head gets another round
                _log.exception("prefetch failed")
                outcomes = []
            self.rounds += 1
            if self._on_done is not None:
                self._on_done(outcomes)
