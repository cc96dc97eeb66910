"""Alembic's environment: the engine's tables (SQLModel.metadata), online migrations only.

A connection passed in ``config.attributes["connection"]`` is used (the engine's own calls); otherwise
``sqlalchemy.url`` from the config, or ``WAOOAW_DB`` (the alembic command line)."""

from __future__ import annotations

import os
from typing import Any

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

from engine.runtime import tables  # noqa: F401  (registers the tables)
from engine.runtime.db import normalise_url
from engine.runtime.migrations.render import render_item

target_metadata = SQLModel.metadata


def _run(connection: Any) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_item=render_item,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get("WAOOAW_DB", "sqlite:///waooaw.db")
    engine = create_engine(normalise_url(url))
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
