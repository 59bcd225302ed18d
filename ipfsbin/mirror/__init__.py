"""Mirrors: follow indexes and keep them and their packages in a pinning engine, replicated."""

from ipfsbin.mirror.engine import (
    ClusterEngine,
    EnginePin,
    KuboRemoteEngine,
    PinEngine,
    PinningServiceEngine,
)
from ipfsbin.mirror.plan import MirrorPolicy
from ipfsbin.mirror.service import Mirror, MirrorRound

__all__ = [
    "ClusterEngine",
    "EnginePin",
    "KuboRemoteEngine",
    "Mirror",
    "MirrorPolicy",
    "MirrorRound",
    "PinEngine",
    "PinningServiceEngine",
]
