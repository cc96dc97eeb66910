"""Replications on every core: the calling process and worker processes draw from one queue of replications.

A replication depends only on (definition, scenario, calendars, seed, its index): each draws from its
own random streams (``shell._stream``), so where it runs does not change what it computes, and the
results are gathered in replication order: a parallel run is identical to a sequential one with the
same seed (tests/test_sim_parallel.py).

Spawn-safe by design: a worker is a fresh interpreter (``python -m simulator.worker``, never a
``fork`` of the caller, which is unsafe under Streamlit's and the engine's threads) that imports only
this package, not the caller's script, so a script needs no ``if __name__ == "__main__":`` guard, and
a notebook or the Streamlit app works alike. It receives the pickled design and scenario once over its
stdin, compiles them once, then answers replication numbers with pickled ``RunData`` (length-prefixed
frames over its pipes).

The caller keeps working while workers start: it runs replication 0 alone first, and only when the rest
would take longer than ``MIN_PARALLEL_SECONDS`` (a worker's start-up: imports of numpy, SimPy, pandas)
does it start ``workers - 1`` processes and share the remaining replications with them. Short
simulations never pay for processes. If a worker cannot start or dies, a warning says so and its
replications run in the calling process.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import IO, Any

from simulator.shell import Compiled, Run, RunData

#: Seconds of remaining sequential work below which no process is started (a worker's start-up cost).
MIN_PARALLEL_SECONDS = 1.5
_HEADER = struct.Struct("!Q")


class WorkerFailed(RuntimeError):
    """A worker process could not start, or died (its replications run in the caller instead)."""


def send(stream: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the other side closed the pipe")
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the other side closed the pipe")
    return pickle.loads(data)


class _Worker:
    """One worker process and the pipes to it."""

    def __init__(self, blob: bytes) -> None:
        path = os.pathsep.join([p for p in sys.path if p] + [os.environ.get("PYTHONPATH", "")])
        self.proc = subprocess.Popen([sys.executable, "-m", "simulator.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": path})
        assert self.proc.stdin is not None
        self.proc.stdin.write(_HEADER.pack(len(blob)))
        self.proc.stdin.write(blob)
        self.proc.stdin.flush()

    def run(self, replication: int) -> RunData:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            send(self.proc.stdin, replication)
            kind, value = receive(self.proc.stdout)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            raise WorkerFailed(f"simulator worker {self.proc.pid} stopped: {exc}") from exc
        if kind == "error":
            raise value
        if kind == "failed":
            raise WorkerFailed(value)
        return value  # type: ignore[no-any-return]

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()


def available_cores() -> int:
    """CPUs this process may run on (cgroup/affinity aware where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def run_replications(compiled: Compiled, n: int, seed: int, workers: int | None,
                     tick: Callable[[int, float], None] | None = None) -> list[RunData]:
    """Replications 0..n-1 of ``compiled``, in order.

    ``workers``: processes in all, the caller included (None: one per available core; 1: sequential).
    ``tick(replication, fraction)``: progress of a replication run by the caller (fraction in 0..1), and
    ``tick(replication, 1.0)`` for one a worker returned; always called in the calling thread (Streamlit
    draws only from its script thread).
    """
    workers = available_cores() if workers is None else max(1, int(workers))
    results: dict[int, RunData] = {}
    returned: list[int] = []  # replications workers returned, not yet reported to tick

    def report(r: int, fraction: float) -> None:
        assert tick is not None
        while returned:
            tick(returned.pop(), 1.0)
        tick(r, fraction)

    def local(r: int) -> None:
        each = (lambda f, r=r: report(r, f)) if tick is not None else None
        results[r] = Run(compiled, r, seed, each).run()

    if n <= 1 or workers <= 1:
        for r in range(n):
            local(r)
        return [results[r] for r in range(n)]

    lock = threading.Lock()
    queue = iter(range(1, n))
    errors: list[BaseException] = []  # raised by the model in a worker: raised here too
    broken: list[BaseException] = []  # a worker could not start or died
    orphans: list[int] = []  # replications a failed worker did not return
    go = threading.Event()  # set once replication 0 showed whether the rest is worth the workers
    parallel = False

    def take() -> int | None:
        with lock:
            return None if errors else next(queue, None)

    blob = pickle.dumps((compiled.definition, compiled.scenario, compiled.calendars, seed, compiled.called),
                        protocol=pickle.HIGHEST_PROTOCOL)

    def drive() -> None:
        try:
            worker = _Worker(blob)
        except OSError as exc:
            broken.append(exc)
            return
        go.wait()
        if not parallel:
            worker.close()  # the rest is too short for a worker: it exits at the end of its start-up
            return
        try:
            while (r := take()) is not None:
                try:
                    results[r] = worker.run(r)
                except WorkerFailed as exc:
                    broken.append(exc)
                    orphans.append(r)
                    return
                except BaseException as exc:
                    errors.append(exc)
                    return
                returned.append(r)
        finally:
            worker.close()

    # The workers start before replication 0 runs, so their interpreter's start-up (~0.5 s) overlaps it; when
    # replication 0 says the rest would not outlast that start-up, they are closed unused.
    threads = [threading.Thread(target=drive, name=f"simulator-worker-{i}", daemon=True)
               for i in range(min(workers - 1, n - 1))]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    try:
        local(0)
    except BaseException:
        go.set()
        raise
    parallel = (time.perf_counter() - started) * (n - 1) >= MIN_PARALLEL_SECONDS
    go.set()
    if not parallel:
        for r in range(1, n):
            local(r)
        return [results[r] for r in range(n)]
    while (r := take()) is not None:
        local(r)
    for thread in threads:
        while thread.is_alive():
            thread.join(0.1)
            while tick is not None and returned:
                tick(returned.pop(), 1.0)
    while tick is not None and returned:
        tick(returned.pop(), 1.0)
    if errors:
        raise errors[0]
    if broken:
        warnings.warn(f"simulator: a worker process failed ({broken[0]}); its replications ran in this process",
                      RuntimeWarning, stacklevel=3)
    for r in sorted(orphans):
        local(r)
    return [results[r] for r in range(n)]


__all__ = ["MIN_PARALLEL_SECONDS", "WorkerFailed", "available_cores", "run_replications"]
