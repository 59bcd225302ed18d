"""gc's size budget: promises count first, the least recently requested go first."""

from __future__ import annotations

from ipfsbin.codec.cid import RAW, cid_for
from ipfsbin.gc.plan import Kept, choose_within_budget


def _kept(cpv: str, size: int, why: str = "installed", last: float | None = None) -> Kept:
    return Kept(cpv=cpv, binpkg=cid_for(RAW, cpv.encode()), size=size, why=why,
                last_requested=last)  # fmt: skip


def test_without_a_budget_everything_is_kept() -> None:
    optional = [_kept("a/a-1", 10), _kept("a/b-1", 20)]
    assert choose_within_budget([], optional, None) == (optional, [])


def test_least_recently_requested_dropped_first_never_requested_before_all() -> None:
    pinned = [_kept("p/pinned-1", 50, "pin")]
    never = _kept("a/never-1", 10)
    old = _kept("a/old-1", 30, last=100.0)
    new = _kept("a/new-1", 30, last=900.0)
    kept, dropped = choose_within_budget(pinned, [new, old, never], 85)
    assert dropped == [never, old] and kept == [new]  # 50 + 30 = 80 fits in 85
    kept, dropped = choose_within_budget(pinned, [new, old, never], 115)
    assert dropped == [never] and kept == [new, old]


def test_promises_over_the_budget_drop_every_installed_build() -> None:
    pinned = [_kept("p/pinned-1", 500, "pin"), _kept("p/ahead-2", 500, "prefetch")]
    optional = [_kept("a/a-1", 1, last=5.0)]
    assert choose_within_budget(pinned, optional, 100) == ([], optional)
