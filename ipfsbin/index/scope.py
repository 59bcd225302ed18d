"""Which part of an index a replica keeps: every key, or the keys under some platforms.

A partial replica keeps the entries whose key starts with one of its
prefixes (``<platform-id>/``, see :func:`ipfsbin.index.keys.platform_prefix`)
and every internal node on the paths to them, so the signed root still
verifies. Keys sort by platform first, so each prefix is one contiguous range.

An internal node says, for child ``i``, the last key under it (``keys[i]``);
the child covers the keys after its left sibling's last key, up to its own:
``(keys[i-1], keys[i]]``. :meth:`KeyScope.touches` and :meth:`KeyScope.covers`
answer for such a range.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["EVERYTHING", "KeyScope"]


def _prefix_end(prefix: str) -> str:
    """The least string above every string that starts with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass(frozen=True, kw_only=True)
class KeyScope:
    """Key prefixes a replica keeps; ``prefixes=None`` keeps everything (a mirror)."""

    prefixes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.prefixes is None:
            return
        if any(not p for p in self.prefixes):
            raise ValueError("a key prefix of a partial replica must not be empty")
        # sorted, without prefixes that another one already covers
        kept: list[str] = []
        for prefix in sorted(set(self.prefixes)):
            if not kept or not prefix.startswith(kept[-1]):
                kept.append(prefix)
        object.__setattr__(self, "prefixes", tuple(kept))

    @classmethod
    def of_platforms(cls, platform_ids: Iterable[str]) -> KeyScope:
        """The keys of the given platforms (their ``platform-id`` key segments)."""
        ids = list(platform_ids)
        if any("/" in p or not p for p in ids):
            raise ValueError(f"platform ids must be single key segments, got {ids!r}")
        return cls(prefixes=tuple(f"{p}/" for p in ids))

    @property
    def everything(self) -> bool:
        return self.prefixes is None

    def holds(self, key: str) -> bool:
        """True if a replica of this scope keeps ``key`` (whether or not the index has it)."""
        if self.prefixes is None:
            return True
        return any(key.startswith(p) for p in self.prefixes)

    def touches(self, after: str | None, upto: str) -> bool:
        """True if some kept key could lie in ``(after, upto]`` (``after=None``: no lower end)."""
        if self.prefixes is None:
            return True
        for prefix in self.prefixes:
            if upto >= prefix and (after is None or after < _prefix_end(prefix)):
                return True
        return False

    def covers(self, after: str | None, upto: str) -> bool:
        """True if every key that could lie in ``(after, upto]`` is kept."""
        if self.prefixes is None:
            return True
        if after is None:
            return False
        # both ends under one prefix: so is everything between them
        return any(after.startswith(p) and upto.startswith(p) for p in self.prefixes)

    def describe(self) -> str:
        if self.prefixes is None:
            return "every platform"
        return f"{len(self.prefixes)} platform(s)"

    def to_json(self) -> list[str] | None:
        return None if self.prefixes is None else list(self.prefixes)


EVERYTHING = KeyScope()
"""The scope of a mirror: the whole index."""
