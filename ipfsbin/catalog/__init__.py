"""The catalog: verified builds this host may install, ranked, with a reason for every refusal."""

from ipfsbin.catalog.build import (
    Candidate,
    Catalog,
    HeadState,
    Offer,
    explain,
    judge_packages,
    parse_atom,
)
from ipfsbin.catalog.builder import CatalogBuilder, build_catalog
from ipfsbin.catalog.cache import Build, BuildCache
from ipfsbin.catalog.fit import AXES, Refusal, check_fit, check_policy
from ipfsbin.catalog.heads import FollowedHead, head_refusal, read_heads

__all__ = [
    "AXES",
    "Build",
    "BuildCache",
    "Candidate",
    "Catalog",
    "CatalogBuilder",
    "FollowedHead",
    "HeadState",
    "Offer",
    "Refusal",
    "build_catalog",
    "check_fit",
    "check_policy",
    "explain",
    "head_refusal",
    "judge_packages",
    "parse_atom",
    "read_heads",
]
