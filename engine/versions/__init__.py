"""Process versions as safe experiments: gradual rollout by weight, A/B comparison with a guardrail,
migration of running instances (with a dry run), and replay of recorded runs against a new version."""

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

__all__ = ["Guardrail", "Rollout", "choose_version", "clear_rollout", "get_rollout", "rollout_history", "rollouts",
           "set_rollout"]
