"""A ``refs`` walk on a connection of its own, which another thread can end at once.

Kubo ends a command when its client hangs up (Go cancels the request's
context), and with it the command's bitswap session, which cancels the
session's wants. That matters for a walk left behind: as long as its session
lives, the client's want manager counts its wants as sent to the serving
peer, and a new session asking for the same blocks skips that peer
(``peermanager/peerwantmanager.go`` ``broadcastWantHaves``, boxo v0.35) until
the peer queue's rebroadcast, every 30 s. A thread blocked reading the
answer cannot be woken by closing the socket under it; shutting the socket
down can, so :meth:`RefsWalk.end` does that.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator, Sequence
from urllib.parse import urlencode

from ipfsbin.codec.cid import CID
from ipfsbin.errors import KuboCommandError, KuboError
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.netlimits import operation_remaining

__all__ = ["RefsWalk", "refs_walks"]


class RefsWalk:
    """``refs -r -u --max-depth`` under some tops, iterated once; :meth:`end` from any thread."""

    def __init__(self, host: str, port: int, *, authorization: str | None = None) -> None:
        self._connection = http.client.HTTPConnection(host, port, timeout=operation_remaining())
        self._headers = {} if authorization is None else {"Authorization": authorization}
        self._ended = threading.Event()

    def refs(self, tops: Sequence[CID], *, max_depth: int) -> Iterator[CID]:
        """The CIDs under ``tops`` down to ``max_depth`` levels, each printed once Kubo has it."""
        query = urlencode(
            [
                *(("arg", str(c)) for c in tops),
                ("recursive", "true"),
                ("unique", "true"),
                ("max-depth", str(max_depth)),
                ("edges", "false"),
                ("format", "<dst>"),
            ]
        )
        try:
            self._connection.request("POST", f"/api/v0/refs?{query}", headers=self._headers)
            if self._ended.is_set():  # ended while connecting: the shutdown came too early
                return
            answer = self._connection.getresponse()
            if answer.status != 200:
                text = answer.read().decode("utf-8", "replace")
                raise KuboCommandError("refs", text[:500], status=answer.status)
            for line in answer:
                event = json.loads(line)
                if event.get("Err"):
                    raise KuboCommandError("refs", str(event["Err"]))
                yield CID.from_text(str(event["Ref"]))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if not self._ended.is_set():
                raise KuboError(f"refs: {exc}") from exc
        finally:
            self._connection.close()

    def end(self) -> None:
        """Hang up: the reading thread stops, Kubo ends the walk and its session."""
        self._ended.set()
        sock = self._connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # not connected yet, or already closed


def refs_walks(client: KuboClient) -> tuple[str, int, str | None] | None:
    """Where to open :class:`RefsWalk` connections to ``client``'s API, or None when it is
    not plain HTTP over TCP (the walks then go through the client and cannot be ended)."""
    url = client.http.base_url
    if url.scheme != "http" or url.port is None or not url.host:
        return None
    return url.host, url.port, client.http.headers.get("authorization")
