"""The engine's tables (SQLModel). Created on first start; schema changes after a release will go
through Alembic migrations (``alembic revision --autogenerate`` against ``SQLModel.metadata``).

JSON columns are TEXT so SQLite and PostgreSQL store them alike. Jobs are found through an index on
(due_at), subscriptions through (message, correlation): nothing scans instances.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Dialect, Index, Text, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel


class UtcDateTime(TypeDecorator[datetime]):
    """Moments in UTC, whatever the database: SQLite keeps no offset, so every value is converted to
    UTC on the way in (naive ones are taken as UTC) and comes back aware, as PostgreSQL's timestamptz does."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is None:
            return value
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


def _ts(**kwargs: object) -> Column:  # type: ignore[type-arg]
    return Column(UtcDateTime(), **kwargs)  # type: ignore[arg-type]


class DefinitionRow(SQLModel, table=True):
    __tablename__ = "wf_definitions"
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    version: int
    content: str = Field(sa_column=Column(Text, nullable=False))
    content_hash: str = Field(index=True)
    deployed_at: datetime = Field(sa_column=_ts(nullable=False))


class InstanceRow(SQLModel, table=True):
    """Lists (``Engine.instance_page``) are served by the indexes ending in (started_at, id): newest first
    under any combination of the status and definition filters, without a sort or a scan."""

    __tablename__ = "wf_instances"
    __table_args__ = (Index("ix_wf_instances_started", "started_at", "id"),
                      Index("ix_wf_instances_status_started", "status", "started_at", "id"),
                      Index("ix_wf_instances_definition_started", "definition_name", "started_at", "id"),
                      Index("ix_wf_instances_definition_status_started", "definition_name", "status", "started_at",
                            "id"))
    id: str = Field(primary_key=True)
    definition_name: str
    definition_version: int
    business_key: str | None = Field(default=None, index=True)
    status: str
    started_at: datetime = Field(sa_column=_ts(nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text))
    state: str = Field(sa_column=Column(Text, nullable=False))
    steps: int = 0
    rev: int = 0


class TokenRow(SQLModel, table=True):
    """The instance's tokens, one row each (node and status as columns for queries: "which instances wait at
    approval?"; the rest in ``data``). An instance's state row holds everything else, so a step that moves one
    of 10,000 tokens writes one token row (``engine.runtime.writes``). ``node_id`` has no index of its own: the
    engine reads tokens by instance, and every start and token move would write it (revision 0008)."""

    __tablename__ = "wf_tokens"
    instance_id: str = Field(primary_key=True)
    token_id: str = Field(primary_key=True)
    node_id: str
    status: str
    parent: str | None = None
    data: str | None = Field(default=None, sa_column=Column(Text))  # the rest of the token (JSON): via, waits, ...


class VariableRow(SQLModel, table=True):
    __tablename__ = "wf_variables"
    instance_id: str = Field(primary_key=True)
    name: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(Text))
    version: int = 1


class VariableHistoryRow(SQLModel, table=True):
    """Every change of every variable: the audit trail."""

    __tablename__ = "wf_variable_history"
    id: int | None = Field(default=None, primary_key=True)
    instance_id: str = Field(index=True)
    name: str
    old_value: str | None = Field(default=None, sa_column=Column(Text))
    new_value: str | None = Field(default=None, sa_column=Column(Text))
    version: int
    node_id: str | None = None
    actor: str | None = None
    at: datetime = Field(sa_column=_ts(nullable=False))


class TaskExecutionRow(SQLModel, table=True):
    __tablename__ = "wf_task_executions"
    id: int | None = Field(default=None, primary_key=True)
    instance_id: str = Field(index=True)
    node_id: str
    work_id: str
    attempt: int
    started_at: datetime = Field(sa_column=_ts(nullable=False))
    ended_at: datetime = Field(sa_column=_ts(nullable=False))
    status: str  # completed | failed | timeout | dropped | refused (a late answer of an external worker)
    error: str | None = Field(default=None, sa_column=Column(Text))


class JobRow(SQLModel, table=True):
    """Due work: agent calls (kind 'work'), timers ('timer'), messages to deliver ('message'), handlers
    ('handler'), timer start events ('start': no instance, ``ref`` the definition name; see timer_starts)."""

    __tablename__ = "wf_jobs"
    __table_args__ = (Index("ix_wf_jobs_due", "due_at"), Index("ix_wf_jobs_ref", "instance_id", "ref"))
    id: int | None = Field(default=None, primary_key=True)
    instance_id: str | None = None
    kind: str
    ref: str  # token id (work), timer id (timer), message name (message)
    due_at: datetime = Field(sa_column=_ts(nullable=False))
    payload: str = Field(default="{}", sa_column=Column(Text))
    lock_owner: str | None = None
    lock_expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    attempts: int = 0


class HumanTaskRow(SQLModel, table=True):
    __tablename__ = "wf_human_tasks"
    id: int | None = Field(default=None, primary_key=True)
    instance_id: str = Field(index=True)
    token_id: str
    work_id: str = Field(index=True)
    node_id: str
    title: str
    assignee: str | None = Field(default=None, index=True)
    candidate_groups: str = Field(default="[]", sa_column=Column(Text))
    requires_claim: bool = False  # a candidate must claim it before completing (UserTask.requires_claim)
    form: str = Field(default="[]", sa_column=Column(Text))
    status: str = Field(default="open", index=True)  # open | completed | cancelled
    escalated: bool = False
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    due_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    completed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    completed_by: str | None = None
    within_sla: bool | None = None
    outcome: str | None = Field(default=None, sa_column=Column(Text))


class SubscriptionRow(SQLModel, table=True):
    __tablename__ = "wf_subscriptions"
    __table_args__ = (Index("ix_wf_subscriptions_match", "message", "correlation"),)
    id: str = Field(primary_key=True)
    instance_id: str = Field(index=True)
    message: str  # the message's name, or the signal's (kind "signal")
    correlation: str | None = None
    token_id: str
    node_id: str
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    kind: str = Field(default="message", sa_column_kwargs={"server_default": "message"})  # message | signal


class IncidentRow(SQLModel, table=True):
    """A failure waiting for an operator: ``Engine.retry`` tries again, ``Engine.cancel_incident`` gives up.

    Most hold a token of an instance (``token_id``). A job that failed for a reason of its own -- a message
    delivery, a timer start -- holds the job itself in ``job`` (JSON: kind, ref, instance_id, payload, due_at):
    it no longer runs, and a retry puts it back. A timer start has no instance yet: ``instance_id`` is None."""

    __tablename__ = "wf_incidents"
    id: int | None = Field(default=None, primary_key=True)
    instance_id: str | None = Field(default=None, index=True)
    token_id: str
    node_id: str
    error: str = Field(sa_column=Column(Text))
    traceback: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    job: str | None = Field(default=None, sa_column=Column(Text))


class TaskAuditRow(SQLModel, table=True):
    """Every action on a human task, written in the transaction of the change it records.

    ``action``: created | claimed | unclaimed | delegated | escalated | reassigned | sla_breached | completed |
    sla_completed | cancelled. ``actor`` is None for the engine itself (and for API calls without one),
    ``sla`` for SLA actions. ``detail`` is JSON (e.g. ``{"from": "ada", "to": "cto"}``).
    """

    __tablename__ = "wf_task_audit"
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(index=True)
    instance_id: str = Field(index=True)
    node_id: str
    action: str
    actor: str | None = None
    detail: str = Field(default="{}", sa_column=Column(Text))
    at: datetime = Field(sa_column=_ts(nullable=False))


class RolloutRow(SQLModel, table=True):
    """Which versions new instances of a definition get, by weight (see ``engine.versions.rollout``).

    ``weights`` is JSON ``{"3": 90, "4": 10}``; ``guardrail`` JSON or None. No row: the latest version."""

    __tablename__ = "wf_rollouts"
    name: str = Field(primary_key=True)
    weights: str = Field(sa_column=Column(Text, nullable=False))
    guardrail: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: datetime = Field(sa_column=_ts(nullable=False))
    updated_by: str | None = None


class RolloutChangeRow(SQLModel, table=True):
    """Every change of a rollout policy: who, when, why (an operator, or the guardrail rolling back)."""

    __tablename__ = "wf_rollout_changes"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    weights: str = Field(sa_column=Column(Text, nullable=False))
    guardrail: str | None = Field(default=None, sa_column=Column(Text))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    actor: str | None = None
    at: datetime = Field(sa_column=_ts(nullable=False))


class MigrationRow(SQLModel, table=True):
    """One instance moved between versions of its definition (``engine.versions.migration``)."""

    __tablename__ = "wf_migrations"
    id: int | None = Field(default=None, primary_key=True)
    instance_id: str = Field(index=True)
    definition_name: str
    from_version: int
    to_version: int
    mapping: str = Field(sa_column=Column(Text, nullable=False))
    actor: str | None = None
    at: datetime = Field(sa_column=_ts(nullable=False))


class BusInboxRow(SQLModel, table=True):
    """Bus messages the engine has applied (``engine.bus``): the message id is written in the transaction of
    the step it caused, so a redelivered message (a crash before its acknowledgement) is applied once."""

    __tablename__ = "wf_bus_inbox"
    message_id: str = Field(primary_key=True)
    topic: str
    received_at: datetime = Field(sa_column=_ts(nullable=False))


class MessageRow(SQLModel, table=True):
    """A message that found no waiting instance (buffered until ``expires_at``), or that could not be delivered
    (``ambiguous``). See :mod:`engine.runtime.correlation` for the rule.

    ``status``: buffered | delivered | expired | ambiguous. ``correlation``, ``payload`` and ``filters`` are JSON
    (typed values tagged as in :mod:`engine.model.values`); ``filters`` holds ``where``/``instance_id``/
    ``business_key`` of a correlation by process data. ``source``: "api" or "throw:<instance>:<node>".
    """

    __tablename__ = "wf_messages"
    __table_args__ = (Index("ix_wf_messages_open", "name", "status"),)
    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(index=True)
    name: str
    correlation: str | None = Field(default=None, sa_column=Column(Text))
    payload: str = Field(default="{}", sa_column=Column(Text))
    filters: str = Field(default="{}", sa_column=Column(Text))
    status: str
    source: str = "api"
    error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    delivered_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    instance_id: str | None = None  # who received it (buffered messages, once delivered)


class ActivityRow(SQLModel, table=True):
    """One activity instance: a token's passage through one node (BPMN's activity instance; Camunda's
    ACT_HI_ACTINST), written in the transaction of the step that started or ended it. Append-only: a passage
    that starts and ends in one transaction is one row; one that ends in a later transaction gets a second
    row with ``started_at`` None (its end), which ``Engine.activities`` pairs with its start (no UPDATE).

    ``outcome``: None while running, then completed | cancelled | interrupted | failed; an end row with
    ``compensated`` marks the node's latest completed passage as undone by compensation.
    ``kind`` is the node's kind, or ``compensation`` for a compensation handler's run (``token_id`` is then the
    run's work id); ``scope`` the enclosing sub-process id (None: the process). See ``engine.runtime.history``.
    """

    __tablename__ = "wf_activities"
    __table_args__ = (Index("ix_wf_activities_instance", "instance_id"),)
    id: int | None = Field(default=None, primary_key=True)
    instance_id: str
    token_id: str
    node_id: str
    kind: str
    scope: str | None = None
    started_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))  # None: the end of a passage
    ended_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    outcome: str | None = None


class HistoryTtlRow(SQLModel, table=True):
    """History time-to-live per definition name (``*``: the default); see engine.runtime.retention."""

    __tablename__ = "wf_history_ttl"
    definition_name: str = Field(primary_key=True)
    ttl_seconds: int
    updated_at: datetime = Field(sa_column=_ts(nullable=False))
