"""The embedded engine: the pure token semantics driven by a database and a clock.

Guarantee (read this before writing agents):
- **State transitions happen exactly once.** Each step (an event applied to an instance) runs in one
  database transaction that locks the instance row, applies the core's rules, and writes the new
  state with all its effects: jobs, timers, variable history, human tasks, subscriptions, incidents.
  A crash before the commit leaves the previous state; after it, the whole step.
- **Agent calls happen at least once**, outside any transaction. A worker killed after an agent
  returned but before its result committed leaves the job locked; when the lease expires (or, on
  SQLite, when the single worker restarts) the job runs again with the same idempotency key
  ``f"{instance_id}:{work_id}"`` (also the same across retries). Agents key external side effects by
  it to make them happen once. A result for work that is no longer wanted is dropped.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import socket
import threading
import time
import traceback as tb
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from engine.errors import DefinitionError, EngineError, FormError  # noqa: F401  (FormError: re-exported)
from engine.limits import check_key
from engine.model import serialize
from engine.model.definition import ProcessDefinition
from engine.model.values import coerce_all, loads
from engine.runtime import listing, retention, timer_starts
from engine.runtime.agents import AgentContext, BpmnError, call_agent
from engine.runtime.clock import Clock, RealClock, VirtualClock, aware
from engine.runtime.correlation import MessageApi
from engine.runtime.db import DEFAULT_URL, connect, is_sqlite
from engine.runtime.failures import describe, is_transient, ref_of
from engine.runtime.history import InspectApi
from engine.runtime.human_tasks import HumanTaskApi, check_form  # noqa: F401  (check_form: re-exported)
from engine.runtime.ids import new_instance_id
from engine.runtime.plain import values_problems
from engine.runtime.prepared import pipelined
from engine.runtime.signals import SignalApi
from engine.runtime.steps import Pending, StepWriter, child_id
from engine.runtime.tables import (
    DefinitionRow,
    HumanTaskRow,
    IncidentRow,
    InstanceRow,
    JobRow,
    SubscriptionRow,
    TaskAuditRow,
    TaskExecutionRow,
    TokenRow,
    VariableHistoryRow,
    VariableRow,
)
from engine.runtime.writes import Writes, guard_jobs, load_states
from engine.security import guard
from engine.security.principal import Principal
from engine.security.sensitive import mask_history, mask_problems, mask_values
from engine.semantics import InstanceState, Semantics
from engine.semantics import events as ev
from engine.semantics.messages import DEFAULT_MESSAGE_TTL
from engine.validate import deploy_problems
from engine.versions import rollout

if TYPE_CHECKING:  # pandas is imported where a frame is built: a worker never pays its ~100 MB
    import pandas as pd

D, INST, T, V, H = (DefinitionRow.__table__, InstanceRow.__table__, TokenRow.__table__, VariableRow.__table__,
                 VariableHistoryRow.__table__)
J, HT, S, INC, X = (JobRow.__table__, HumanTaskRow.__table__, SubscriptionRow.__table__, IncidentRow.__table__,
                    TaskExecutionRow.__table__)
TA = TaskAuditRow.__table__
log = logging.getLogger("waooaw.engine")
# A locked job is due again when its lock expires (the holder may have died): advance() must not spin on it.
_NEXT_DUE = select(func.min(case((J.c.lock_expires_at > J.c.due_at, J.c.lock_expires_at), else_=J.c.due_at)))
QUICK_AGENT_SECONDS = 0.001  # an agent whose last call took less runs in the worker's thread (Engine._quick)
_LATEST_VERSION = select(D.c.version).where(D.c.name == bindparam("n")).order_by(D.c.version.desc()).limit(1)
# A step's transaction reads its instances in id order (built once; PostgreSQL locks them, see _write_batch).
_INSTANCES = select(INST.c.id, INST.c.definition_name, INST.c.definition_version, INST.c.state, INST.c.rev,
                    INST.c.business_key, INST.c.ended_at, INST.c.error
                    ).where(INST.c.id.in_(bindparam("ids", expanding=True))).order_by(INST.c.id)
_INSTANCES_LOCKED, _INSTANCES_SKIP_LOCKED = _INSTANCES.with_for_update(), _INSTANCES.with_for_update(skip_locked=True)


class _StaleLookup(Exception):
    """A start sent with an assumed rollout policy and latest version found others (a deploy or a rollout
    change since this engine's last start of the name): its transaction rolls back and it runs again."""

    def __init__(self, found: tuple[Any, ...]) -> None:
        super().__init__("stale lookup")
        self.found: tuple[str | None, int | None] = (found[0], found[1])


@dataclass
class InstanceView:
    """What an instance looks like now, for code and notebooks."""

    id: str
    definition: str
    version: int
    business_key: str | None
    status: str
    started_at: datetime
    ended_at: datetime | None
    error: str | None
    steps: int
    active_nodes: list[str]
    variables: dict[str, Any]
    tokens: pd.DataFrame
    history: pd.DataFrame
    incidents: list[dict[str, Any]] = field(default_factory=list)
    diagram: ProcessDefinition | None = field(default=None, repr=False)  # the version it runs, for drawing
    activities: pd.DataFrame | None = field(default=None, repr=False)  # Engine.activities(id): what it passed
    waits: pd.DataFrame | None = field(default=None, repr=False)  # Engine.waits(id): timers, messages, jobs
    parent: str | None = None  # the instance whose call activity started this one
    children: list[str] = field(default_factory=list)  # the instances its call activities started

    def _repr_html_(self) -> str:
        """In Jupyter: status, the diagram with the nodes holding tokens highlighted, variables, incidents."""
        from html import escape

        head = (f"<b>{escape(self.definition)}</b> v{self.version} · {escape(self.status)} · "
                f"{self.steps} steps · started {self.started_at:%Y-%m-%d %H:%M:%S}"
                + (f" · ended {self.ended_at:%Y-%m-%d %H:%M:%S}" if self.ended_at else "")
                + (f" · <span style='color:#b00'>{escape(self.error)}</span>" if self.error else ""))
        picture = ""
        if self.diagram is not None:
            from engine.render import to_svg

            counts = {node: self.active_nodes.count(node) for node in set(self.active_nodes)}
            try:
                svg = to_svg(self.diagram, highlight=self.active_nodes, counts=counts)
                picture = svg[svg.find("<svg"):]  # inline: without the XML prolog and doctype
            except Exception:  # no Graphviz binary: the rest still shows
                picture = f"<i>active: {escape(', '.join(self.active_nodes) or 'none')}</i>"
        rows = "".join(f"<tr><td>{escape(str(k))}</td><td>{escape(repr(v))}</td></tr>"
                       for k, v in sorted(self.variables.items()))
        problems = "".join(f"<li>{escape(str(i.get('node_id')))}: {escape(str(i.get('error')))}</li>"
                           for i in self.incidents if i.get("resolved_at") is None)
        waits = "".join(f"<li>{escape(str(w.kind))} {escape(str(w.purpose))} at {escape(str(w.node_id))}"
                        + (f" due {w.due_at:%Y-%m-%d %H:%M}" if w.kind == "timer" and w.due_at is not None else "")
                        + (f" for message {escape(str(w.message))}" if w.message else "") + "</li>"
                        for w in (self.waits.itertuples() if self.waits is not None else ()))
        passed = "".join(f"<tr><td>{escape(str(a.node_id))}</td><td>{escape(str(a.kind))}</td>"
                         f"<td>{escape(str(a.outcome or 'running'))}</td><td>{escape(str(a.duration))}</td></tr>"
                         for a in (self.activities.itertuples() if self.activities is not None else ()))
        return (f"<div><p>{head}</p>{picture}<table><tr><th>variable</th><th>value</th></tr>{rows}</table>"
                + (f"<p>open incidents</p><ul>{problems}</ul>" if problems else "")
                + (f"<p>waiting for</p><ul>{waits}</ul>" if waits else "")
                + (f"<details><summary>activity history</summary><table><tr><th>node</th><th>kind</th>"
                   f"<th>outcome</th><th>took</th></tr>{passed}</table></details>" if passed else "") + "</div>")


class Engine(HumanTaskApi, MessageApi, SignalApi, InspectApi):
    """``Engine(db_url, clock=..., principal=...)``: deploy definitions, start instances, drive jobs, inspect.

    ``principal`` (required) is who acts through this engine; every action is checked against the rules of
    ``engine.security.rules`` and audited in ``wf_audit``. Embedded single-user use (notebooks, tests,
    scripts, the worker) says so: ``Engine(url, principal=Principal.system())``. A server or the app keeps
    one engine and acts for each person with ``engine.acting_as(person)``. A refusal is an
    ``AuthorizationError`` naming the rule.
    """

    def __init__(self, db_url: str = DEFAULT_URL, clock: Clock | None = None,
                 calendars: Mapping[str, Any] | None = None, worker_id: str | None = None,
                 lease: timedelta = timedelta(seconds=60), agent_threads: int = 8, bus: Any = None,
                 message_ttl: timedelta = DEFAULT_MESSAGE_TTL, principal: Principal | None = None) -> None:
        self.principal: Principal = guard.checked_principal(principal)
        self.db = connect(db_url)
        # Reads: on SQLite a connection that never takes the write lock; on PostgreSQL the same pool in autocommit,
        # so a read is one round trip (no BEGIN, no ROLLBACK: psycopg drops its prepared statements after every
        # ROLLBACK, and the writes would be parsed again) and sees what READ COMMITTED shows, statement by statement.
        self.reader = (connect(db_url, reader=True) if is_sqlite(self.db)
                       else self.db.execution_options(isolation_level="AUTOCOMMIT"))
        self.url = db_url
        self.clock: Clock = clock or RealClock()
        self.calendars = dict(calendars or {})
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = lease
        self.message_ttl = message_ttl  # how long a thrown message nobody waits for is buffered (correlation.py)
        self._definitions: dict[tuple[str, int], ProcessDefinition] = {}
        self._semantics: dict[tuple[str, int], Semantics] = {}
        self.agent_threads = max(1, agent_threads)
        self._agents: ThreadPoolExecutor | None = None  # concurrent agent calls of a batch
        self._pool: ThreadPoolExecutor | None = None  # calls with a timeout
        self._agent_seconds: dict[str, float] = {}  # handler -> its last call's duration (see _quick)
        # The message bus (engine.bus): a MessageBus, a URL, or None for WAOOAW_BUS / the in-process default.
        self._bus = bus
        self.bus_configured = bus is not None or bool(os.environ.get("WAOOAW_BUS"))
        self.observer: Any = None  # engine.runtime.metrics.EngineMetrics when metrics are on (None: no cost)
        # Instance states this engine wrote last, by id: (revision, state, stored variable versions). A step whose
        # row still has that revision starts from it instead of reading every token row back (see _states_of).
        self._states: OrderedDict[str, tuple[int, InstanceState, dict[str, int]]] = OrderedDict()
        self._states_lock = threading.Lock()
        self.state_cache_size = 1024
        # name -> (rollout weights as stored, latest version) as this engine's last start of it found them
        self._lookups: dict[str, tuple[str | None, int | None]] = {}

    @property
    def bus(self) -> Any:
        """The engine's message bus (``engine.bus.MessageBus``), connected on first use."""
        if self._bus is None or isinstance(self._bus, str):
            from engine.bus import connect_bus

            self._bus = connect_bus(self._bus)
        return self._bus

    def acting_as(self, principal: Principal) -> Engine:
        """This engine (same database, caches, clock and worker id) acting as ``principal``; nothing is opened."""
        view = copy.copy(self)
        view.principal = guard.checked_principal(principal)
        return view

    # --- definitions ---------------------------------------------------------------------------

    @guard.audited
    def deploy(self, definition: ProcessDefinition) -> ProcessDefinition:
        """Store a new version (or return the latest when the content is unchanged). Needs the deployer role;
        every agent and handler it names must be registered or in an allow-listed module (``engine.registry``)."""
        guard.authorize(self, "deploy", definition.id)
        problems = deploy_problems(definition) + guard.definition_problems(definition)
        if problems:
            raise DefinitionError(problems, source=definition.id)
        content_hash = definition.model_copy(update={"version": 1}).content_hash()
        with self.db.begin() as conn:
            guard.within(conn)  # the audit row commits with the new version (or with nothing, if unchanged)
            latest = conn.execute(select(D.c.version, D.c.content_hash).where(D.c.name == definition.id)
                                  .order_by(D.c.version.desc()).limit(1)).first()
            if latest is not None and latest.content_hash == content_hash:
                return self.definition(definition.id, latest.version)
            version = (latest.version + 1) if latest else 1
            stored = definition.model_copy(update={"version": version})
            conn.execute(insert(D).values(name=definition.id, version=version, content=stored.to_json(indent=None),
                                          content_hash=content_hash, deployed_at=self.clock.now()))
            timer_starts.schedule(conn, stored, self.clock.now(), self.calendars)  # replaces older versions' jobs
        self._definitions[(definition.id, version)] = stored
        self._lookups.pop(definition.id, None)  # the next start looks the latest version up
        return stored

    def definition(self, name: str, version: int | None = None, conn: Connection | None = None) -> ProcessDefinition:
        """A deployed version (the latest by default), parsed once; ``conn`` reads inside a caller's transaction."""
        if conn is None:
            with self.reader.connect() as reader:
                return self.definition(name, version, reader)
        if version is None:  # the latest: one cheap lookup, the definition itself comes from the cache
            version = conn.execute(_LATEST_VERSION, {"n": name}).scalar()
        row = None
        if version is not None and (name, version) not in self._definitions:
            row = conn.execute(select(D.c.content).where(D.c.name == name, D.c.version == version)).first()
            if row is not None:
                self._definitions[(name, version)] = serialize.from_json(row.content, source=f"{name}:{version}")
        if version is None or (name, version) not in self._definitions:
            known = sorted({r.name for r in conn.execute(select(D.c.name))})
            raise EngineError(f"no deployed definition {name!r}" + (f" version {version}" if version else "")
                              + f"; deployed: {', '.join(known) or 'none'}")
        return self._definitions[(name, version)]

    def definitions(self) -> list[str]:
        with self.reader.connect() as conn:
            return sorted({r.name for r in conn.execute(select(D.c.name))})

    def semantics(self, name: str, version: int) -> Semantics:
        """The compiled rules of one deployed version (built once, reused for every step)."""
        key = (name, version)
        if key not in self._semantics:
            self._semantics[key] = Semantics(self.definition(name, version), calendars=self.calendars)
        return self._semantics[key]

    # --- instances -----------------------------------------------------------------------------

    def start(self, name: str, variables: Mapping[str, Any] | None = None, business_key: str | None = None,
              version: int | None = None, start_node: str | None = None, actor: str | None = None) -> str:
        """Start an instance; bad variables are a clear error and nothing is written."""
        return self.start_many(name, [variables or {}], [business_key], version, start_node, actor)[0]

    @guard.audited
    def start_many(self, name: str, variables: Iterable[Mapping[str, Any]],
                   business_keys: Iterable[str | None] | None = None, version: int | None = None,
                   start_node: str | None = None, actor: str | None = None) -> list[str]:
        """Start many instances in one transaction (bulk loads, notebooks): all are checked first, then
        all start, or none."""
        batch = [dict(v) for v in variables]
        guard.authorize(self, "start", name, count=len(batch))
        actor = guard.recorded_actor(self.principal, actor)
        keys = list(business_keys) if business_keys is not None else [None] * len(batch)
        if len(keys) != len(batch):
            raise EngineError(f"{len(batch)} variable sets but {len(keys)} business keys")
        for key in keys:
            if key is not None:
                check_key(key, "business key")
        # PostgreSQL: the lookup of the rollout policy and the latest version is sent with the writes (one
        # round trip fewer), assuming what this engine's last lookup of ``name`` found; the writes and the
        # audit row are read back with it, and if a deploy or a rollout change made the assumption stale, the
        # transaction rolls back and the start runs again with what the lookup found (see _StaleLookup).
        known = self._lookups.get(name) if version is None and not is_sqlite(self.db) else None
        while True:
            writes = Writes()
            try:
                with self.db.begin() as conn:  # an error below rolls back: nothing written
                    row = known if known is not None or version is not None else rollout.lookup(conn, name)
                    plan = rollout.plan(name, version, keys, row)  # explicit version, rollout weights, or latest
                    chosen = {v: self.definition(name, v, conn) for v in dict.fromkeys(v for _, v in plan)}
                    for (_, v), values in zip(plan, batch, strict=True):
                        self._check_variables(chosen[v], values)
                    ids = [self._start_in(conn, writes, chosen[v], values, key, start_node, actor, instance_id=iid,
                                          observe=False)
                           for (iid, v), values, key in zip(plan, batch, keys, strict=True)]
                    with pipelined(conn):  # PostgreSQL: the start's writes and its audit row in one round trip
                        check = rollout.send_lookup(conn, name) if known is not None else None
                        writes.flush(conn)
                        guard.within(conn)
                    if check is not None and (found := tuple(check.fetchone())) != known:
                        raise _StaleLookup(found)
            except _StaleLookup as stale:
                self._lookups[name] = known = stale.found  # what the next attempt assumes
                guard.rolled_back()
                continue
            if version is None and row is not None:
                self._lookups[name] = row
            if self.observer is not None:
                for start in writes.started:
                    self.observer.started(*start[:2])
                    if start[2] is not None:
                        self.observer.ended(*start)
            return ids

    def _start_in(self, conn: Connection, writes: Writes, definition: ProcessDefinition, variables: dict[str, Any],
                  business_key: str | None, start_node: str | None = None, actor: str | None = None,
                  instance_id: str | None = None, caller: dict[str, Any] | None = None, observe: bool = True) -> str:
        """Start one instance inside a caller's transaction (its writes go to ``writes``, flushed by the caller);
        ``caller`` names the call activity (instance, token, work) that started it."""
        sem = self.semantics(definition.id, definition.version)
        now = self.clock.now()
        instance_id = instance_id or new_instance_id()
        state, effects = sem.start(variables, now, start_node=start_node, actor=actor)
        state.caller = caller
        writes.create(instance_id, {"id": instance_id, "definition_name": definition.id,
                                    "definition_version": definition.version, "business_key": business_key,
                                    "started_at": now})
        writes.loaded(instance_id, InstanceState())
        step = StepWriter(conn, writes, instance_id, sem, state, now, business_key, call=self._call_activity)
        step.run(effects, [])
        step.stepped(rev=0)
        if self.observer is not None:
            ended = step.ended.status if step.ended is not None else None
            if observe:
                self.observer.started(definition.id, definition.version)
                if ended is not None:
                    self.observer.ended(definition.id, definition.version, ended)
            else:  # counted by start_many once its transaction committed
                writes.started.append((definition.id, definition.version, ended))
        return instance_id

    def _call_activity(self, step: StepWriter, e: Any) -> ev.Event | None:
        """A call activity started (``StartWork`` of kind call_activity): start the called process in the same
        transaction, its version chosen by the node's binding. A process that is not deployed, or inputs it
        refuses, fail the work (an incident at the call activity unless an error boundary catches it)."""
        node = step.sem.definition.node(e.node_id)
        try:
            if node.binding == "version":  # type: ignore[attr-defined]
                version = node.version  # type: ignore[attr-defined]
            elif node.binding == "deployment":  # type: ignore[attr-defined]
                caller = step.conn.execute(select(D.c.id).where(  # deployments are numbered in their order
                    D.c.name == step.sem.definition.id, D.c.version == step.sem.definition.version)).scalar()
                version = step.conn.execute(select(func.max(D.c.version)).where(
                    D.c.name == e.handler, D.c.id <= caller)).scalar()
                if version is None:
                    raise EngineError(f"no version of {e.handler!r} was deployed by the time "
                                      f"{step.sem.definition.id!r} v{step.sem.definition.version} was")
            else:
                version = None
            child = self.definition(e.handler, version, step.conn)
            variables = dict(e.inputs)
            self._check_variables(child, variables, action=f"call {e.handler!r} from {e.node_id!r}")
        except EngineError as exc:
            return ev.WorkFailed(e.token_id, str(exc), "call_failed")
        self._start_in(step.conn, step.writes, child, variables, step.business_key,
                       instance_id=child_id(step.id, e.work_id),
                       caller={"instance": step.id, "token": e.token_id, "work": e.work_id})
        return None

    def _check_variables(self, definition: ProcessDefinition, values: dict[str, Any],
                         action: str | None = None) -> None:
        """Check ``values`` against the declared variables; text of typed values (datetime, decimal, ...) is
        converted in place (``engine.model.values.coerce``). ``action`` names a call other than a start
        (e.g. "set variables of instance 'x'"): required variables are then not asked for."""
        declared = {v.name: v for v in definition.variables}
        problems = values_problems(values)  # not JSON-representable, too large: refused, never stored as str
        typed, wrong = coerce_all({n: d.type for n, d in declared.items()}, values)
        values.update(typed)
        problems += wrong
        for name in values:
            if declared and name not in declared:
                problems.append(f"{name!r} is not a declared variable (declared: {', '.join(declared)})")
        for name, decl in declared.items():
            if action is None and decl.required and values.get(name) is None and decl.default is None:
                problems.append(f"{name!r} is required")
        if problems:
            problems = mask_problems(definition, values, problems)  # a sensitive value never in a message
            raise EngineError(f"cannot {action or f'start {definition.id!r}'}: " + "; ".join(problems))

    def instance(self, instance_id: str) -> InstanceView:
        import pandas as pd

        with self.reader.connect() as conn:
            row = conn.execute(select(INST).where(INST.c.id == instance_id)).first()
            if row is None:
                raise EngineError(f"no instance {instance_id!r}")
            tokens = pd.DataFrame(conn.execute(select(T.c.token_id, T.c.node_id, T.c.status, T.c.parent)
                                               .where(T.c.instance_id == instance_id)).mappings().all(),
                                  columns=["token_id", "node_id", "status", "parent"])
            variables = {r.name: loads(r.value) for r in
                         conn.execute(select(V.c.name, V.c.value).where(V.c.instance_id == instance_id))}
            history_rows = conn.execute(select(H.c.name, H.c.version, H.c.old_value, H.c.new_value, H.c.node_id,
                                               H.c.actor, H.c.at).where(H.c.instance_id == instance_id)
                                        .order_by(H.c.id)).mappings().all()
            children = [r.id for r in conn.execute(select(INST.c.id).where(INST.c.id.like(f"{instance_id}-%"))
                                                   .order_by(INST.c.started_at))
                        if "-" not in r.id[len(instance_id) + 1:]]  # child_id: the parent's id, "-", a work id
            incidents = [dict(r) for r in conn.execute(select(INC).where(INC.c.instance_id == instance_id)
                                                       .order_by(INC.c.id)).mappings()]
        history = pd.DataFrame(history_rows, columns=["name", "version", "old_value", "new_value", "node_id", "actor",
                                                      "at"])
        # JSON values of any type: keep None as None, not NaN. A change stores its new value only; the value it
        # replaced is the previous version's (older databases stored it in the row too: the same value).
        new_values = [loads(r["new_value"]) if r["new_value"] is not None else None for r in history_rows]
        previous: dict[str, Any] = {}
        old_values = []
        for r, value in zip(history_rows, new_values, strict=True):
            old_values.append(loads(r["old_value"]) if r["old_value"] is not None else previous.get(r["name"]))
            previous[r["name"]] = value
        history["old_value"] = pd.Series(old_values, dtype=object)
        history["new_value"] = pd.Series(new_values, dtype=object)
        for column in ("node_id", "actor"):
            history[column] = pd.Series([r[column] for r in history_rows], dtype=object)
        definition = self.definition(row.definition_name, row.definition_version)
        variables, history = mask_values(definition, variables, self.principal), mask_history(definition, history,
                                                                                              self.principal)
        return InstanceView(row.id, row.definition_name, row.definition_version, row.business_key, row.status,
                            row.started_at, row.ended_at, row.error, row.steps, list(tokens["node_id"]), variables,
                            tokens, history, incidents, definition,
                            activities=self.activities(instance_id), waits=self.waits(instance_id),
                            parent=(loads(row.state).get("caller") or {}).get("instance"), children=children)

    def instances(self, status: str | None = None, definition: str | None = None,
                  limit: int | None = None, offset: int = 0, **filters: Any) -> pd.DataFrame:
        """Instances, newest first (``listing.INSTANCE_COLUMNS``; the same columns when there are none).

        Without ``limit`` every matching instance is read (notebooks, small databases); a UI pages with
        ``instance_page``. Filters as ``instance_page``'s.
        """
        import pandas as pd

        columns = [INST.c[name] for name in listing.INSTANCE_COLUMNS]
        query = listing.filtered(select(*columns), status=status, definition=definition, **filters)
        query = query.order_by(INST.c.started_at.desc(), INST.c.id.desc()).offset(offset or None).limit(limit)
        with self.reader.connect() as conn:
            return pd.DataFrame(conn.execute(query).mappings().all(), columns=list(listing.INSTANCE_COLUMNS))

    def instance_page(self, *, status: str | Sequence[str] | None = None, definition: str | None = None,
                      version: int | None = None, business_key: str | None = None,
                      started_from: datetime | None = None, started_before: datetime | None = None,
                      with_incident: bool | None = None, limit: int = 50, offset: int = 0, after: str | None = None,
                      count_up_to: int | None = 10_000) -> listing.InstancePage:
        """One page of instances, newest first, with the number matching: what a Runs page shows.

        Filters (all optional, combined with AND): ``status`` (one, or a list: running | completed | failed |
        cancelled), ``definition`` (name) and ``version`` (needs ``definition``), ``business_key`` (exact),
        ``started_from`` (inclusive) / ``started_before`` (exclusive), aware datetimes (naive: UTC),
        ``with_incident`` (True: only instances with an open incident on a token; False: only those without).
        Paging: ``limit`` rows (1..1000) after skipping ``offset``, or after the cursor ``after`` (a
        previous page's ``next_after``: constant cost at any depth). ``total`` counts the matching
        instances up to ``count_up_to`` (then ``total_capped``; None: count all, 0: do not count).
        Served by indexes: milliseconds at 500,000 instances (bench/instance_listing.py).
        Raises EngineError for a bad limit, offset, cursor or a version without its definition.
        """
        with self.reader.connect() as conn:
            return listing.page(conn, limit=limit, offset=offset, after=after, count_up_to=count_up_to, status=status,
                                definition=definition, version=version, business_key=business_key,
                                started_from=started_from, started_before=started_before,
                                with_incident=with_incident)

    # --- history retention (engine.runtime.retention) ------------------------------------------

    def set_history_ttl(self, definition: str | None, ttl: timedelta | None) -> None:
        """Keep finished instances of ``definition`` (None: every definition without its own setting) for
        ``ttl`` after they end; None keeps them forever (the default). Applied by ``cleanup_history``."""
        retention.set_ttl(self, definition, ttl)

    def history_ttls(self) -> dict[str | None, timedelta]:
        """The time-to-live settings: definition name (None: the default) -> duration."""
        return retention.ttls(self)

    def cleanup_history(self, batch_size: int = 200, max_batches: int | None = None,
                        archive: retention.Archive = None) -> retention.CleanupReport:
        """Remove finished instances past their time-to-live in batches of ``batch_size`` (one short
        transaction each), writing them first to ``archive`` (a JSON-lines path, ``.gz`` compressed, or a
        callable taking each record). See engine.runtime.retention."""
        return retention.cleanup(self, batch_size=batch_size, max_batches=max_batches, archive=archive)

    def export_history(self, archive: str | Any, **filters: Any) -> int:
        """Write the instances matching ``filters`` (``instance_page``'s) as archive lines; removes nothing."""
        return retention.export(self, archive, **filters)

    def incidents(self, open_only: bool = True) -> list[dict[str, Any]]:
        """Incidents, oldest first: dicts of ``wf_incidents``' columns (see ``IncidentRow``). ``job`` is None for
        an instance's token, else the held job as a dict (kind, ref, instance_id, payload, due_at); a timer
        start's incident has ``instance_id`` None."""
        query = select(INC).order_by(INC.c.id)
        if open_only:
            query = query.where(INC.c.resolved_at.is_(None))
        with self.reader.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        for row in rows:
            if row.get("job"):
                row["job"] = json.loads(row["job"])
        return rows

    def _open_incident(self, incident: int | Mapping[str, Any], action: str) -> Any:
        incident_id = incident if isinstance(incident, int) else int(incident["id"])
        guard.authorize(self, action, f"incident {incident_id}")
        with self.reader.connect() as conn:
            row = conn.execute(select(INC).where(INC.c.id == incident_id)).first()
        if row is None or row.resolved_at is not None:
            raise EngineError(f"no open incident {incident_id}")
        return row

    def _resolve(self, conn: Connection, incident_id: int) -> None:
        if conn.execute(update(INC).where(INC.c.id == incident_id, INC.c.resolved_at.is_(None))
                        .values(resolved_at=self.clock.now())).rowcount != 1:
            raise EngineError(f"no open incident {incident_id}")  # resolved meanwhile by someone else

    @guard.audited
    def retry(self, incident: int | Mapping[str, Any]) -> None:
        """Try the failed work (or gateway) of an incident again; an incident at a boundary event or an event
        sub-process start (a condition that failed to evaluate, a timer whose expression gave no value) evaluates
        that condition again, or arms that timer again, now; an incident that holds a job (a message
        delivery, a timer start) puts the job back in the queue, due at once. A timer start whose definition
        was deployed again since is refused: the new version's schedule replaced it (``cancel_incident``)."""
        row = self._open_incident(incident, "retry")
        incident_id = row.id
        if row.job is not None:
            held = json.loads(row.job)
            if held["kind"] == timer_starts.KIND:
                scheduled = int(json.loads(held["payload"]).get("version", 0))
                latest = self.definition(held["ref"]).version
                if latest != scheduled:
                    raise EngineError(f"incident {incident_id}: {held['ref']!r} v{latest} was deployed since; its "
                                      f"schedule replaced this timer start of v{scheduled}: cancel the incident")
            with self.db.begin() as conn:
                self._resolve(conn, incident_id)
                conn.execute(insert(J).values(instance_id=held["instance_id"], kind=held["kind"], ref=held["ref"],
                                              payload=held["payload"], due_at=min(
                                                  datetime.fromisoformat(held["due_at"]), self.clock.now())))
            return
        with self.reader.connect() as conn:
            status = conn.execute(select(INST.c.status).where(INST.c.id == row.instance_id)).scalar()
        if status != "running":
            raise EngineError(f"incident {incident_id}: instance {row.instance_id} is {status}, so there is "
                              "nothing to retry")
        self._apply(row.instance_id, [ev.RetryIncident(row.token_id, row.node_id)],
                    before=lambda conn: conn.execute(update(INC).where(INC.c.id == incident_id)
                                                     .values(resolved_at=self.clock.now())).rowcount == 1)

    @guard.audited
    def cancel_incident(self, incident: int | Mapping[str, Any]) -> None:
        """Give up an incident that holds a job (a message delivery, a timer start): the job is dropped, the
        incident resolved. An incident on an instance's token is ended by ``retry`` or by cancelling the
        instance (``EngineError`` says so). Needs the operator's ``cancel`` rule."""
        row = self._open_incident(incident, "cancel")
        if row.job is None:
            raise EngineError(f"incident {row.id} holds a token of instance {row.instance_id}: retry it, or cancel "
                              "the instance")
        with self.db.begin() as conn:
            self._resolve(conn, row.id)

    @guard.audited
    def cancel(self, instance_id: str, reason: str = "cancelled") -> None:
        """Cancel a running instance: its tokens, timers and subscriptions end, and the incidents on its tokens
        are resolved in the same transaction (as Camunda deletes them), so none is left to retry.
        ``EngineError`` when it is not running; needs the operator's ``cancel`` rule."""
        guard.authorize(self, "cancel", instance_id, reason=reason)

        def resolve_incidents(conn: Connection) -> bool:
            conn.execute(update(INC).where(INC.c.instance_id == instance_id, INC.c.job.is_(None),
                                           INC.c.resolved_at.is_(None)).values(resolved_at=self.clock.now()))
            return True

        self._apply(instance_id, [ev.Cancel(reason)], before=resolve_incidents)

    @guard.audited
    def set_variables(self, instance_id: str, values: Mapping[str, Any], actor: str | None = None) -> None:
        guard.authorize(self, "set_variables", instance_id, names=sorted(values))
        actor = guard.recorded_actor(self.principal, actor)
        with self.reader.connect() as conn:
            row = conn.execute(select(INST.c.definition_name, INST.c.definition_version)
                               .where(INST.c.id == instance_id)).first()
        if row is None:
            raise EngineError(f"no instance {instance_id!r}")
        checked = dict(values)
        self._check_variables(self.definition(row.definition_name, row.definition_version), checked,
                              action=f"set variables of instance {instance_id!r}")
        self._apply(instance_id, [ev.SetVariables(checked, actor)])

    # --- messages ------------------------------------------------------------------------------

    def _settle(self, conn: Connection, job_id: int) -> bool:
        """Remove a claimed job inside the caller's transaction, only if this worker still holds it."""
        return conn.execute(delete(J).where(J.c.id == job_id, J.c.lock_owner == self.worker_id)).rowcount == 1

    # --- jobs ----------------------------------------------------------------------------------

    def run_due_jobs(self, limit: int = 200) -> int:
        """Claim due jobs and run them (the worker's loop body). Returns how many ran.

        Fired timers and finished agent calls are applied together, in one transaction per batch
        (group commit); messages, handlers and timer starts run one at a time, after the batch
        before them, so due-time order holds.
        """
        jobs = self._claim(limit)
        start = 0
        while start < len(jobs):  # runs of timers and work go in batches; any other job alone, in order
            end = start
            while end < len(jobs) and jobs[end].kind in ("timer", "work"):
                end += 1
            if end > start:
                self._run_batch(jobs[start:end])
            if end < len(jobs):
                self._run_alone(jobs[end])
                end += 1
            start = end
        return len(jobs)

    def _run_batch(self, jobs: list[Any]) -> None:
        """Agent calls of the batch run on ``agent_threads`` threads (agents mostly wait on the network);
        their results, with the batch's fired timers, are written in claim order. Work for external workers
        (a service task's topic) is handed out on the bus instead (``engine.bus.external``)."""
        if any(job.kind == "work" and '"topic"' in job.payload for job in jobs):
            from engine.bus.external import desk

            jobs = desk(self).hand_out(jobs)
        payloads = {job.id: loads(job.payload) for job in jobs if job.kind == "work"}
        calls: dict[int, Future[Pending]] = {}
        threaded = [job for job in jobs if job.kind == "work" and not self._quick(payloads[job.id])]
        if self.agent_threads > 1 and threaded:
            if self._agents is None:
                self._agents = ThreadPoolExecutor(max_workers=self.agent_threads, thread_name_prefix="agents")
            calls = {job.id: self._agents.submit(self._run_work, job, payloads[job.id]) for job in threaded}
        batch: list[Pending] = []
        flush_at = time.monotonic() + self.lease.total_seconds() / 3
        for done, job in enumerate(jobs, start=1):
            if job.kind == "timer":
                batch.append(Pending(job.instance_id, ev.TimerFired(job.ref, aware(job.due_at)), job.id))
            else:
                batch.append(calls[job.id].result() if job.id in calls else self._run_work(job, payloads[job.id]))
            if time.monotonic() > flush_at:  # slow agents: write what is done, renew the rest's lease
                self._apply_batch(batch)
                batch = []
                self._renew([j.id for j in jobs[done:]])
                flush_at = time.monotonic() + self.lease.total_seconds() / 3
        self._apply_batch(batch)

    def _renew(self, job_ids: list[int]) -> None:
        """Extend this worker's lease on jobs it still holds (a heartbeat for long batches)."""
        if job_ids:
            with self.db.begin() as conn:
                conn.execute(update(J).where(J.c.id.in_(job_ids), J.c.lock_owner == self.worker_id)
                             .values(lock_expires_at=self.clock.now() + self.lease))

    def run_until_idle(self, max_jobs: int | None = None) -> int:
        """Run due jobs in-process until none is due (tests, notebooks, the embedded app)."""
        ran = 0
        while max_jobs is None or ran < max_jobs:
            n = self.run_due_jobs(limit=200 if max_jobs is None else min(200, max_jobs - ran))
            if n == 0:
                break
            ran += n
        return ran

    def next_due(self) -> datetime | None:
        with self.reader.connect() as conn:
            value = conn.execute(_NEXT_DUE).scalar()
        return aware(value) if value is not None else None

    def advance(self, delta: timedelta) -> int:
        """Virtual clock only: move time forward, firing every timer that falls due, in due order."""
        return self.advance_to(self.clock.now() + delta)

    @guard.audited
    def advance_to(self, moment: datetime) -> int:
        guard.authorize(self, "clock.advance", moment.isoformat())
        if not isinstance(self.clock, VirtualClock):
            raise EngineError("advance() needs Engine(clock=VirtualClock())")
        ran = self.run_until_idle()
        while (due := self.next_due()) is not None and due <= moment:
            self.clock.set(max(due, self.clock.now()))
            ran += self.run_until_idle()
        self.clock.set(moment)
        return ran + self.run_until_idle()

    @guard.audited
    def release_locks(self) -> int:
        """Free every job lock (SQLite's single worker does this at start: a dead predecessor's jobs run again)."""
        guard.authorize(self, "jobs.release")
        with self.db.begin() as conn:
            guard.within(conn)
            return conn.execute(update(J).where(J.c.lock_owner.is_not(None))
                                .values(lock_owner=None, lock_expires_at=None)).rowcount

    def _claim(self, limit: int) -> list[Any]:
        now = self.clock.now()
        with self.db.begin() as conn:
            query = (select(J).where(J.c.due_at <= now, or_(J.c.lock_owner.is_(None), J.c.lock_expires_at <= now))
                     .order_by(J.c.due_at, J.c.id).limit(limit))
            if not is_sqlite(self.db):
                query = query.with_for_update(skip_locked=True)
            jobs = conn.execute(query).all()
            if jobs:
                conn.execute(update(J).where(J.c.id.in_([j.id for j in jobs])).values(
                    lock_owner=self.worker_id, lock_expires_at=now + self.lease, attempts=J.c.attempts + 1))
        return jobs

    def _run_alone(self, job: Any) -> None:
        """A job that runs alone (a message, an SLA handler, a timer start). A failure that says nothing about
        the job (``is_transient``: the database, a lock) propagates and the job runs again when its lease ends;
        any other failure would repeat at every lease, so the job becomes an incident (``_fail_job``)."""
        try:
            self._run_job(job)
        except Exception as exc:
            if is_transient(exc):
                raise
            self._fail_job(job, exc)

    def _fail_job(self, job: Any, error: Exception) -> None:
        """Hold a job that failed for a reason of its own in an incident (one transaction: the job leaves the
        queue, the incident keeps it for ``retry``). A message's incident is on the instance that sent it, a
        timer start's has no instance."""
        try:
            payload = loads(job.payload)
        except Exception:
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        node_id = str(payload.get("node_id") or "")
        if job.kind == "message":
            what = f"delivering message {job.ref!r}"
        elif job.kind == "start":
            what = f"the timer start {node_id!r} of {job.ref!r}"
        else:
            what = f"a {job.kind} job"
        text = " ".join(str(error).split()) or type(error).__name__
        message = f"{what} failed: {type(error).__name__}: {text[:500] + '...' if len(text) > 500 else text}"
        log.warning("job %s (%s): %s", job.id, job.kind, message)
        held = json.dumps({"kind": job.kind, "ref": job.ref, "instance_id": job.instance_id,
                           "payload": job.payload, "due_at": aware(job.due_at).isoformat()})
        with self.db.begin() as conn:
            if not self._settle(conn, job.id):
                return  # another worker holds it now
            conn.execute(insert(INC).values(
                instance_id=job.instance_id, token_id="", node_id=node_id, error=message,
                traceback="".join(tb.format_exception(error)), created_at=self.clock.now(), job=held))

    def _run_job(self, job: Any) -> None:
        """A job that is not batched (timers and work are: see ``_run_batch``)."""
        payload = loads(job.payload)
        if job.kind in ("timer", "work"):
            self._run_batch([job])
        elif job.kind == "message":
            if self.bus_configured:  # also published on its topic for the world outside (engine.bus.bridge)
                from engine.bus.bridge import publish_outbound

                publish_outbound(self, job, payload)
            self._deliver_thrown(job, payload)  # delivered, buffered or recorded: see correlation.py
        elif job.kind == "signal":
            self._broadcast_thrown(job, payload)  # every waiting catch, every signal start: see signals.py
        elif job.kind == "start":
            timer_starts.fire(self, job)
        elif job.kind == "call":
            self._call_answer(job, payload)
        elif job.kind == "handler":  # an SLA's handler: a failure (a missing handler too) is an incident, not a log
            error = None
            try:
                call_agent(payload["handler"], payload.get("inputs", {}), AgentContext(job.instance_id))
            except Exception as exc:
                error = exc
            with self.db.begin() as conn:
                if self._settle(conn, job.id) and error is not None:
                    message = f"SLA handler {payload['handler']!r} failed: {type(error).__name__}: {error}"
                    log.warning("instance %s: %s", job.instance_id, message)
                    node_id = payload.get("inputs", {}).get("node_id", "")
                    conn.execute(insert(INC).values(
                        instance_id=job.instance_id, token_id=job.ref, node_id=node_id, error=message,
                        traceback="".join(tb.format_exception(error)), created_at=self.clock.now()))

    def _quick(self, payload: dict[str, Any]) -> bool:
        """Whether this agent's last call returned within ``QUICK_AGENT_SECONDS`` (and it has no timeout): it then
        runs in the worker's own thread, in claim order, instead of being handed to a pool thread and waited
        for (a hand-off costs more than such a call). An agent not called yet, or a slow one, is threaded."""
        return not payload.get("timeout") and self._agent_seconds.get(payload["handler"], 1.0) < QUICK_AGENT_SECONDS

    def _call_answer(self, job: Any, payload: dict[str, Any]) -> None:
        """A called process ended (its call activity hears how) or escalated, or a caller cancelled its child."""
        if "cancel" in payload:
            event: ev.Event = ev.Cancel(payload["cancel"])
        elif "escalation" in payload:  # the child escalated, caught nothing, and goes on
            event = ev.WorkEscalated(payload["token"], payload["escalation"])
        elif payload["status"] == "completed":
            event = ev.WorkDone(payload["token"], payload.get("variables") or {})
        elif payload["status"] == "failed" and payload.get("error_code"):
            event = ev.WorkFailed(payload["token"], payload.get("error") or "", payload["error_code"], business=True)
        else:
            event = ev.WorkFailed(payload["token"], f"called process {payload['child']} ended {payload['status']}"
                                  + (f": {payload['error']}" if payload.get("error") else ""),
                                  "call_" + payload["status"])
        stale: list[bool] = []

        def current(conn: Connection) -> bool:  # the answer is for the activation still waiting, else dropped
            if "cancel" not in payload:
                data = conn.execute(select(T.c.data).where(T.c.instance_id == job.instance_id,
                                                           T.c.token_id == payload["token"])).scalar()
                if data is None or loads(data).get("work_id") != payload["work"]:
                    stale.append(True)
                    return False
            return self._settle(conn, job.id)

        try:
            if self._apply(job.instance_id, [event], before=current) or not stale:
                return
        except EngineError:  # the instance is gone (history removed): nothing to tell
            pass
        with self.db.begin() as conn:
            self._settle(conn, job.id)

    def _run_work(self, job: Any, payload: dict[str, Any]) -> Pending:
        """Call the agent (outside any transaction); the result waits for the batch's transaction."""
        context = AgentContext(instance_id=job.instance_id, node_id=payload["node_id"], work_id=payload["work_id"],
                               attempt=payload["attempt"], business_key=payload.get("business_key"),
                               variables=payload.get("inputs", {}))
        started = self.clock.now()
        trace = None
        status = "completed"
        began = time.perf_counter()
        try:
            try:
                outputs = self._call(payload["handler"], payload.get("inputs", {}), context, payload.get("timeout"))
            finally:
                self._agent_seconds[payload["handler"]] = time.perf_counter() - began
            problems = values_problems(outputs) if isinstance(outputs, Mapping) else [
                f"outputs must be a dict of variables, got {type(outputs).__name__}"] if outputs is not None else []
            if problems:  # the agent's failure (retried, then an incident): never stored as str
                raise EngineError(f"agent {payload['handler']!r} returned values that cannot be stored: "
                                  + "; ".join(problems))
            event: ev.Event = ev.WorkDone(job.ref, outputs)
        except BpmnError as exc:
            status, event = "failed", ev.WorkFailed(job.ref, str(exc), exc.code, business=True)
        except FutureTimeout:
            status = "timeout"
            event = ev.WorkFailed(job.ref, f"agent {payload['handler']!r} timed out after {payload['timeout']} s",
                                  "timeout")
        except Exception as exc:  # an agent's failure of any kind is the task's failure
            status, trace = "failed", tb.format_exc()
            event = ev.WorkFailed(job.ref, f"{type(exc).__name__}: {exc}", type(exc).__name__)
        execution = {"instance_id": job.instance_id, "node_id": payload["node_id"], "work_id": payload["work_id"],
                     "attempt": payload["attempt"], "started_at": started, "ended_at": self.clock.now(),
                     "status": status, "error": getattr(event, "error", None)}
        return Pending(job.instance_id, event, job.id, execution, trace)

    def _call(self, handler: str, inputs: dict[str, Any], context: AgentContext,
              timeout: float | None) -> dict[str, Any]:
        if not timeout:
            return call_agent(handler, inputs, context)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.agent_threads + 4, thread_name_prefix="agent-timeout")
        # On timeout the task fails; the call itself cannot be killed and finishes in the background
        # (its result is dropped): agents with external effects should honour their own deadlines.
        return self._pool.submit(call_agent, handler, inputs, context).result(timeout=timeout)

    # --- one step ------------------------------------------------------------------------------

    def _apply(self, instance_id: str, events: Iterable[ev.Event],
               before: Callable[[Connection], bool] | None = None, traceback: str | None = None) -> bool:
        """Apply events to one instance in one transaction. ``before`` may veto (returns False); an action's
        pending audit row (``guard.within``) is written in the same transaction when it goes ahead."""
        items = [Pending(instance_id, event, traceback=traceback) for event in events]

        def check(conn: Connection) -> bool:
            return (before is None or before(conn)) and guard.within(conn)

        return self._write_batch(items, before=check, strict=True) > 0

    def _apply_batch(self, items: list[Pending]) -> None:
        """Apply a batch in one transaction; if it fails, apply each alone so one bad step holds up no other.
        A step that fails alone for a reason of its own becomes an incident (``engine.runtime.failures``)."""
        if not items:
            return
        try:
            self._write_batch(items)
            return
        except Exception as exc:
            if is_transient(exc):
                raise
            if len(items) == 1:
                self._fail_step(items[0], exc)
                return
        errors = []
        for item in items:
            try:
                self._write_batch([item])
            except Exception as exc:  # re-raised below, after the others are safe
                if is_transient(exc):
                    errors.append(exc)
                else:
                    self._fail_step(item, exc)
        if errors:
            raise errors[0] from None

    def _fail_step(self, item: Pending, error: Exception) -> None:
        """Record a step that cannot be applied as an incident on its token and settle its job, in one
        transaction; if even that cannot be written, a bare incident row and the job's removal."""
        trace = "".join(tb.format_exception(error))
        message = describe(error, item.event)
        log.warning("instance %s: %s", item.instance_id, message)
        ref = ref_of(item.event)
        applied = 0
        if ref is not None:
            try:
                applied = self._write_batch([Pending(item.instance_id, ev.StepFailed(ref, message), item.job_id,
                                                     traceback=trace)])
            except Exception as exc:
                if is_transient(exc):
                    raise
            if applied and self._has_incident(item.instance_id, message):
                return
        with self.db.begin() as conn:  # no token to hold it (or the step cannot be written at all)
            if not applied and item.job_id is not None and not self._settle(conn, item.job_id):
                return  # another worker holds it now
            conn.execute(insert(INC).values(instance_id=item.instance_id, token_id=ref or "", node_id="",
                                            error=message, traceback=trace, created_at=self.clock.now()))

    def _has_incident(self, instance_id: str, error: str) -> bool:
        with self.db.connect() as conn:
            return conn.execute(select(func.count()).select_from(INC).where(
                INC.c.instance_id == instance_id, INC.c.error == error, INC.c.resolved_at.is_(None))).scalar() > 0

    def _states_of(self, conn: Connection, rows: dict[str, Any], writes: Writes) -> dict[str, InstanceState]:
        """The instances' states: from memory when this engine wrote the stored revision itself (a big
        multi-instance is not read back token by token for every batch), else from the rows
        (``engine.runtime.writes.load_states``). A state taken from memory is owned by this transaction; it goes
        back only when the transaction commits."""
        states: dict[str, InstanceState] = {}
        with self._states_lock:
            for instance_id, row in rows.items():
                kept = self._states.pop(instance_id, None)
                if kept is not None and kept[0] == row.rev:
                    states[instance_id] = kept[1]
                    writes.versions.update(((instance_id, name), v) for name, v in kept[2].items())
                    writes.versioned.add(instance_id)  # its variables' stored versions, as load_states gives
        missing = {i: row for i, row in rows.items() if i not in states}
        if missing:
            states.update(load_states(conn, missing, writes))
        return states

    def _keep_state(self, instance_id: str, rev: int, state: InstanceState, versions: dict[str, int]) -> None:
        with self._states_lock:
            self._states[instance_id] = (rev, state, versions)
            self._states.move_to_end(instance_id)
            while len(self._states) > self.state_cache_size:
                self._states.popitem(last=False)

    def _write_batch(self, items: list[Pending], before: Callable[[Connection], bool] | None = None,
                     strict: bool = False, wait: bool = False) -> int:
        """The transaction: lock the instances (in id order: no deadlocks between workers; always before
        any job row, as every other path does), remove the jobs still ours, run each event through the
        core, write everything. Returns the events applied.

        On PostgreSQL a batch skips instances another transaction holds (a sibling branch's job on
        another worker, a person completing a task) instead of queueing the whole batch behind them;
        those events follow in a second transaction that waits for the locks."""
        now = self.clock.now()
        writes = Writes()
        deferred: list[Pending] = []
        began = time.perf_counter()
        with self.db.begin() as conn:
            ids = sorted({i.instance_id for i in items})
            query = (_INSTANCES if is_sqlite(self.db) else
                     _INSTANCES_LOCKED if strict or wait else _INSTANCES_SKIP_LOCKED)
            rows = {r.id: r for r in conn.execute(query, {"ids": ids})} if ids else {}
            if strict and len(rows) < len(ids):
                raise EngineError(f"no instance {ids[0]!r}")
            if not (strict or wait or is_sqlite(self.db)):
                deferred = [i for i in items if i.instance_id not in rows]
            items = [i for i in items if i.instance_id in rows]
            owned = guard_jobs(conn, [i.job_id for i in items if i.job_id is not None], self.worker_id)
            items = [i for i in items if i.job_id is None or i.job_id in owned]
            if before is not None and not before(conn):
                conn.rollback()
                return 0
            steps: dict[str, StepWriter] = {}
            states = self._states_of(conn, {i.instance_id: rows[i.instance_id] for i in items
                                            if i.instance_id in rows}, writes)
            for item in items:
                row = rows.get(item.instance_id)
                if row is None:  # removed meanwhile: nothing to advance
                    continue
                step = steps.get(item.instance_id)
                if step is None:
                    state = states[row.id]
                    writes.loaded(row.id, state)
                    sem = self.semantics(row.definition_name, row.definition_version)
                    step = steps[row.id] = StepWriter(conn, writes, row.id, sem, state, now, row.business_key,
                                                      call=self._call_activity,
                                                 ended_at=row.ended_at, error=row.error)
                step.traceback = step.unrevealing(item.traceback) if item.traceback else item.traceback
                step.run([], [item.event])
                if item.execution is not None:
                    if item.execution.get("error"):  # an agent's message may print a sensitive input
                        item.execution["error"] = step.unrevealing(item.execution["error"])
                    writes.executions.append(item.execution)
            for instance_id, step in steps.items():
                step.stepped(rows[instance_id].rev)
            writes.flush(conn)
        versions: dict[str, dict[str, int]] = {}
        for (instance_id, name), version in writes.versions.items():
            versions.setdefault(instance_id, {})[name] = version
        for instance_id, step in steps.items():  # committed: the next step of these starts from memory
            if step.state.status == "running":
                self._keep_state(instance_id, rows[instance_id].rev + 1, step.state, versions.get(instance_id, {}))
        if self.observer is not None:
            self.observer.stepped(time.perf_counter() - began, len(items))
            for instance_id, step in steps.items():
                if step.ended is not None:
                    row = rows[instance_id]
                    self.observer.ended(row.definition_name, row.definition_version, step.ended.status)
        return len(items) + (self._write_batch(deferred, wait=True) if deferred else 0)
