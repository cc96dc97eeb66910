"""The rollout guardrail: roll a candidate version back when it is significantly worse.

``check_guardrails(engine)`` looks at every rollout with a guardrail whose candidate still has a
weight. Once both versions have ``min_instances`` started since the guardrail was set, each metric is
tested one-sided (is the candidate's rate *higher*?) with the two-proportion z-test at ``alpha``; on
the first significant one the candidate's weight goes to the baseline, and the change is recorded with
actor ``guardrail`` and the reason (metric, both rates, p-value). Nothing changes otherwise.

The worker calls it every ``interval`` seconds (``run_worker(guardrail_interval=...)``); tests and
notebooks call it directly after moving a virtual clock.

Repeated looks at accumulating data inflate the false-alarm rate above ``alpha`` (the "peeking"
problem of sequential A/B tests); ``min_instances`` bounds it by not looking early. A stricter
sequential test (e.g. SPRT) is a possible refinement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.statistics import proportions
from engine.versions.compare import samples
from engine.versions.rollout import Rollout, _store, rollouts

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

GUARDRAIL_ACTOR = "guardrail"


@dataclass(frozen=True)
class Rollback:
    """A rollback the guardrail made: which definition, candidate, metric and why."""

    name: str
    candidate: int
    baseline: int
    metric: str
    reason: str


def evaluate(engine: Engine, policy: Rollout) -> Rollback | None:
    """The guardrail's verdict on one rollout (None: keep going), without changing anything."""
    rail = policy.guardrail
    if rail is None or policy.weights.get(rail.candidate, 0) <= 0:
        return None
    got = samples(engine, policy.name, since=rail.since, versions=[rail.baseline, rail.candidate])
    base, cand = got[rail.baseline], got[rail.candidate]
    if base.started < rail.min_instances or cand.started < rail.min_instances:
        return None
    for metric in rail.metrics:
        if metric == "failure_rate":
            xa, na, xb, nb = base.failures, base.started, cand.failures, cand.started
        elif metric == "sla_breach_rate":
            (xa, na), (xb, nb) = base.sla_breaches, cand.sla_breaches
        else:
            continue
        if not na or not nb:
            continue
        test = proportions(xa, na, xb, nb, rail.alpha, ("base", "cand"), alternative="greater")
        if test["significant"]:
            reason = (f"guardrail: {metric} of v{rail.candidate} {xb}/{nb} = {xb / nb:.1%} is significantly worse "
                      f"than v{rail.baseline} {xa}/{na} = {xa / na:.1%} (one-sided p = {test['p_value']:.4f} "
                      f"< {rail.alpha}); v{rail.candidate} weight set to 0")
            return Rollback(policy.name, rail.candidate, rail.baseline, metric, reason)
    return None


def check_guardrails(engine: Engine) -> list[Rollback]:
    """Evaluate every guarded rollout and apply the rollbacks due (each recorded in the rollout history)."""
    done = []
    for policy in rollouts(engine):
        verdict = evaluate(engine, policy)
        if verdict is None:
            continue
        weights = dict(policy.weights)
        weights[verdict.baseline] = weights.get(verdict.baseline, 0) + weights[verdict.candidate]
        weights[verdict.candidate] = 0.0
        with engine.db.begin() as conn:
            _store(conn, policy.name, weights, policy.guardrail, GUARDRAIL_ACTOR, verdict.reason, engine.clock.now())
        done.append(verdict)
    return done
