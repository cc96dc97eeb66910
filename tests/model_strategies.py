"""Hypothesis strategies for valid process models, shared by the serialisation and validation tests.

Models are grown from nested blocks (sequence, exclusive/inclusive/parallel split + matching join, a retry
loop, an event race, a sub-process) so they are sound by construction; every node kind appears with random
fields. ``GeneratedModel.blocks`` lists each split/join pair so a test can break one on purpose.
"""

from __future__ import annotations

import inspect
import itertools
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from engine.model import ProcessBuilder, ProcessDefinition
from engine.model.builder import Cursor
from engine.model.nodes import Task

VARIABLES = {"n": int, "ok": bool, "score": float, "name": str}
CONDITIONS = ["n > 1", "ok", "score >= 0.7 and not ok", "name == 'x'", "${n < 5}", "n > 0 && ok", "len(name) > 2"]

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn")), min_size=1, max_size=10)
tricky = st.sampled_from(["yes", "no", "null", "~", "001", "1e3", "a: b", "#x", "- y", "'q'", '"d"', "é", "日本",
                          " sp "])
words = texts | tricky
# message, signal, error and escalation names: printable text, not only blanks (engine.model.ids.Name)
event_names = words.filter(str.strip)
idents = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
durations = st.sampled_from(["PT30M", "PT4H", "P7D", "PT1S", "P1DT2H"])
cycles = st.sampled_from(["R5/PT1H", "R/PT10M", "0 9 * * *", "R3/2026-01-05T09:00:00+01:00/P1D"])
timers = durations | st.builds(lambda c, tz: {"cycle": c, "timezone": tz}, cycles,
                               st.sampled_from([None, "Europe/Berlin", "Asia/Tokyo"]))
json_scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | words
metadata = st.dictionaries(idents, json_scalars | st.lists(json_scalars, max_size=2), max_size=2)
# ProcessBuilder takes metadata as keyword arguments: keys that are its own parameters (id, name, ...) are not
# metadata (a key 'id' gave "got multiple values for argument 'id'")
_BUILDER_PARAMETERS = frozenset(inspect.signature(ProcessBuilder).parameters)
process_metadata = metadata.map(lambda m: {k: v for k, v in m.items() if k not in _BUILDER_PARAMETERS})

BLOCK_KINDS = ["exclusive", "inclusive", "parallel", "race", "loop", "sub"]


@dataclass
class GeneratedModel:
    definition: ProcessDefinition
    blocks: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, split id, join id)

    def __repr__(self) -> str:
        return f"GeneratedModel({self.definition.to_yaml()})"


class _Grower:
    """Draws blocks and emits them through the builder."""

    def __init__(self, draw: Any, builder: ProcessBuilder, counter: itertools.count, depth: int) -> None:
        self.draw, self.b, self.counter, self.depth = draw, builder, counter, depth
        self.blocks: list[tuple[str, str, str]] = []
        self.compensable: list[str] = []

    def nid(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"

    def common(self) -> dict[str, Any]:
        d = self.draw
        out: dict[str, Any] = {}
        if d(st.booleans()):
            out["name"] = d(words)
        if d(st.integers(0, 3)) == 0:
            out["documentation"] = d(words)
        if d(st.booleans()):
            out["metadata"] = d(metadata)
        return out

    def sequence(self, cursor: Cursor, depth: int) -> Cursor:
        for _ in range(self.draw(st.integers(1, 3))):
            cursor = self.step(cursor, depth)
        return cursor

    def step(self, cursor: Cursor, depth: int) -> Cursor:
        options = ["activity", "activity", "event", *(BLOCK_KINDS if depth < self.depth else [])]
        choice = self.draw(st.sampled_from(options))
        if choice == "activity":
            return self.activity(cursor)
        if choice == "event":
            return self.event(cursor)
        if choice == "sub":
            return self.sub_process(cursor, depth)
        return self.block(choice, cursor, depth)

    def activity(self, cursor: Cursor) -> Cursor:
        d = self.draw
        kind = d(st.sampled_from(["task", "service", "user", "receive_task", "call"]))
        ident = self.nid(kind[0])
        extra = self.common()
        if d(st.booleans()):
            extra["compensation"] = d(idents)
            self.compensable.append(ident)
        if kind == "task":
            cursor = cursor.task(ident, **extra)
        elif kind == "call":
            mapping = st.none() | st.dictionaries(st.sampled_from(sorted(VARIABLES)), st.sampled_from(["n", "n + 1"]),
                                                  max_size=2)
            cursor = cursor.call(ident, d(st.sampled_from(["child", "approval.flow"])), inputs=d(mapping),
                                 outputs=d(mapping), **extra)
        elif kind == "receive_task":
            cursor = cursor.receive_task(ident, d(event_names), correlation_key=d(st.none() | st.just("n")), **extra)
        elif kind == "service":
            names = st.lists(st.sampled_from(sorted(VARIABLES)), unique=True, max_size=2)
            retry = d(st.none() | st.builds(dict, attempts=st.integers(1, 9), backoff=durations,
                                             multiplier=st.sampled_from([1.0, 1.5, 2.0])))
            if retry:
                extra["retry"] = retry
            cursor = cursor.service(ident, agent=d(st.sampled_from(["agents.x:run", "mod:Class.method"]) | idents),
                                    inputs=d(names), outputs=d(names), timeout=d(st.none() | durations), **extra)
        else:
            form = d(st.lists(st.sampled_from([
                {"name": "ok", "type": "boolean", "required": True},
                {"name": "n", "type": "integer", "default": 3},
                {"name": "name", "type": "enum", "choices": ["a", "b"], "default": "a"},
                {"name": "score", "type": "number", "label": "Score"},
            ]), unique_by=lambda f: f["name"], max_size=3))
            sla = d(st.none() | durations)
            on_timeout = d(st.sampled_from([None, "escalate:cto", "reassign:ops", "notify:sla.late",
                                            {"action": "complete", "values": {"ok": False}}])) if sla else None
            cursor = cursor.user(ident, title=d(st.none() | words), assignee=d(idents),
                                 candidate_groups=d(st.lists(idents, max_size=2)), form=form, sla=sla,
                                 sla_calendar=d(st.none() | st.just("office")) if sla else None,
                                 on_timeout=on_timeout, **extra)
        self.boundaries(cursor)
        return cursor

    def boundaries(self, cursor: Cursor) -> None:
        """Boundary events whose paths end on their own (so the model stays sound)."""
        d = self.draw
        for kind in d(st.lists(st.sampled_from(["timer", "error", "message", "signal", "condition"]), max_size=2)):
            bid = self.nid("b")
            if kind == "condition":
                path = cursor.on_condition(d(st.sampled_from(["n > 1", "ok"])), id=bid, interrupting=d(st.booleans()))
            elif kind == "signal":
                path = cursor.on_signal(d(event_names), id=bid, interrupting=d(st.booleans()))
            elif kind == "timer":
                path = cursor.on_timer(d(timers), id=bid, interrupting=d(st.booleans()))
            elif kind == "error":
                path = cursor.on_error(d(st.none() | idents), id=bid)
            else:
                path = cursor.on_message(d(event_names), id=bid, interrupting=d(st.booleans()),
                                         correlation_key=d(st.none() | st.just("name")))
            ending = d(st.sampled_from(["end", "terminate", "fail", "send"]))
            if ending == "fail":
                path.fail(d(idents), id=self.nid("fail"))
            elif ending == "send":
                path.send(self.nid("m"), d(event_names), payload=["n"]).end(self.nid("e"))
            else:
                getattr(path, ending)(self.nid(ending[0]))

    def event(self, cursor: Cursor) -> Cursor:
        d = self.draw
        kind = d(st.sampled_from(["timer", "receive", "send", "compensate", "throw", "link", "script", "condition",
                                  "signal", "wait_signal", "escalate"]))
        extra = self.common()
        if kind == "signal":
            return cursor.signal(self.nid("st"), d(event_names), payload=d(st.lists(st.sampled_from(sorted(VARIABLES)),
                                                                            unique=True, max_size=2)), **extra)
        if kind == "wait_signal":
            return cursor.wait_signal(self.nid("sc"), d(event_names), **extra)
        if kind == "escalate":
            return cursor.escalate(self.nid("es"), d(idents), **extra)
        if kind == "condition":
            return cursor.wait_until(self.nid("wc"), d(st.sampled_from(["n > 1", "ok"])), **extra)
        if kind == "throw":
            return cursor.throw(self.nid("i"), **extra)
        if kind == "script":
            return cursor.script(self.nid("sc"), d(st.sampled_from(["n = n + 1", "score = len(name) * 1.5\nn = 0"])),
                                 **extra)
        if kind == "link":  # a link pair is a sequence flow: the path goes on at the catch
            name = self.nid("link")
            cursor.link(self.nid("lt"), name, **extra)
            return cursor.builder.link_catch(self.nid("lc"), name)
        if kind == "timer":
            return cursor.timer(self.nid("w"), d(timers), **extra)
        if kind == "receive":
            return cursor.receive(self.nid("r"), d(event_names), correlation_key=d(st.none() | st.just("n")),
                                  outputs=d(st.none() | st.just(["score"])), **extra)
        if kind == "send":
            return cursor.send(self.nid("m"), d(event_names), payload=d(st.lists(st.sampled_from(sorted(VARIABLES)),
                                                                         unique=True, max_size=2)), **extra)
        target = d(st.sampled_from(self.compensable)) if self.compensable and d(st.booleans()) else None
        return cursor.compensate(self.nid("c"), activity=target, **extra)

    def block(self, kind: str, cursor: Cursor, depth: int) -> Cursor:
        d = self.draw
        split_id, join_id = self.nid("split"), self.nid("join")
        if kind == "loop":
            merge = cursor.exclusive(join_id)
            body = self.sequence(merge, depth + 1)
            test = body.exclusive(split_id)
            test.when(d(st.sampled_from(CONDITIONS))).to(join_id)
            self.blocks.append((kind, split_id, join_id))
            return test.otherwise()
        if kind == "race":
            gate = cursor.race(split_id)
            ends = [gate.branch().timer(self.nid("w"), d(durations)),
                    gate.branch().receive(self.nid("r"), d(event_names))]
            ends = [self.sequence(e, depth + 1) if d(st.booleans()) else e for e in ends]
            self.blocks.append((kind, split_id, join_id))
            return self.b.merge(join_id, *ends)
        gate = getattr(cursor, kind)(split_id)
        width = d(st.integers(2, 3))
        branches = []
        for i in range(width):
            if kind == "parallel":
                start = gate.branch()
            elif i == width - 1 and d(st.booleans()):
                start = gate.otherwise()
            else:
                start = gate.when(d(st.sampled_from(CONDITIONS)))
            branches.append(self.sequence(start, depth + 1))
        join_kind = {"exclusive": "exclusive_gateway", "inclusive": "inclusive_gateway",
                     "parallel": "parallel_gateway"}[kind]
        self.blocks.append((kind, split_id, join_id))
        return self.b.join(join_id, *branches, kind=join_kind)

    def event_sub_process(self, builder: ProcessBuilder) -> None:
        """An event sub-process in the scope of ``builder``, with one of each kind of start across examples."""
        d = self.draw
        kind = d(st.sampled_from(["error", "escalation", "conditional", "timer", "message", "signal"]))
        interrupting = d(st.booleans())

        def body(e: ProcessBuilder) -> None:
            sid = self.nid("es")
            if kind == "error":
                start = e.error_start(sid, d(st.none() | idents))
            elif kind == "escalation":
                start = e.escalation_start(sid, d(st.none() | idents), interrupting=interrupting)
            elif kind == "conditional":
                start = e.conditional_start(sid, d(st.sampled_from(["n > 1", "ok"])), interrupting=interrupting)
            elif kind == "timer":
                start = e.timer_start(sid, d(durations | timers), interrupting=interrupting)
            elif kind == "message":
                start = e.message_start(sid, d(event_names), interrupting=interrupting)
            else:
                start = e.signal_start(sid, d(event_names), interrupting=interrupting)
            start.end(self.nid("e"))

        builder.event_sub_process(self.nid("esp"), body, **self.common())

    def sub_process(self, cursor: Cursor, depth: int) -> Cursor:
        if self.draw(st.integers(0, 3)) == 0:
            return self.ad_hoc(cursor)
        inner_blocks: list[tuple[str, str, str]] = []
        transaction = self.draw(st.integers(0, 3)) == 0  # a transaction ends in a cancel end event

        def body(inner: ProcessBuilder) -> None:
            grower = _Grower(self.draw, inner, self.counter, self.depth)
            grower.compensable = self.compensable
            last = grower.sequence(inner.start(self.nid("s")), depth + 1)
            (last.cancel if transaction else last.end)(self.nid("e"))
            inner_blocks.extend(grower.blocks)
            if self.draw(st.booleans()):
                self.event_sub_process(inner)

        cursor = cursor.sub_process(self.nid("sp"), body, transaction=transaction, **self.common())
        self.blocks.extend(inner_blocks)
        self.boundaries(cursor)
        if transaction:  # where the cancelled transaction goes on
            cursor.on_cancel(self.nid("bc")).end(self.nid("e"))
        if self.draw(st.booleans()):  # what runs inside may escalate
            path = cursor.on_escalation(self.draw(st.none() | idents), id=self.nid("be"),
                                        interrupting=self.draw(st.booleans()))
            path.end(self.nid("e"))
        return cursor

    def ad_hoc(self, cursor: Cursor) -> Cursor:
        """An ad-hoc sub-process: one to three tasks without a start (the second may lead to the third)."""
        d = self.draw
        ids = [self.nid("ah") for _ in range(d(st.integers(1, 3)))]

        def body(inner: ProcessBuilder) -> None:
            first = inner.add(Task(id=ids[0]))
            if len(ids) > 1:
                inner.add(Task(id=ids[1]))
            if len(ids) > 2:
                first.task(ids[2])

        chosen = d(st.none() | st.lists(st.sampled_from(ids[:2]), min_size=1, max_size=3))
        cursor = cursor.ad_hoc(self.nid("adhoc"), body, active_elements=repr(chosen) if chosen else None,
                               completion_condition=d(st.none() | st.just("n > 1")),
                               cancel_remaining=d(st.booleans()), sequential=d(st.booleans()), **self.common())
        self.boundaries(cursor)
        return cursor


@st.composite
def generated_models(draw: Any, max_depth: int = 2) -> GeneratedModel:
    """A sound model using every node kind somewhere across examples, with its split/join blocks."""
    b = ProcessBuilder(draw(st.sampled_from(["gen", "order.flow", "r_2"])), name=draw(st.none() | words),
                       version=draw(st.integers(1, 50)), description=draw(st.none() | words),
                       variables=VARIABLES, **draw(process_metadata))
    grower = _Grower(draw, b, itertools.count(1), max_depth)
    start_kind = draw(st.sampled_from(["start", "timer_start", "message_start", "signal_start", "conditional_start"]))
    if start_kind == "conditional_start":
        cursor = b.conditional_start("when", draw(st.sampled_from(["n > 1", "ok"])))
    elif start_kind == "signal_start":
        cursor = b.signal_start("woken", draw(event_names))
    elif start_kind == "start":
        cursor = b.start(metadata=draw(metadata))
    elif start_kind == "timer_start":
        cursor = b.timer_start("tick", draw(cycles | st.just("2026-12-01T09:00:00+01:00")))
    else:
        cursor = b.message_start("hello", draw(event_names))
    cursor = grower.sequence(cursor, 0)
    if draw(st.booleans()):
        grower.event_sub_process(b)
    ending = draw(st.sampled_from(["end", "terminate", "fail", "signal_end", "escalation_end"]))
    if ending == "fail":
        cursor.fail(draw(idents), id="failed")
    elif ending == "signal_end":
        cursor.signal_end("signalled", draw(event_names))
    elif ending == "escalation_end":
        cursor.escalation_end("escalated", draw(idents))
    else:
        getattr(cursor, ending)(f"the_{ending}")
    return GeneratedModel(b.build(validate=False), grower.blocks)
