"""Which installed slots prefetch fetches an update for, over an in-memory index."""

from __future__ import annotations

import threading

import pytest

from ipfsbin.catalog import BuildCache, build_catalog
from ipfsbin.config import ClientPolicy
from ipfsbin.descriptor.model import SlotDep
from ipfsbin.host.profile import InstalledPackage
from ipfsbin.prefetch import Prefetcher, plan_updates
from ipfsbin.prefetch.plan import first_choices
from tests.unit.catalog.catalog_helpers import NOW, Index, host_info


def _installed(
    cpv: str, *, use: str = "ssl", slot: str = "0", deps: tuple = ()
) -> InstalledPackage:  # type: ignore[type-arg]
    return InstalledPackage(cpv=cpv, slot=slot, subslot=slot, use=frozenset(use.split()),
                            deps=frozenset(deps))  # fmt: skip


def _index() -> Index:
    index = Index()
    index.add("newer", "app-misc/newer-2")
    index.add("newer-old", "app-misc/newer-1")
    index.add("same", "app-misc/same-1")
    index.add("use", "app-misc/use-1")
    index.add("dep", "app-misc/dep-1", deps=(SlotDep(name="dev-libs/libfoo", slot="0",
                                                      subslot="2", runtime=True),))  # fmt: skip
    index.add("older", "app-misc/older-1")
    index.add("slot", "app-misc/slotted-3", slot="3")
    index.add("implicit", "app-misc/implicit-1", use=("amd64", "ssl"))  # an implicit flag
    return index


PACKAGES = (
    _installed("app-misc/newer-1"),
    _installed("app-misc/same-1"),
    _installed("app-misc/use-1", use="amd64"),  # installed before USE=ssl was set
    _installed("app-misc/dep-1", deps=(("dev-libs/libfoo", "0", "1"),)),
    _installed("app-misc/older-2"),
    _installed("app-misc/slotted-2", slot="2"),
    _installed("dev-libs/libfoo-1"),
    _installed("app-misc/implicit-1", use="amd64 elibc_glibc ssl"),
)


def _plan(mode: str, world: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    index = _index()
    # libfoo moved to sub-slot 2 since dep-1 was built against 0/1
    host = host_info(packages=PACKAGES, world=world, installed={"dev-libs/libfoo": {"0": "2"}})
    catalog = build_catalog([index.head()], host=host, policy=ClientPolicy(),
                            cache=BuildCache(index.store), now=NOW)  # fmt: skip
    return [(u.offer.cpv, u.installed, u.reason) for u in plan_updates(catalog, host, mode)]


def test_newer_version_other_use_or_other_subslot_is_an_update() -> None:
    assert _plan("@installed") == [
        ("app-misc/dep-1", "app-misc/dep-1", "subslot"),
        ("app-misc/newer-2", "app-misc/newer-1", "version"),
        ("app-misc/use-1", "app-misc/use-1", "use"),
    ]


def test_world_mode_only_looks_at_the_world_files_packages() -> None:
    assert _plan("@world", world=("app-misc/newer", ">=app-misc/use-1:0")) == [
        ("app-misc/newer-2", "app-misc/newer-1", "version"),
        ("app-misc/use-1", "app-misc/use-1", "use"),
    ]


def test_first_choice_is_the_highest_version_per_slot() -> None:
    index = _index()
    catalog = build_catalog([index.head()], host=host_info(), policy=ClientPolicy(),
                            cache=BuildCache(index.store), now=NOW)  # fmt: skip
    choices = first_choices(catalog)
    assert choices[("app-misc/newer", "0")].cpv == "app-misc/newer-2"
    assert choices[("app-misc/slotted", "3")].cpv == "app-misc/slotted-3"


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="@world or @installed"):
        _plan("off")


def test_a_request_during_a_round_queues_exactly_one_more() -> None:
    started, go = threading.Event(), threading.Event()
    calls: list[int] = []

    def run_once() -> list:  # type: ignore[type-arg]
        calls.append(1)
        started.set()
        go.wait(10)
        return []

    done: list[int] = []
    prefetcher = Prefetcher(run_once, on_done=lambda outcomes: done.append(len(outcomes)))
    prefetcher.request()
    assert started.wait(10)
    prefetcher.request()
    prefetcher.request()  # returns at once while the round runs
    go.set()
    for _ in range(100):
        if prefetcher.rounds == 2:
            break
        threading.Event().wait(0.05)
    prefetcher.stop()
    assert len(calls) == 2 and done == [0, 0]
