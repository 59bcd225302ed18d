"""Signed envelopes, roles with thresholds, and checking signatures against a role.

A signed object is two blocks (see ``schema/trust.md``): the *payload* block
(a trust root or a commit) and an *envelope* block that links the payload and
carries the signatures::

    {"type": "ipfsbin/signed/1", "signed": <link to payload>, "signatures": [{key, sig}]}

Each signature is ed25519 over ``domain + payload block bytes``. The payload's
CID is the object's identity; the envelope's CID is what gets published, and
changes whenever a co-signer adds a signature, while the identity does not.

A subclass may allow optional unsigned envelope fields (a commit lists its trust
roots' envelopes, ``ipfsbin.trust.commit``) through :attr:`Signed.ENVELOPE_OPTIONAL`
and the ``_extra_*`` hooks; every other type refuses any field beyond the three.
"""

from __future__ import annotations

import functools
from abc import abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR, cid_for
from ipfsbin.codec.dagcbor import Value
from ipfsbin.codec.fields import (
    expect_fields,
    get_bytes,
    get_cid,
    get_int,
    get_list,
    get_str,
)
from ipfsbin.errors import BlockMismatchError, SchemaError, SignatureError, ThresholdError
from ipfsbin.store.base import BlockStore
from ipfsbin.trust.keys import PublicKey, SigningKey

__all__ = [
    "ENVELOPE_TYPE",
    "Payload",
    "Role",
    "Signature",
    "Signed",
    "SignatureReport",
    "check_signatures",
    "cosign",
    "load_signed_blocks",
    "public_key_of",
    "put_signed",
    "verify_not_forged",
    "verify_signatures",
]

ENVELOPE_TYPE = "ipfsbin/signed/1"
_ENVELOPE_FIELDS = frozenset({"type", "signed", "signatures"})
_SIGNATURE_FIELDS = frozenset({"key", "sig"})
_ROLE_FIELDS = frozenset({"keys", "threshold"})
_ED25519_SIGNATURE_BYTES = 64


@functools.lru_cache(maxsize=1024)
def public_key_of(key_id: str) -> PublicKey:
    """The public key a canonical ``k51…`` key ID names; :class:`SchemaError` otherwise.

    Only the canonical base36 spelling is accepted, so that one key has exactly
    one name and cannot be counted twice towards a threshold.
    """
    try:
        key = PublicKey.from_key_id(key_id)
    except SignatureError as exc:
        raise SchemaError(f"{key_id!r} is not an ed25519 key ID: {exc.message}") from exc
    if key.key_id != key_id:
        raise SchemaError(f"key ID {key_id!r} is not in canonical form; expected {key.key_id}")
    return key


@dataclass(frozen=True, kw_only=True, slots=True)
class Signature:
    """One signer's ed25519 signature over ``domain + payload block``."""

    key: str
    sig: bytes

    def __post_init__(self) -> None:
        public_key_of(self.key)
        if type(self.sig) is not bytes or len(self.sig) != _ED25519_SIGNATURE_BYTES:
            raise SchemaError(
                f"a signature by {self.key} must be {_ED25519_SIGNATURE_BYTES} bytes, "
                f"got {len(self.sig) if isinstance(self.sig, bytes) else type(self.sig).__name__}"
            )

    @classmethod
    def from_dag(cls, value: Value) -> Signature:
        fields = expect_fields(value, "signature", _SIGNATURE_FIELDS)
        return cls(
            key=get_str(fields["key"], "signature key"),
            sig=get_bytes(fields["sig"], "signature sig"),
        )

    def to_dag(self) -> dict[str, Value]:
        return {"key": self.key, "sig": self.sig}


@dataclass(frozen=True, kw_only=True, slots=True)
class Role:
    """A named set of key IDs of which ``threshold`` must sign."""

    name: str
    keys: tuple[str, ...]
    threshold: int

    def __post_init__(self) -> None:
        if not isinstance(self.keys, tuple):
            raise TypeError(f"Role.keys must be a tuple, not {type(self.keys).__name__}")
        for key_id in self.keys:
            public_key_of(key_id)
        if list(self.keys) != sorted(set(self.keys)):
            raise SchemaError(f"role {self.name}: keys must be listed once each in ascending order")
        if type(self.threshold) is not int or not 1 <= self.threshold <= len(self.keys):
            raise SchemaError(
                f"role {self.name}: threshold must be between 1 and the {len(self.keys)} "
                f"listed key(s), got {self.threshold}"
            )

    @classmethod
    def of(cls, name: str, keys: Iterable[PublicKey | str], threshold: int) -> Role:
        """A role from public keys or key IDs in any order (sorted, duplicates dropped)."""
        ids = {k.key_id if isinstance(k, PublicKey) else k for k in keys}
        return cls(name=name, keys=tuple(sorted(ids)), threshold=threshold)

    @classmethod
    def from_dag(cls, name: str, value: Value) -> Role:
        fields = expect_fields(value, f"role {name}", _ROLE_FIELDS)
        keys = get_list(fields["keys"], f"role {name} keys")
        return cls(
            name=name,
            keys=tuple(get_str(k, f"role {name} key") for k in keys),
            threshold=get_int(fields["threshold"], f"role {name} threshold", minimum=1),
        )

    def to_dag(self) -> dict[str, Value]:
        return {"keys": list(self.keys), "threshold": self.threshold}

    def __contains__(self, key_id: object) -> bool:
        return key_id in self.keys


class Payload:
    """What a signed envelope can carry: a trust root or a commit."""

    TYPE: ClassVar[str]
    DOMAIN: ClassVar[bytes]
    KIND: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_dag(cls, value: Value) -> Self: ...

    @abstractmethod
    def to_dag(self) -> dict[str, Value]: ...


P = TypeVar("P", bound=Payload)


@dataclass(frozen=True, kw_only=True)
class Signed(Generic[P]):
    """A payload with its signatures, holding both source blocks and their CIDs.

    ``payload_id`` (the payload block's CID) is the object's identity;
    ``cid`` is the envelope block's CID. Build one with :meth:`create` or
    :meth:`from_blocks`, never field by field.
    """

    ENVELOPE_OPTIONAL: ClassVar[frozenset[str]] = frozenset()
    """Unsigned envelope fields this type may carry besides type, signed and signatures."""

    payload: P
    payload_id: CID
    payload_block: bytes = field(repr=False)
    signatures: tuple[Signature, ...]
    cid: CID
    block: bytes = field(repr=False)

    def __hash__(self) -> int:
        # the envelope bytes determine every field, and payloads hold dicts
        return hash(self.cid)

    @classmethod
    @abstractmethod
    def payload_from_dag(cls, value: Value) -> P: ...

    @classmethod
    @abstractmethod
    def domain(cls) -> bytes: ...

    @classmethod
    def create(cls, payload: P, signatures: Iterable[Signature] = (), **extra: Any) -> Self:
        """A new envelope; ``extra`` are the subclass's own envelope fields (see ``_extra_*``)."""
        payload_id, payload_block = dagcbor.encode_block(payload.to_dag())
        return cls._assemble(payload, payload_id, payload_block, signatures, extra)

    @classmethod
    def _assemble(
        cls,
        payload: P,
        payload_id: CID,
        payload_block: bytes,
        signatures: Iterable[Signature],
        extra: Mapping[str, Any],
    ) -> Self:
        ordered = _canonical_signatures(signatures)
        envelope: dict[str, Value] = {
            "type": ENVELOPE_TYPE,
            "signed": payload_id,
            "signatures": [s.to_dag() for s in ordered],
        }
        envelope.update(cls._extra_to_dag(extra))
        cid, block = dagcbor.encode_block(envelope)
        return cls(
            payload=payload,
            payload_id=payload_id,
            payload_block=payload_block,
            signatures=ordered,
            cid=cid,
            block=block,
            **extra,
        )

    # -- hooks for unsigned envelope fields (none here) -----------------------------------

    @classmethod
    def _extra_to_dag(cls, extra: Mapping[str, Any]) -> dict[str, Value]:
        """Envelope fields for the dataclass fields ``extra``; absent fields are left out."""
        if extra:
            raise TypeError(f"{cls.__name__} has no envelope fields {', '.join(sorted(extra))}")
        return {}

    @classmethod
    def _extra_from_dag(cls, fields: Mapping[str, Value]) -> dict[str, Any]:
        """Dataclass fields from the envelope's optional fields (:class:`SchemaError` if bad)."""
        return {}

    def _extra(self) -> dict[str, Any]:
        """This envelope's own fields, carried over when a signature is added."""
        return {}

    @classmethod
    def from_blocks(cls, envelope: bytes, payload: bytes, *, cid: CID | None = None) -> Self:
        """Decode an envelope block and the payload block it links to.

        When ``cid`` is given the envelope bytes must hash to it. Raises
        :class:`CodecError` for bad bytes and :class:`SchemaError` for a
        well-formed block of the wrong shape; signatures are not checked here.
        """
        value = dagcbor.decode_block(cid, envelope) if cid is not None else dagcbor.decode(envelope)
        fields = expect_fields(value, "signed envelope", _ENVELOPE_FIELDS, cls.ENVELOPE_OPTIONAL)
        kind = get_str(fields["type"], "envelope type")
        if kind != ENVELOPE_TYPE:
            raise SchemaError(f"envelope type is {kind!r}, expected {ENVELOPE_TYPE!r}")
        payload_id = get_cid(fields["signed"], "envelope signed", dag_cbor=True)
        raw_signatures = get_list(fields["signatures"], "envelope signatures")
        signatures = tuple(Signature.from_dag(s) for s in raw_signatures)
        if signatures != _canonical_signatures(signatures):
            raise SchemaError(
                "envelope signatures must be sorted by key ID with one signature per key"
            )
        extra = cls._extra_from_dag(fields)
        if not payload_id.verify(payload):
            raise BlockMismatchError(f"payload block bytes do not hash to {payload_id}")
        decoded = cls.payload_from_dag(dagcbor.decode(payload))
        return cls(
            payload=decoded,
            payload_id=payload_id,
            payload_block=payload,
            signatures=signatures,
            cid=cid if cid is not None else cid_for(DAG_CBOR, envelope),
            block=envelope,
            **extra,
        )

    def with_signature(self, key: SigningKey) -> Self:
        """This object co-signed by ``key``; the same object if ``key`` already signed it."""
        for existing in self.signatures:
            if existing.key == key.key_id and key.public_key.check(
                self.domain(), self.payload_block, existing.sig
            ):
                return self
        sig = Signature(key=key.key_id, sig=key.sign(self.domain(), self.payload_block))
        others = [s for s in self.signatures if s.key != key.key_id]
        return self._assemble(
            self.payload, self.payload_id, self.payload_block, [*others, sig], self._extra()
        )

    @property
    def signers(self) -> tuple[str, ...]:
        """Key IDs that put a signature in the envelope (not yet checked)."""
        return tuple(s.key for s in self.signatures)

    def blocks(self) -> list[tuple[CID, bytes]]:
        """Both blocks, envelope first, ready for ``BlockStore.put_many``."""
        return [(self.cid, self.block), (self.payload_id, self.payload_block)]


def _canonical_signatures(signatures: Iterable[Signature]) -> tuple[Signature, ...]:
    by_key: dict[str, Signature] = {}
    for sig in signatures:
        if sig.key in by_key and by_key[sig.key] != sig:
            raise SchemaError(f"two different signatures by {sig.key} in one envelope")
        by_key[sig.key] = sig
    return tuple(by_key[k] for k in sorted(by_key))


S = TypeVar("S", bound=Signed[Any])


def cosign(signed: S, key: SigningKey) -> S:
    """Add ``key``'s signature; idempotent, and the identity (``payload_id``) never changes."""
    return signed.with_signature(key)


def put_signed(store: BlockStore, signed: Signed[Any]) -> CID:
    """Store both blocks; returns the envelope CID (what IPNS points to)."""
    store.put_many(signed.blocks())
    return signed.cid


def load_signed_blocks(
    store: BlockStore, cid: CID, *, optional: frozenset[str] = frozenset()
) -> tuple[bytes, bytes]:
    """The envelope block at ``cid`` and the payload block it links, both hash-checked.

    ``optional``: envelope fields the expected type allows (``Signed.ENVELOPE_OPTIONAL``).
    """
    envelope = store.get(cid)
    value = dagcbor.decode_block(cid, envelope)
    fields = expect_fields(value, "signed envelope", _ENVELOPE_FIELDS, optional)
    payload_id = get_cid(fields["signed"], "envelope signed", dag_cbor=True)
    payload = store.get(payload_id)
    if not payload_id.verify(payload):
        raise BlockMismatchError(f"block bytes do not hash to {payload_id}")
    return envelope, payload


@dataclass(frozen=True, kw_only=True)
class SignatureReport:
    """Who signed what, checked against one role: the value behind every verdict."""

    kind: str
    subject: CID
    role: Role
    valid: tuple[str, ...]
    invalid: tuple[str, ...]
    unknown: tuple[str, ...]

    @property
    def threshold(self) -> int:
        return self.role.threshold

    @property
    def missing(self) -> tuple[str, ...]:
        """Role keys that did not sign validly."""
        return tuple(k for k in self.role.keys if k not in self.valid)

    @property
    def met(self) -> bool:
        return len(self.valid) >= self.role.threshold

    def describe(self) -> str:
        """``"commit bafy… is signed by 1 of 2 required maintainers keys"``."""
        return (
            f"{self.kind} {self.subject} is signed by {len(self.valid)} of "
            f"{self.role.threshold} required {self.role.name} keys"
        )


def check_signatures(signed: Signed[Any], role: Role) -> SignatureReport:
    """Check every signature in ``signed`` against ``role``; never raises for bad signatures.

    A signature by a key outside the role is reported as unknown and does not
    count; a key's second signature cannot exist (envelopes hold one per key).
    """
    valid: list[str] = []
    invalid: list[str] = []
    unknown: list[str] = []
    for sig in signed.signatures:
        if sig.key not in role:
            unknown.append(sig.key)
        elif public_key_of(sig.key).check(signed.domain(), signed.payload_block, sig.sig):
            valid.append(sig.key)
        else:
            invalid.append(sig.key)
    return SignatureReport(
        kind=signed.payload.KIND,
        subject=signed.payload_id,
        role=role,
        valid=tuple(valid),
        invalid=tuple(invalid),
        unknown=tuple(unknown),
    )


def verify_signatures(signed: Signed[Any], role: Role) -> SignatureReport:
    """:func:`check_signatures`, raising when a role key's signature is forged or too few signed.

    Raises :class:`SignatureError` if any signature by a key of ``role`` does
    not verify (a tampered object is refused even when others reach the
    threshold), then :class:`ThresholdError` if fewer than ``role.threshold``
    keys signed validly.
    """
    report = check_signatures(signed, role)
    if report.invalid:
        raise SignatureError(
            f"{report.kind} {report.subject}: signature by {', '.join(report.invalid)} "
            f"does not verify (expected a valid ed25519 signature over the "
            f"{signed.domain().decode()!r} domain)",
            hint="the object was altered or signed over other bytes; do not use it",
        )
    if not report.met:
        signed_by = ", ".join(report.valid) or "none"
        raise ThresholdError(
            f"{report.describe()} (valid: {signed_by}; not signed by: {', '.join(report.missing)})",
            hint=f"ask more {report.role.name} to co-sign it",
        )
    return report


def verify_not_forged(signed: Signed[Any], what: str) -> None:
    """Every signature on ``signed``, in a role or not, must verify under its own key ID.

    Key IDs are self-certifying, so a signature by a key outside every role
    counts for nothing, but merged unchecked into an envelope that is then
    published it would make followers refuse the object outright. ``what``
    names the object in the message (``"commit <ID>"``).
    """
    forged = [
        sig.key
        for sig in signed.signatures
        if not public_key_of(sig.key).check(signed.domain(), signed.payload_block, sig.sig)
    ]
    if forged:
        raise SignatureError(
            f"{what}: signature by {', '.join(forged)} does not verify",
            hint="the envelope was altered; do not use it",
        )
