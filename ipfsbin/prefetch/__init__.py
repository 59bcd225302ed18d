"""Prefetch: fetch, verify and pin the updates of installed packages as soon as a head moves."""

from ipfsbin.prefetch.plan import Update, plan_updates
from ipfsbin.prefetch.worker import (
    Prefetcher,
    PrefetchOutcome,
    default_prefetch_path,
    prefetch_round,
    prefetch_updates,
    read_prefetched,
    release_prefetched,
)

__all__ = [
    "PrefetchOutcome",
    "Prefetcher",
    "Update",
    "default_prefetch_path",
    "plan_updates",
    "prefetch_round",
    "prefetch_updates",
    "read_prefetched",
    "release_prefetched",
]
