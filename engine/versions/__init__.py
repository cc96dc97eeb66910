"""Process versions as safe experiments: gradual rollout by weight, A/B comparison with a guardrail,
migration of running instances (with a dry run), and replay of recorded runs against a new version.

- ``set_rollout(engine, "pr_review", {3: 90, 4: 10}, actor=..., reason=..., guardrail=Guardrail(...))``
- ``version_table(engine, name)`` and ``compare_versions(engine, name, 3, 4)``: the A/B table
- ``check_guardrails(engine)``: roll a significantly worse candidate back (the worker calls it)
- ``plan_migration(engine, name, 3, 4, mapping)`` (dry run) then ``migrate(engine, plan, actor=...)``
- ``replay_versions(engine, name, 3, 4)``: which finished runs of v3 would take another path in v4
"""

from engine.versions.compare import compare_versions, version_table
from engine.versions.guardrail import check_guardrails
from engine.versions.migration import MigrationPlan, migrate, migrations, plan_migration
from engine.versions.replay import Recording, record, replay, replay_versions
from engine.versions.rollout import (
    Guardrail,
    Rollout,
    choose_version,
    clear_rollout,
    get_rollout,
    rollout_history,
    rollouts,
    set_rollout,
)

__all__ = ["Guardrail", "MigrationPlan", "Recording", "Rollout", "check_guardrails", "choose_version", "clear_rollout",
           "compare_versions", "get_rollout", "migrate", "migrations", "plan_migration", "record", "replay",
           "replay_versions", "rollout_history", "rollouts", "set_rollout", "version_table"]
