"""The client configuration file: defaults, the per-user override, and refusals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ipfsbin.cli.main import main
from ipfsbin.config import DEFAULT_LISTEN, load_config, parse_seconds, parse_size
from ipfsbin.descriptor import EXACT, SAME_ISA, SharingPolicy
from ipfsbin.errors import ConfigError


def _files(tmp_path: Path, system: str, user: str) -> tuple[Path, Path]:
    a, b = tmp_path / "system.toml", tmp_path / "user.toml"
    a.write_text(system)
    b.write_text(user)
    return a, b


def test_defaults_without_files(tmp_path: Path) -> None:
    config = load_config((tmp_path / "none.toml",))
    assert config.policy.min_builders == 1
    assert config.policy.allowed_builders == frozenset()
    assert config.policy.max_head_age is None
    assert config.policy.sharing == EXACT
    assert config.serve.listen == DEFAULT_LISTEN and config.serve.port == 7711
    assert config.serve.serves("k51anything") and config.target is None
    assert config.replica == "host"  # a client keeps what its host could use


def test_user_file_overrides_key_by_key(tmp_path: Path) -> None:
    files = _files(
        tmp_path,
        '[policy]\nmin_builders = 2\nmax_head_age = "14d"\n[serve]\nlisten = "0.0.0.0:8000"\n',
        '[policy]\nmin_builders = 3\n[serve]\nsubscriptions = ["k51abc"]\n'
        '[host]\ntarget = "x86_64_v2"\n',
    )
    config = load_config(files)
    assert config.policy.min_builders == 3
    assert config.policy.max_head_age == 14 * 86400
    assert config.serve.listen == "0.0.0.0:8000"
    assert config.serve.serves("k51abcdef") and not config.serve.serves("k51other")
    assert config.target == "x86_64_v2"
    assert config.sources == files


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[policy]\nmin_builder = 2\n", "unknown key(s) min_builder in [policy]"),
        ("[polcy]\n", "unknown table [polcy]"),
        ("[policy]\nmin_builders = -1\n", "policy.min_builders must be a whole number"),
        ('[policy]\nmax_head_age = "two weeks"\n', "expected a duration"),
        ('[serve]\nlisten = "localhost"\n', "expected HOST:PORT"),
        ("[policy]\nallowed_builders = [1]\n", "list of non-empty strings"),
        ("[policy\n", "is not valid TOML"),
        ('[gc]\nkeep_size = "lots"\n', "gc.keep_size is 'lots', expected a size"),
        ("[gc]\nkeep_size = -1\n", "gc.keep_size is -1, expected a size"),
        ('[host]\nreplica = "some"\n', "host.replica is 'some', expected one of host, full"),
        ('[policy]\nsharing = "same-arch"\n', "'same-arch' is not a sharing policy"),
        ('[policy]\nsharing = ["opt", "isa"]\n', "isa cannot differ by policy"),
        ("[policy]\nsharing = 3\n", "'3' is not a sharing policy"),
    ],
)
def test_bad_files_are_refused(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config((path,))
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ('sharing = "exact"', EXACT),
        ('sharing = "same-isa"', SAME_ISA),
        ('sharing = ["opt", "flags"]', SharingPolicy(may_differ=frozenset({"opt", "flags"}))),
        ("sharing = []", EXACT),
    ],
)
def test_sharing_policy(tmp_path: Path, text: str, policy: SharingPolicy) -> None:
    path = tmp_path / "ipfsbin.toml"
    path.write_text(f"[policy]\n{text}\n")
    assert load_config((path,)).policy.sharing == policy


def test_a_bad_sharing_policy_says_what_to_write(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[policy]\nsharing = "relaxed"\n')
    with pytest.raises(ConfigError) as caught:
        load_config((path,))
    assert caught.value.hint is not None and 'sharing = "same-isa"' in caught.value.hint


def test_durations() -> None:
    assert parse_seconds("1d12h", "x") == 36 * 3600
    with pytest.raises(ConfigError):
        parse_seconds("0s", "x")


def test_cli_reports_a_bad_file_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IPFSBIN_HOME", str(tmp_path))
    monkeypatch.setenv("IPFSBIN_SYSTEM_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "config").mkdir()
    (tmp_path / "config/ipfsbin.toml").write_text("[policy]\nmin_builder = 2\n")
    assert main(["host"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ipfsbin: error: ") and "unknown key(s) min_builder" in err


def test_the_documented_example(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[2] / "schema/config.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "ipfsbin.toml"
    path.write_text(example)
    config = load_config((path,))
    assert config.policy.min_builders == 2 and len(config.policy.allowed_builders) == 1
    assert config.policy.max_head_age == 14 * 86400
    assert config.policy.sharing == SAME_ISA
    assert config.target == "x86_64_v3" and len(config.serve.subscriptions) == 1
    assert config.gc.keep_size == 20 * 1024**3
    assert config.prefetch.mode == "@world" and config.prefetch.budget == 1536 << 20
    assert config.prefetch.rate == 20 << 20
    assert config.replica == "full"
    assert config.share.enabled and config.share.pkgdir == Path("/var/cache/binpkgs")
    assert config.share.batch == 64 and not config.share.allow_quickpkg


def test_sharing_is_off_until_opted_in(tmp_path: Path) -> None:
    assert not load_config((tmp_path / "none.toml",)).share.enabled
    files = _files(
        tmp_path,
        'share = true\n[sharing]\npkgdir = "/srv/binpkgs"\nallow_quickpkg = true\n',
        "[sharing]\nbatch = 8\nskip_indexed = false\n",
    )
    share = load_config(files).share
    assert share.enabled and share.pkgdir == Path("/srv/binpkgs")
    assert share.allow_quickpkg and not share.allow_restricted and not share.allow_user_patches
    assert share.batch == 8 and not share.skip_indexed


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('share = "yes"\n', "share must be true or false"),
        ("[sharing]\nallow_quickpkg = 1\n", "sharing.allow_quickpkg must be true or false"),
        ("[sharing]\nbatch = 0\n", "sharing.batch must be a whole number 1..4096"),
        ('[sharing]\npkgdir = ""\n', "sharing.pkgdir must be a non-empty string"),
        ("[sharing]\nallow_patches = true\n", "unknown key(s) allow_patches in [sharing]"),
        ("shared = true\n", "unknown key shared outside a table; expected share"),
    ],
)
def test_bad_sharing_settings_are_refused(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_config((path,))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500M", 500 << 20),
        ("2G", 2 << 30),
        ("1.5GiB", 1536 << 20),
        ("7", 7),
        (1024, 1024),
        ("3kb", 3072),
        ("1.5TiB", int(1.5 * 1024**4)),
        ("4096", 4096),
        ("2 kb", 2048),
    ],  # fmt: skip
)
def test_sizes(text: str | int, expected: int) -> None:
    assert parse_size(text, "x") == expected


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[prefetch]\nmode = "@system"\n', "prefetch.mode is '@system', expected one of off"),
        ('[prefetch]\nbudget = "lots"\n', "prefetch.budget is 'lots', expected a size"),
        ("[gc]\nkeep_size = -1\n", "gc.keep_size is -1, expected a size"),
    ],
)
def test_bad_prefetch_and_gc_settings(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "ipfsbin.toml"
    path.write_text(table)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config((path,))
