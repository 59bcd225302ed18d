"""The client configuration file: defaults, the per-user override, and refusals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ipfsbin.cli.main import main
from ipfsbin.config import DEFAULT_LISTEN, load_config, parse_seconds, parse_size
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
    assert config.serve.listen == DEFAULT_LISTEN and config.serve.port == 7711
    assert config.serve.serves("k51anything") and config.target is None


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
    ],
)
def test_bad_files_are_refused(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config((path,))
    assert fragment in caught.value.message


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
    assert config.target == "x86_64_v3" and len(config.serve.subscriptions) == 1
    assert config.prefetch.mode == "@world" and config.prefetch.budget == 1536 << 20
    assert config.prefetch.rate == 20 << 20 and config.gc.keep_size == 10 << 30


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500M", 500 << 20),
        ("2G", 2 << 30),
        ("1.5GiB", 1536 << 20),
        ("7", 7),
        (1024, 1024),
        ("3kb", 3072),
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
