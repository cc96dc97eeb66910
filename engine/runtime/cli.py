"""``waooaw worker``: the engine's command."""

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
    ) -> None:
        """Run the job loop: agent calls, timers, message delivery."""
        import logging

        from engine.runtime.worker import run_worker

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

        for module in agents:
            importlib.import_module(module)
        from engine.errors import WaooawError

        try:
            ran = run_worker(db, poll=poll, batch=batch, lease=lease, max_idle=max_idle, threads=threads,
                             metrics_port=metrics_port)
        except WaooawError as exc:  # a start-up problem (the database, a setting): one line, exit 1
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"worker stopped after {ran} jobs")
