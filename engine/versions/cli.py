"""``waooaw rollout``, ``waooaw migrate`` and ``waooaw replay``: versions from the command line.

    waooaw rollout pr_review                          # the policy, the A/B table and the change history
    waooaw rollout pr_review 3=90 4=10 --reason canary --guardrail
    waooaw rollout pr_review --clear                  # latest version for everyone again
    waooaw migrate expense 1 2 --map approve=review   # dry run (the default): what would happen per instance
    waooaw migrate expense 1 2 --map approve=review --apply
    waooaw replay credit 1 2                          # which finished v1 runs would take another path in v2

Every command takes ``--db`` and ``--output table|json`` like the other operations (``engine.cli_ops``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from engine.cli_ops import Db, Out, Output, _records, emit, open_engine, table
from engine.errors import EngineError


def _weights(pairs: list[str]) -> dict[int, float]:
    weights: dict[int, float] = {}
    for pair in pairs:
        version, sep, weight = pair.partition("=")
        try:
            weights[int(version.lstrip("v"))] = float(weight)
        except ValueError:
            raise typer.BadParameter(f"{pair!r} is not VERSION=WEIGHT (e.g. 3=90)", param_hint="WEIGHTS") from None
        if not sep:
            raise typer.BadParameter(f"{pair!r} is not VERSION=WEIGHT (e.g. 3=90)", param_hint="WEIGHTS")
    return weights


def _mapping(pairs: list[str] | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs or ():
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise typer.BadParameter(f"{pair!r} is not OLD_NODE=NEW_NODE", param_hint="--map")
        mapping[old.strip()] = new.strip()
    return mapping


def rollout(
    name: Annotated[str, typer.Argument(help="Definition name.")],
    weights: Annotated[list[str] | None, typer.Argument(metavar="[VERSION=WEIGHT]...",
                                                        help="New weights, e.g. 3=90 4=10 (shares of the total).")]
    = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (recorded with the change).")] = None,
    actor: Annotated[str | None, typer.Option("--as", help="Who makes the change (recorded).")] = None,
    guardrail: Annotated[bool, typer.Option("--guardrail", help="Roll the newest weighted version back when its "
                                            "failure or SLA breach rate is significantly worse.")] = False,
    min_instances: Annotated[int, typer.Option("--min-instances", help="Guardrail: instances per version "
                                               "before any verdict.")] = 50,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the policy: the latest version for all.")] = False,
    db: Db = "sqlite:///waooaw.db",
    output: Out = Output.table,
) -> None:
    """Show or set which versions new instances of NAME get (weights), with the A/B table."""
    from engine.versions import Guardrail, clear_rollout, get_rollout, rollout_history, set_rollout, version_table

    engine = open_engine(db)
    engine.definition(name)  # an unknown name is a clear error before anything else
    if clear:
        clear_rollout(engine, name, actor=actor, reason=reason)
    elif weights:
        parsed = _weights(weights)
        live = sorted(v for v, w in parsed.items() if w > 0)
        rail = Guardrail(candidate=live[-1], baseline=live[-2], min_instances=min_instances) \
            if guardrail and len(live) >= 2 else None
        if guardrail and rail is None:
            raise EngineError("--guardrail needs two versions with a positive weight")
        set_rollout(engine, name, parsed, actor=actor, reason=reason, guardrail=rail)
    policy = get_rollout(engine, name)
    versions = version_table(engine, name)
    history = rollout_history(engine, name)
    data = {"name": name, "weights": {str(v): w for v, w in policy.weights.items()} if policy else None,
            "guardrail": policy.guardrail.to_json() if policy and policy.guardrail else None,
            "versions": _records(versions), "history": _records(history)}
    shares = (", ".join(f"v{v} {s:.0%}" for v, s in policy.shares.items()) if policy
              else "no rollout: new instances get the latest version")
    text = [f"{name}: {shares}" + (" (guardrail on)" if policy and policy.guardrail else ""), "",
            table(_records(versions), ["version", "started", "completed", "failed", "completion_rate",
                                       "failure_rate", "cycle_p50_h", "sla_breach_rate"])]
    if not history.empty:
        text += ["", "changes:", table(_records(history), ["at", "actor", "weights", "reason"])]
    emit(output, data, "\n".join(text))


def migrate(
    name: Annotated[str, typer.Argument(help="Definition name.")],
    source: Annotated[int, typer.Argument(help="Version the instances run now.")],
    target: Annotated[int, typer.Argument(help="Version to move them to.")],
    mapping: Annotated[list[str] | None, typer.Option("--map", metavar="OLD=NEW",
                                                      help="A node pair (ids that stay the same map to "
                                                           "themselves). Repeat for several.")] = None,
    instance: Annotated[list[str] | None, typer.Option("--instance", help="Only these instances (repeat).")] = None,
    apply: Annotated[bool, typer.Option("--apply/--dry-run", help="Migrate (default: only show the dry run).")]
    = False,
    actor: Annotated[str | None, typer.Option("--as", help="Who migrates (recorded).")] = None,
    db: Db = "sqlite:///waooaw.db",
    output: Out = Output.table,
) -> None:
    """Migrate running instances of NAME from SOURCE to TARGET version: a dry run unless --apply."""
    from engine.versions import migrate as run_migration
    from engine.versions import plan_migration

    engine = open_engine(db)
    plan = plan_migration(engine, name, source, target, _mapping(mapping), instance_ids=instance)
    rows = _records(plan.to_frame())
    summary = f"{name} v{source} -> v{target}: {len(plan.migratable)} can migrate, {len(plan.refused)} refused"
    if not apply:
        details = [f"  {r['instance_id']}: {r['reasons']}" for r in rows if r["reasons"]]
        notes = [f"  {r['instance_id']}: {r['warnings']}" for r in rows if r["warnings"]]
        lines = [summary + " (dry run; --apply to migrate)",
                 table(rows, ["instance_id", "business_key", "action", "moves"])]
        lines += (["refused because:", *details] if details else []) + (["warnings:", *notes] if notes else [])
        emit(output, {"dry_run": True, "plan": rows}, "\n".join(lines))
        return
    result = run_migration(engine, plan, actor=actor)
    emit(output, {"dry_run": False, "migrated": result.migrated, "refused": result.refused},
         f"migrated {len(result.migrated)}, refused {len(result.refused)}"
         + "".join(f"\n  {i}: {why}" for i, why in result.refused.items()))
    if result.refused:
        raise typer.Exit(1)


def replay(
    name: Annotated[str, typer.Argument(help="Definition name.")],
    source: Annotated[int, typer.Argument(help="Version whose finished runs are replayed.")],
    target: Annotated[int, typer.Argument(help="Version to replay them through.")],
    limit: Annotated[int | None, typer.Option("--limit", help="At most this many instances.")] = None,
    db: Db = "sqlite:///waooaw.db",
    output: Out = Output.table,
) -> None:
    """Replay finished runs of SOURCE through TARGET (no side effects): which would take another path, and where."""
    from engine.versions import replay_versions

    report = replay_versions(open_engine(db), name, source, target, limit=limit)
    rows = _records(report)
    counts = report["result"].value_counts().to_dict() if not report.empty else {}
    emit(output, {"summary": counts, "instances": rows},
         ", ".join(f"{counts.get(k, 0)} {k}" for k in ("same", "diverged", "unreplayable")) + "\n"
         + table(rows, ["instance_id", "business_key", "result", "diverges_at", "recorded_end", "new_end", "note"]))


def register(app: typer.Typer) -> None:
    app.command("rollout")(rollout)
    app.command("migrate")(migrate)
    app.command("replay")(replay)
