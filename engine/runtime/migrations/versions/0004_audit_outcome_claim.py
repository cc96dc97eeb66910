"""Issue 13's second slice: ``wf_audit.outcome`` (succeeded | failed | refused: an allowed action's row says
what became of it) and ``wf_human_tasks.requires_claim`` (a candidate must claim the task before
completing it). Each operation checks the database first, as 0002's and 0003's do.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    if "outcome" not in _columns("wf_audit"):  # rows written before this revision: outcome not recorded
        op.add_column("wf_audit", sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    if "requires_claim" not in _columns("wf_human_tasks"):
        op.add_column("wf_human_tasks", sa.Column("requires_claim", sa.Boolean(), nullable=False,
                                                  server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("wf_human_tasks") as batch:
        batch.drop_column("requires_claim")
    with op.batch_alter_table("wf_audit") as batch:
        batch.drop_column("outcome")
