"""``ipfsbin index``: maintain a signed index, one module per command group.

Importing the groups registers their commands on :data:`app`; ``publish``,
``republish`` and ``announce-roots`` (module ``ipns``) are registered here.
"""

from ipfsbin.cli.index._common import app

# isort: off
# The import order is the order in which `ipfsbin index --help` lists the commands.
from ipfsbin.cli.index import staging, commits, roots, reading, pull, ipns

# isort: on

app.command("publish")(ipns.publish_cmd)
app.command("republish")(ipns.republish_cmd)
app.command("announce-roots")(ipns.announce_roots_cmd)

__all__ = ["app", "commits", "ipns", "pull", "reading", "roots", "staging"]
