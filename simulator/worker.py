"""A worker process of :mod:`simulator.parallel` (``python -m simulator.worker``): compile the design once,
then run the replications asked for over stdin until it closes, answering with pickled ``RunData``."""

from __future__ import annotations

import pickle
import sys
import traceback
from typing import Any

from simulator.parallel import receive, send
from simulator.shell import Compiled, Run


def _serve() -> None:
    """The worker's loop: compile the design once, then run the replications asked for until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # anything printed by the model must not corrupt the frames
    try:
        definition, scenario, calendars, seed, called = receive(stdin)
        compiled = Compiled(definition, scenario, calendars, called)
    except EOFError:
        return
    except Exception:  # e.g. a design that does not unpickle here: the caller runs it instead
        while True:
            try:
                receive(stdin)
            except EOFError:
                return
            send(stdout, ("failed", traceback.format_exc(limit=3)))
    while True:
        try:
            replication = receive(stdin)
        except EOFError:
            return
        try:
            reply: tuple[str, Any] = ("ok", Run(compiled, replication, seed).run())
        except Exception as exc:  # the model's error: raised again in the caller
            try:
                pickle.dumps(exc)
                reply = ("error", exc)
            except Exception:
                reply = ("error", RuntimeError(f"replication {replication}: {exc!r}"))
        send(stdout, reply)


if __name__ == "__main__":
    _serve()
