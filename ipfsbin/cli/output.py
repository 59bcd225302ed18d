"""How commands report: JSON for scripts, short text for people, one-line errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from ipfsbin.codec.cid import CID

__all__ = ["JsonOpt", "emit", "print_error"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON for scripts.")]


def _default(value: Any) -> Any:
    if isinstance(value, CID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "__fspath__"):
        return str(value)
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def emit(result: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    """Print ``result`` as JSON (``as_json``) or through ``render`` for a person."""
    if as_json:
        sys.stdout.write(json.dumps(result, default=_default, indent=2, sort_keys=True) + "\n")
    else:
        text = render(result)
        if text:
            sys.stdout.write(text.rstrip("\n") + "\n")


def print_error(message: str, hint: str | None) -> None:
    sys.stderr.write(f"ipfsbin: error: {message}\n")
    if hint:
        sys.stderr.write(f"ipfsbin: hint: {hint}\n")
