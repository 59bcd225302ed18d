"""Entry point: builds the typer app and turns every ipfsbin error into one line."""

from __future__ import annotations

import os
import sqlite3
import sys
import traceback

import typer

# typer vendors click and exports no public name for its usage errors.
from typer import _click

from ipfsbin import __version__
from ipfsbin.cli.output import print_error
from ipfsbin.errors import IpfsbinError

__all__ = ["app", "main", "run"]

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
    from ipfsbin.cli import challenge as challenge_cmds
    from ipfsbin.cli import client as client_cmds
    from ipfsbin.cli import feed as feed_cmds
    from ipfsbin.cli import follow as follow_cmds
    from ipfsbin.cli import gc as gc_cmds
    from ipfsbin.cli import health as health_cmds
    from ipfsbin.cli import index as index_cmds
    from ipfsbin.cli import key as key_cmds
    from ipfsbin.cli import mirror as mirror_cmds
    from ipfsbin.cli import node as node_cmds
    from ipfsbin.cli import pin as pin_cmds
    from ipfsbin.cli import private as private_cmds
    from ipfsbin.cli import publish as publish_cmds
    from ipfsbin.cli import share as share_cmds
    from ipfsbin.cli.index import ipns as index_ipns

    app.add_typer(node_cmds.app, name="node")
    app.command("init-private")(private_cmds.init_private)
    app.add_typer(key_cmds.app, name="key")
    index_cmds.app.command("publish")(index_ipns.publish_cmd)
    index_cmds.app.command("republish")(index_ipns.republish_cmd)
    index_cmds.app.command("announce-roots")(index_ipns.announce_roots_cmd)
    app.add_typer(index_cmds.app, name="index")
    app.command("subscribe")(follow_cmds.subscribe)
    app.command("unsubscribe")(follow_cmds.unsubscribe)
    app.command("sync")(follow_cmds.sync)
    app.command("status")(follow_cmds.status)
    app.command("publish")(publish_cmds.publish)
    app.command("share")(share_cmds.share)
    app.add_typer(feed_cmds.app, name="feed")
    app.command("host")(client_cmds.host)
    app.command("explain")(client_cmds.explain)
    app.command("challenge")(challenge_cmds.challenge)
    app.command("serve")(client_cmds.serve)
    app.command("setup-portage")(client_cmds.setup_portage)
    app.command("pin")(pin_cmds.pin)
    app.command("unpin")(pin_cmds.unpin)
    app.command("mirror")(mirror_cmds.mirror)
    app.command("doctor")(health_cmds.doctor)
    app.command("weather")(health_cmds.weather)
    app.command("gc")(gc_cmds.gc)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting (tests call this).

    Every error is one line on stderr (plus a hint): exit code 1 for a failure,
    2 for a command line that does not parse.
    """
    try:
        code = app(args=argv, prog_name="ipfsbin", standalone_mode=False)
    except IpfsbinError as exc:
        if _verbose:
            traceback.print_exc()
        print_error(exc.message, exc.hint)
        return 1
    except sqlite3.DatabaseError as exc:
        # every state file reports its own damage (DamagedStateError); this is the net under it
        if _verbose:
            traceback.print_exc()
        print_error(
            f"a state file could not be read ({type(exc).__name__}: {exc})",
            "run again with --verbose to see which; move that file aside and run again",
        )
        return 1
    except _click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        return exc.exit_code
    except _click.exceptions.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "ipfsbin"
        print_error(exc.format_message(), f"see `{where} --help`")
        return exc.exit_code
    except _click.exceptions.ClickException as exc:
        print_error(exc.format_message(), None)
        return exc.exit_code
    except typer.Abort:
        sys.stderr.write("ipfsbin: aborted\n")
        return 1
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        sys.stderr.write(f"{exc.code}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("ipfsbin: interrupted\n")
        return 130
    # Without standalone mode an explicit typer.Exit comes back as its code.
    return code if isinstance(code, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
