"""Process versions as safe experiments: gradual rollout by weight, A/B comparison with a guardrail,
migration of running instances (with a dry run), and replay of recorded runs against a new version.

- ``set_rollout(engine, "pr_review", {3: 90, 4: 10}, actor=..., reason=..., guardrail=Guardrail(...))``
- ``version_table(engine, name)`` and ``compare_versions(engine, name, 3, 4)``: the A/B table
- ``check_guardrails(engine)``: roll a significantly worse candidate back (the worker calls it)
- ``plan_migration(engine, name, 3, 4, mapping)`` (dry run) then ``migrate(engine, plan, actor=...)``
- ``replay_versions(engine, name, 3, 4)``: which finished runs of v3 would take another path in v4
"""

from __future__ import annotations

import importlib
from typing import Any

# Each name is imported from its module on first use (PEP 562): the engine imports ``engine.versions.rollout``
# on every start, and must not pay for the comparison's pandas and scipy.
_WHERE = {
    "compare_versions": "compare", "version_table": "compare", "check_guardrails": "guardrail",
    "MigrationPlan": "migration", "migrate": "migration", "migrations": "migration", "plan_migration": "migration",
    "Recording": "replay", "record": "replay", "replay": "replay", "replay_versions": "replay",
    "Guardrail": "rollout", "Rollout": "rollout", "choose_version": "rollout", "clear_rollout": "rollout",
    "get_rollout": "rollout", "rollout_history": "rollout", "rollouts": "rollout", "set_rollout": "rollout",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'engine.versions' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"engine.versions.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


__all__ = ["Guardrail", "MigrationPlan", "Recording", "Rollout", "check_guardrails", "choose_version", "clear_rollout",
           "compare_versions", "get_rollout", "migrate", "migrations", "plan_migration", "record", "replay",
           "replay_versions", "rollout_history", "rollouts", "set_rollout", "version_table"]
