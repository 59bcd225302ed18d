"""Finding the Kubo binary, and the advice when it cannot be built."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipfsbin.errors import KuboInstallError
from ipfsbin.kubo import gobuild, install


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("IPFSBIN_KUBO_BIN", raising=False)
    monkeypatch.delenv("IPFSBIN_KUBO_VERSION", raising=False)
    return tmp_path / "cache"


def test_the_cached_binary_is_keyed_by_version(empty_cache: Path) -> None:
    assert install.cached_binary_path() == empty_cache / "ipfsbin/kubo/v0.39.0/ipfs"
    assert install.find_kubo() is None


def test_a_cached_binary_of_another_version_is_not_used(empty_cache: Path) -> None:
    fake = install.cached_binary_path()
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 'ipfs version 0.38.0'\n")
    fake.chmod(0o755)
    assert install.binary_version(fake) == "0.38.0"
    assert install.find_kubo() is None


def test_the_env_override_is_used_as_given(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = empty_cache / "my-ipfs"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("IPFSBIN_KUBO_BIN", str(fake))
    assert install.find_kubo() == fake
    assert install.ensure_kubo() == fake


def test_a_bad_env_override_is_an_install_error(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPFSBIN_KUBO_BIN", str(empty_cache / "nothing"))
    with pytest.raises(KuboInstallError, match="is not an executable file") as caught:
        install.ensure_kubo()
    assert caught.value.hint is not None


def test_missing_go_says_what_to_install(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(empty_cache))
    monkeypatch.setattr(gobuild, "_GO_FALLBACKS", ())
    assert install.find_go() is None
    with pytest.raises(KuboInstallError, match="Go toolchain") as caught:
        install.ensure_kubo()
    assert caught.value.hint is not None and "Go >= 1.25" in caught.value.hint


def test_main_prints_the_path(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = empty_cache / "ipfs"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("IPFSBIN_KUBO_BIN", str(fake))
    assert install.main() == 0
    assert capsys.readouterr().out.strip() == str(fake)
