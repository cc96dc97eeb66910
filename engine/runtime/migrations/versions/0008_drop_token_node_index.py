"""Issue 19: ``ix_wf_tokens_node_id`` dropped. No query of the engine or the app reads tokens by node alone
(reads go by instance, the primary key's prefix; moving tokens of a migrated instance names the instance too),
yet every start and every token move wrote it: one B-tree page of the 24 a PR-review start commits on SQLite.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEX = "ix_wf_tokens_node_id"


def _indexes() -> set[str]:
    return {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("wf_tokens")}


def upgrade() -> None:
    if INDEX in _indexes():
        op.drop_index(INDEX, table_name="wf_tokens")


def downgrade() -> None:
    if INDEX not in _indexes():
        op.create_index(INDEX, "wf_tokens", ["node_id"])
