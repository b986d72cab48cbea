"""A graceful stop: stop accepting, finish the exchanges in progress, close the rest.

``Drain`` is handed to the server through ``ServerConfig.drain``.  ``start()``:

* cancels the accept loops (``server.serve_listeners`` runs them under
  ``accept_scope``): no new connection is taken; the listening socket itself stays
  open for whoever else accepts on it (``s3gw serve --workers``' other processes);
* cancels every connection that waits for its next request head (``idle``): it
  closes, as a keep-alive connection the server drops after its idle timeout does;
* every connection in an exchange finishes it (its response fully sent) and then
  closes instead of reading another request.

``wait(grace)`` returns when no connection is left, or after ``grace`` seconds
(the caller then cancels the rest).  Without a ``Drain`` (the default), a stop
cancels everything at once, as before.
"""

from __future__ import annotations

import trio

__all__ = ["Drain"]


class Drain:
    def __init__(self) -> None:
        self.draining = False
        self.accept_scope = trio.CancelScope()
        self.idle: set[trio.CancelScope] = set()
        self.connections = 0

    def start(self) -> None:
        self.draining = True
        self.accept_scope.cancel()
        for scope in list(self.idle):
            scope.cancel()

    async def wait(self, grace: float) -> bool:
        """True when every connection closed within ``grace`` seconds."""
        with trio.move_on_after(grace):
            while self.connections:
                await trio.sleep(0.02)
            return True
        return False
