"""Operations against an engine's database, as ``zbctl``/``c8ctl`` users expect: deploy, start, instances,
instance, tasks, complete, correlate, signal, incidents, retry, cancel-incident, cancel.

Every command takes ``--db URL`` (default: the ``WAOOAW_DB`` environment variable, else
``sqlite:///waooaw.db``) and ``--output table|json``. JSON output is one document on stdout, for scripts
(``jq``); tables are for people. Work that agents do runs in a worker (``waooaw worker --db URL``);
``--run`` on start, complete, correlate and retry drives due jobs in this process instead (the embedded
single-process setup, like ``Engine.run_until_idle``). Errors are one line and an exit code (``engine.cli``).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from engine.errors import EngineError

if TYPE_CHECKING:
    import pandas as pd

    from engine.runtime import Engine

DEFAULT_DB = "sqlite:///waooaw.db"


class Output(StrEnum):
    table = "table"
    json = "json"


Db = Annotated[str, typer.Option("--db", envvar="WAOOAW_DB", show_envvar=True,
                                 help="Database URL: sqlite:///file.db or postgresql://user@host/db.")]
Out = Annotated[Output, typer.Option("--output", "-o", case_sensitive=False, help="table (people) or json (scripts).")]
Vars = Annotated[list[str] | None, typer.Option("--var", "-v", metavar="NAME=VALUE",
                                                help="A variable; VALUE is read as JSON (42, true, \"x\", [1]) "
                                                     "else taken as text. Repeat for several.")]
Run = Annotated[bool, typer.Option("--run", help="Drive the jobs that fall due in this process until idle "
                                                 "(embedded use; otherwise a worker does).")]


def parse_vars(pairs: Iterable[str] | None, json_text: str | None = None) -> dict[str, Any]:
    """``NAME=VALUE`` pairs (VALUE as JSON, else text) merged over a JSON object; usage errors name the pair."""
    values: dict[str, Any] = {}
    if json_text:
        try:
            loaded = json.loads(json_text)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"not JSON: {exc.msg} (column {exc.colno})", param_hint="--vars") from None
        if not isinstance(loaded, dict):
            raise typer.BadParameter("must be a JSON object, e.g. '{\"pr_number\": 42}'", param_hint="--vars")
        values.update(loaded)
    for pair in pairs or ():
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--var")
        try:
            values[name.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[name.strip()] = raw
    return values


def open_engine(db: str) -> Engine:
    from engine.runtime import Engine
    from engine.security import Principal

    # The CLI is the embedded single-user tool: whoever runs it can open the database anyway. It acts as the
    # system principal (audited as such); ``--actor`` names the person it acts for (task rules apply to them).
    return Engine(db, principal=Principal.system())


def _plain(value: Any) -> Any:
    """JSON-safe: datetimes as ISO-8601, NaN/NaT as null, numpy scalars as Python numbers."""
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy / pandas scalars
        with contextlib.suppress(ValueError, AttributeError):
            value = value.item()
    try:
        import pandas as pd

        if value is pd.NaT or (not isinstance(value, str | bool) and pd.isna(value)):
            return None
        if isinstance(value, pd.Timestamp):
            return value.isoformat()
    except (TypeError, ValueError):
        pass
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _cell(value: Any, width: int = 40) -> str:
    value = _plain(value)
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if isinstance(_plain(value), str) and len(text) >= 19 and text[4:5] == "-" and text[10:11] == "T":
        text = text[:19].replace("T", " ")  # timestamps to the second
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: list[Mapping[str, Any]], columns: list[str]) -> str:
    """Aligned text columns with a header; '(none)' when there are no rows."""
    if not rows:
        return "(none)"
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def emit(output: Output, data: Any, text: str) -> None:
    typer.echo(json.dumps(_plain(data), indent=2) if output is Output.json else text)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _drive(engine: Engine, run: bool) -> int:
    return engine.run_until_idle() if run else 0


# --- commands ---------------------------------------------------------------------------------------------


def deploy(
    designs_: Annotated[list[str], typer.Argument(metavar="FILE_OR_DESIGN...", help="Design files or names.")],
    db: Db = DEFAULT_DB, output: Out = Output.table,
) -> None:
    """Deploy designs (validated first; the same content keeps its version, a change makes the next one)."""
    from engine.cli import resolve

    engine = open_engine(db)
    deployed = []
    for arg in designs_:
        definition, _ = resolve(arg)
        result = engine.deploy(definition)
        deployed.append({"name": result.id, "version": result.version, "source": arg})
    emit(output, deployed, table(deployed, ["name", "version", "source"]))


def start(
    name: Annotated[str, typer.Argument(help="A deployed definition's name.")],
    var: Vars = None,
    vars_json: Annotated[str | None, typer.Option("--vars", help="Variables as one JSON object.")] = None,
    key: Annotated[str | None, typer.Option("--key", "-k", help="Business key (messages correlate on it).")] = None,
    run: Run = False, db: Db = DEFAULT_DB, output: Out = Output.table,
) -> None:
    """Start an instance of the latest version of a definition; prints its id."""
    engine = open_engine(db)
    instance_id = engine.start(name, parse_vars(var, vars_json), business_key=key)
    _drive(engine, run)
    view = engine.instance(instance_id)
    data = {"id": instance_id, "definition": view.definition, "version": view.version, "status": view.status,
            "business_key": view.business_key, "active_nodes": view.active_nodes}
    emit(output, data, instance_id if not run else f"{instance_id}  {view.status}  {', '.join(view.active_nodes)}")


def instances(
    status: Annotated[str | None, typer.Option("--status", help="running, completed, failed, cancelled.")] = None,
    definition: Annotated[str | None, typer.Option("--definition", "-d", help="Only this definition.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many, newest first.")] = 50,
    db: Db = DEFAULT_DB, output: Out = Output.table,
) -> None:
    """List instances, newest first."""
    frame = open_engine(db).instances(status=status, definition=definition, limit=limit)
    rows = _records(frame)
    emit(output, rows, table(rows, ["id", "definition_name", "definition_version", "business_key", "status",
                                    "started_at", "ended_at"]))


def instance(
    instance_id: Annotated[str, typer.Argument(metavar="ID", help="An instance id.")],
    db: Db = DEFAULT_DB, output: Out = Output.table,
) -> None:
    """Show one instance: status, where its tokens are, its variables, variable history and incidents."""
    view = open_engine(db).instance(instance_id)
    history = _records(view.history)
    data = {"id": view.id, "definition": view.definition, "version": view.version, "business_key": view.business_key,
            "status": view.status, "started_at": view.started_at, "ended_at": view.ended_at, "error": view.error,
            "steps": view.steps, "active_nodes": view.active_nodes, "variables": view.variables,
            "history": history, "incidents": view.incidents}
    lines = [f"{view.id}  {view.definition} v{view.version}  {view.status}",
             f"business key: {view.business_key or '-'}   steps: {view.steps}   started: {_cell(view.started_at)}"
             + (f"   ended: {_cell(view.ended_at)}" if view.ended_at else ""),
             f"active: {', '.join(view.active_nodes) or '-'}"]
    if view.error:
        lines.append(f"error: {view.error}")
    lines += ["", "variables:", table([{"name": k, "value": v} for k, v in sorted(view.variables.items())],
                                      ["name", "value"]),
              "", "history:", table(history, ["at", "name", "version", "old_value", "new_value", "node_id", "actor"])]
    open_incidents = [i for i in view.incidents if i.get("resolved_at") is None]
    if open_incidents:
        lines += ["", "open incidents:", table(open_incidents, ["id", "node_id", "error", "created_at"])]
    emit(output, data, "\n".join(lines))


TASK_COLUMNS = ["id", "instance_id", "node_id", "title", "assignee", "candidate_groups", "status", "due_at"]


def tasks(
    assignee: Annotated[str | None, typer.Option("--assignee", "-a", help="Only tasks assigned to this user.")] = None,
    instance_id: Annotated[str | None, typer.Option("--instance", "-i", help="Only this instance's tasks.")] = None,
    user: Annotated[str | None, typer.Option("--inbox", metavar="USER",
                                             help="USER's inbox: assigned to them or offered to --group.")] = None,
    group: Annotated[list[str] | None, typer.Option("--group", "-g", help="USER's groups (with --inbox).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Completed and cancelled tasks too.")] = False,
    db: Db = DEFAULT_DB, output: Out = Output.table,
) -> None:
    """List human tasks (open ones by default), or a user's inbox (soonest due first)."""
    engine = open_engine(db)
    if user is not None:
        rows = engine.inbox(user, group or [])
    else:
        rows = engine.tasks(assignee=assignee, instance_id=instance_id, status=None if all_ else "open")
    emit(output, rows, table(rows, TASK_COLUMNS))


def complete(
    task_id: Annotated[int, typer.Argument(metavar="TASK_ID", help="A human task's id (waooaw tasks).")],
    var: Vars = None,
    vars_json: Annotated[str | None, typer.Option("--vars", help="Form values as one JSON object.")] = None,
    actor: Annotated[str | None, typer.Option("--as", help="Who completes it (a task assigned to a user "
                                                           "can only be completed by them).")] = None,
    group: Annotated[list[str] | None, typer.Option("--group", help="A group the --as person is in (repeat it); "
                                                    "a task offered to groups needs one of them.")] = None,
    run: Run = False, db: Db = DEFAULT_DB, output: Out = Output.table,
) -> None:
    """Complete a human task with form values (checked against the task's form)."""
    engine = open_engine(db)
    engine.complete_task(task_id, parse_vars(var, vars_json), actor=actor, groups=group)
    _drive(engine, run)
    emit(output, {"task": task_id, "completed": True}, f"completed task {task_id}")


def correlate(
    message: Annotated[str, typer.Argument(help="The message name.")],
    key: Annotated[str | None, typer.Option("--key", "-k", help="Correlation key (e.g. the business key); "
                                                                "read as JSON, else text.")] = None,
    var: Vars = None,
    vars_json: Annotated[str | None, typer.Option("--vars", help="Payload as one JSON object.")] = None,
    run: Run = False, db: Db = DEFAULT_DB, output: Out = Output.table,
) -> None:
    """Deliver a message to the instance waiting for it (or start one at a message start event)."""
    engine = open_engine(db)
    correlation: Any = None
    if key is not None:
        try:
            correlation = json.loads(key)
        except json.JSONDecodeError:
            correlation = key
    instance_id = engine.correlate(message, correlation, parse_vars(var, vars_json))
    _drive(engine, run)
    emit(output, {"message": message, "instance": instance_id}, f"delivered {message!r} to {instance_id}")


def signal(
    name: Annotated[str, typer.Argument(help="The signal name.")],
    var: Vars = None,
    vars_json: Annotated[str | None, typer.Option("--vars", help="Payload as one JSON object.")] = None,
    run: Run = False, db: Db = DEFAULT_DB, output: Out = Output.table,
) -> None:
    """Broadcast a signal to every instance waiting for it (and start every definition with a signal start)."""
    engine = open_engine(db)
    reached = engine.signal(name, parse_vars(var, vars_json))
    _drive(engine, run)
    emit(output, {"signal": name, "instances": reached},
         f"broadcast {name!r} to {len(reached)} instance(s)" + (f": {', '.join(reached)}" if reached else ""))


def incidents(
    all_: Annotated[bool, typer.Option("--all", help="Resolved incidents too.")] = False,
    db: Db = DEFAULT_DB, output: Out = Output.table,
) -> None:
    """List open incidents (work that failed for good after its retries)."""
    rows = open_engine(db).incidents(open_only=not all_)
    for row in rows:
        row.pop("traceback", None) if output is Output.table else None
    shown = [{**row, "job": row["job"]["kind"] if row.get("job") else ""} for row in rows]
    emit(output, rows, table(shown, ["id", "instance_id", "node_id", "job", "error", "created_at", "resolved_at"]))


def retry(
    incident_id: Annotated[int, typer.Argument(metavar="INCIDENT_ID", help="An open incident's id.")],
    run: Run = False, db: Db = DEFAULT_DB, output: Out = Output.table,
) -> None:
    """Try an incident's failed work again."""
    engine = open_engine(db)
    engine.retry(incident_id)
    _drive(engine, run)
    emit(output, {"incident": incident_id, "retried": True}, f"retrying incident {incident_id}")


def cancel_incident(
    incident_id: Annotated[int, typer.Argument(metavar="INCIDENT_ID", help="An open incident's id.")],
    db: Db = DEFAULT_DB, output: Out = Output.table,
) -> None:
    """Give up an incident that holds a job (a message delivery, a timer start): the job is dropped."""
    open_engine(db).cancel_incident(incident_id)
    emit(output, {"incident": incident_id, "cancelled": True}, f"cancelled incident {incident_id}; its job is dropped")


def cancel(
    instance_id: Annotated[str, typer.Argument(metavar="ID", help="An instance id.")],
    reason: Annotated[str, typer.Option("--reason", help="Recorded as the instance's error.")] = "cancelled",
    db: Db = DEFAULT_DB, output: Out = Output.table,
) -> None:
    """Cancel a running instance (its work, timers and tasks are withdrawn)."""
    engine = open_engine(db)
    before = engine.instance(instance_id).status  # EngineError (exit 3) when there is none
    if before != "running":
        raise EngineError(f"instance {instance_id} is {before}: only a running instance can be cancelled")
    engine.cancel(instance_id, reason)
    status = engine.instance(instance_id).status
    emit(output, {"instance": instance_id, "status": status}, f"cancelled {instance_id}")


COMMANDS = [deploy, start, instances, instance, tasks, complete, correlate, signal, incidents, retry, cancel_incident,
            cancel]


def register(app: typer.Typer) -> None:
    """Add the operations commands to the project's CLI (in the order above)."""
    for command in COMMANDS:
        app.command(command.__name__.replace("_", "-"), rich_help_panel="Operate an engine (--db / WAOOAW_DB)")(command)
