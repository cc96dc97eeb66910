"""``waooaw agent-worker`` and ``waooaw bus ...``: run an external worker; look at and repair the bus."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)
bus_app = typer.Typer(help="Look at the message bus: per-topic numbers, dead letters, replay.", no_args_is_help=True)
app.add_typer(bus_app, name="bus")

BUS_HELP = "bus URL (redis://host:6379/0?prefix=...); default: $WAOOAW_BUS, else in-process"


def _load(target: str) -> object:
    """``module:function`` (or ``module.function``) to the callable; a clear error when it is not there."""
    module_name, sep, attr = target.partition(":")
    if not sep:
        module_name, _, attr = target.rpartition(".")
    if not module_name or not attr:
        raise typer.BadParameter(f"{target!r}: give module:function, e.g. myagents:validate")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # like `python -m`: modules next to you are found
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise typer.BadParameter(f"{target!r}: no module {exc.name!r} (is it on PYTHONPATH?)") from None
    found: object = module
    for part in attr.split("."):
        if not hasattr(found, part):
            raise typer.BadParameter(f"{target!r}: module {module_name!r} has no {attr!r}")
        found = getattr(found, part)
    if not callable(found) and not hasattr(found, "execute"):
        raise typer.BadParameter(f"{target!r} is not callable")
    return found


def _bus(url: str | None):  # type: ignore[no-untyped-def]
    from engine.bus import BusError, connect_bus

    try:
        return connect_bus(url)
    except BusError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command("agent-worker")
def agent_worker(
    target: str = typer.Argument(..., help="the agent: module:function (the same function that runs in-process)"),
    topic: str | None = typer.Option(None, "--topic", help="topic to take tasks from (default: its @worker topic)"),
    bus: str | None = typer.Option(None, "--bus", help=BUS_HELP),
    group: str = typer.Option("workers", help="consumer group: workers of one group share the tasks"),
    threads: int = typer.Option(1, min=1, help="tasks done at once by this process"),
    max_tasks: int | None = typer.Option(None, help="stop after this many tasks"),
    max_idle: float | None = typer.Option(None, help="stop after this many seconds without a task"),
) -> None:
    """Take tasks from a topic and do them with an agent function; answers go back to the engine."""
    from engine.bus.worker import AgentWorker, topic_of

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    agent = _load(target)
    chosen = topic or topic_of(agent)
    if not chosen:
        raise typer.BadParameter(f"{target!r} has no @worker topic: give --topic")
    runner = AgentWorker(agent, chosen, _bus(bus), group)  # type: ignore[arg-type]
    typer.echo(f"agent-worker {runner.worker_id}: {target} on {chosen!r} ({runner.bus!r})")
    done = runner.run(max_tasks=max_tasks, threads=threads, max_idle=max_idle)
    typer.echo(f"agent-worker stopped after {done} tasks")


@bus_app.command("stats")
def stats(bus: str | None = typer.Option(None, "--bus", help=BUS_HELP)) -> None:
    """Per topic: published, duplicates, delivered, acked, pending, waiting, parked."""
    frame = _bus(bus).stats()
    typer.echo(frame.to_string(index=False) if len(frame) else "no topics yet")


@bus_app.command("dead-letters")
def dead_letters(topic: str, bus: str | None = typer.Option(None, "--bus", help=BUS_HELP)) -> None:
    """Parked messages of a topic with their errors."""
    rows = _bus(bus).dead_letters(topic)
    for row in rows:
        typer.echo(f"{row['id']}  failures={row['failures']}  group={row['group']}  error: {row['error']}")
    if not rows:
        typer.echo(f"no parked messages on {topic!r}")


@bus_app.command("replay")
def replay(topic: str, ids: list[str] = typer.Option([], "--id", help="only these message ids (default: all)"),
           bus: str | None = typer.Option(None, "--bus", help=BUS_HELP)) -> None:
    """Publish parked messages again (after fixing their cause)."""
    n = _bus(bus).replay(topic, ids or None)
    typer.echo(f"replayed {n} message(s) on {topic!r}")


@bus_app.command("trim")
def trim(topics: list[str] = typer.Argument(None, help="topics (default: all)"),
         bus: str | None = typer.Option(None, "--bus", help=BUS_HELP)) -> None:
    """Drop messages every consumer group has acknowledged (never pending or undelivered ones)."""
    connected = _bus(bus)
    for topic in topics or connected.topics():
        typer.echo(f"{topic}: {connected.trim(topic)} trimmed")


if __name__ == "__main__":  # python -m engine.bus.cli agent-worker ...: the same commands, a lighter start
    app()
