"""The catalog: verified builds this host may install, ranked, with a reason for every refusal."""

from ipfsbin.catalog.build import (
    Candidate,
    Catalog,
    HeadState,
    Offer,
    build_catalog,
    explain,
    parse_atom,
)
from ipfsbin.catalog.cache import Build, BuildCache
from ipfsbin.catalog.fit import AXES, Refusal, check_fit, check_policy
from ipfsbin.catalog.heads import FollowedHead, head_refusal, read_heads

__all__ = [
    "AXES",
    "Build",
    "BuildCache",
    "Candidate",
    "Catalog",
    "FollowedHead",
    "HeadState",
    "Offer",
    "Refusal",
    "build_catalog",
    "check_fit",
    "check_policy",
    "explain",
    "head_refusal",
    "parse_atom",
    "read_heads",
]
