"""The parallel SHA256/MD5/SHA1 hasher and the quiet Portage import."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfsbin.binpkg import Digester, FileDigests, hash_file


def _expected(data: bytes) -> FileDigests:
    return FileDigests(
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data).hexdigest(),  # noqa: S324 - Portage's index digest
        sha1=hashlib.sha1(data).hexdigest(),  # noqa: S324 - Portage's index digest
    )


@given(st.lists(st.binary(max_size=5000), max_size=40))
def test_digester_equals_hashlib_over_the_concatenation(chunks: list[bytes]) -> None:
    with Digester() as digester:
        for chunk in chunks:
            digester.update(chunk)
        assert digester.finish() == _expected(b"".join(chunks))


def test_many_large_chunks_keep_their_order() -> None:
    # More chunks than the hashers' queues hold, so update() must wait for them.
    chunks = [os.urandom(64 * 1024) for _ in range(50)]
    with Digester() as digester:
        for chunk in chunks:
            digester.update(chunk)
        assert digester.finish() == _expected(b"".join(chunks))


def test_update_after_finish_is_misuse() -> None:
    digester = Digester()
    digester.finish()
    with pytest.raises(RuntimeError, match="after finish"):
        digester.update(b"late")
    digester.close()  # idempotent


def test_hash_file(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert hash_file(path) == _expected(data)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert hash_file(empty) == _expected(b"")
    with pytest.raises(FileNotFoundError):
        hash_file(tmp_path / "missing")


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("size", -1, "non-negative"),
        ("sha256", "AB" * 32, "64 lowercase hex"),
        ("md5", "0" * 31, "32 lowercase hex"),
        ("sha1", "g" * 40, "40 lowercase hex"),
    ],
)
def test_file_digests_validate(field: str, value: object, fragment: str) -> None:
    good = _expected(b"x")
    values = {"size": good.size, "sha256": good.sha256, "md5": good.md5, "sha1": good.sha1}
    with pytest.raises(ValueError, match=fragment):
        FileDigests(**{**values, field: value})  # type: ignore[arg-type]


def test_portage_import_prints_no_user_warning() -> None:
    # A fresh interpreter without PORTAGE_USERNAME/GRPNAME: on hosts without a
    # portage user Portage would print "'portage' user or group missing".
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAGE_")}
    code = (
        "from ipfsbin.binpkg import _portage\n"
        "_portage.reader_settings()\n"
        "import portage.data\n"
        "int(portage.data.portage_gid), int(portage.data.secpass)\n"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
