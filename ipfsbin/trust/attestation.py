"""Builder attestations: signed statements that a descriptor produced certain bytes.

The wire format is in ``schema/attestation.md``. An attestation is a signed
envelope (``ipfsbin.trust.signing``) whose payload is an
:class:`AttestationStatement`; signatures cover
``b"ipfsbin-attestation-v1:" + <statement block>``. The statement holds no
time, and ed25519 signatures are deterministic, so attesting the same bytes
twice gives the same blocks.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import ClassVar, Final

from ipfsbin.codec.cid import CID, DAG_CBOR, cid_for
from ipfsbin.codec.dagcbor import Value
from ipfsbin.codec.fields import MAX_INT, expect_fields, expect_type, get_bytes, get_cid, get_int
from ipfsbin.errors import SchemaError, SignatureError, TrustError
from ipfsbin.manifest import Manifest, check_binpkg_link
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.signing import (
    Payload,
    Role,
    SignatureReport,
    Signed,
    check_signatures,
    public_key_of,
    verify_signatures,
)

__all__ = [
    "ATTESTATION_DOMAIN",
    "ATTESTATION_TYPE",
    "Attestation",
    "AttestationCheck",
    "AttestationStatement",
    "attest",
    "check_attestation",
    "verify_attestation",
]

ATTESTATION_TYPE: Final = "ipfsbin/attestation/1"
ATTESTATION_DOMAIN: Final = b"ipfsbin-attestation-v1:"

_FIELDS: Final = frozenset({"type", "descriptor", "manifest", "binpkg", "sha256", "size"})


@dataclass(frozen=True, kw_only=True)
class AttestationStatement(Payload):
    """What a builder signs: descriptor, manifest, binpkg file, its sha256 and size."""

    TYPE: ClassVar[str] = ATTESTATION_TYPE
    DOMAIN: ClassVar[bytes] = ATTESTATION_DOMAIN
    KIND: ClassVar[str] = "attestation"

    descriptor: CID
    manifest: CID
    binpkg: CID
    sha256: bytes
    size: int

    def __post_init__(self) -> None:
        for name in ("descriptor", "manifest"):
            link = getattr(self, name)
            if not isinstance(link, CID) or link.codec != DAG_CBOR:
                raise SchemaError(f"attestation {name} must be a dag-cbor link, got {link!r}")
        if type(self.sha256) is not bytes or len(self.sha256) != 32:
            got = len(self.sha256) if isinstance(self.sha256, bytes) else type(self.sha256)
            raise SchemaError(f"attestation sha256 must be 32 bytes, got {got}")
        if type(self.size) is not int or not 1 <= self.size <= MAX_INT:
            raise SchemaError(f"attestation size must be a positive integer, got {self.size!r}")
        check_binpkg_link(self.binpkg, "attestation binpkg", sha256=self.sha256)

    @classmethod
    def for_manifest(cls, manifest_cid: CID, manifest: Manifest) -> AttestationStatement:
        """The statement that vouches for ``manifest`` (stored under ``manifest_cid``)."""
        return cls(
            descriptor=manifest.descriptor,
            manifest=manifest_cid,
            binpkg=manifest.binpkg,
            sha256=manifest.sha256,
            size=manifest.size,
        )

    @classmethod
    def from_dag(cls, value: Value) -> AttestationStatement:
        expect_type(value, "attestation statement", ATTESTATION_TYPE)
        fields = expect_fields(value, "attestation statement", _FIELDS)
        return cls(
            descriptor=get_cid(fields["descriptor"], "attestation descriptor"),
            manifest=get_cid(fields["manifest"], "attestation manifest"),
            binpkg=get_cid(fields["binpkg"], "attestation binpkg"),
            sha256=get_bytes(fields["sha256"], "attestation sha256"),
            # the lower bound is the constructor's, for built and decoded statements alike
            size=get_int(fields["size"], "attestation size"),
        )

    def to_dag(self) -> dict[str, Value]:
        return {
            "type": ATTESTATION_TYPE,
            "descriptor": self.descriptor,
            "manifest": self.manifest,
            "binpkg": self.binpkg,
            "sha256": self.sha256,
            "size": self.size,
        }


@dataclass(frozen=True, kw_only=True)
class Attestation(Signed[AttestationStatement]):
    """A statement with its signatures: ``payload_id`` is the statement's CID (the
    identity), ``cid`` the envelope's (what is published and pinned)."""

    @classmethod
    def payload_from_dag(cls, value: Value) -> AttestationStatement:
        return AttestationStatement.from_dag(value)

    @classmethod
    def domain(cls) -> bytes:
        return ATTESTATION_DOMAIN

    @property
    def statement(self) -> AttestationStatement:
        return self.payload


def attest(statement: AttestationStatement, key: SigningKey) -> Attestation:
    """``statement`` signed by ``key`` (deterministic: the same inputs give the same blocks)."""
    return Attestation.create(statement).with_signature(key)


@dataclass(frozen=True, kw_only=True, slots=True)
class AttestationCheck:
    """Who validly signed an attestation, and whether it matches a manifest.

    ``report`` is the signature check against the role used (a role made of
    the signers' own keys when no role was given). ``manifest_ok`` is None
    when no manifest was compared, else whether it matched; ``problems``
    says how it did not.
    """

    report: SignatureReport
    manifest_ok: bool | None
    problems: tuple[str, ...]

    @property
    def valid(self) -> tuple[str, ...]:
        return self.report.valid

    @property
    def ok(self) -> bool:
        return self.report.met and not self.report.invalid and self.manifest_ok is not False


def _self_role(attestation: Attestation, allowed: Collection[str] | None) -> Role:
    keys = [s.key for s in attestation.signatures]
    if allowed is not None:
        keys = [k for k in allowed]
        for key_id in keys:
            public_key_of(key_id)
    if not keys:
        raise SignatureError(
            f"attestation {attestation.payload_id} carries no signature"
            if allowed is None
            else "no allowed builder keys were given"
        )
    return Role.of("builders", keys, 1)


def _manifest_problems(
    statement: AttestationStatement, manifest_cid: CID, manifest: Manifest
) -> tuple[str, ...]:
    problems: list[str] = []
    if statement.manifest != manifest_cid:
        problems.append(f"it names manifest {statement.manifest}, not {manifest_cid}")
    if statement.descriptor != manifest.descriptor:
        problems.append(
            f"it names descriptor {statement.descriptor}, the manifest {manifest.descriptor}"
        )
    if statement.binpkg != manifest.binpkg:
        problems.append(f"it names binpkg {statement.binpkg}, the manifest {manifest.binpkg}")
    if statement.sha256 != manifest.sha256:
        problems.append(
            f"it states sha256 {statement.sha256.hex()}, the manifest {manifest.sha256.hex()}"
        )
    if statement.size != manifest.size:
        problems.append(f"it states size {statement.size}, the manifest {manifest.size}")
    return tuple(problems)


def check_attestation(
    attestation: Attestation,
    *,
    role: Role | None = None,
    allowed_keys: Collection[str] | None = None,
    manifest: tuple[CID, Manifest] | None = None,
) -> AttestationCheck:
    """Check signatures (and consistency with ``manifest``); never raises for bad data.

    With ``role`` (the trust root's builders) only its keys count, up to its
    threshold. Without it, ``allowed_keys`` (key IDs) or, if None, the
    signers' own key IDs form a 1-of-n role: key IDs name their public keys,
    so every signature can be checked without a key ring.
    """
    if role is not None and allowed_keys is not None:
        raise ValueError("give either role or allowed_keys, not both")
    used = role if role is not None else _self_role(attestation, allowed_keys)
    report = check_signatures(attestation, used)
    if manifest is None:
        return AttestationCheck(report=report, manifest_ok=None, problems=())
    problems = _manifest_problems(attestation.statement, manifest[0], manifest[1])
    if manifest[0] != cid_for(DAG_CBOR, manifest[1].to_block()[1]):
        problems = (*problems, f"the manifest given does not encode to {manifest[0]}")
    return AttestationCheck(report=report, manifest_ok=not problems, problems=problems)


def verify_attestation(
    attestation: Attestation,
    *,
    role: Role | None = None,
    allowed_keys: Collection[str] | None = None,
    manifest: tuple[CID, Manifest] | None = None,
) -> AttestationCheck:
    """:func:`check_attestation`, raising when it falls short.

    ``SignatureError`` for a signature that does not verify, ``ThresholdError``
    for too few valid signatures, ``TrustError`` when the statement does not
    match ``manifest``.
    """
    if role is not None and allowed_keys is not None:
        raise ValueError("give either role or allowed_keys, not both")
    used = role if role is not None else _self_role(attestation, allowed_keys)
    verify_signatures(attestation, used)
    check = check_attestation(attestation, role=used, manifest=manifest)
    if check.manifest_ok is False:
        raise TrustError(
            f"attestation {attestation.payload_id} does not match manifest "
            f"{manifest[0] if manifest else '?'}: {'; '.join(check.problems)}",
            hint="the builder signed other bytes than this manifest describes; do not use it",
        )
    return check
