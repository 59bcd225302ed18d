"""Where ipfsbin keeps its files (XDG base directories, overridable for tests)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "config_dir", "data_dir"]


def _xdg(env: str, default: str) -> Path:
    value = os.environ.get(env)
    return Path(value) if value else Path.home() / default


def data_dir() -> Path:
    """State that must survive: the managed node's repo, keys, subscriptions."""
    override = os.environ.get("IPFSBIN_HOME")
    if override:
        return Path(override)
    return _xdg("XDG_DATA_HOME", ".local/share") / "ipfsbin"


def config_dir() -> Path:
    override = os.environ.get("IPFSBIN_HOME")
    if override:
        return Path(override) / "config"
    return _xdg("XDG_CONFIG_HOME", ".config") / "ipfsbin"


def cache_dir() -> Path:
    """Rebuildable things: the Kubo binary (shared by every ipfsbin home)."""
    return _xdg("XDG_CACHE_HOME", ".cache") / "ipfsbin"
