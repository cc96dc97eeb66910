"""The tables, columns and indexes added since the first release, as of this wave's work: paged instance
lists (indexes ending in started_at, id), history time-to-live, activity history, message buffer, bus
inbox, version rollouts and migrations.

Databases made between the first release and this revision by ``create_all`` may already hold some of
these tables (and lack the new indexes): each operation of ``upgrade`` checks the database first.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""
# ruff: noqa: E501  (written by autogenerate)

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


class _Idempotent:
    """``op`` that skips what the database already has (tables, indexes, columns) or lacks (dropped indexes)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(op, name)

    @staticmethod
    def _inspector() -> Any:
        return sa.inspect(op.get_bind())

    def _indexes(self, table: str) -> set[str]:
        return {i["name"] for i in self._inspector().get_indexes(table)}

    def create_table(self, name: str, *args: Any, **kwargs: Any) -> None:
        if not self._inspector().has_table(name):
            op.create_table(name, *args, **kwargs)

    def create_index(self, name: str, table: str, columns: list[str], **kwargs: Any) -> None:
        if name not in self._indexes(table):
            op.create_index(name, table, columns, **kwargs)

    def drop_index(self, name: str, table_name: str, **kwargs: Any) -> None:
        if name in self._indexes(table_name):
            op.drop_index(name, table_name=table_name, **kwargs)

    def add_column(self, table: str, column: sa.Column, **kwargs: Any) -> None:  # type: ignore[type-arg]
        if column.name not in {c["name"] for c in self._inspector().get_columns(table)}:
            op.add_column(table, column, **kwargs)


def upgrade() -> None:
    o = _Idempotent()
    o.create_table('wf_activities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.String(), nullable=False),
    sa.Column('token_id', sa.String(), nullable=False),
    sa.Column('node_id', sa.String(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('scope', sa.String(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    o.create_index('ix_wf_activities_instance', 'wf_activities', ['instance_id'], unique=False)
    o.create_table('wf_bus_inbox',
    sa.Column('message_id', sa.String(), nullable=False),
    sa.Column('topic', sa.String(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('message_id')
    )
    o.create_table('wf_history_ttl',
    sa.Column('definition_name', sa.String(), nullable=False),
    sa.Column('ttl_seconds', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('definition_name')
    )
    o.create_table('wf_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('correlation', sa.Text(), nullable=True),
    sa.Column('payload', sa.Text(), nullable=True),
    sa.Column('filters', sa.Text(), nullable=True),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('instance_id', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    o.create_index(op.f('ix_wf_messages_message_id'), 'wf_messages', ['message_id'], unique=False)
    o.create_index('ix_wf_messages_open', 'wf_messages', ['name', 'status'], unique=False)
    o.create_table('wf_migrations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.String(), nullable=False),
    sa.Column('definition_name', sa.String(), nullable=False),
    sa.Column('from_version', sa.Integer(), nullable=False),
    sa.Column('to_version', sa.Integer(), nullable=False),
    sa.Column('mapping', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    o.create_index(op.f('ix_wf_migrations_instance_id'), 'wf_migrations', ['instance_id'], unique=False)
    o.create_table('wf_rollout_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('weights', sa.Text(), nullable=False),
    sa.Column('guardrail', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('actor', sa.String(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    o.create_index(op.f('ix_wf_rollout_changes_name'), 'wf_rollout_changes', ['name'], unique=False)
    o.create_table('wf_rollouts',
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('weights', sa.Text(), nullable=False),
    sa.Column('guardrail', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    o.drop_index(op.f('ix_wf_instances_definition_name'), table_name='wf_instances')
    o.drop_index(op.f('ix_wf_instances_status'), table_name='wf_instances')
    o.create_index('ix_wf_instances_definition_started', 'wf_instances', ['definition_name', 'started_at', 'id'], unique=False)
    o.create_index('ix_wf_instances_definition_status_started', 'wf_instances', ['definition_name', 'status', 'started_at', 'id'], unique=False)
    o.create_index('ix_wf_instances_started', 'wf_instances', ['started_at', 'id'], unique=False)
    o.create_index('ix_wf_instances_status_started', 'wf_instances', ['status', 'started_at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_wf_instances_status_started', table_name='wf_instances')
    op.drop_index('ix_wf_instances_started', table_name='wf_instances')
    op.drop_index('ix_wf_instances_definition_status_started', table_name='wf_instances')
    op.drop_index('ix_wf_instances_definition_started', table_name='wf_instances')
    op.create_index(op.f('ix_wf_instances_status'), 'wf_instances', ['status'], unique=False)
    op.create_index(op.f('ix_wf_instances_definition_name'), 'wf_instances', ['definition_name'], unique=False)
    op.drop_table('wf_rollouts')
    op.drop_index(op.f('ix_wf_rollout_changes_name'), table_name='wf_rollout_changes')
    op.drop_table('wf_rollout_changes')
    op.drop_index(op.f('ix_wf_migrations_instance_id'), table_name='wf_migrations')
    op.drop_table('wf_migrations')
    op.drop_index('ix_wf_messages_open', table_name='wf_messages')
    op.drop_index(op.f('ix_wf_messages_message_id'), table_name='wf_messages')
    op.drop_table('wf_messages')
    op.drop_table('wf_history_ttl')
    op.drop_table('wf_bus_inbox')
    op.drop_index('ix_wf_activities_instance', table_name='wf_activities')
    op.drop_table('wf_activities')
