"""The ``ipfsbin`` command line (typer). Only this package imports typer."""
