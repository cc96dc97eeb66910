"""``waooaw worker`` and ``waooaw db upgrade|current``: the engine's commands."""

from __future__ import annotations

import importlib

import typer


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker(
        db: str = typer.Option("sqlite:///waooaw.db", "--db", help="SQLAlchemy URL (sqlite:///file.db, postgresql://...)"),
        agents: list[str] = typer.Option([], "--agents", help="module to import so its agents register"),
        poll: float = typer.Option(0.2, help="seconds between polls when idle"),
        batch: int = typer.Option(50, help="jobs claimed at once; their results commit together"),
        threads: int = typer.Option(8, help="agent calls of a batch run on this many threads"),
        lease: float = typer.Option(60.0, help="seconds a claimed job stays locked"),
        max_idle: float | None = typer.Option(None, help="exit after this many idle seconds"),
        metrics_port: int | None = typer.Option(None, "--metrics-port", help="serve Prometheus metrics on this port"),
        clock: str | None = typer.Option(None, "--clock", help="wall: real time; demo: the app's virtual demo clock "
                                         "stored in the database (default: demo when WAOOAW_MODE=demo, else wall)"),
    ) -> None:
        """Run the job loop: agent calls, timers, message delivery."""
        import logging

        from engine.runtime.worker import default_clock, run_worker

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

        for module in agents:
            importlib.import_module(module)
        from engine.errors import WaooawError

        try:
            ran = run_worker(db, poll=poll, batch=batch, lease=lease, max_idle=max_idle, threads=threads,
                             metrics_port=metrics_port, clock=clock or default_clock())
        except WaooawError as exc:  # a start-up problem (the database, a setting): one line, exit 1
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"worker stopped after {ran} jobs")

    db_app = typer.Typer(help="The engine's database: schema revisions (Alembic).", no_args_is_help=True)
    app.add_typer(db_app, name="db")

    @db_app.command("upgrade")
    def db_upgrade(
        db: str = typer.Option("sqlite:///waooaw.db", "--db", help="SQLAlchemy URL (sqlite:///file.db, postgresql://...)"),
        revision: str = typer.Option("head", "--to", help="the revision to reach (default: the newest)"),
    ) -> None:
        """Bring the database's tables to this waooaw's schema (stop the workers first)."""
        from engine.errors import WaooawError
        from engine.runtime.migrations import upgrade

        try:
            before, after = upgrade(db, revision)
        except WaooawError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"schema at revision {after}" + (" (created)" if before is None else
                                                   " (already there)" if before == after else f" (was {before})"))

    @db_app.command("current")
    def db_current(
        db: str = typer.Option("sqlite:///waooaw.db", "--db", help="SQLAlchemy URL (sqlite:///file.db, postgresql://...)"),
    ) -> None:
        """The database's schema revision and the one this waooaw needs."""
        from engine.errors import WaooawError
        from engine.runtime.db import connect
        from engine.runtime.migrations import current, head

        try:
            engine = connect(db, migrate=False)
            found = current(engine)
            engine.dispose()
        except WaooawError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"database: {found or 'empty'}; this waooaw: {head()}")
