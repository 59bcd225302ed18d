"""``ipfsbin node``: the managed Kubo node (install, start, stop, status)."""

from __future__ import annotations

import dataclasses
import sys
from typing import Annotated

import typer

from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.cluster import ensure_cluster
from ipfsbin.kubo.daemon import NodeStatus, start_user_node, stop_user_node, user_node_status
from ipfsbin.kubo.install import ensure_kubo

__all__ = ["app", "install", "start", "status", "stop"]

app = typer.Typer(help="Run the managed local Kubo node that ipfsbin uses by default.")


def _status_dict(status: NodeStatus) -> dict[str, object]:
    result = dataclasses.asdict(status)
    result["repo_path"] = str(status.repo_path)
    return result


def _render_status(status: dict[str, object]) -> str:
    if not status["running"]:
        if status["pid"] is not None:  # a process, but its API does not answer (yet)
            return f"not answering: daemon pid {status['pid']} (repo {status['repo_path']})"
        return f"not running (repo {status['repo_path']})"
    return (
        f"running: API {status['api']}, peer {status['peer_id']}, "
        f"Kubo {status['kubo_version']}, repo {status['repo_path']}"
    )


@app.command()
def install(
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster", help="Also build IPFS Cluster's ipfs-cluster-service and ipfs-cluster-ctl."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build Kubo (once, cached per version) and print where the binary is."""

    def progress(line: str) -> None:
        sys.stderr.write(line.rstrip("\n") + "\n")

    result: dict[str, str] = {"binary": str(ensure_kubo(progress))}
    if cluster:
        built = ensure_cluster(progress)
        result["cluster_service"] = str(built.service)
        result["cluster_ctl"] = str(built.ctl)
    emit(result, as_json, lambda r: "\n".join(str(v) for v in r.values()))


@app.command()
def start(as_json: JsonOpt = False) -> None:
    """Start the managed node in the background (initializing it the first time)."""
    status = start_user_node()
    emit(_status_dict(status), as_json, _render_status)


@app.command()
def stop(as_json: JsonOpt = False) -> None:
    """Stop the managed node."""
    stopped = stop_user_node()
    emit(
        {"stopped": stopped},
        as_json,
        lambda r: "node stopped" if r["stopped"] else "node was not running",
    )


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Show whether the managed node runs, its API address and peer ID."""
    emit(_status_dict(user_node_status()), as_json, _render_status)
