"""The security tables (issue 13): ``wf_audit`` (every decision, allowed or refused, with its principal) and
``wf_users`` (local accounts: argon2 hashes, groups, roles). Each operation checks the database first, as
0002's do, so a database made by ``create_all`` in between upgrades too.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import engine.runtime.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _has(table: str) -> bool:
    return table in sa.inspect(op.get_bind()).get_table_names()


def upgrade() -> None:
    if not _has("wf_audit"):
        op.create_table(
            "wf_audit",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("at", engine.runtime.tables.UtcDateTime(timezone=True), nullable=False),
            sa.Column("principal", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
            sa.Column("roles", sa.Text(), nullable=False),
            sa.Column("action", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
            sa.Column("target", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
            sa.Column("allowed", sa.Boolean(), nullable=False),
            sa.Column("rule", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
            sa.Column("detail", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(op.f("ix_wf_audit_at"), "wf_audit", ["at"], unique=False)
        op.create_index(op.f("ix_wf_audit_principal"), "wf_audit", ["principal"], unique=False)
    if not _has("wf_users"):
        op.create_table(
            "wf_users",
            sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
            sa.Column("display_name", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
            sa.Column("email", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
            sa.Column("password_hash", sa.Text(), nullable=True),
            sa.Column("groups", sa.Text(), nullable=False),
            sa.Column("roles", sa.Text(), nullable=False),
            sa.Column("disabled", sa.Boolean(), nullable=False),
            sa.Column("demo", sa.Boolean(), nullable=False),
            sa.Column("created_at", engine.runtime.tables.UtcDateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("name"),
        )
        op.create_index(op.f("ix_wf_users_email"), "wf_users", ["email"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_wf_users_email"), table_name="wf_users")
    op.drop_table("wf_users")
    op.drop_index(op.f("ix_wf_audit_principal"), table_name="wf_audit")
    op.drop_index(op.f("ix_wf_audit_at"), table_name="wf_audit")
    op.drop_table("wf_audit")
