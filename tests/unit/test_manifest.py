"""Manifest objects against the golden vectors in schema/examples/manifest/.

Regenerate the vectors (after a deliberate format change) with
``python tests/unit/test_manifest.py``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from ipfsbin import errors
from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR, DAG_PB, RAW, cid_for
from ipfsbin.manifest import (
    MANIFEST_TYPE,
    BinpkgVerifier,
    BuildCompiler,
    BuildHost,
    Manifest,
    verify_binpkg_bytes,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "schema" / "examples" / "manifest"


# -- DAG-JSON, only as far as the examples need it ----------------------------


def to_dagjson(value: Any) -> Any:
    if isinstance(value, CID):
        return {"/": str(value)}
    if isinstance(value, bytes):
        return {"/": {"bytes": base64.b64encode(value).decode().rstrip("=")}}
    if isinstance(value, dict):
        return {k: to_dagjson(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [to_dagjson(v) for v in value]
    return value


def from_dagjson(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"/"}:
            inner = value["/"]
            if isinstance(inner, str):
                return CID.from_text(inner)
            raw = inner["bytes"]
            return base64.b64decode(raw + "=" * (-len(raw) % 4))
        return {k: from_dagjson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dagjson(v) for v in value]
    return value


# -- the example objects --------------------------------------------------------

HELLO_BYTES = bytes(range(256)) * 4096 + b"hello"  # > 1 MiB: a dag-pb root
LIBFOO_BYTES = b"a small text-only gpkg, in spirit\n" * 100


def _digests(data: bytes) -> dict[str, Any]:
    return {
        "size": len(data),
        "sha256": hashlib.sha256(data).digest(),
        "sha1": hashlib.sha1(data).digest(),  # noqa: S324 - Portage's own check
        "md5": hashlib.md5(data).digest(),  # noqa: S324 - Portage's own check
    }


def hello_manifest() -> Manifest:
    return Manifest.create(
        descriptor=cid_for(DAG_CBOR, dagcbor.encode({"example": "hello descriptor"})),
        # Stands for the UnixFS root Kubo computes for HELLO_BYTES.
        binpkg=cid_for(DAG_PB, b"example dag-pb root of app-misc/hello-1"),
        format="gpkg",
        **_digests(HELLO_BYTES),
        portage={
            "CPV": "app-misc/hello-1",
            "EAPI": "8",
            "SLOT": "0",
            "BUILD_TIME": "1732406400",
            "BUILD_ID": "1",
            "CHOST": "x86_64-pc-linux-gnu",
            "USE": "abi_x86_64 amd64 elibc_glibc kernel_linux",
            "IUSE": "",
            "KEYWORDS": "~amd64",
            "LICENSE": "MIT",
            "DEFINED_PHASES": "compile install",
            "REPO": "test_repo",
            "REQUIRES": "x86_64: libc.so.6",
            "DESC": "a   C program\n printing its name",
            "CFLAGS": "-O2 -pipe",  # recorded by Portage, not part of the entry
        },
        build=BuildHost(
            chost="x86_64-pc-linux-gnu",
            cbuild="x86_64-pc-linux-gnu",
            compiler=BuildCompiler(family="gcc", version="12.2.0"),
            origin="built",
            tests=False,
        ),
    )


def libfoo_manifest() -> Manifest:
    return Manifest.create(
        descriptor=cid_for(DAG_CBOR, dagcbor.encode({"example": "libfoo descriptor"})),
        binpkg=cid_for(RAW, LIBFOO_BYTES),
        format="gpkg",
        **_digests(LIBFOO_BYTES),
        portage={
            "CPV": "dev-libs/libfoo-1",
            "EAPI": "8",
            "SLOT": "0/1",
            "BUILD_TIME": "1732406401",
            "LICENSE": "MIT",
            "REPO": "test_repo",
            "RDEPEND": "",
        },
        build=BuildHost(chost="x86_64-pc-linux-gnu"),
    )


def _invalid(base: Manifest, change: Any) -> dict[str, Any]:
    value = base.to_dag()
    change(value)
    return to_dagjson(value)


def _set(key: str, item: Any) -> Any:
    return lambda v: v.__setitem__(key, item)


def invalid_examples() -> dict[str, dict[str, Any]]:
    hello = hello_manifest()
    libfoo = libfoo_manifest()
    return {
        "invalid-unknown-field": {
            "description": "a field version 1 does not have",
            "value": _invalid(hello, _set("signature", b"")),
            "error": {"class": "SchemaError", "message": "unknown field(s) signature"},
        },
        "invalid-portage-key": {
            "description": "a Packages key outside the allowed set",
            "value": _invalid(hello, lambda v: v["portage"].__setitem__("CFLAGS", "-O2")),
            "error": {"class": "SchemaError", "message": "unknown key(s) CFLAGS"},
        },
        "invalid-sha256-length": {
            "description": "sha256 written as hex text bytes instead of the raw digest",
            "value": _invalid(hello, _set("sha256", hello.sha256.hex().encode())),
            "error": {"class": "SchemaError", "message": "sha256 must be 32 bytes"},
        },
        "invalid-raw-digest": {
            "description": "a single raw block whose digest is not the file's sha256",
            "value": _invalid(libfoo, _set("binpkg", cid_for(RAW, b"other bytes"))),
            "error": {"class": "SchemaError", "message": "digest is not the file's sha256"},
        },
        "invalid-newer-type": {
            "description": "a manifest of a later version",
            "value": _invalid(hello, _set("type", "ipfsbin/manifest/2")),
            "error": {"class": "SchemaError", "message": "this ipfsbin reads"},
        },
    }


def valid_examples() -> dict[str, tuple[str, Manifest]]:
    return {
        "manifest-hello": (
            "gpkg of app-misc/hello-1 (> 1 MiB, dag-pb root) with a compiler fact, "
            "built from source, tests not run",
            hello_manifest(),
        ),
        "manifest-libfoo": (
            "small text-only package: SLOT 0/1, no compiler, a single raw block",
            libfoo_manifest(),
        ),
    }


ATTESTATION_SEED = bytes(range(32))


def _block_doc(value: Any) -> dict[str, Any]:
    cid, block = dagcbor.encode_block(value)
    return {"value": to_dagjson(value), "cid": str(cid), "block": block.hex()}


def attestation_examples() -> dict[str, dict[str, Any]]:
    from ipfsbin.trust.attestation import AttestationStatement, attest
    from ipfsbin.trust.keys import SigningKey

    key = SigningKey.from_seed(ATTESTATION_SEED)
    manifest = hello_manifest()
    manifest_cid, _ = manifest.to_block()
    signed = attest(AttestationStatement.for_manifest(manifest_cid, manifest), key)
    envelope = dagcbor.decode(signed.block)
    forged = dagcbor.decode(signed.block)
    sig = bytearray(forged["signatures"][0]["sig"])
    sig[0] ^= 1
    forged["signatures"][0]["sig"] = bytes(sig)
    return {
        "attestation-hello": {
            "description": "manifest-hello attested by the test key with seed bytes(range(32))",
            "key_seed": ATTESTATION_SEED.hex(),
            "key_id": key.key_id,
            "manifest": str(manifest_cid),
            "statement": _block_doc(dagcbor.decode(signed.payload_block)),
            "envelope": _block_doc(envelope),
        },
        "invalid-attestation-forged": {
            "description": "attestation-hello with one bit of the signature flipped",
            "statement": _block_doc(dagcbor.decode(signed.payload_block)),
            "envelope": _block_doc(forged),
            "error": {"class": "SignatureError", "message": "does not verify"},
        },
    }


def write_examples() -> None:
    EXAMPLES.mkdir(parents=True, exist_ok=True)
    for name, (description, manifest) in valid_examples().items():
        cid, block = manifest.to_block()
        doc = {
            "description": description,
            "value": to_dagjson(manifest.to_dag()),
            "cid": str(cid),
            "block": block.hex(),
        }
        (EXAMPLES / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")
    for name, doc in invalid_examples().items():
        (EXAMPLES / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")
    for name, doc in attestation_examples().items():
        (EXAMPLES / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")


# -- tests ----------------------------------------------------------------------


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return doc


VALID = sorted(p.stem for p in EXAMPLES.glob("manifest-*.json"))
INVALID = sorted(p.stem for p in EXAMPLES.glob("invalid-*.json") if "attestation" not in p.stem)


def test_examples_exist() -> None:
    assert VALID == ["manifest-hello", "manifest-libfoo"]
    assert len(INVALID) == 5


@pytest.mark.parametrize("name", VALID)
def test_valid_example_round_trips(name: str) -> None:
    doc = _load(name)
    cid = CID.from_text(doc["cid"])
    block = bytes.fromhex(doc["block"])
    manifest = Manifest.from_block(cid, block)
    # The DAG-JSON rendering in the spec and the canonical block agree ...
    assert dagcbor.encode(from_dagjson(doc["value"])) == block
    # ... and re-encoding what was decoded gives the same block and CID.
    assert manifest.to_block() == (cid, block)
    assert manifest == valid_examples()[name][1]


@pytest.mark.parametrize("name", INVALID)
def test_invalid_example_is_refused(name: str) -> None:
    doc = _load(name)
    error_class = getattr(errors, doc["error"]["class"])
    with pytest.raises(error_class, match=re.escape(doc["error"]["message"])):
        Manifest.from_dag(from_dagjson(doc["value"]))


def test_create_normalizes_portage_values() -> None:
    manifest = hello_manifest()
    assert manifest.portage["DESC"] == "a C program printing its name"
    assert "CFLAGS" not in manifest.portage
    assert "IUSE" not in manifest.portage  # empty values are left out
    assert list(manifest.portage) == sorted(manifest.portage)
    assert manifest.cpv == "app-misc/hello-1"


def test_libfoo_has_no_optional_build_facts() -> None:
    value = libfoo_manifest().to_dag()
    assert value["build"] == {"chost": "x86_64-pc-linux-gnu"}
    assert value["type"] == MANIFEST_TYPE
    assert value["binpkg"].codec == RAW


def test_portage_mapping_is_read_only() -> None:
    manifest = hello_manifest()
    with pytest.raises(TypeError):
        manifest.portage["CPV"] = "x/y-1"  # type: ignore[index]


def test_constructor_refuses_unnormalized_values() -> None:
    good = hello_manifest()
    with pytest.raises(errors.SchemaError, match="single spaces"):
        Manifest(
            descriptor=good.descriptor,
            binpkg=good.binpkg,
            format="gpkg",
            size=good.size,
            sha256=good.sha256,
            sha1=good.sha1,
            md5=good.md5,
            portage={**good.portage, "USE": " amd64"},
            build=good.build,
        )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("CPV", "hello-1", "category/name-version"),
        ("BUILD_TIME", "yesterday", "decimal digits"),
    ],
)
def test_bad_portage_values(key: str, value: str, message: str) -> None:
    doc = _load("manifest-hello")
    raw = from_dagjson(doc["value"])
    raw["portage"][key] = value
    with pytest.raises(errors.SchemaError, match=message):
        Manifest.from_dag(raw)


def test_missing_required_portage_key() -> None:
    raw = from_dagjson(_load("manifest-hello")["value"])
    del raw["portage"]["SLOT"]
    with pytest.raises(errors.SchemaError, match="lacks the key"):
        Manifest.from_dag(raw)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("descriptor", cid_for(RAW, b"x"), "dag-cbor link"),
        ("binpkg", cid_for(DAG_CBOR, b"x"), "raw or dag-pb"),
        ("format", "tbz2", "gpkg or xpak"),
        ("size", 0, "positive integer"),
        ("md5", b"\x00" * 20, "md5 must be 16 bytes"),
        ("build", {"chost": "x86_64-pc-linux-gnu", "compiler": {"family": "GCC"}}, "lacks"),
        ("build", {"chost": "x86 64"}, "without spaces"),
        ("build", {"chost": "x86_64-pc-linux-gnu", "origin": "stolen"}, "origin must be one of"),
        ("build", {"chost": "x86_64-pc-linux-gnu", "tests": 1}, "tests must be a boolean"),
        ("portage", ["CPV"], "must be a map"),
    ],
)
def test_bad_fields(field: str, value: Any, message: str) -> None:
    raw = from_dagjson(_load("manifest-hello")["value"])
    raw[field] = value
    with pytest.raises(errors.SchemaError, match=message):
        Manifest.from_dag(raw)


def test_block_hash_is_checked() -> None:
    doc = _load("manifest-libfoo")
    block = bytes.fromhex(doc["block"])
    with pytest.raises(errors.BlockMismatchError):
        Manifest.from_block(CID.from_text(_load("manifest-hello")["cid"]), block)


def test_oversized_manifest_is_refused() -> None:
    good = libfoo_manifest()
    big = Manifest.create(
        descriptor=good.descriptor,
        binpkg=good.binpkg,
        format="gpkg",
        size=good.size,
        sha256=good.sha256,
        sha1=good.sha1,
        md5=good.md5,
        portage={**good.portage, "RDEPEND": " ".join(["dev-libs/x"] * 120_000)},
        build=good.build,
    )
    with pytest.raises(errors.SchemaError, match="more than the 1048576"):
        big.to_block()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    write_examples()


def _chunks(data: bytes, size: int = 65536) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_the_bytes_a_manifest_describes_pass_as_they_stream() -> None:
    manifest = hello_manifest()
    cid = manifest.to_block()[0]
    verify_binpkg_bytes(manifest, cid, _chunks(HELLO_BYTES))
    verifier = BinpkgVerifier(manifest, cid)
    for chunk in _chunks(HELLO_BYTES, 1000):
        verifier.update(chunk)
    verifier.finish()
    assert verifier.size == manifest.size


@pytest.mark.parametrize(
    ("data", "seen"),
    [
        (HELLO_BYTES[:-1] + b"O", f"{len(HELLO_BYTES)} bytes with sha256"),
        (HELLO_BYTES[:-1], f"{len(HELLO_BYTES) - 1} bytes"),
        (HELLO_BYTES + b"!", f"more than {len(HELLO_BYTES)} bytes"),
    ],
)
def test_other_bytes_are_refused_with_what_was_seen(data: bytes, seen: str) -> None:
    manifest = hello_manifest()
    cid = manifest.to_block()[0]
    with pytest.raises(errors.TrustError, match=f"do not match manifest {cid}.*found {seen}"):
        verify_binpkg_bytes(manifest, cid, _chunks(data))


def test_the_shims_check_decides_on_sha256_and_leaves_md5_sha1_to_portage() -> None:
    manifest = hello_manifest()
    # a manifest whose Portage digests are wrong but whose sha256 is right
    odd = dataclasses.replace(manifest, md5=bytes(16), sha1=bytes(20))
    cid = odd.to_block()[0]
    shim = BinpkgVerifier(odd, cid, portage_digests=False)
    shim.update(HELLO_BYTES)
    shim.finish()
    with pytest.raises(errors.TrustError, match="do not match manifest"):
        verify_binpkg_bytes(odd, cid, _chunks(HELLO_BYTES))
    # altered bytes: refused either way
    bad = HELLO_BYTES[:-1] + b"O"
    shim = BinpkgVerifier(manifest, cid, portage_digests=False)
    shim.update(bad)
    with pytest.raises(errors.TrustError, match="do not match manifest"):
        shim.finish()


def test_too_many_bytes_stop_the_stream_at_once() -> None:
    manifest = hello_manifest()
    verifier = BinpkgVerifier(manifest, manifest.to_block()[0])
    verifier.update(HELLO_BYTES)
    with pytest.raises(errors.TrustError, match="more than"):
        verifier.update(b"x")
