"""``ipfsbin init-private``: put the managed node into an organisation's private swarm."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.errors import NodeError
from ipfsbin.kubo.daemon import make_user_node_private
from ipfsbin.kubo.private import (
    SWARM_KEY_FILE,
    new_swarm_key,
    parse_swarm_key,
    swarm_key_sha256,
)

__all__ = ["init_private"]


def init_private(
    swarm_key: Annotated[
        Path | None,
        typer.Option(
            "--swarm-key",
            help="Join the swarm of this key file (copied from the first node); "
            "without it a new key is made.",
        ),
    ] = None,
    bootstrap: Annotated[
        list[str] | None,
        typer.Option(
            "--bootstrap",
            help="Multiaddr (with /p2p/<peer ID>) of an in-house node to bootstrap from "
            "(repeatable); public bootstrap peers are never used.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make the managed node private: a swarm key, no public bootstrap, no public services.

    The daemon then refuses to start without the key (LIBP2P_FORCE_PNET), and
    peers without the key can neither connect nor fetch. Trust is separate:
    create the organisation's own index and trust root with `ipfsbin index
    init` on this node.
    """
    if swarm_key is None:
        key = new_swarm_key()
    else:
        try:
            data = swarm_key.read_bytes()
        except OSError as exc:
            raise NodeError(
                f"cannot read the swarm key {swarm_key}: {exc.strerror}",
                hint="copy swarm.key from a node of the private swarm",
            ) from exc
        key = parse_swarm_key(data, str(swarm_key))
    repo = make_user_node_private(key, bootstrap or ())
    emit(
        {
            "repo_path": str(repo),
            "swarm_key_file": str(repo / SWARM_KEY_FILE),
            "swarm_key_sha256": swarm_key_sha256(key),
            "created_key": swarm_key is None,
            "bootstrap": list(bootstrap or ()),
        },
        as_json,
        lambda r: (
            f"private swarm {r['swarm_key_sha256']}: key in {r['swarm_key_file']} "
            f"({'new' if r['created_key'] else 'joined'}), bootstrap from "
            f"{', '.join(r['bootstrap']) or 'no one (this is the first node)'}\n"
            "next: `ipfsbin node start`; copy the key file to the other machines over a "
            "trusted channel"
        ),
    )
