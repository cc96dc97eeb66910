"""Issue 16's multi-instance slice: ``wf_tokens.data``. Each token is a row of its own (the rest of the token
as JSON beside node, status and parent), so a step that moves one of 10,000 tokens writes one row instead of
the whole instance state. States written before keep their tokens in the instance's JSON; the engine reads
those and gives each token its row at the instance's next step (``engine.runtime.writes.load_states``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    if "data" not in _columns("wf_tokens"):
        op.add_column("wf_tokens", sa.Column("data", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("wf_tokens") as batch:
        batch.drop_column("data")
