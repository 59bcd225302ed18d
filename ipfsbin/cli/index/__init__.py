"""``ipfsbin index``: maintain a signed index, one module per command group.

Importing the groups registers their commands on :data:`app`; ``publish``
and ``republish`` (module ``ipns``) are registered by ``ipfsbin.cli.main``.
"""

from ipfsbin.cli.index._common import app

# isort: off
# The import order is the order in which `ipfsbin index --help` lists the commands.
from ipfsbin.cli.index import staging, commits, roots, reading, pull

# isort: on

__all__ = ["app", "commits", "pull", "reading", "roots", "staging"]
