"""Entry point: builds the typer app and turns every ipfsbin error into one line."""

from __future__ import annotations

import os
import sqlite3
import sys
import traceback
from typing import Final

import typer

# typer vendors click and exports no public name for its usage errors.
from typer import _click

from ipfsbin import __version__
from ipfsbin.cli.lazy import lazy_group
from ipfsbin.cli.output import print_error
from ipfsbin.errors import IpfsbinError

__all__ = ["app", "main", "run"]

# Each command's module is imported only when the command runs (see ipfsbin.cli.lazy);
# this order is the one `ipfsbin --help` lists them in.
_COMMANDS: Final = {
    "init-private": "ipfsbin.cli.private:init_private",
    "subscribe": "ipfsbin.cli.follow:subscribe",
    "unsubscribe": "ipfsbin.cli.follow:unsubscribe",
    "sync": "ipfsbin.cli.follow:sync",
    "status": "ipfsbin.cli.follow:status",
    "publish": "ipfsbin.cli.publish:publish",
    "share": "ipfsbin.cli.share:share",
    "host": "ipfsbin.cli.client:host",
    "explain": "ipfsbin.cli.client:explain",
    "challenge": "ipfsbin.cli.challenge:challenge",
    "serve": "ipfsbin.cli.client:serve",
    "setup-portage": "ipfsbin.cli.client:setup_portage",
    "pin": "ipfsbin.cli.pin:pin",
    "unpin": "ipfsbin.cli.pin:unpin",
    "mirror": "ipfsbin.cli.mirror:mirror",
    "doctor": "ipfsbin.cli.health:doctor",
    "weather": "ipfsbin.cli.health:weather",
    "gc": "ipfsbin.cli.gc:gc",
    "node": "ipfsbin.cli.node:app",
    "key": "ipfsbin.cli.key:app",
    "index": "ipfsbin.cli.index:app",
    "feed": "ipfsbin.cli.feed:app",
}

app = typer.Typer(
    name="ipfsbin",
    help="Share Gentoo binary packages over IPFS under signed, threshold-verified indexes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=lazy_group(_COMMANDS),
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
