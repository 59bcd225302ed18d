"""``ipfsbin publish`` of real emerge-built binpkgs into real Kubo, read back on a second node."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ipfsbin.builder.publish import detect_host_facts, publish_binpkgs
from ipfsbin.cli.main import main
from ipfsbin.codec.cid import CID
from ipfsbin.errors import BinpkgError, SchemaError
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.manifest import Manifest
from ipfsbin.trust.attestation import Attestation, verify_attestation
from ipfsbin.trust.keys import KeyStore, SigningKey
from tests.playground.builder import BuilderPlayground
from tests.playground.craft import replace_signed_metadata, rewrite_gpkg
from tests.playground.fixtures import builder_playground  # noqa: F401
from tests.playground.signing import gpg_available, keyring, sign_gpkg

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HELLO, STRIPPED = "app-misc/hello-1", "app-misc/stripped-1"
USESFOO, LIBFOO, USETEST = "app-misc/usesfoo-1", "dev-libs/libfoo-1", "app-misc/usetest-1"

Cli = Callable[..., tuple[int, str, str]]


@dataclasses.dataclass
class Nodes:
    publisher: ManagedNode
    reader: ManagedNode
    client: KuboClient


@pytest.fixture(scope="module")
def nodes(kubo_nodes: Any) -> Iterator[Nodes]:
    publisher, reader = kubo_nodes(2)
    with publisher.client() as client:
        yield Nodes(publisher=publisher, reader=reader, client=client)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ipfsbin-home")


@pytest.fixture(scope="module")
def cli(
    nodes: Nodes,
    home: Path,
    builder_playground: BuilderPlayground,  # noqa: F811
) -> Cli:
    """Run ``ipfsbin ARGS`` in-process against the publisher node; (exit code, stdout, stderr)."""
    env = {
        "IPFSBIN_HOME": str(home),
        "IPFSBIN_API": nodes.publisher.api_multiaddr,
        "PORTAGE_CONFIGROOT": str(builder_playground.eprefix),
    }

    def run(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as mp:
            for name, value in env.items():
                mp.setenv(name, value)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(list(args))
        return code, out.getvalue(), err.getvalue()

    return run


@pytest.fixture(scope="module")
def key_id(home: Path) -> str:
    # Created through the library so the CLI tests below find exactly one key.
    return KeyStore(home / "keys").generate("builder").key_id


def _state(client: KuboClient) -> tuple[frozenset[CID], int]:
    """Recursive pins and the number of blocks in the repo: what publishing changes."""
    return frozenset(p.cid for p in client.pin_ls()), client.repo_stat().num_objects


def _bytes(value: Any) -> bytes:
    raw = value["/"]["bytes"]
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


# -- keys ------------------------------------------------------------------------


def test_key_gen_list_show(cli: Cli, key_id: str) -> None:
    code, out, _ = cli("key", "gen", "second")
    assert code == 0
    second = out.strip()
    assert second.startswith("k51") and second != key_id

    code, out, _ = cli("key", "list", "--json")
    assert code == 0
    assert [(k["name"], k["key_id"]) for k in json.loads(out)] == [
        ("builder", key_id),
        ("second", second),
    ]
    code, out, _ = cli("key", "show", "builder", "--json")
    shown = json.loads(out)
    assert shown["key_id"] == key_id and shown["path"].endswith("keys/builder.pem")
    assert Path(shown["path"]).stat().st_mode & 0o077 == 0

    code, _, err = cli("key", "gen", "second")
    assert code == 1 and "already exists" in err
    code, _, err = cli("key", "show", "missing")
    assert code == 1 and "no key named 'missing'" in err
    # Two keys now: publish must be told which.
    code, _, err = cli("publish", "/nonexistent.gpkg.tar")
    assert code == 1 and "several signing keys" in err


# -- publishing ------------------------------------------------------------------


@pytest.fixture(scope="module")
def published(
    cli: Cli,
    key_id: str,
    builder_playground: BuilderPlayground,  # noqa: F811
    nodes: Nodes,
) -> dict[str, Any]:
    path = builder_playground.binpkgs[USESFOO]
    before = _state(nodes.client)
    code, out, err = cli("publish", str(path), "--key", "builder", "--json")
    assert code == 0, err
    results = json.loads(out)
    assert len(results) == 1
    return {"result": results[0], "before": before, "after": _state(nodes.client), "path": path}


def test_publish_prints_cids(published: dict[str, Any], key_id: str) -> None:
    result = published["result"]
    assert result["cpv"] == USESFOO
    for field in ("binpkg", "descriptor", "manifest", "attestation", "platform", "statement"):
        assert CID.from_text(result[field]).version == 1
    assert result["key"] == key_id
    before_pins, before_blocks = published["before"]
    after_pins, after_blocks = published["after"]
    assert after_pins - before_pins == {
        CID.from_text(result[f]) for f in ("binpkg", "manifest", "attestation")
    }
    assert after_blocks > before_blocks


def test_second_node_sees_manifest_and_bytes(
    published: dict[str, Any], nodes: Nodes, ipfs_cli: Any
) -> None:
    result = published["result"]
    # The real ipfs CLI on another node resolves the manifest over bitswap.
    dag = json.loads(ipfs_cli(nodes.reader, "dag", "get", result["manifest"]))
    assert dag["type"] == "ipfsbin/manifest/1"
    assert dag["descriptor"] == {"/": result["descriptor"]}
    assert dag["binpkg"] == {"/": result["binpkg"]}
    assert dag["portage"]["CPV"] == USESFOO
    assert dag["portage"]["RDEPEND"] == "dev-libs/libfoo:0/1="
    data = ipfs_cli(nodes.reader, "cat", result["binpkg"])
    assert hashlib.sha256(data).digest() == _bytes(dag["sha256"])
    assert len(data) == dag["size"] == published["path"].stat().st_size
    assert hashlib.md5(data).digest() == _bytes(dag["md5"])  # noqa: S324 - Portage's check


def test_attestation_from_second_node_verifies(
    published: dict[str, Any], nodes: Nodes, ipfs_cli: Any, key_id: str
) -> None:
    result = published["result"]
    envelope = ipfs_cli(nodes.reader, "block", "get", result["attestation"])
    statement = ipfs_cli(nodes.reader, "block", "get", result["statement"])
    manifest_cid = CID.from_text(result["manifest"])
    manifest = Manifest.from_block(
        manifest_cid, ipfs_cli(nodes.reader, "block", "get", result["manifest"])
    )
    attestation = Attestation.from_blocks(
        envelope, statement, cid=CID.from_text(result["attestation"])
    )
    check = verify_attestation(
        attestation, allowed_keys=[key_id], manifest=(manifest_cid, manifest)
    )
    assert check.ok
    assert attestation.statement.sha256 == manifest.sha256
    dag = json.loads(ipfs_cli(nodes.reader, "dag", "get", result["descriptor"]))
    assert dag["cpv"] == USESFOO
    assert dag["deps"] == [
        {"name": "dev-libs/libfoo", "slot": "0", "subslot": "1", "runtime": True}
    ]


def test_publishing_twice_creates_nothing_new(
    published: dict[str, Any], cli: Cli, nodes: Nodes
) -> None:
    before = _state(nodes.client)
    code, out, err = cli("publish", str(published["path"]), "--key", "builder", "--json")
    assert code == 0, err
    again = json.loads(out)[0]
    first = published["result"]
    for field in ("binpkg", "platform", "descriptor", "manifest", "statement", "attestation"):
        assert again[field] == first[field]
    assert again["new_pins"] == []
    assert _state(nodes.client) == before


def test_human_output_and_several_packages(
    cli: Cli,
    builder_playground: BuilderPlayground,  # noqa: F811
) -> None:
    paths = [str(builder_playground.binpkgs[c]) for c in (LIBFOO, USETEST)]
    code, out, err = cli("publish", *paths, "--key", "builder")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == LIBFOO and lines[5] == USETEST
    assert lines[1].split()[0] == "binpkg" and lines[3].split()[0] == "manifest"
    assert CID.from_text(lines[3].split()[1]).codec == 0x71


# -- bad input -------------------------------------------------------------------


def _truncated(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    return dst


def _corrupt(src: Path, dst: Path) -> Path:
    data = bytearray(src.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    dst.write_bytes(bytes(data))
    return dst


def _plain_tar(src: Path, dst: Path) -> Path:
    with tarfile.open(dst, "w") as tar:
        tar.add(src, arcname="something.txt")
    return dst


def _empty(src: Path, dst: Path) -> Path:
    dst.write_bytes(b"")
    return dst


def _directory(src: Path, dst: Path) -> Path:
    dst.mkdir()
    return dst


def _dotdot(src: Path, dst: Path) -> Path:
    return rewrite_gpkg(src, dst, extra_image=[("image/../../../etc/evil", b"owned\n")])


def _no_chost(src: Path, dst: Path) -> Path:
    return rewrite_gpkg(src, dst, drop_metadata=["CHOST"])


BAD_INPUTS: dict[str, tuple[Callable[[Path, Path], Path], str]] = {
    "truncated": (_truncated, "Portage rejects"),
    "corrupt": (_corrupt, "Portage rejects"),
    "dotdot-member": (_dotdot, "leaves the image directory"),
    "no-chost": (_no_chost, "no CHOST"),
    "plain-tar": (_plain_tar, "without the gpkg-1 marker"),
    "empty": (_empty, "is empty"),
    "directory": (_directory, "is a directory"),
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_input_gives_one_line_and_publishes_nothing(
    kind: str,
    cli: Cli,
    key_id: str,
    nodes: Nodes,
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
) -> None:
    make, fragment = BAD_INPUTS[kind]
    good = builder_playground.binpkgs[STRIPPED]
    bad = make(good, tmp_path / f"{kind}-1.gpkg.tar")
    before = _state(nodes.client)
    # A good package next to the bad one is not published either: checks come first.
    code, out, err = cli("publish", str(good), str(bad), "--key", "builder")
    assert code == 1
    assert out == ""
    errors = [line for line in err.splitlines() if line.startswith("ipfsbin: error:")]
    assert len(errors) == 1, err
    assert str(bad) in errors[0]
    assert fragment in errors[0]
    assert _state(nodes.client) == before
    host = detect_host_facts(config_root=builder_playground.eprefix)
    with pytest.raises(BinpkgError, match=re.escape(fragment)):
        publish_binpkgs([bad], client=nodes.client, key=SigningKey.generate(), host=host)
    assert _state(nodes.client) == before


def test_restricted_package_is_refused_unless_allowed(
    cli: Cli,
    key_id: str,
    nodes: Nodes,
    builder_playground: BuilderPlayground,  # noqa: F811
) -> None:
    hello = str(builder_playground.binpkgs[HELLO])  # RESTRICT=bindist
    before = _state(nodes.client)
    code, _, err = cli("publish", hello, "--key", "builder")
    assert code == 1 and "RESTRICT=bindist" in err and "--allow-restricted" in err
    assert _state(nodes.client) == before
    code, out, err = cli("publish", hello, "--key", "builder", "--allow-restricted", "--json")
    assert code == 0, err
    assert json.loads(out)[0]["cpv"] == HELLO


def test_failure_after_add_undoes_its_pins(
    nodes: Nodes,
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
) -> None:
    # Copies with different bytes, so their binpkg pins are new to this node.
    src = builder_playground.binpkgs[STRIPPED]
    extra = [("image/x", b"1")]
    copy = rewrite_gpkg(src, tmp_path / "stripped-1-2.gpkg.tar", extra_image=extra)
    # A Packages entry too big for one block fails after the binpkg was added and pinned.
    big = " ".join(["dev-libs/x"] * 120_000).encode()
    oversized = rewrite_gpkg(
        src, tmp_path / "stripped-1-3.gpkg.tar", extra_image=extra, set_metadata={"RDEPEND": big}
    )
    host = detect_host_facts(config_root=builder_playground.eprefix)
    key = SigningKey.from_seed(b"\x05" * 32)
    before = _state(nodes.client)
    with pytest.raises(SchemaError, match="more than the 1048576"):
        publish_binpkgs([oversized], client=nodes.client, key=key, host=host)
    assert _state(nodes.client)[0] == before[0]
    # The same package with a normal entry then publishes normally.
    [result] = publish_binpkgs([copy], client=nodes.client, key=SigningKey.generate(), host=host)
    assert len(result.new_pins) == 3


def test_a_file_changed_while_publishing_is_refused(
    nodes: Nodes,
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
) -> None:
    copy = tmp_path / "usetest-1-1.gpkg.tar"
    shutil.copyfile(builder_playground.binpkgs[USETEST], copy)
    size = copy.stat().st_size
    host = detect_host_facts(config_root=builder_playground.eprefix)

    def grow(path: Path, done: int, total: int) -> None:
        if copy.stat().st_size == size:  # Portage's build finishing under our feet
            with copy.open("ab") as handle:
                handle.write(b"\0" * 512)

    before = _state(nodes.client)
    with pytest.raises(BinpkgError, match="changed while it was being published"):
        publish_binpkgs(
            [copy], client=nodes.client, key=SigningKey.generate(), host=host, progress=grow
        )
    assert _state(nodes.client)[0] == before[0]


# -- the overlapped pipeline -----------------------------------------------------


def _large(src: Path, dst: Path, *extra: tuple[str, bytes]) -> Path:
    """A copy of ``src`` of about 3 MB (several 1 MiB blocks once added)."""
    payload = ("image/usr/share/payload", os.urandom(3 * 1024 * 1024))
    return rewrite_gpkg(src, dst, extra_image=[payload, *extra])


def test_a_check_failing_after_the_add_leaves_the_repo_as_it_was(
    nodes: Nodes,
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
) -> None:
    src = builder_playground.binpkgs[STRIPPED]
    good = _large(src, tmp_path / "stripped-1-3.gpkg.tar")
    # Passes the cheap read; only the image scan, made while it is added, finds it.
    bad = _large(src, tmp_path / "stripped-1-4.gpkg.tar", ("image/../../etc/evil", b"x"))
    host = detect_host_facts(config_root=builder_playground.eprefix)
    before = _state(nodes.client)
    with pytest.raises(BinpkgError, match="leaves the image directory") as err:
        publish_binpkgs([good, bad], client=nodes.client, key=SigningKey.generate(), host=host)
    assert str(bad) in err.value.message
    # Both files were added; the good one was pinned. Pins and blocks are gone again.
    assert _state(nodes.client) == before
    [result] = publish_binpkgs([good], client=nodes.client, key=SigningKey.generate(), host=host)
    assert result.size == good.stat().st_size
    assert nodes.client.files_stat(result.binpkg).blocks >= 3


def test_cli_in_a_fresh_process_prints_only_its_own_lines(
    nodes: Nodes,
    home: Path,
    key_id: str,
    published: dict[str, Any],
    builder_playground: BuilderPlayground,  # noqa: F811
) -> None:
    # No PORTAGE_USERNAME/GRPNAME: Portage must not warn about a missing portage user.
    env = {k: v for k, v in os.environ.items() if k not in ("PORTAGE_USERNAME", "PORTAGE_GRPNAME")}
    env |= {
        "IPFSBIN_HOME": str(home),
        "IPFSBIN_API": nodes.publisher.api_multiaddr,
        "PORTAGE_CONFIGROOT": str(builder_playground.eprefix),
    }
    ipfsbin = [sys.executable, "-c", "from ipfsbin.cli.main import run; run()"]
    hello = str(builder_playground.binpkgs[HELLO])
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [*ipfsbin, "publish", hello, "--key", "builder"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("ipfsbin: error: ") and "RESTRICT=bindist" in done.stderr
    assert "portage" not in done.stderr.replace(hello, "")
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [*ipfsbin, "publish", str(published["path"]), "--key", "builder", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)[0]["manifest"] == published["result"]["manifest"]


# -- provenance, signatures, Portage's own output -------------------------------


def _manifest(client: KuboClient, cid: CID) -> Manifest:
    return Manifest.from_block(cid, client.block_get(cid))


def test_manifest_records_how_the_binpkg_was_made(
    nodes: Nodes,
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
) -> None:
    host = detect_host_facts(config_root=builder_playground.eprefix)
    key = SigningKey.generate()
    built = builder_playground.binpkgs[LIBFOO]
    quick = builder_playground.quickpkg(f"={LIBFOO}", tmp_path / "quick")
    [b] = publish_binpkgs([built], client=nodes.client, key=key, host=host)
    with pytest.raises(BinpkgError, match="quickpkg"):
        publish_binpkgs([quick], client=nodes.client, key=key, host=host)
    [q] = publish_binpkgs([quick], client=nodes.client, key=key, host=host, allow_quickpkg=True)
    made = _manifest(nodes.client, b.manifest).build
    assert (made.origin, made.tests) == ("built", False)
    repackaged = _manifest(nodes.client, q.manifest).build
    assert (repackaged.origin, repackaged.tests) == ("quickpkg", False)
    # The attestation signs the manifest, so the facts are the builder's statement.
    assert q.manifest != b.manifest
    # Whether the tests ran; the test flag stays out of the descriptor.
    results = {}
    for features in ("test", "-test"):
        path = builder_playground.build_binpkg(
            "app-misc/tested", tmp_path / features, {"FEATURES": features}
        )
        [results[features]] = publish_binpkgs([path], client=nodes.client, key=key, host=host)
    with_tests = _manifest(nodes.client, results["test"].manifest)
    without = _manifest(nodes.client, results["-test"].manifest)
    assert with_tests.build.tests is True and without.build.tests is False
    assert "test" in with_tests.portage["USE"].split()
    # The same build as far as a client is concerned: one descriptor.
    assert results["test"].descriptor == results["-test"].descriptor


def _fresh_cli(
    nodes: Nodes, home: Path, builder: BuilderPlayground, **extra: str
) -> Callable[..., subprocess.CompletedProcess[str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("PORTAGE_USERNAME", "PORTAGE_GRPNAME")}
    env |= {
        "IPFSBIN_HOME": str(home),
        "IPFSBIN_API": nodes.publisher.api_multiaddr,
        "PORTAGE_CONFIGROOT": str(builder.eprefix),
        "NO_COLOR": "1",
        **extra,
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-c", "from ipfsbin.cli.main import run; run()", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    return run


def _only_own_lines(stderr: str) -> None:
    for line in stderr.splitlines():
        assert line.startswith(("ipfsbin: error: ", "ipfsbin: hint: ")), stderr


@pytest.mark.skipif(not gpg_available(), reason="needs gpg and flock")
def test_signed_gpkgs_publish_silently_and_a_bad_signature_is_refused(
    nodes: Nodes,
    home: Path,
    key_id: str,
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
) -> None:
    gnupg = tmp_path / "gnupg"
    src = builder_playground.binpkgs[USETEST]
    with keyring(gnupg) as fingerprint:
        signed = sign_gpkg(builder_playground, src, tmp_path / "s" / src.name, gnupg, fingerprint)
        run = _fresh_cli(nodes, home, builder_playground, BINPKG_GPG_VERIFY_GPG_HOME=str(gnupg))
        done = run("publish", str(signed), "--key", "builder", "--json")
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        tampered = replace_signed_metadata(
            signed, tmp_path / "t" / src.name, "CFLAGS", "-O3 -ffast-math\n"
        )
        before = _state(nodes.client)
        done = run("publish", str(tampered), "--key", "builder")
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith("ipfsbin: error: ") and "changed after signing" in lines[0]
    assert lines[1].startswith("ipfsbin: hint: ")
    assert _state(nodes.client) == before
    # The builder's keyring decides: without the signer's key, the good one is refused too.
    other = _fresh_cli(nodes, home, builder_playground, BINPKG_GPG_VERIFY_GPG_HOME=str(tmp_path))
    done = other("publish", str(signed), "--key", "builder")
    assert done.returncode == 1 and "not in the keyring" in done.stderr
    _only_own_lines(done.stderr)


def test_uncompressed_gpkg_publishes_and_errors_start_their_own_line(
    nodes: Nodes,
    home: Path,
    key_id: str,
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = builder_playground.quickpkg(
        f"={USESFOO}", tmp_path / "none", {"BINPKG_COMPRESS": "none"}
    )
    run = _fresh_cli(nodes, home, builder_playground)
    done = run("publish", str(path), "--key", "builder", "--allow-quickpkg", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    # A refusal of the same package is ipfsbin's own lines, each starting a line.
    done = run("publish", str(path), "--key", "builder")
    assert done.returncode == 1 and "quickpkg" in done.stderr
    _only_own_lines(done.stderr)
