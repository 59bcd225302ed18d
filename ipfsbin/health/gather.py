"""Wiring for ``doctor`` and ``weather`` on this host: Kubo, the follower, Portage, the config.

The checks and figures themselves are pure over their inputs
(:mod:`.doctor`, :mod:`.weather`); this module reads the real ones, for the
command line and for the page of ``ipfsbin serve``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Collection, Sequence
from datetime import timedelta
from itertools import chain

from ipfsbin.catalog.build import Candidate, Catalog, judge_packages
from ipfsbin.catalog.builder import build_catalog
from ipfsbin.catalog.cache import BuildCache
from ipfsbin.catalog.heads import FollowedHead, read_heads
from ipfsbin.codec.cid import CID
from ipfsbin.config import ClientConfig
from ipfsbin.errors import KuboUnavailableError
from ipfsbin.health.doctor import DoctorInputs, run_doctor
from ipfsbin.health.findings import Report
from ipfsbin.health.weather import Weather, count_providers, select_wanted, weigh
from ipfsbin.host.installed import read_binary_settings, read_installed
from ipfsbin.host.profile import HostInfo
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.daemon import API_ENV, connect, resolve_api, user_repo_path
from ipfsbin.kubo.install import find_kubo
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.subscribe.follower import FollowConfig, Follower

__all__ = ["doctor_here", "weather_here", "weather_of_catalog"]


def doctor_here(config: ClientConfig, *, shim_is_self: bool = False) -> Report:
    """Every doctor check on this host (the Kubo of ``IPFSBIN_API`` or the managed node)."""
    managed = not os.environ.get(API_ENV, "").strip()
    try:
        api = resolve_api()
    except KuboUnavailableError:
        api = f"the managed node in {user_repo_path()}"
    binary = find_kubo()
    with Follower(FollowConfig()) as follower:
        return run_doctor(
            DoctorInputs(
                config=config,
                api=api,
                managed=managed,
                kubo_binary=str(binary) if binary else (shutil.which("ipfs") or "ipfs"),
                connect=connect,
                subscriptions=follower.subscriptions,
                freshness=follower.freshness,
                binary_settings=read_binary_settings,
                shim_is_self=shim_is_self,
            )
        )


def weather_of_catalog(
    atoms: Sequence[str],
    *,
    catalog: Catalog,
    heads: Sequence[FollowedHead],
    host: HostInfo,
    config: ClientConfig,
    cache: BuildCache,
    client: KuboClient | None,
    provider_timeout: timedelta,
    allow_stale: bool = False,
) -> Weather:
    """The weather of ``atoms`` (empty: the installed set) against a catalog already built."""
    installed = read_installed()
    wanted = select_wanted(atoms, installed)
    now = time.time()

    def judge(cps: Collection[str]) -> list[Candidate]:
        return judge_packages(
            cps,
            heads,
            host=host,
            policy=config.policy,
            cache=cache,
            now=now,
        )

    def providers(cids: Sequence[CID]) -> dict[CID, int | None]:
        if client is None:  # daemon-less: no DHT to ask, so the count is unknown
            return dict.fromkeys(cids)
        return count_providers(client, cids, timeout=provider_timeout)

    return weigh(
        wanted,
        offers=chain.from_iterable(catalog.offers.values()),
        dependents=installed.dependents,
        judge=judge,
        providers=providers,
    )


def weather_here(
    atoms: Sequence[str],
    *,
    config: ClientConfig,
    host: HostInfo,
    provider_timeout: timedelta = timedelta(seconds=10),
    allow_stale: bool = False,
) -> Weather:
    """Build the catalog from the followed heads and weigh ``atoms`` against it."""
    now = time.time()
    with Follower(FollowConfig(allow_stale=allow_stale)) as follower, connect() as client:
        heads = read_heads(
            follower.subscriptions(),
            follower.held_blocks(),
            freshness=lambda name: follower.freshness(name, now=now),
        )
        cache = BuildCache(
            KuboBlockStore(client, offline=False, fetch_timeout=timedelta(seconds=30))
        )
        catalog = build_catalog(
            heads,
            host=host,
            policy=config.policy,
            cache=cache,
            now=now,
        )
        return weather_of_catalog(
            atoms,
            catalog=catalog,
            heads=heads,
            host=host,
            config=config,
            cache=cache,
            client=client,
            provider_timeout=provider_timeout,
            allow_stale=allow_stale,
        )
