"""The client's configuration: ``/etc/ipfsbin/ipfsbin.toml`` and a per-user override.

The per-user file (``<config dir>/ipfsbin.toml``; ``$IPFSBIN_HOME/config`` in
tests) is read after the system one; a key it sets replaces the system's, key
by key within each table. ``IPFSBIN_SYSTEM_CONFIG`` names another system file
(tests, packagers). The format, with an example, is in ``schema/config.md``::

    [policy]
    min_builders = 1            # agreeing builder attestations an entry needs
    allowed_builders = []       # builder key IDs; empty: every builder of the trust root
    max_head_age = "14d"        # refuse a head whose commit is older (freeze); unset: no limit
    sharing = "exact"           # or "same-isa", or a list of "opt", "math", "flags"

    [serve]
    listen = "127.0.0.1:7711"
    subscriptions = []          # IPNS names or their prefixes; empty: every subscription

    [host]
    target = ""                 # microarchitecture to assume instead of this CPU's
    replica = "host"            # keep the index entries this host could use; "full": all

    [gc]
    keep_size = ""              # budget for kept packages (`ipfsbin gc`); empty: no limit

    share = true                # top level: publish what this host builds (``ipfsbin share``)
    [sharing]                   # what is shared, and the filters (each one switched off here)
    pkgdir = "/var/cache/binpkgs"

    [prefetch]
    mode = "off"                # "@world" or "@installed": fetch updates when a head moves
    budget = "2G"               # most bytes prefetched packages may hold
    rate = "10M"                # most bytes a second prefetch reads

    [gc]
    keep_size = ""              # budget for kept packages (`ipfsbin gc`); empty: no limit

Unknown tables and keys are refused, so a misspelt knob never silently keeps
its default.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ipfsbin import paths
from ipfsbin.descriptor.verdict import EXACT, PREFERENCE_AXES, SharingPolicy
from ipfsbin.errors import ConfigError

__all__ = [
    "DEFAULT_LISTEN",
    "ClientConfig",
    "ClientPolicy",
    "GcConfig",
    "PrefetchConfig",
    "ServeConfig",
    "ShareConfig",
    "config_paths",
    "load_config",
    "parse_config",
    "parse_seconds",
    "parse_size",
]

DEFAULT_LISTEN: Final = "127.0.0.1:7711"
SYSTEM_CONFIG: Final = Path("/etc/ipfsbin/ipfsbin.toml")
_KEYS: Final = {
    "policy": frozenset({"min_builders", "allowed_builders", "max_head_age", "sharing"}),
    "serve": frozenset({"listen", "subscriptions"}),
    "host": frozenset({"target", "replica"}),
    "prefetch": frozenset({"mode", "budget", "rate"}),
    "gc": frozenset({"keep_size"}),
    "sharing": frozenset(
        {
            "pkgdir",
            "key",
            "allow_quickpkg",
            "allow_restricted",
            "allow_user_patches",
            "skip_indexed",
            "batch",
            "workers",
        }
    ),
}
# Keys allowed outside any table.
_TOP: Final = frozenset({"share"})
DEFAULT_PKGDIR: Final = Path("/var/cache/binpkgs")
_REPLICAS: Final = ("host", "full")
_SIZE: Final = re.compile(r"^(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]?)(?:i?B)?$", re.IGNORECASE)
_SIZE_UNITS: Final = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
PREFETCH_MODES: Final = ("off", "@world", "@installed")
_DURATION: Final = re.compile(r"(\d+)(s|m|h|d)")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LISTEN: Final = re.compile(r"^(?P<host>[0-9A-Za-z.:\[\]-]+):(?P<port>\d{1,5})$")


def parse_seconds(text: str, what: str) -> int:
    """``"90s"``, ``"12h"``, ``"14d"``, ``"1d12h"`` as seconds; ``ConfigError`` otherwise."""
    compact = text.replace(" ", "")
    pos, seconds = 0, 0
    for match in _DURATION.finditer(compact):
        if match.start() != pos:
            break
        seconds += int(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not compact or pos != len(compact) or seconds <= 0:
        raise ConfigError(
            f"{what} is {text!r}, expected a duration such as 12h, 14d or 1d12h",
        )
    return seconds


def parse_size(text: str | int, what: str) -> int:
    """``"500M"``, ``"2G"``, ``"1.5GiB"``, ``1048576`` as bytes (units of 1024); ``ConfigError``."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    match = _SIZE.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(f"{what} is {text!r}, expected a size such as 500M, 2G or 1.5GiB")
    return int(float(match["number"]) * _SIZE_UNITS[match["unit"].upper()])


@dataclass(frozen=True, kw_only=True)
class PrefetchConfig:
    """Fetching updates of installed packages when a head moves (``sync --follow``)."""

    mode: str = "off"
    """``off``, ``@world`` (the world file's packages) or ``@installed`` (every package)."""
    budget: int = 2 << 30
    """Most bytes the prefetched packages may hold together."""
    rate: int = 10 << 20
    """Most bytes a second prefetch reads (0: no cap)."""

    def __post_init__(self) -> None:
        if self.mode not in PREFETCH_MODES:
            raise ConfigError(
                f"prefetch.mode is {self.mode!r}, expected one of {', '.join(PREFETCH_MODES)}"
            )


@dataclass(frozen=True, kw_only=True)
class GcConfig:
    keep_size: int | None = None
    """Bytes of packages ``ipfsbin gc`` keeps at most (None: no limit)."""


@dataclass(frozen=True, kw_only=True)
class ClientPolicy:
    """What a client accepts beyond the trust root's own rules."""

    min_builders: int = 1
    allowed_builders: frozenset[str] = frozenset()
    """Empty: every builder the trust root lists counts."""
    max_head_age: int | None = None
    """Seconds; a head whose commit time is older is not offered (freeze)."""
    sharing: SharingPolicy = EXACT
    """Which of this host's optimization preferences a build may differ in; safety never."""

    def __post_init__(self) -> None:
        if type(self.min_builders) is not int or self.min_builders < 0:
            raise ConfigError(
                f"policy.min_builders must be a whole number >= 0, got {self.min_builders!r}"
            )


@dataclass(frozen=True, kw_only=True)
class ServeConfig:
    listen: str = DEFAULT_LISTEN
    subscriptions: tuple[str, ...] = ()
    """IPNS names (or prefixes of them) to serve; empty: every subscription."""

    def __post_init__(self) -> None:
        match = _LISTEN.match(self.listen)
        if match is None or not 0 < int(match["port"]) < 65536:
            raise ConfigError(
                f"serve.listen is {self.listen!r}, expected HOST:PORT such as {DEFAULT_LISTEN}"
            )

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def serves(self, name: str) -> bool:
        return not self.subscriptions or any(name.startswith(p) for p in self.subscriptions)


@dataclass(frozen=True, kw_only=True)
class ShareConfig:
    """Sharing of this host's own builds (``share = true``, table ``[sharing]``).

    Each ``allow_*`` switches one default filter off; ``skip_indexed``
    false publishes builds a followed index already has with the same bytes.
    """

    enabled: bool = False
    pkgdir: Path = DEFAULT_PKGDIR
    key: str | None = None
    """The signing key's name; None: the only key there is."""
    allow_quickpkg: bool = False
    allow_restricted: bool = False
    allow_user_patches: bool = False
    skip_indexed: bool = True
    batch: int = 64
    """Packages stored and pinned together (one CAR import, one pin request)."""
    workers: int = 2
    """Processes checking builds side by side (1: the sharing process itself)."""

    def __post_init__(self) -> None:
        if type(self.workers) is not int or not 1 <= self.workers <= 64:
            raise ConfigError(f"sharing.workers must be a whole number 1..64, got {self.workers!r}")
        if type(self.batch) is not int or not 1 <= self.batch <= 4096:
            raise ConfigError(f"sharing.batch must be a whole number 1..4096, got {self.batch!r}")


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    policy: ClientPolicy = field(default_factory=ClientPolicy)
    serve: ServeConfig = field(default_factory=ServeConfig)
    target: str | None = None
    """The microarchitecture to assume instead of this CPU's (None: detect)."""
    prefetch: PrefetchConfig = field(default_factory=PrefetchConfig)
    gc: GcConfig = field(default_factory=GcConfig)
    replica: str = "host"
    """How much of each index to keep: ``host`` (the platforms this host could use), ``full``."""
    share: ShareConfig = field(default_factory=ShareConfig)
    sources: tuple[Path, ...] = ()
    """The files read, in order."""


def config_paths() -> tuple[Path, Path]:
    """(system file, per-user file); either may be missing."""
    system = os.environ.get("IPFSBIN_SYSTEM_CONFIG")
    return (Path(system) if system else SYSTEM_CONFIG, paths.config_dir() / "ipfsbin.toml")


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{what} must be a list of non-empty strings, got {value!r}")
    return tuple(value)


def _sharing(value: Any) -> SharingPolicy:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        axes: str | list[str] = value
    elif isinstance(value, str):
        axes = value
    else:
        axes = repr(value)
    try:
        return SharingPolicy.parse(axes)
    except ValueError as exc:
        raise ConfigError(
            f"policy.sharing: {exc}",
            hint='write sharing = "exact", sharing = "same-isa" or a list such as '
            f'sharing = ["opt"] (axes: {", ".join(PREFERENCE_AXES)}); see schema/config.md',
        ) from exc


def _merge(tables: list[tuple[Path, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {name: {} for name in _KEYS}
    merged[""] = {}
    for path, data in tables:
        for table, values in data.items():
            if not isinstance(values, dict):
                if table not in _TOP:
                    raise ConfigError(
                        f"{path}: unknown key {table} outside a table; expected "
                        f"{', '.join(sorted(_TOP))} or the tables {', '.join(sorted(_KEYS))}"
                    )
                merged[""][table] = values
                continue
            if table not in _KEYS or not isinstance(values, dict):
                raise ConfigError(
                    f"{path}: unknown table [{table}]; expected {', '.join(sorted(_KEYS))}"
                )
            unknown = sorted(set(values) - _KEYS[table])
            if unknown:
                raise ConfigError(
                    f"{path}: unknown key(s) {', '.join(unknown)} in [{table}]; "
                    f"expected {', '.join(sorted(_KEYS[table]))}"
                )
            merged[table].update(values)
    return merged


def parse_config(tables: list[tuple[Path, Mapping[str, Any]]]) -> ClientConfig:
    """The configuration from parsed TOML documents, later ones overriding earlier ones."""
    merged = _merge(tables)
    policy, serve, host = merged["policy"], merged["serve"], merged["host"]
    age = policy.get("max_head_age")
    if age is not None and not isinstance(age, str):
        raise ConfigError(f"policy.max_head_age must be a duration string, got {age!r}")
    listen = serve.get("listen", DEFAULT_LISTEN)
    if not isinstance(listen, str):
        raise ConfigError(f"serve.listen must be a string, got {listen!r}")
    target = host.get("target") or None
    if target is not None and not isinstance(target, str):
        raise ConfigError(f"host.target must be a string, got {target!r}")
    prefetch = merged["prefetch"]
    keep_size = merged["gc"].get("keep_size") or None
    replica = host.get("replica", "host")
    if replica not in _REPLICAS:
        raise ConfigError(
            f"host.replica is {replica!r}, expected one of {', '.join(_REPLICAS)}",
            hint='"host" keeps the platforms this host could use; "full" the whole index',
        )
    return ClientConfig(
        prefetch=PrefetchConfig(
            mode=prefetch.get("mode", "off"),
            budget=parse_size(prefetch.get("budget", "2G"), "prefetch.budget"),
            rate=parse_size(prefetch.get("rate", "10M"), "prefetch.rate"),
        ),
        gc=GcConfig(keep_size=None if keep_size is None else parse_size(keep_size, "gc.keep_size")),
        share=_share(merged[""].get("share", False), merged["sharing"]),
        policy=ClientPolicy(
            min_builders=policy.get("min_builders", 1),
            allowed_builders=frozenset(
                _strings(policy.get("allowed_builders", []), "policy.allowed_builders")
            ),
            max_head_age=None if age is None else parse_seconds(age, "policy.max_head_age"),
            sharing=_sharing(policy.get("sharing", "exact")),
        ),
        serve=ServeConfig(
            listen=listen,
            subscriptions=_strings(serve.get("subscriptions", []), "serve.subscriptions"),
        ),
        target=target,
        replica=replica,
        sources=tuple(path for path, _ in tables),
    )


def _share(enabled: Any, table: Mapping[str, Any]) -> ShareConfig:
    if not isinstance(enabled, bool):
        raise ConfigError(f"share must be true or false, got {enabled!r}")
    flags = {}
    for name in ("allow_quickpkg", "allow_restricted", "allow_user_patches", "skip_indexed"):
        if name in table:
            if not isinstance(table[name], bool):
                raise ConfigError(f"sharing.{name} must be true or false, got {table[name]!r}")
            flags[name] = table[name]
    for name in ("pkgdir", "key"):
        if name in table and (not isinstance(table[name], str) or not table[name]):
            raise ConfigError(f"sharing.{name} must be a non-empty string, got {table[name]!r}")
    return ShareConfig(
        enabled=enabled,
        pkgdir=Path(table.get("pkgdir", DEFAULT_PKGDIR)),
        key=table.get("key"),
        batch=table.get("batch", 64),
        workers=table.get("workers", 2),
        **flags,
    )


def load_config(files: tuple[Path, ...] | None = None) -> ClientConfig:
    """Read the system file, then the per-user one (those that exist)."""
    tables: list[tuple[Path, Mapping[str, Any]]] = []
    for path in files if files is not None else config_paths():
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            tables.append((path, tomllib.loads(text)))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"{path} is not valid TOML: {exc}", hint="see schema/config.md for the format"
            ) from exc
    return parse_config(tables)
