"""Incidents of jobs (issue 14): a message delivery or a timer start that fails for a reason of its own is held
in ``wf_incidents.job`` instead of running again at every lease; a timer start has no instance, so
``wf_incidents.instance_id`` may be NULL. Checked first, as 0002's operations are, so a database made by
``create_all`` in between upgrades too.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _columns(table: str) -> dict[str, dict]:  # type: ignore[type-arg]
    return {c["name"]: c for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    columns = _columns("wf_incidents")
    with op.batch_alter_table("wf_incidents") as batch:
        if "job" not in columns:
            batch.add_column(sa.Column("job", sa.Text(), nullable=True))
        if not columns["instance_id"]["nullable"]:
            batch.alter_column("instance_id", existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("wf_incidents") as batch:
        batch.alter_column("instance_id", existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=False)
        batch.drop_column("job")
