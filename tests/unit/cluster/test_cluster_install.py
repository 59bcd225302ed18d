"""Finding IPFS Cluster's commands, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipfsbin.cluster import install
from ipfsbin.errors import KuboInstallError


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("IPFSBIN_CLUSTER_DIR", raising=False)
    return tmp_path / "cache"


def _fake(directory: Path, version: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in install.CLUSTER_COMMANDS:
        script = directory / name
        script.write_text(f"#!/bin/sh\necho '{name} version {version}'\n")
        script.chmod(0o755)


def test_the_build_is_cached_per_version(empty_cache: Path) -> None:
    assert install.cached_cluster_dir() == empty_cache / "ipfsbin/ipfs-cluster/v1.1.6"
    assert install.find_cluster() is None


def test_a_cached_build_of_another_version_is_not_used(empty_cache: Path) -> None:
    _fake(install.cached_cluster_dir(), "1.1.5")
    assert install.cluster_version(install.cached_cluster_dir() / "ipfs-cluster-ctl") == "1.1.5"
    assert install.find_cluster() is None
    _fake(install.cached_cluster_dir(), "1.1.6")
    found = install.find_cluster()
    assert found is not None and found.directory == install.cached_cluster_dir()


def test_the_env_override_is_used_as_given_or_refused(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = empty_cache / "mine"
    _fake(mine, "0.0.1")
    monkeypatch.setenv("IPFSBIN_CLUSTER_DIR", str(mine))
    assert install.ensure_cluster().ctl == mine / "ipfs-cluster-ctl"
    assert install.main() == 0 and capsys.readouterr().out.strip() == str(mine)

    monkeypatch.setenv("IPFSBIN_CLUSTER_DIR", str(empty_cache / "nothing"))
    with pytest.raises(KuboInstallError, match="does not hold executable") as caught:
        install.ensure_cluster()
    assert caught.value.hint is not None
    assert install.main() == 1
    assert "install-cluster: hint:" in capsys.readouterr().err
