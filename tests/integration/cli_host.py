"""Run the ``ipfsbin`` command line as one host: its own IPFSBIN_HOME and Kubo daemon."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ipfsbin.cli.main import main
from ipfsbin.kubo.node import ManagedNode

Cli = Callable[..., Any]


def cli_host(home: Path, node: ManagedNode | None) -> Cli:
    """``run(*args, ok=True)``: ``ipfsbin ARGS --json`` as this host, its output decoded.

    A failing command (``ok=False``) returns its stderr unless it still
    reported JSON on stdout (a refused sync does). ``node=None`` leaves
    IPFSBIN_API unset, so commands use the host's managed node.
    """

    def run(*args: str, ok: bool = True) -> Any:
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("IPFSBIN_HOME", str(home))
            if node is None:
                mp.delenv("IPFSBIN_API", raising=False)
            else:
                mp.setenv("IPFSBIN_API", node.api_multiaddr)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main([*args, "--json"])
        assert (code == 0) == ok, err.getvalue() or out.getvalue()
        return json.loads(out.getvalue()) if out.getvalue() else err.getvalue()

    return run
