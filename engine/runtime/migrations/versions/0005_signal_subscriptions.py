"""Signal subscriptions (issue 16): ``wf_subscriptions.kind`` says whether a row waits for a message
(correlated, delivered to one catch) or a signal (broadcast to every waiting row of its name). Existing rows
are message subscriptions. Checked first, as 0002's operations are, so a database made by ``create_all`` in
between upgrades too.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    if "kind" not in _columns("wf_subscriptions"):
        op.add_column("wf_subscriptions", sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False,
                                                    server_default="message"))


def downgrade() -> None:
    op.drop_column("wf_subscriptions", "kind")
