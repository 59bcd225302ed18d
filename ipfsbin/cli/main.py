"""Entry point: builds the typer app and turns every ipfsbin error into one line."""

from __future__ import annotations

import os
import sys
import traceback

import typer

from ipfsbin import __version__
from ipfsbin.cli.output import print_error
from ipfsbin.errors import IpfsbinError

app = typer.Typer(
    name="ipfsbin",
    help="Share Gentoo binary packages over IPFS under signed, threshold-verified indexes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_verbose = False


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ipfsbin {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    global _verbose
    _verbose = verbose or bool(os.environ.get("IPFSBIN_VERBOSE"))


def _register() -> None:
    # Command groups register themselves on import; kept in one list so
    # `ipfsbin --help` shows them in a stable order.
    from ipfsbin.cli import follow as follow_cmds
    from ipfsbin.cli import index as index_cmds
    from ipfsbin.cli import index_ipns
    from ipfsbin.cli import key as key_cmds
    from ipfsbin.cli import node as node_cmds
    from ipfsbin.cli import publish as publish_cmds

    app.add_typer(node_cmds.app, name="node")
    app.add_typer(key_cmds.app, name="key")
    index_cmds.app.command("publish")(index_ipns.publish_cmd)
    index_cmds.app.command("republish")(index_ipns.republish_cmd)
    app.add_typer(index_cmds.app, name="index")
    app.command("subscribe")(follow_cmds.subscribe)
    app.command("unsubscribe")(follow_cmds.unsubscribe)
    app.command("sync")(follow_cmds.sync)
    app.command("status")(follow_cmds.status)
    app.command("publish")(publish_cmds.publish)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting (tests call this)."""
    try:
        app(args=argv, prog_name="ipfsbin", standalone_mode=True)
    except IpfsbinError as exc:
        if _verbose:
            traceback.print_exc()
        print_error(exc.message, exc.hint)
        return 1
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        sys.stderr.write(f"{code}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("ipfsbin: interrupted\n")
        return 130
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
