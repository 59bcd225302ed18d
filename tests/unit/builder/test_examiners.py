"""Examining queued builds in worker processes: one outcome per build, in order."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from multiprocessing import forkserver, resource_tracker
from pathlib import Path

from ipfsbin.binpkg import SETUID_PACKAGES
from ipfsbin.builder.examine import Examiner, Examiners, Gone, Outcome
from ipfsbin.builder.queue import QueueItem
from ipfsbin.config import ShareConfig
from ipfsbin.host.facts import HostFacts


@dataclass(frozen=True, kw_only=True)
class _Slow(Examiner):
    """Slow enough that the workers are up before this process is through the front builds;
    each outcome says which process examined it."""

    def __call__(self, item: QueueItem) -> Outcome:
        time.sleep(0.1)
        outcome = super().__call__(item)
        assert isinstance(outcome, Gone)
        return Gone(f"{outcome.why} in {os.getpid()}", None)


def test_outcomes_keep_the_order_of_the_builds_while_the_workers_start(tmp_path: Path) -> None:
    host = HostFacts(
        profile="default/linux/amd64/23.0",
        libc="glibc",
        libc_version="2.40",
        compiler="gcc",
        compiler_version="14.2.1",
    )
    examiner = _Slow(
        config=ShareConfig(enabled=True, pkgdir=tmp_path),
        config_root=Path("/"),
        host=host,
        setuid_packages=frozenset(SETUID_PACKAGES),
    )
    # Files that do not exist: each outcome names its own path, wherever it was examined.
    items = [
        QueueItem(id=n, path=tmp_path / f"{n}.gpkg.tar", size=1, mtime_ns=1, state="queued")
        for n in range(40)
    ]
    try:
        with Examiners(examiner, 2, pool_from=8) as examiners:
            first = [f.result(timeout=120) for f in examiners.submit(items)]
            # the pool is up now: the next call goes to the workers only
            again = [f.result(timeout=120) for f in examiners.submit(items[:5])]
    finally:
        # The fork server and resource tracker live as long as the process (a sharing
        # service reuses them); a test process ends them itself.
        forkserver._forkserver._stop()  # type: ignore[attr-defined]
        resource_tracker._resource_tracker._stop()  # type: ignore[attr-defined]
    where: list[str] = []
    for outcomes, expected in ((first, items), (again, items[:5])):
        assert all(isinstance(o, Gone) for o in outcomes)
        whys = [o.why for o in outcomes if isinstance(o, Gone)]
        assert [why.rsplit(" in ", 1)[0] for why in whys] == [
            f"{i.path}: removed before it was shared" for i in expected
        ]
        where += [why.rsplit(" in ", 1)[1] for why in whys]
    here = str(os.getpid())
    # the first builds here, then workers: the rest of the front and the tail handed at start
    assert where[0] == here and here in where[:38] and here not in where[38:]
    assert set(where[:38]) - {here}, "the workers took none of the front: the order is untested"
