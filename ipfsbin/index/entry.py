"""The value stored under each index key."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR
from ipfsbin.errors import SchemaError

__all__ = ["STATES", "IndexEntry", "State"]

State = Literal["ok", "yanked"]
STATES: Final = ("ok", "yanked")
_REQUIRED: Final = frozenset({"manifest", "attestations", "state"})
_ALLOWED: Final = _REQUIRED | {"reason"}


@dataclass(frozen=True, kw_only=True)
class IndexEntry:
    """A build in the index: its manifest, the attestations vouching for it, and its state.

    ``attestations`` is kept sorted by CID bytes without repeats, so an entry has
    one encoding. A yanked entry says why; an ``ok`` one has no reason.
    """

    manifest: CID
    attestations: tuple[CID, ...] = field(default=())
    state: State = "ok"
    reason: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.manifest, CID):
            raise TypeError(f"manifest must be a CID, not {type(self.manifest).__name__}")
        if self.manifest.codec != DAG_CBOR:
            raise ValueError(f"manifest {self.manifest} must be a dag-cbor block")
        attestations = tuple(self.attestations)
        if attestations:  # none: nothing to check, the empty tuple is in order
            for link in attestations:
                if not isinstance(link, CID):
                    raise TypeError(f"attestations must be CIDs, found {type(link).__name__}")
                if link.codec != DAG_CBOR:
                    raise ValueError(f"attestation {link} must be a dag-cbor block")
            ordered = tuple(sorted(set(attestations)))
            if len(ordered) != len(attestations):
                raise ValueError("attestations are listed more than once")
            attestations = ordered
        object.__setattr__(self, "attestations", attestations)
        if self.state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {self.state!r}")
        if self.state == "yanked" and not self.reason:
            raise ValueError("a yanked entry needs a reason")
        if self.state == "ok" and self.reason is not None:
            raise ValueError("only a yanked entry carries a reason")

    @classmethod
    def new(
        cls,
        manifest: CID,
        attestations: Iterable[CID] = (),
        *,
        state: State = "ok",
        reason: str | None = None,
    ) -> IndexEntry:
        return cls(manifest=manifest, attestations=tuple(attestations), state=state, reason=reason)

    def yanked(self, reason: str) -> IndexEntry:
        return IndexEntry(
            manifest=self.manifest, attestations=self.attestations, state="yanked", reason=reason
        )

    def to_dag(self) -> dict[str, dagcbor.Value]:
        value: dict[str, dagcbor.Value] = {
            "manifest": self.manifest,
            "attestations": list(self.attestations),
            "state": self.state,
        }
        if self.reason is not None:
            value["reason"] = self.reason
        return value

    @classmethod
    def from_dag(cls, value: dagcbor.Value) -> IndexEntry:
        """The entry in ``value``; ``SchemaError`` for unknown fields or a non-canonical form."""
        if not isinstance(value, dict):
            raise SchemaError(f"an index entry is a map, found {type(value).__name__}")
        unknown = value.keys() - _ALLOWED
        if unknown:
            raise SchemaError(
                f"index entry has unknown fields {sorted(unknown)}",
                hint="a newer ipfsbin may understand this index",
            )
        missing = _REQUIRED - value.keys()
        if missing:
            raise SchemaError(f"index entry lacks fields {sorted(missing)}")
        manifest = value["manifest"]
        if not isinstance(manifest, CID) or manifest.codec != DAG_CBOR:
            raise SchemaError(
                f"index entry manifest must link a dag-cbor block, found {manifest!r}"
            )
        links = value["attestations"]
        if type(links) is not list or (
            links and not all(isinstance(link, CID) and link.codec == DAG_CBOR for link in links)
        ):
            raise SchemaError("index entry attestations must be a list of dag-cbor links")
        if len(links) > 1 and any(
            a.bytes >= b.bytes for a, b in zip(links, links[1:], strict=False)
        ):
            raise SchemaError("index entry attestations must be sorted by CID bytes, no repeats")
        state = value["state"]
        if state not in STATES:
            raise SchemaError(f"index entry state is {state!r}, expected one of {STATES}")
        reason = value.get("reason")
        if reason is not None and type(reason) is not str:
            raise SchemaError(f"index entry reason must be a string, found {reason!r}")
        if "reason" in value and reason is None:
            raise SchemaError("index entry reason is null; leave the field out instead")
        try:
            return cls(manifest=manifest, attestations=tuple(links), state=state, reason=reason)
        except ValueError as exc:
            raise SchemaError(f"index entry: {exc}") from exc
