"""Mirrors: follow indexes and keep them and their packages in IPFS Cluster, replicated."""

from ipfsbin.mirror.engine import ClusterEngine, EnginePin, PinEngine
from ipfsbin.mirror.plan import MirrorPolicy
from ipfsbin.mirror.service import Mirror, MirrorRound

__all__ = ["ClusterEngine", "EnginePin", "Mirror", "MirrorPolicy", "MirrorRound", "PinEngine"]
