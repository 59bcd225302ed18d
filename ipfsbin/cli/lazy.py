"""A command group that imports a command's module only when that command is used.

Every ``ipfsbin`` process used to import all command modules (and with them
Portage, cryptography, httpx, uvicorn, pygit2...) before parsing its command
line: most of a start. Here a group knows its commands by name and where they
live (``"module:attribute"``, a command function or a :class:`typer.Typer`);
a name is imported and built the first time it is looked up, so ``ipfsbin
sync`` imports what ``sync`` needs, and ``ipfsbin --help`` (which looks every
command up) imports them all.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

import typer
from typer import _click
from typer.core import TyperGroup

__all__ = ["lazy_group"]


@functools.cache
def _target(where: str) -> typer.Typer | Callable[..., Any]:
    module, _, attribute = where.partition(":")
    found: typer.Typer | Callable[..., Any] = getattr(importlib.import_module(module), attribute)
    return found


def _build(name: str, where: str) -> _click.Command:
    """The command exactly as ``add_typer`` / ``command`` on the root app would build it."""
    target = _target(where)
    holder = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    return typer.main.get_group(holder).commands[name]


class _Commands(MutableMapping[str, _click.Command]):
    """Every name of ``table`` (in its order), then any command added directly."""

    def __init__(self, table: Mapping[str, str], given: Mapping[str, _click.Command]) -> None:
        self._table = table
        self._built = dict(given)

    def __getitem__(self, name: str) -> _click.Command:
        if name not in self._built:
            if name not in self._table:
                raise KeyError(name)
            self._built[name] = _build(name, self._table[name])
        return self._built[name]

    def __setitem__(self, name: str, command: _click.Command) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._table
        yield from (name for name in self._built if name not in self._table)

    def __len__(self) -> int:
        return len(self._table) + sum(1 for name in self._built if name not in self._table)

    def __contains__(self, name: object) -> bool:
        return name in self._table or name in self._built


def lazy_group(table: Mapping[str, str]) -> type[TyperGroup]:
    """A :class:`TyperGroup` class (for ``typer.Typer(cls=...)``) whose commands are ``table``.

    ``table`` maps each command name to ``"module:attribute"``; its order is
    the order ``--help`` lists them in.
    """

    class LazyGroup(TyperGroup):
        def __init__(self, **attrs: Any) -> None:
            super().__init__(**attrs)
            self.commands = _Commands(table, self.commands)

        def list_commands(self, ctx: _click.Context) -> list[str]:
            return list(self.commands)

    return LazyGroup
