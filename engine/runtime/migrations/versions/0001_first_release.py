"""The first release's schema (the engine's tables as of commit a3d088f, made then by create_all).

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wf_definitions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('content_hash', sa.String(), nullable=False),
    sa.Column('deployed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name', 'version')
    )
    op.create_index(op.f('ix_wf_definitions_content_hash'), 'wf_definitions', ['content_hash'], unique=False)
    op.create_index(op.f('ix_wf_definitions_name'), 'wf_definitions', ['name'], unique=False)
    op.create_table('wf_human_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.String(), nullable=False),
    sa.Column('token_id', sa.String(), nullable=False),
    sa.Column('work_id', sa.String(), nullable=False),
    sa.Column('node_id', sa.String(), nullable=False),
    sa.Column('title', sa.String(), nullable=False),
    sa.Column('assignee', sa.String(), nullable=True),
    sa.Column('candidate_groups', sa.Text(), nullable=True),
    sa.Column('form', sa.Text(), nullable=True),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('escalated', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_by', sa.String(), nullable=True),
    sa.Column('within_sla', sa.Boolean(), nullable=True),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_wf_human_tasks_assignee'), 'wf_human_tasks', ['assignee'], unique=False)
    op.create_index(op.f('ix_wf_human_tasks_instance_id'), 'wf_human_tasks', ['instance_id'], unique=False)
    op.create_index(op.f('ix_wf_human_tasks_status'), 'wf_human_tasks', ['status'], unique=False)
    op.create_index(op.f('ix_wf_human_tasks_work_id'), 'wf_human_tasks', ['work_id'], unique=False)
    op.create_table('wf_incidents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.String(), nullable=False),
    sa.Column('token_id', sa.String(), nullable=False),
    sa.Column('node_id', sa.String(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('traceback', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_wf_incidents_instance_id'), 'wf_incidents', ['instance_id'], unique=False)
    op.create_table('wf_instances',
    sa.Column('id', sa.String(), nullable=False),
    sa.Column('definition_name', sa.String(), nullable=False),
    sa.Column('definition_version', sa.Integer(), nullable=False),
    sa.Column('business_key', sa.String(), nullable=True),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('state', sa.Text(), nullable=False),
    sa.Column('steps', sa.Integer(), nullable=False),
    sa.Column('rev', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_wf_instances_business_key'), 'wf_instances', ['business_key'], unique=False)
    op.create_index(op.f('ix_wf_instances_definition_name'), 'wf_instances', ['definition_name'], unique=False)
    op.create_index(op.f('ix_wf_instances_status'), 'wf_instances', ['status'], unique=False)
    op.create_table('wf_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.String(), nullable=True),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('ref', sa.String(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.Text(), nullable=True),
    sa.Column('lock_owner', sa.String(), nullable=True),
    sa.Column('lock_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_wf_jobs_due', 'wf_jobs', ['due_at'], unique=False)
    op.create_index('ix_wf_jobs_ref', 'wf_jobs', ['instance_id', 'ref'], unique=False)
    op.create_table('wf_subscriptions',
    sa.Column('id', sa.String(), nullable=False),
    sa.Column('instance_id', sa.String(), nullable=False),
    sa.Column('message', sa.String(), nullable=False),
    sa.Column('correlation', sa.String(), nullable=True),
    sa.Column('token_id', sa.String(), nullable=False),
    sa.Column('node_id', sa.String(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_wf_subscriptions_instance_id'), 'wf_subscriptions', ['instance_id'], unique=False)
    op.create_index('ix_wf_subscriptions_match', 'wf_subscriptions', ['message', 'correlation'], unique=False)
    op.create_table('wf_task_audit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.String(), nullable=False),
    sa.Column('node_id', sa.String(), nullable=False),
    sa.Column('action', sa.String(), nullable=False),
    sa.Column('actor', sa.String(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_wf_task_audit_instance_id'), 'wf_task_audit', ['instance_id'], unique=False)
    op.create_index(op.f('ix_wf_task_audit_task_id'), 'wf_task_audit', ['task_id'], unique=False)
    op.create_table('wf_task_executions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.String(), nullable=False),
    sa.Column('node_id', sa.String(), nullable=False),
    sa.Column('work_id', sa.String(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_wf_task_executions_instance_id'), 'wf_task_executions', ['instance_id'], unique=False)
    op.create_table('wf_tokens',
    sa.Column('instance_id', sa.String(), nullable=False),
    sa.Column('token_id', sa.String(), nullable=False),
    sa.Column('node_id', sa.String(), nullable=False),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('parent', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('instance_id', 'token_id')
    )
    op.create_index(op.f('ix_wf_tokens_node_id'), 'wf_tokens', ['node_id'], unique=False)
    op.create_table('wf_variable_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.String(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('old_value', sa.Text(), nullable=True),
    sa.Column('new_value', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.String(), nullable=True),
    sa.Column('actor', sa.String(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_wf_variable_history_instance_id'), 'wf_variable_history', ['instance_id'], unique=False)
    op.create_table('wf_variables',
    sa.Column('instance_id', sa.String(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('instance_id', 'name')
    )


def downgrade() -> None:
    op.drop_table('wf_variables')
    op.drop_index(op.f('ix_wf_variable_history_instance_id'), table_name='wf_variable_history')
    op.drop_table('wf_variable_history')
    op.drop_index(op.f('ix_wf_tokens_node_id'), table_name='wf_tokens')
    op.drop_table('wf_tokens')
    op.drop_index(op.f('ix_wf_task_executions_instance_id'), table_name='wf_task_executions')
    op.drop_table('wf_task_executions')
    op.drop_index(op.f('ix_wf_task_audit_task_id'), table_name='wf_task_audit')
    op.drop_index(op.f('ix_wf_task_audit_instance_id'), table_name='wf_task_audit')
    op.drop_table('wf_task_audit')
    op.drop_index('ix_wf_subscriptions_match', table_name='wf_subscriptions')
    op.drop_index(op.f('ix_wf_subscriptions_instance_id'), table_name='wf_subscriptions')
    op.drop_table('wf_subscriptions')
    op.drop_index('ix_wf_jobs_ref', table_name='wf_jobs')
    op.drop_index('ix_wf_jobs_due', table_name='wf_jobs')
    op.drop_table('wf_jobs')
    op.drop_index(op.f('ix_wf_instances_status'), table_name='wf_instances')
    op.drop_index(op.f('ix_wf_instances_definition_name'), table_name='wf_instances')
    op.drop_index(op.f('ix_wf_instances_business_key'), table_name='wf_instances')
    op.drop_table('wf_instances')
    op.drop_index(op.f('ix_wf_incidents_instance_id'), table_name='wf_incidents')
    op.drop_table('wf_incidents')
    op.drop_index(op.f('ix_wf_human_tasks_work_id'), table_name='wf_human_tasks')
    op.drop_index(op.f('ix_wf_human_tasks_status'), table_name='wf_human_tasks')
    op.drop_index(op.f('ix_wf_human_tasks_instance_id'), table_name='wf_human_tasks')
    op.drop_index(op.f('ix_wf_human_tasks_assignee'), table_name='wf_human_tasks')
    op.drop_table('wf_human_tasks')
    op.drop_index(op.f('ix_wf_definitions_name'), table_name='wf_definitions')
    op.drop_index(op.f('ix_wf_definitions_content_hash'), table_name='wf_definitions')
    op.drop_table('wf_definitions')
