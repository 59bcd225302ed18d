"""Keeping index nodes while the rest of the index is still moving (pinning while fetching).

A first sync through Kubo keeps every index node (in the follower's holder
DAG, one recursive pin moved per batch). The nodes a
:class:`~ipfsbin.subscribe._delta.Bulk` has checked against their parents
are kept at once, by a thread of their own, while the walk goes on, so
fetched blocks sit unpinned (at the mercy of ``repo gc``) only briefly; once
the head is accepted only what is left (the top of the tree, the commit and
its roots) is kept before the head is recorded. With direct pins it was
measured no faster than pinning after the fetch (``schema/subscription.md``).

The rules of :mod:`.sync` still hold. Each batch is listed as ``pending`` for
the subscription before it is kept, and kept under the state's lock, so a
block another process decides to release is either seen as pending or
released before it is pinned again. A head is still recorded only after
every block it needs is kept. A sync that fails lets go of what it kept
early (the blocks stay in the repo, unpinned, so the next sync does not fetch
them again); one killed outright leaves them listed as pending, and the next
sync of the name releases them first, like any other unfinished keep.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Final, cast

from ipfsbin.codec.cid import CID
from ipfsbin.subscribe._held import release_leftovers
from ipfsbin.subscribe.keepers import Keeper
from ipfsbin.subscribe.state import SubscriptionStore

__all__ = ["EarlyKeeper", "keeping_early"]

_DONE: Final = object()

_log = logging.getLogger(__name__)


class EarlyKeeper:
    """Keeps checked blocks of one sync in a thread as they come (:meth:`add`)."""

    def __init__(self, state: SubscriptionStore, name: str, keeper: Keeper) -> None:
        self.state = state
        self.name = name
        self.keeper = keeper
        self.kept: set[CID] = set()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._worker: threading.Thread | None = None

    def add(self, cids: Sequence[CID]) -> None:
        """List ``cids`` as pending now and keep them soon (called from the syncing thread)."""
        if self._error is not None:
            raise self._error
        if not cids:
            return
        self.state.add_pending(self.name, cids)
        if self._worker is None:
            context = contextvars.copy_context()  # the sync's operation deadline
            self._worker = threading.Thread(
                target=context.run, args=(self._run,), name="ipfsbin-keep", daemon=True
            )
            self._worker.start()
        self._queue.put(list(cids))

    def finish(self) -> frozenset[CID]:
        """Wait until everything added is kept; what was kept (raises what keeping raised)."""
        self._stop()
        if self._error is not None:
            raise self._error
        return frozenset(self.kept)

    def _stop(self) -> None:
        if self._worker is not None:
            self._queue.put(_DONE)
            self._worker.join()
            self._worker = None

    def _run(self) -> None:
        done = False
        while not done:
            batch: list[CID] = []
            item = self._queue.get()
            # whatever else has arrived meanwhile goes in the same requests: fewer, fuller ones
            while True:
                if item is _DONE:
                    done = True
                else:
                    batch.extend(cast(list[CID], item))
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if not batch or self._error is not None:
                continue
            try:
                with self.state.keeping():
                    self.keeper.keep(batch, label=self.name)
            except BaseException as exc:  # noqa: BLE001 - raised in the syncing thread
                self._error = exc
            else:
                self.kept.update(batch)


@contextmanager
def keeping_early(
    state: SubscriptionStore, name: str, keeper: Keeper, *, enabled: bool
) -> Iterator[EarlyKeeper | None]:
    """An :class:`EarlyKeeper` (``None`` when not ``enabled``); a failure inside waits for its
    thread, then lets go of what this sync kept early."""
    if not enabled:
        yield None
        return
    early = EarlyKeeper(state, name, keeper)
    try:
        yield early
    except Exception:
        early._stop()
        if early.kept or state.pending(name):
            with state.keeping():
                released = release_leftovers(state, name, keeper)
            _log.info("%s: the sync failed; released %d blocks kept early", name, released)
        raise
    except BaseException:
        early._stop()
        raise
