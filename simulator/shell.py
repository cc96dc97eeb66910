"""The SimPy shell over the pure core: one semantics, so a simulation predicts the engine.

Per replication a fresh ``simpy.Environment`` carries the clock (seconds since the scenario's start;
the core gets timezone-aware datetimes). Cases arrive, the core says what to do (``StartWork``,
``ScheduleTimer``, ``Subscribe``...), the shell samples durations, queues work at pools, and feeds
the outcomes back as events. Gateway rules, timers, boundaries, retries and compensation are the
core's; the shell only answers "how long" and "which way" (branch probabilities, through the core's
``choose`` hook).

A call activity whose called design is known (``simulate(..., called=...)``: the designs of the same set, by
name) runs that design inline, as part of the case (BPMN 2.0 §10.3.4, as the engine runs it): a child case
started with the input mapping's values, whose tasks queue at the same pools and whose timers run on the same
clock; its end answers the call activity as the engine's does (completed: its variables through the output
mapping; an error end nothing caught: that error; an escalation nothing caught: thrown at the call activity),
and interrupting the call activity cancels the child. A child is not a case of its own: its rows carry the
calling case's id. A call activity whose design is not known is work of ``tasks.<id>.duration`` (a warning
says so).

The per-event path is kept lean: SimPy events with callbacks (no generator per case; slotted ``_Due`` events, not
``Timeout``s), samples drawn in batches, log rows appended as tuples, DataFrames built once at the end.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from heapq import heappush
from typing import Any

import numpy as np
import simpy
from simpy.events import NORMAL

from engine.model.definition import ProcessDefinition
from engine.model.nodes import Node, SequenceFlow
from engine.semantics import InstanceState, Semantics, messages
from engine.semantics import effects as fx
from engine.semantics import events as ev
from engine.semantics.core import message_variables
from engine.semantics.messages import MessageBuffer
from simulator.distributions import BATCH
from simulator.resources import Pool, Work
from simulator.scenario import PER, Scenario, pool_of

UNLIMITED = None
_ENTERED = fx.Entered
_ENDED = fx.InstanceEnded


@dataclass
class RunData:
    """Raw results of one replication (plain lists; DataFrames are built by :mod:`simulator.kpis`)."""

    replication: int
    seed: int
    t0: datetime
    end: float
    warmup: float
    work_rows: list[tuple[Any, ...]] = field(default_factory=list)
    wait_rows: list[tuple[Any, ...]] = field(default_factory=list)
    case_rows: list[tuple[Any, ...]] = field(default_factory=list)
    incidents: list[tuple[Any, ...]] = field(default_factory=list)
    breaches: list[tuple[Any, ...]] = field(default_factory=list)
    queue_traces: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    entered: dict[str, int] = field(default_factory=dict)
    events: int = 0  # events delivered to the core (starts + steps)
    # thrown messages that found no single waiting case at once: (name, correlation, status, from case,
    # to case, created s, delivered s, expires s); status buffered / delivered / expired / ambiguous
    messages: list[tuple[Any, ...]] = field(default_factory=list)
    horizon: float | None = None  # when arrivals stop (s); rates are measured in [warmup, horizon]


SIGNAL = object()
"""What a case's signal subscription holds where a message's holds its correlation (a signal has none)."""


class _Due:
    """A SimPy event that is triggered when made, for the shell's own callbacks: what ``Environment.step`` reads of
    an event (``callbacks``, ``_ok``, ``_value``) and no more. ``Run._at`` queues it as ``simpy.Timeout`` queues
    itself (time, priority, sequence number), so events run in the same order; building one costs a slotted object
    instead of a Timeout's ``__init__`` and ``Environment.schedule`` calls (issue 19)."""

    __slots__ = ("_value", "callbacks")
    _ok = True


class _Case:
    __slots__ = ("arrived", "caller", "children", "id", "log", "state", "step", "subs", "timers", "work")

    def __init__(self, case_id: int, arrived: float, step: Callable[..., list[fx.Effect]],
                 log: int | None = None) -> None:
        self.id = case_id
        self.log = case_id if log is None else log  # the case id its rows carry (a child: its calling case's)
        self.arrived = arrived
        self.step = step  # its definition's Semantics.step
        self.caller: tuple[_Case, str, str] | None = None  # a child: (calling case, call activity token, work id)
        self.children: dict[str, _Case] | None = None  # call activity token -> its running child
        self.state: InstanceState | None = None
        self.work: dict[str, Work] = {}  # token id -> its open work
        # Made with the case's first timer or subscription (most cases of a simple design have none; issue 19):
        self.timers: dict[str, tuple[str, str, float]] | None = None  # live timer id -> (purpose, node, armed at)
        self.subs: dict[str, tuple[str, str, float, Any]] | None = None  # live subscription -> (message, node, at, key)


class Compiled:
    """What does not change between replications: the scenario read against the design."""

    def __init__(self, definition: ProcessDefinition, scenario: Scenario, calendars: dict[str, Any],
                 called: Mapping[str, ProcessDefinition] | None = None) -> None:
        self.definition = definition
        self.scenario = scenario
        self.calendars = calendars
        self.called = dict(called or {})  # the designs call activities may run inline, by name
        self.kinds = {nid: n.kind for nid, n in definition.index.nodes.items()}  # the design's own (end shares)
        owner: dict[str, ProcessDefinition] = {}  # node id -> its design (the design's own ids first)
        for d in [*self.called.values(), definition]:
            owner.update(dict.fromkeys(d.index.nodes, d))
        nodes = {nid: d.index.nodes[nid] for nid, d in owner.items()}
        self.nodes = nodes
        self.names = {nid: (n.name or getattr(n, "title", None) or nid) for nid, n in nodes.items()}
        self.warnings = [
            f"call activity {n.id!r} calls {n.called_element!r}, which is not among the designs given to the "  # type: ignore[attr-defined]
            f"simulation: it is work of tasks.{n.id}.duration (or no time), not the called process"
            for d in [definition, *self.called.values()] for n in d.all_nodes()
            if n.kind == "call_activity" and n.called_element not in self.called]  # type: ignore[attr-defined]
        # Which pool does each activity's work, by name (None: unlimited, no queue).
        self.pool_of: dict[str, str | None] = {}
        for nid, node in nodes.items():
            if node.kind == "user_task" or node.kind == "task":
                self.pool_of[nid] = pool_of(scenario, node)
            elif node.kind == "service_task":
                agent = node.agent or node.topic  # type: ignore[attr-defined]  (external workers: a pool by topic)
                self.pool_of[nid] = f"agent:{agent}" if agent in scenario.agents and \
                    scenario.agents[agent].capacity is not None else None
        self.agent_of = {nid: getattr(n, "agent", None) or getattr(n, "topic", None) for nid, n in nodes.items()}
        flows = {f.id: f for d in owner.values() for f in d.all_flows()}
        # Branch probabilities by gateway: (flows, cumulative or independent probabilities, default flow).
        self.branches: dict[str, tuple[str, list[SequenceFlow], list[float], SequenceFlow | None]] = {}
        for gw_id, probs in scenario.branches.items():
            node = nodes[gw_id]
            by_target = {f.target: f for f in owner[gw_id].outgoing(gw_id)}
            chosen = [flows.get(k) or by_target[k] for k in probs]
            default_id = getattr(node, "default", None)
            default = flows.get(default_id) if default_id else None
            values = list(probs.values())
            if node.kind == "exclusive_gateway":
                total = sum(values)
                cumulative = list(np.cumsum([v / total for v in values]))
                cumulative[-1] = 1.0
                self.branches[gw_id] = ("exclusive", chosen, cumulative, default)
            else:
                self.branches[gw_id] = ("inclusive", chosen, values, default)
        self.message_starts = {n.id for n in definition.start_nodes() if n.kind != "start"}


def _stream(seed: int, replication: int, name: str) -> np.random.Generator:
    """An independent random stream per (seed, replication, name): the same name draws the same numbers
    in two scenarios (common random numbers make what-if differences sharper), and adding a task does
    not shift the draws of the others."""
    seq = np.random.SeedSequence(entropy=seed, spawn_key=(replication, zlib.crc32(name.encode())))
    return np.random.Generator(np.random.PCG64(seq))


class Run:
    """One replication."""

    def __init__(self, compiled: Compiled, replication: int, seed: int,
                 tick: Callable[[float], None] | None = None) -> None:
        self.c = compiled
        s = compiled.scenario
        self.s = s
        self.replication = replication
        self.seed = seed
        self.env = simpy.Environment()
        self.t0 = s.start
        self.end = s.end
        self.horizon = s.horizon.total_seconds()
        self.warmup = s.warmup.total_seconds()
        self.tick = tick
        self.data = RunData(replication, seed, self.t0, self.end, self.warmup, horizon=self.horizon)
        self.sem = Semantics(compiled.definition, calendars=compiled.calendars,
                             choose=self._choose if compiled.branches else None)
        self._called = {name: Semantics(d, calendars=compiled.calendars,
                                        choose=self._choose if compiled.branches else None)
                        for name, d in compiled.called.items()}
        self.children: dict[int, _Case] = {}  # running children of call activities, by their own (negative) id
        self._n_children = 0
        self.cases: dict[int, _Case] = {}
        self.n_cases = 0
        self._dt_t = -1.0
        self._dt = self.t0
        self._t0_ts = self.t0.timestamp()
        self._tz = self.t0.tzinfo
        self._samplers: dict[str, Callable[[], Any]] = {}
        self.pools: dict[str, Pool] = {}
        window = (self.warmup, self.horizon)  # rates are measured while cases arrive; the drain lets them finish
        for name, pool in s.pools.items():
            cal = compiled.calendars.get(pool.calendar) if pool.calendar else None
            if cal is not None and getattr(cal, "always", False):
                cal = None  # 24x7: plain arithmetic
            self.pools[name] = Pool(name, pool.size, self.env, self._begin, cal, self.t0, window)
        for name, agent in s.agents.items():
            if agent.capacity is not None:
                self.pools[f"agent:{name}"] = Pool(f"agent:{name}", agent.capacity, self.env, self._begin,
                                                   None, self.t0, window)
        self._unlimited: dict[str, Pool] = {}
        self._start_node = s.arrivals.start_node
        self._pool_by_node: dict[str, Pool] = {}
        self.events = 0
        self._arrival_cb = self._on_arrival
        self._sem_start = self.sem.start
        self._sem_step = self.sem.step
        self._log_row = self.data.work_rows.append
        self._case_row = self.data.case_rows.append
        self._work_end_cb = self._on_work_end
        self._clock = self._dt_now  # the core's time of a step: made into a datetime only when a rule reads it
        self._on: dict[type, Callable[[_Case, Any], None]] = {
            fx.StartWork: self._start_work, fx.ScheduleTimer: self._schedule_timer,
            fx.CancelTimer: self._cancel_timer, fx.CancelWork: self._cancel_work, fx.SlaBreached: self._sla_breached,
            fx.Subscribe: self._subscribe, fx.Unsubscribe: lambda case, e: self._unsubscribe(case, e.subscription_id),
            fx.SendMessage: self._send_message, fx.Incident: self._incident,
            fx.BroadcastSignal: lambda case, e: self._broadcast(e), fx.Escalated: self._escalated}
        # waiting signal catches: signal name -> (case id, subscription id) -> case (a signal has no key)
        self._subs_by_signal: dict[str, dict[tuple[int, str], _Case]] = {}
        # waiting catches: message name -> key as stored (messages.key_text) -> (case id, subscription id) -> case
        # (the core's subscription ids repeat across cases)
        self._subs_by_message: dict[str, dict[str | None, dict[tuple[int, str], _Case]]] = {}
        self._buffer = MessageBuffer(s.message_ttl)  # the engine's rule 3 (engine.semantics.messages)
        self._message_starts = self.sem.message_starts()  # message name -> start event (rule 3, first)
        self._signal_starts = self.sem.signal_starts()  # signal name -> start event (a thrown signal starts one)
        self._wants_compensation = any(t.compensation is not None for t in s.tasks.values())
        self._durations: dict[str, Callable[[], float]] = {}
        self._outputs: dict[str, list[tuple[str, Callable[[], Any]]]] = {}
        self._failures: dict[str, tuple[float, Any, Callable[[], float] | None]] = {}
        for node_id, spec in s.tasks.items():
            if spec.duration is not None:
                self._durations[node_id] = spec.duration.sampler(self._rng(f"duration:{node_id}"))
            if spec.compensation is not None:
                self._durations[f"@comp:{node_id}"] = spec.compensation.sampler(self._rng(f"comp:{node_id}"))
            if spec.outputs:
                self._outputs[node_id] = [(k, d.sampler(self._rng(f"output:{node_id}:{k}")))
                                          for k, d in spec.outputs.items()]
            if spec.failure or spec.error is not None:
                u = _Uniform(self._rng(f"failure:{node_id}"))
                self._failures[node_id] = (spec.failure, spec.error, u)
        self._plain = frozenset(n for n in compiled.nodes if n not in self._failures and n not in self._outputs)
        self._variables = [(k, d.sampler(self._rng(f"variable:{k}"))) for k, d in s.variables.items()]
        self._branch_u = {gw: _Uniform(self._rng(f"branch:{gw}")) for gw in compiled.branches}
        self._messages = {
            name: (m.probability, m.after.sampler(self._rng(f"message:{name}")), _Uniform(self._rng(f"msg?:{name}")),
                   [(k, d.sampler(self._rng(f"payload:{name}:{k}"))) for k, d in m.payload.items()])
            for name, m in s.messages.items()}

    # --- plumbing --------------------------------------------------------------------------------

    def _rng(self, name: str) -> np.random.Generator:
        return _stream(self.seed, self.replication, name)

    def _now(self) -> float:
        return self.env._now

    def _dt_now(self) -> datetime:
        now = self.env._now
        if now != self._dt_t:
            self._dt_t = now
            self._dt = datetime.fromtimestamp(self._t0_ts + now, self._tz)
        return self._dt

    def _at(self, delay: float, callback: Callable[[Any], None], value: Any) -> _Due:
        """Call ``callback(event)`` after ``delay`` seconds (at once if <= 0), with ``event._value`` = ``value``."""
        env = self.env
        event = _Due()
        event._value = value
        event.callbacks = [callback]
        heappush(env._queue, (env._now + (delay if delay > 0 else 0.0), NORMAL, next(env._eid), event))
        return event

    # --- running ---------------------------------------------------------------------------------

    def run(self) -> RunData:
        self._chunks = self._arrival_chunks()
        self._arr: list[float] = []
        self._arr_i = 0
        t = self._next_time()
        if t is not None:
            self._at(t, self._arrival_cb, None)
        env = self.env
        if self.tick is None:
            env.run(until=self.end)
        else:
            chunks = 50
            for i in range(1, chunks + 1):
                env.run(until=self.end * i / chunks)
                self.tick(i / chunks)
        self._close()
        return self.data

    def _arrival_chunks(self) -> Any:
        """Arrival times (seconds from start) in lists, stopping at the horizon or the limit."""
        a = self.s.arrivals
        horizon = self.horizon
        limit = a.limit or math.inf
        kind = a.kind
        if kind == "timestamps" or kind == "file":
            times = sorted((t - self.t0).total_seconds() for t in (a.timestamps or _read_times(a.file, a.column)))
            times = [t for t in times if 0 <= t < horizon]
            yield times[:int(min(limit, len(times)))]
            return
        if kind == "profile":
            assert a.profile is not None
            yield list(_profile_times(a.profile, self.t0, horizon, limit, self._rng("arrivals")))
            return
        rng = self._rng("arrivals")
        count = 0
        t = 0.0
        if kind == "interval":  # a fixed schedule starts at the start
            assert a.interval is not None
            step = a.interval.total_seconds()
            n = int(min(limit, math.ceil(horizon / step)))
            times = [i * step for i in range(n)]
            yield [x for x in times if x < horizon]
            return
        draw: Callable[[int], np.ndarray]
        if kind == "poisson":
            assert a.poisson is not None
            mean = a.poisson.mean_interarrival
            draw = lambda n: rng.exponential(mean, n)  # noqa: E731
        else:
            assert a.interarrival is not None
            sample = a.interarrival.sampler(rng)
            draw = lambda n: np.asarray([sample() for _ in range(n)], dtype=float)  # noqa: E731
        while count < limit:
            times = (t + np.cumsum(draw(BATCH))).tolist()
            t = times[-1]
            keep = [x for x in times if x < horizon][:int(min(limit - count, BATCH))]
            count += len(keep)
            if keep:
                yield keep
            if len(keep) < BATCH:
                return

    def _next_time(self) -> float | None:
        i = self._arr_i
        if i >= len(self._arr):
            self._arr = next(self._chunks, [])
            if not self._arr:
                return None
            i = 0
        self._arr_i = i + 1
        return self._arr[i]

    def _on_arrival(self, _event: Any) -> None:
        env = self.env
        i = self._arr_i
        if i < len(self._arr):
            self._arr_i = i + 1
            now = env._now
            due = _Due()
            due._value = None
            due.callbacks = [self._arrival_cb]
            heappush(env._queue, (now + (self._arr[i] - now), NORMAL, next(env._eid), due))  # as _at, inlined
        else:
            t = self._next_time()
            if t is not None:
                self._at(t - env._now, self._arrival_cb, None)
        variables = {name: draw() for name, draw in self._variables} if self._variables else None
        self._new_case(variables, self._start_node)

    def _new_case(self, variables: dict[str, Any] | None, start_node: str | None) -> None:
        now = self.env._now
        self.n_cases = n = self.n_cases + 1
        case = _Case(n, now, self._sem_step)
        self.cases[n] = case
        self.events += 1
        case.state, effects = self._sem_start(variables, self._clock, start_node)
        self._apply(case, effects)

    def _send(self, case: _Case, event: ev.Event) -> None:
        state = case.state
        assert state is not None
        self.events += 1
        self._apply(case, case.step(state, event, self._clock))

    def _apply(self, case: _Case, effects: list[fx.Effect]) -> None:
        entered = self.data.entered
        on = self._on
        last = None
        for e in effects:
            cls = type(e)
            if cls is _ENTERED:
                last = e.node_id  # type: ignore[union-attr]
                entered[last] = entered.get(last, 0) + 1
            elif cls is _ENDED:
                self._ended(case, e, last)  # type: ignore[arg-type]
            else:
                handler = on.get(cls)
                if handler is not None:  # VariablesChanged needs nothing here
                    handler(case, e)

    def _cancel_timer(self, case: _Case, e: fx.CancelTimer) -> None:
        if case.timers:
            case.timers.pop(e.timer_id, None)

    def _incident(self, case: _Case, e: fx.Incident) -> None:
        self.data.incidents.append((case.log, e.node_id, self.env._now, e.error))

    # --- work ------------------------------------------------------------------------------------

    def _start_work(self, case: _Case, e: fx.StartWork) -> None:
        if e.kind == "call_activity" and e.handler in self._called:
            self._call(case, e)
            return
        work = Work(case, e.token_id, e.node_id, e.kind, e.work_id, e.attempt, self.env._now)
        case.work[e.token_id] = work
        pool = self._pool_by_node.get(e.node_id) if e.kind != "compensation" else None
        if pool is None:
            pool = self._pool_for(e)
        pool.request(work)

    def _pool_for(self, e: fx.StartWork) -> Pool:
        """The pool of an activity (found once per node and remembered), or of a compensation handler."""
        if e.kind == "compensation":
            pool_name = f"agent:{e.handler}" if f"agent:{e.handler}" in self.pools else None
        else:
            pool_name = self.c.pool_of.get(e.node_id)
        pool = self.pools.get(pool_name) if pool_name else None
        if pool is None:
            key = (e.handler or e.node_id) if e.kind != "user_task" else e.node_id
            pool = self._unlimited.get(key)
            if pool is None:
                pool = self._unlimited[key] = Pool(key, UNLIMITED, self.env, self._begin, None, self.t0,
                                                   (self.warmup, self.horizon))
        if e.kind != "compensation":
            self._pool_by_node[e.node_id] = pool
        return pool

    def _begin(self, work: Work, start: float) -> None:
        """A server took the work: sample how long it takes and schedule its end."""
        draw = self._durations.get(work.node_id if work.kind != "compensation" else f"@comp:{work.node_id}")
        seconds = draw() if draw is not None else 0.0
        pool = work.pool
        assert pool is not None
        end = pool.finish_time(start, seconds) if pool.calendar is not None else start + seconds
        work.end = end
        env = self.env
        now = env._now
        delay = end - now
        work.timer = timer = _Due()  # as _at, inlined
        timer._value = work
        timer.callbacks = [self._work_end_cb]
        heappush(env._queue, (now + (delay if delay > 0 else 0.0), NORMAL, next(env._eid), timer))

    def _on_work_end(self, event: Any) -> None:
        work: Work = event._value
        if work.timer is not event or work.outcome is not None:
            return  # cancelled, or taken back and handed out again: this completion is stale
        work.timer = None  # the work and its completion event no longer hold each other: freed without the gc
        case = work.case
        token_id = work.token_id
        if case.work.get(token_id) is work:
            del case.work[token_id]
        node_id = work.node_id
        event_out: ev.Event
        if node_id in self._plain and work.kind != "compensation":  # the common case: no failures, no outputs
            work.outcome = "completed"
            event_out = ev.WorkDone(token_id, {}, work.person)
        else:
            event_out = self._outcome(work)
        pool = work.pool
        pool.release(work)
        self._log_row((
            case.log, node_id, work.kind, work.person, pool.name, work.enabled, work.start, work.end,
            work.outcome, work.attempt, work.breached))
        self.events += 1
        self._apply(case, case.step(case.state, event_out, self._clock))

    def _outcome(self, work: Work) -> ev.Event:
        """Sample how the work ended: a technical failure, a business error, or done with outputs."""
        compensation = work.kind == "compensation"
        failure = self._failures.get(work.node_id) if not compensation else None
        if failure is not None and failure[0] and failure[2]() < failure[0]:
            work.outcome = "failed"
            return ev.WorkFailed(work.token_id, "simulated failure")
        if failure is not None and failure[1] is not None and failure[2]() < failure[1].probability:
            work.outcome = "error"
            return ev.WorkFailed(work.token_id, f"simulated error {failure[1].code}", failure[1].code, True)
        work.outcome = "completed"
        outputs = self._outputs.get(work.node_id) if not compensation else None
        values = {k: draw() for k, draw in outputs} if outputs else {}
        return ev.WorkDone(work.token_id, values, work.person)

    def _log_work(self, work: Work, pool: Pool | None = None) -> None:
        pool = pool or work.pool
        started = work.start >= 0
        self.data.work_rows.append((
            work.case.log, work.node_id, work.kind, work.person if started else None, pool.name if pool else None,
            work.enabled, work.start if started else math.nan, work.end if started else self.env._now,
            work.outcome, work.attempt, work.breached))

    def _finish_open(self, work: Work, outcome: str) -> None:
        """Work the core no longer wants (interrupted, SLA-completed): free its server, log it."""
        pool = work.pool
        now = self.env._now
        work.timer = None
        if pool is not None:
            if work.start < 0 or work.start > now:
                pool.withdraw(work)  # never started: the row shows no start and no person
            else:
                work.end = now
                pool.release(work)
        work.outcome = outcome
        self._log_work(work, pool)

    def _cancel_work(self, case: _Case, e: fx.CancelWork) -> None:
        if case.children and e.token_id in case.children:
            self._cancel_child(case, e)
            return
        work = case.work.get(e.token_id)
        if work is not None and work.work_id == e.work_id:
            del case.work[e.token_id]
            self._finish_open(work, "cancelled")

    def _sla_breached(self, case: _Case, e: fx.SlaBreached) -> None:
        work = case.work.get(e.token_id)
        self.data.breaches.append((case.log, e.node_id, self.env._now))
        if work is None or work.work_id != e.work_id:
            return
        work.breached = True
        action = e.action
        if action is None:
            return
        if action.action == "complete":  # the core completed the activity: the server stops
            del case.work[e.token_id]
            self._finish_open(work, "sla_completed")
        elif action.action in ("escalate", "reassign") and action.assignee in self.pools:
            target = self.pools[action.assignee]
            pool = work.pool
            if pool is not None and pool is not target and pool.withdraw(work):
                target.request(work)  # queued work moves; work in progress stays with its person

    # --- call activities: the called design inline --------------------------------------------------

    def _call(self, case: _Case, e: fx.StartWork) -> None:
        """Start the called design as a child of ``case`` (as ``Engine._call_activity`` does, in the same
        step), with the input mapping's values as its variables."""
        self._n_children = n = self._n_children + 1
        sem = self._called[e.handler]  # type: ignore[index]
        child = _Case(-n, self.env._now, sem.step, log=case.log)
        child.caller = (case, e.token_id, e.work_id)
        if case.children is None:
            case.children = {}
        case.children[e.token_id] = child
        self.children[child.id] = child
        self.events += 1
        child.state, effects = sem.start(dict(e.inputs), self._clock)
        self._apply(child, effects)

    def _call_row(self, child: _Case, node_id: str, outcome: str) -> None:
        """The call activity's row: from its child's start to its end (no person, no pool)."""
        self.data.work_rows.append((child.log, node_id, "call_activity", None, None, child.arrived, child.arrived,
                                    self.env._now, outcome, 1, False))

    def _child_ended(self, child: _Case, e: fx.InstanceEnded) -> None:
        """A child ended: its call activity hears how, at the same instant after this step (the engine's
        ``call`` job runs after the child's step commits), unless the caller already cancelled it."""
        self.children.pop(child.id, None)
        parent, token_id, _work_id = child.caller  # type: ignore[misc]
        if parent.children is None or parent.children.get(token_id) is not child:
            return  # the caller cancelled it
        del parent.children[token_id]
        node_id = parent.state.tokens[token_id].node if parent.state and token_id in parent.state.tokens else ""
        answer: ev.Event
        if e.status == "completed":
            answer = ev.WorkDone(token_id, dict(child.state.variables) if child.state else {})
        elif e.status == "failed" and e.error_code:
            answer = ev.WorkFailed(token_id, e.error or "", e.error_code, business=True)
        else:
            answer = ev.WorkFailed(token_id, f"called process ended {e.status}" + (f": {e.error}" if e.error else ""),
                                   "call_" + e.status)
        self._call_row(child, node_id, "completed" if e.status == "completed" else "failed")
        self._at(0.0, self._answer, (parent, answer))

    def _answer(self, event: Any) -> None:
        parent, answer = event._value
        if parent.state is not None and not parent.state.finished:
            self._send(parent, answer)

    def _cancel_child(self, case: _Case, e: fx.CancelWork) -> None:
        """The call activity was interrupted (or its case ended): its child is cancelled with it."""
        child = case.children[e.token_id]  # type: ignore[index]
        if child.caller is None or child.caller[2] != e.work_id:
            return
        del case.children[e.token_id]  # type: ignore[union-attr]
        self._call_row(child, e.node_id, "cancelled")
        if child.state is not None and not child.state.finished:
            self._send(child, ev.Cancel(f"its caller, case {case.log}, cancelled it"))

    def _escalated(self, case: _Case, e: fx.Escalated) -> None:
        """An escalation a child did not catch is thrown at its call activity (after this step, as the engine's
        ``call`` job); a case's own uncaught escalation changes nothing."""
        if case.caller is None:
            return
        parent, token_id, _work_id = case.caller
        if parent.children is not None and parent.children.get(token_id) is case:
            self._at(0.0, self._answer, (parent, ev.WorkEscalated(token_id, e.code)))

    # --- timers and messages ----------------------------------------------------------------------

    def _schedule_timer(self, case: _Case, e: fx.ScheduleTimer) -> None:
        now = self.env._now
        if case.timers is None:
            case.timers = {}
        case.timers[e.timer_id] = (e.purpose, e.node_id, now)
        due = (e.due - self.t0).total_seconds()
        self._at(due - now, self._on_timer, (case, e.timer_id))

    def _on_timer(self, event: Any) -> None:
        case, timer_id = event._value
        armed = case.timers.pop(timer_id, None) if case.timers else None
        if armed is None or case.state is None or case.state.finished:
            return
        purpose, _node, at = armed
        if purpose in ("catch", "race"):
            self.data.wait_rows.append((case.log, timer_id.split(".")[1], "timer", at, self.env._now))
        self._send(case, ev.TimerFired(timer_id))

    def _subscribe(self, case: _Case, e: fx.Subscribe) -> None:
        now = self.env._now
        if case.subs is None:
            case.subs = {}
        if e.kind == "signal":  # broadcast, never buffered (engine.runtime.signals)
            case.subs[e.subscription_id] = (e.message, e.node_id, now, SIGNAL)
            self._subs_by_signal.setdefault(e.message, {})[(case.id, e.subscription_id)] = case
        else:
            case.subs[e.subscription_id] = (e.message, e.node_id, now, e.correlation)
        if self._buffer.messages and e.kind == "message":  # a message thrown before the catch opened (rule 3)
            payload = self._buffer.take(e.message, e.correlation, self._dt_now(), receiver=case.log)
            if payload is not None:  # taken: no other message can reach this catch any more
                self._at(0.0, self._on_message, (case, e.subscription_id, payload))
                return
        if e.kind == "message":
            self._subs_by_message.setdefault(e.message, {}).setdefault(
                messages.key_text(e.correlation), {})[(case.id, e.subscription_id)] = case
        spec = self._messages.get(e.message)
        if spec is not None:
            probability, after, u, payload_spec = spec
            if probability >= 1 or u() < probability:
                values = {k: draw() for k, draw in payload_spec}
                self._at(after(), self._on_message, (case, e.subscription_id, values))

    def _unsubscribe(self, case: _Case, sub_id: str) -> None:
        sub = case.subs.pop(sub_id, None) if case.subs else None
        if sub is not None and sub[3] is SIGNAL:
            waiting = self._subs_by_signal.get(sub[0])
            if waiting is not None and waiting.pop((case.id, sub_id), None) is not None and not waiting:
                del self._subs_by_signal[sub[0]]
        elif sub is not None:
            self._unindex(sub[0], sub[3], case.id, sub_id)

    def _unindex(self, message: str, correlation: Any, case_id: int, sub_id: str) -> None:
        by_key = self._subs_by_message.get(message)
        if by_key:
            key = messages.key_text(correlation)
            waiting = by_key.get(key)
            if waiting is not None and waiting.pop((case_id, sub_id), None) is not None and not waiting:
                del by_key[key]

    def _on_message(self, event: Any) -> None:
        case, sub_id, payload = event._value
        sub = case.subs.get(sub_id) if case.subs else None
        if sub is None or case.state is None or case.state.finished:
            return
        self._unsubscribe(case, sub_id)
        if sub[3] is SIGNAL:
            self.data.wait_rows.append((case.log, sub[1], "signal", sub[2], self.env._now))
            self._send(case, ev.SignalReceived(sub_id, payload))
            return
        self.data.wait_rows.append((case.log, sub[1], "message", sub[2], self.env._now))
        self._send(case, ev.MessageReceived(sub_id, payload))

    def _send_message(self, sender: _Case, e: fx.SendMessage) -> None:
        """A design's own message throw, by the engine's rule (``engine.semantics.messages``), decided after
        the step that threw it (the engine's message job runs after the step commits): the one waiting case
        whose catch matches receives it; several matching is ambiguous (recorded, given to none); none waiting
        starts a case at the design's message start event for it, else buffers it for the scenario's
        ``message_ttl``, for the first catch that opens and matches."""
        self._at(0.0, self._route_message, (sender, e))

    def _route_message(self, event: Any) -> None:
        sender, e = event._value
        by_key = self._subs_by_message.get(e.message, {})
        key = messages.key_text(e.correlation)
        # rule 1 through the index: an unkeyed message matches every catch of its name, a keyed one its key's
        groups = by_key.items() if key is None else [(key, by_key.get(key, {}))]
        matching = [(sub_id, case) for waiting_key, waiting in groups
                    if messages.key_matches(key, waiting_key, stored=True) for (_, sub_id), case in waiting.items()]
        decision, receivers = messages.route(matching)
        if decision == "deliver":
            sub_id, case = receivers[0]
            self._unindex(e.message, case.subs[sub_id][3], case.id, sub_id)  # type: ignore[index]  # taken: gone for the next
            self._at(0.0, self._on_message, (case, sub_id, dict(e.payload)))
        elif decision == "ambiguous":
            names = ", ".join(f"case {case.log} at {case.subs[sub_id][1]!r}" for sub_id, case in receivers)  # type: ignore[index]
            self._buffer.add(e.message, e.correlation, e.payload, self._dt_now(), f"case {sender.log}:{e.node_id}",
                             status="ambiguous", error=f"matches {len(receivers)} waiting catches: {names}")
        elif e.message in self._message_starts:  # nobody waits: a message start event starts a case
            start = self._message_starts[e.message]
            self._new_case(message_variables(self.sem.definition.node(start), dict(e.payload)), start)
        else:
            self._buffer.add(e.message, e.correlation, e.payload, self._dt_now(), f"case {sender.log}:{e.node_id}")

    def _broadcast(self, e: fx.BroadcastSignal) -> None:
        """A design's own signal throw, by the engine's rule (engine.runtime.signals): every case waiting for it
        at this instant receives it, and the design's signal start event for it (if any) starts a case with the
        payload as variables, both at the next instant (the engine's signal job runs after the throw commits)."""
        for (_, sub_id), case in list(self._subs_by_signal.get(e.signal, {}).items()):
            self._at(0.0, self._on_message, (case, sub_id, dict(e.payload)))
        start = self._signal_starts.get(e.signal)
        if start is not None:
            self._at(0.0, self._signal_start, (start, dict(e.payload)))

    def _signal_start(self, event: Any) -> None:
        start, payload = event._value
        self._new_case(message_variables(self.sem.definition.node(start), payload), start)

    # --- gateways --------------------------------------------------------------------------------

    def _choose(self, node: Node, flows: list[SequenceFlow], state: InstanceState) -> list[SequenceFlow] | None:
        spec = self.c.branches.get(node.id)
        if spec is None:
            return None
        kind, chosen, probs, default = spec
        u = self._branch_u[node.id]
        if kind == "exclusive":
            x = u()
            for flow, cumulative in zip(chosen, probs, strict=True):
                if x < cumulative:
                    return [flow]
            return [chosen[-1]]
        taken = [flow for flow, p in zip(chosen, probs, strict=True) if u() < p]
        if not taken and default is not None:
            taken = [default]
        return taken

    # --- ending ----------------------------------------------------------------------------------

    def _ended(self, case: _Case, e: fx.InstanceEnded, last: str | None) -> None:
        """``last``: the node entered last in this step (the end event reached, for completed cases)."""
        if case.subs:
            for sub_id in list(case.subs):
                self._unsubscribe(case, sub_id)
        case.timers = None
        if case.caller is not None:
            self._child_ended(case, e)
            return
        self._case_row((case.id, case.arrived, self.env._now, e.status, last))
        del self.cases[case.id]

    def _close(self) -> None:
        end = self.end
        open_work: list[Work] = []
        for case in [*self.cases.values(), *self.children.values()]:
            if case.caller is None:
                self.data.case_rows.append((case.id, case.arrived, math.nan, "running", None))
            for work in case.work.values():
                open_work.append(work)
                outcome = "open" if 0 <= work.start <= end else "queued"
                self.data.work_rows.append((
                    case.log, work.node_id, work.kind, work.person if work.start >= 0 else None,
                    work.pool.name if work.pool else None, work.enabled, work.start if work.start >= 0 else math.nan,
                    math.nan, outcome, work.attempt, work.breached))
        span = self.horizon - self.warmup  # the KPI window: rates are measured while cases arrive
        for name, pool in {**self.pools, **self._unlimited}.items():
            pool.close(end, open_work)
            available = pool.working_seconds(self.warmup, self.horizon) if pool.calendar is not None else span
            self.data.pools[name] = {
                "size": pool.size, "busy_seconds": pool.busy_seconds, "available_seconds": available,
                "unlimited": pool.size is None, "served": pool.served,
                "cost_per_hour": self.s.pools[name].cost_per_hour if name in self.s.pools else None}
            if pool.size is not None:
                self.data.queue_traces[name] = pool.queue_trace
        self.data.events = self.events
        end_dt = self.t0 + timedelta(seconds=end)
        for m in self._buffer.messages:
            self.data.messages.append((
                m.name, m.correlation, self._buffer.status(m, end_dt), m.source, m.receiver,
                (m.created_at - self.t0).total_seconds(),
                (m.delivered_at - self.t0).total_seconds() if m.delivered_at is not None else math.nan,
                (m.expires_at - self.t0).total_seconds() if m.status == "buffered" else math.nan, m.error))


class _Uniform:
    """Batched uniform [0, 1) draws."""

    __slots__ = ("_buf", "_i", "_rng")

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._buf: list[float] = []
        self._i = 0

    def __call__(self) -> float:
        i = self._i
        if i >= len(self._buf):
            self._buf = self._rng.random(512).tolist()
            i = 0
        self._i = i + 1
        return self._buf[i]


class _Batched(_Uniform):
    """Batched exponential draws with a fixed mean."""

    __slots__ = ("_mean",)

    def __init__(self, rng: np.random.Generator, mean: float) -> None:
        super().__init__(rng)
        self._mean = mean

    def __call__(self) -> float:
        i = self._i
        if i >= len(self._buf):
            self._buf = self._rng.exponential(self._mean, 512).tolist()
            i = 0
        self._i = i + 1
        return self._buf[i]


def _profile_times(profile: Any, t0: datetime, horizon: float, limit: float, rng: np.random.Generator) -> Any:
    """A Poisson process with a piecewise-constant rate per local hour of the week (inverting the
    cumulative rate: an Exp(1) budget is spent hour by hour)."""
    from engine.model.timers import zone

    rates = profile.hourly_rates()
    tz = zone(profile.timezone)
    t = 0.0
    count = 0
    budget = float(rng.exponential(1.0))
    while t < horizon and count < limit:
        local = (t0 + timedelta(seconds=t)).astimezone(tz)
        slot = local.weekday() * 24 + local.hour
        into = local.minute * 60 + local.second + local.microsecond / 1e6
        length = 3600.0 - into
        rate = rates[slot]
        if rate > 0 and budget <= rate * length:
            t += budget / rate
            if t >= horizon:
                return
            count += 1
            yield t
            budget = float(rng.exponential(1.0))
        else:
            budget -= rate * length
            t += length


def _read_times(path: str | None, column: str | None) -> list[datetime]:
    import pandas as pd

    from engine.model.timers import parse_datetime

    assert path is not None
    frame = pd.read_csv(path)
    values = frame[column] if column else frame.iloc[:, 0]
    return [parse_datetime(str(v)) for v in values]


__all__ = ["PER", "Compiled", "Run", "RunData"]
